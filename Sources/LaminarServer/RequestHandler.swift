import Glibc
import LaminarFormats
import LaminarHTTP
import LaminarReactor
import LaminarStore

/// Serves the Laminar HTTP contract on one I/O thread: routes each request (`Router`), turns it
/// into reactor commands on this thread's ring, and answers when completions come back
/// (`didWake`). Decoding and encoding happen here, on the I/O thread; the reactor only applies.
///
/// Thread ownership: the loop thread only (one instance per loop). Bounds: commands in flight are
/// bounded by the producer (`ReactorLimits.commandsInFlightMax`); commands that do not fit wait in
/// `overflow` while the connections that sent them stop reading (backpressure), so the overflow
/// holds at most what those connections had already read.
final class RequestHandler: HTTPHandler {
    private let runtime: ServerRuntime
    private let producer: ReactorProducer
    private let metrics: ThreadMetrics
    private let loopIndex: Int

    private struct Pending {
        var responder: HTTPResponder
        var route: Route
        var startNs: UInt64
        var kind: Kind
    }

    private enum Kind {
        case kvGet
        case kvWrite
        case scan(ValueEncoding, limit: Int)
        case watch(ValueEncoding)
        case batch(BatchState, index: Int?)
        case streamDefine(StreamDefinition)
        case streamGet
        case streamList
        case streamDelete(String)
        case lookup(String, then: AfterDefinition)
        case autoCreate(StreamDefinition, then: AfterDefinition)
        case events(String)
        case results(limit: Int, fromMs: Int64?, toMs: Int64?)
        case follow(Follower)
        case late(StreamDefinition)
        case metrics
        /// A request of several steps (`CatalogRoutes`): what to do with the result.
        case step((ReactorResult) -> RouteStep)
    }

    /// What waits for a stream's definition (field names, aggregates) to be known.
    private enum AfterDefinition {
        /// A body that arrived whole (the definition's field names were not known in time).
        case events(format: EventFormat, body: [UInt8], idempotencyKey: UInt64?)
        /// A body decoded as it arrived.
        case ingest(EventIngest)
        /// A batch decoded with the default definition's field names before its stream is
        /// auto-created (so a refused batch creates nothing).
        case decoded(EventBatch, idempotencyKey: UInt64?)
        case results(key: [UInt8]?, fromMs: Int64?, toMs: Int64?, after: [UInt8]?, limit: Int, keyPrefix: [UInt8]?)
        case follow(since: UInt64?, keyPrefix: [UInt8], sse: Bool)
        case late
    }

    private var pending: [UInt64: Pending] = [:]
    private var nextToken: UInt64 = 1
    /// Live watches and follows by request, to unsubscribe when the client leaves.
    private var subscriptions: [HTTPRequestToken: UInt64] = [:]
    /// Follows resuming with `since` whose client has not yet taken the last page: the next page
    /// is asked for when it has (`roundDidEnd`), so a resume never outruns its reader.
    private var resuming: [HTTPRequestToken: Pending] = [:]
    private var overflow: [ReactorCommand] = []
    private var overflowHead = 0
    private var pausedResponders: [HTTPResponder] = []
    /// Stream definitions seen recently (field names for NDJSON decoding, aggregates for results).
    private var definitions: [String: (definition: StreamDefinition, fetchedNs: UInt64)] = [:]
    /// Bytes written to each subscription's response during the current `didWake`: the client
    /// has had no chance to read them yet, so they do not count towards its backlog.
    private var writtenThisWake: [UInt64: Int] = [:]
    private static let definitionFreshNs: UInt64 = 1_000_000_000
    private var draining = false
    /// Commands went to the ring since the reactor was last rung (`roundDidEnd`).
    private var reactorHasWork = false

    init(runtime: ServerRuntime, context: HTTPLoopContext) {
        self.runtime = runtime
        loopIndex = context.loopIndex
        producer = runtime.producers[context.loopIndex]
        metrics = runtime.threadMetrics[context.loopIndex]
    }

    // MARK: - Requests

    /// Event bodies are decoded as they arrive when the decoder can be set up now: binary always,
    /// NDJSON when this thread has seen the stream's definition (its field names; checked again
    /// against the current definition when the request completes). Other bodies arrive whole.
    func bodySink(for request: HTTPRequest) -> (any HTTPBodySink)? {
        guard !draining, request.method == "POST", request.path.hasPrefix("/streams/"), request.path.hasSuffix("/events"),
              isAdmitted(request),
              case .success(.eventsPost(let name, let format, let idempotencyKey)) = runtime.router.route(
                  method: request.method, target: Array(request.path.utf8), header: { request.headers[$0] })
        else { return nil }
        var fields = EventFields()
        if format == .ndjson {
            guard let cached = definitions[name] else { return nil }
            fields = Self.fields(of: cached.definition)
        }
        return EventIngest(stream: name, format: format, fields: fields, limits: runtime.eventLimits,
                           idempotencyKey: idempotencyKey.map(Self.idempotencyHash), arrivalMs: Self.wallClockMs())
    }

    /// Whether the access policy (if any) lets this request through.
    private func isAdmitted(_ request: HTTPRequest) -> Bool {
        guard let access = runtime.configuration.access, access.requiresToken(method: request.method, path: request.path) else { return true }
        return access.admits(authorization: request.headers["authorization"])
    }

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        let start = Self.nowNs()
        guard request.bodySink != nil || isAdmitted(request) else {
            fail(responder, .other, start, .unauthorized)
            return
        }
        if let ingest = request.bodySink as? EventIngest {
            // Routed when its head arrived; the body is already decoded.
            if draining {
                fail(responder, .eventsPost, start, HTTPFailure(503, "unavailable", "the server is stopping"))
            } else {
                withDefinition(ingest.stream, .ingest(ingest), responder, .eventsPost, start)
            }
            return
        }
        var target = Array(request.path.utf8)
        if let query = request.query {
            target.append(UInt8(ascii: "?"))
            target.append(contentsOf: query.utf8)
        }
        let action: RouteAction
        switch runtime.router.route(method: request.method, target: target, header: { request.headers[$0] }) {
        case .success(let a): action = a
        case .failure(let failure):
            fail(responder, .other, start, failure)
            return
        }
        let route = action.route
        if draining, action != .health, action != .metrics {
            fail(responder, route, start, HTTPFailure(503, "unavailable", "the server is stopping"))
            return
        }
        switch action {
        case .health:
            respond(responder, route, start, Health.response(draining: draining, storageFailure: runtime.storageFailureDetail))
        case .metrics:
            submit(.storeStats, responder, route, start, .metrics)
        case .kvGet(let key, _):
            submit(.get(key: key), responder, route, start, .kvGet)
        case .kvPut(let key, let condition, let ttlMs):
            submit(.put(key: key, value: request.body, condition: condition, ttlMs: ttlMs), responder, route, start, .kvWrite)
        case .kvDelete(let key, let condition):
            submit(.delete(key: key, condition: condition), responder, route, start, .kvWrite)
        case .kvScanPrefix(let prefix, let after, let limit, let encoding):
            submit(.prefixScan(prefix: prefix, after: after, limit: limit), responder, route, start, .scan(encoding, limit: limit))
        case .kvScanRange(let startKey, let end, let after, let limit, let encoding):
            submit(.rangeScan(start: startKey, end: end, after: after, limit: limit), responder, route, start, .scan(encoding, limit: limit))
        case .kvWatch(let prefix, let encoding):
            submit(.watch(prefix: prefix), responder, route, start, .watch(encoding))
        case .kvBatch:
            startBatch(request.body, partitionHeader: request.headers["laminar-partition"], responder, start)
        case .streamDefine(let name) where CatalogRoutes.mayNameSource(request.body):
            definitions[name] = nil
            run(CatalogRoutes.defineStream(name, body: request.body, runtime: runtime), responder, route, start)
        case .streamDefine(let name):
            switch StreamDefinitionJSON.parse(name: name, body: request.body, limits: runtime.reactorLimits) {
            case .failure(let failure): fail(responder, route, start, failure)
            case .success(let definition):
                definitions[name] = (definition, start)
                submit(.defineStream(definition), responder, route, start, .streamDefine(definition))
            }
        case .streamGet(let name):
            submit(.streamStats(name: name), responder, route, start, .streamGet)
        case .streamList:
            submit(.listStreams, responder, route, start, .streamList)
        case .streamDelete(let name):
            definitions[name] = nil
            submit(.deleteStream(name: name), responder, route, start, .streamDelete(name))
        case .eventsPost(let name, let format, let idempotencyKey):
            withDefinition(name, .events(format: format, body: request.body, idempotencyKey: idempotencyKey.map(Self.idempotencyHash)), responder, route, start)
        case .results(let name, let key, let fromMs, let toMs, let after, let limit, let keyPrefix):
            withDefinition(name, .results(key: key, fromMs: fromMs, toMs: toMs, after: after, limit: limit, keyPrefix: keyPrefix),
                           responder, route, start)
        case .resultsFollow(let name, let since, let keyPrefix, let sse):
            withDefinition(name, .follow(since: since, keyPrefix: keyPrefix, sse: sse), responder, route, start)
        case .late(let name):
            withDefinition(name, .late, responder, route, start)
        case .sourceDefine, .sourceGet, .sourceList, .sourceDelete, .sourceEvents, .sql:
            run(CatalogRoutes.start(action, body: request.body, header: { request.headers[$0] }, runtime: runtime), responder, route, start)
        }
    }

    private func run(_ step: RouteStep, _ responder: HTTPResponder, _ route: Route, _ start: UInt64) {
        switch step {
        case .respond(let response): respond(responder, route, start, response)
        case .submit(let operation, let then): submit(operation, responder, route, start, .step(then))
        }
    }

    func requestClosed(_ token: HTTPRequestToken, reason: HTTPCloseReason) {
        // Commands in flight complete anyway (their answer is then dropped); subscriptions end.
        resuming[token] = nil
        if let subscription = subscriptions.removeValue(forKey: token) {
            pending[subscription] = nil
            enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: subscription)))
            producer.wakeReactorIfParked()
        }
    }

    func didWake() {
        writtenThisWake.removeAll(keepingCapacity: true)
        while producer.poll(max: 256, complete) > 0 {}
        drainOverflow()
    }

    func drainStarted() {
        draining = true
        // Long-lived answers end now so their connections can close within the drain deadline.
        for subscription in Array(subscriptions.values) {
            endSubscription(subscription, "shutting_down", detail: "the server is stopping", unsubscribe: true)
        }
        for p in resuming.values {
            if case .follow(let follower) = p.kind {
                _ = p.responder.write(follower.errorLine("shutting_down", detail: "the server is stopping"))
            }
            _ = p.responder.finish()
        }
        resuming.removeAll()
        producer.wakeReactorIfParked()
    }

    /// Ends a watch or follow with a last error line and the end of its response; with
    /// `unsubscribe`, tells the reactor too (not needed when the reactor ended it).
    private func endSubscription(_ subscription: UInt64, _ code: String, detail: String, unsubscribe: Bool) {
        guard let p = pending.removeValue(forKey: subscription) else { return }
        subscriptions[p.responder.token] = nil
        if unsubscribe { enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: subscription))) }
        if case .follow(let follower) = p.kind {
            _ = p.responder.write(follower.errorLine(code, detail: detail))
        } else {
            _ = p.responder.write(JSONWriter.errorBody(code, detail: detail))
        }
        _ = p.responder.finish()
    }

    // MARK: - Submitting

    private func nextTokenValue() -> UInt64 {
        defer { nextToken &+= 1 }
        return nextToken
    }

    private func submit(_ operation: ReactorOperation, _ responder: HTTPResponder, _ route: Route, _ start: UInt64, _ kind: Kind) {
        let token = nextTokenValue()
        pending[token] = Pending(responder: responder, route: route, startNs: start, kind: kind)
        enqueue(ReactorCommand(token: token, operation))
        if overflowHead < overflow.count {
            responder.pauseReading()
            pausedResponders.append(responder)
        }
    }

    private func enqueue(_ command: ReactorCommand) {
        if overflowHead == overflow.count && producer.submit(command) {
            reactorHasWork = true
            return
        }
        overflow.append(command)
    }

    /// Rings the reactor once per loop round for everything submitted in it (a fence and, if it
    /// is parked, an eventfd write), rather than once per request.
    func roundDidEnd() {
        if !resuming.isEmpty { resumeReadFollowers() }
        guard reactorHasWork else { return }
        reactorHasWork = false
        producer.wakeReactorIfParked()
    }

    private func drainOverflow() {
        while overflowHead < overflow.count, producer.submit(overflow[overflowHead]) {
            overflowHead += 1
            reactorHasWork = true
        }
        if overflowHead == overflow.count {
            overflow.removeAll(keepingCapacity: overflow.capacity <= 4096)
            overflowHead = 0
            for responder in pausedResponders { responder.resumeReading() }
            pausedResponders.removeAll(keepingCapacity: true)
        }
    }

    /// Asks for the next page of each resuming follow whose client took most of the last one.
    private func resumeReadFollowers() {
        let threshold = runtime.limits.subscriberBacklogBytesMax / 2
        for (token, p) in resuming where p.responder.unsentBytes <= threshold {
            resuming[token] = nil
            requestNextPage(p)
        }
    }

    /// Submits `resumeResults` after the follower's last seq; the new token stands for the
    /// request's subscription (it becomes the live one when a page reaches the newest row).
    private func requestNextPage(_ p: Pending) {
        guard case .follow(let follower) = p.kind else { return }
        let token = nextTokenValue()
        pending[token] = p
        subscriptions[p.responder.token] = token
        enqueue(ReactorCommand(token: token,
            .resumeResults(stream: follower.definition.name, after: follower.lastSeq, keyPrefix: follower.keyPrefix)))
    }

    /// Starts a follow's long-lived answer (NDJSON or SSE) if not yet started; false if gone.
    private func startFollow(_ p: Pending, _ follower: Follower) -> Bool {
        if follower.started { return true }
        guard p.responder.startStreaming(status: 200, headers: ["content-type": follower.contentType, "cache-control": "no-cache"]) else {
            return false
        }
        follower.started = true
        metrics.recordRequest(route: p.route, status: 200, durationNs: Self.nowNs() &- p.startNs)
        return true
    }

    // MARK: - Completions

    private func complete(_ completion: ReactorCompletion) {
        if completion.result.isNotification {
            notify(completion)
            return
        }
        guard let p = pending.removeValue(forKey: completion.token) else { return }
        let result = completion.result
        if case .step(let then) = p.kind { return run(then(result), p.responder, p.route, p.startNs) }
        if case .failure(let error) = result {
            switch p.kind {
            case .lookup(let name, let then) where error == .unknownStream(name) && runtime.configuration.autoCreateStreams:
                let definition = StreamDefinition(name: name, windowSizeMs: StreamDefinitionJSON.windowDefaultMs)
                var after = then
                if let decoder = eventIngest(then, definition) {
                    switch decoder.flatMap({ ingest in ingest.finish().map { (ingest, $0) } }) {
                    case .failure(let failure):
                        definitions[name] = nil  // a stale definition (409) is not used again
                        fail(p.responder, p.route, p.startNs, failure)
                        return
                    case .success(let (ingest, batch)):
                        after = .decoded(batch, idempotencyKey: ingest.idempotencyKey)
                    }
                }
                definitions[name] = (definition, Self.nowNs())
                submit(.defineStream(definition), p.responder, p.route, p.startNs, .autoCreate(definition, then: after))
                return
            case .batch(let state, let index):
                state.fail(HTTPFailure(error), index: index)
                finishBatchIfDone(state, p)
                return
            case .events(let name) where error == .unknownStream(name):
                definitions[name] = nil
            case .follow(let follower) where follower.started:
                // A resume page failed after rows went out (they expired meanwhile): a last line.
                subscriptions[p.responder.token] = nil
                let failure = HTTPFailure(error)
                var line = follower.errorLine(failure.code, detail: failure.detail)
                if case .resultsGone(let oldest) = error { line = follower.errorLine("gone", detail: Self.goneDetail(follower.lastSeq, oldest)) }
                _ = p.responder.write(line)
                _ = p.responder.finish()
                return
            case .follow(let follower):
                if case .resultsGone(let oldest) = error {
                    // {"error":"gone","detail":…,"oldest_seq":N}
                    var body = JSONWriter.errorBody("gone", detail: Self.goneDetail(follower.lastSeq, oldest))
                    body.removeLast(2)
                    body.append(contentsOf: #","oldest_seq":"#.utf8)
                    JSONWriter.appendInteger(oldest, to: &body)
                    body.append(contentsOf: "}\n".utf8)
                    subscriptions[p.responder.token] = nil
                    respond(p.responder, p.route, p.startNs, HTTPResponse(status: 410, headers: Self.json, body: body))
                    return
                }
                subscriptions[p.responder.token] = nil
            default: break
            }
            var failure = HTTPFailure(error)
            var headers: HTTPHeaders = ["content-type": "application/json"]
            if case .conditionFailed(let current?) = error { headers.add(name: "etag", value: ETag.format(current)) }
            if case .unknownSubscription = error { failure = .notFound("no such subscription") }
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: failure.status, headers: headers, body: failure.body))
            return
        }
        switch (p.kind, result) {
        case (.kvGet, .value(let value, let version)):
            respond(p.responder, p.route, p.startNs, HTTPResponse(
                status: 200, headers: ["content-type": "application/octet-stream", "etag": ETag.format(version)], body: value))
        case (.kvWrite, .written(let version)), (.kvWrite, .deleted(let version)):
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 204, headers: ["etag": ETag.format(version)]))
        case (.scan(let encoding, let limit), .entries(let entries)):
            var body: [UInt8] = []
            body.reserveCapacity(entries.bytes.count + entries.count * 40)
            entries.forEach { key, value, version in KVLines.appendEntry(key: key, value: value, version: version, encoding: encoding, to: &body) }
            var headers = Self.ndjson
            if entries.count == limit, let last = entries.lastKey {
                headers.add(name: "laminar-next-after", value: RequestTarget.percentEncode(last))
            }
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: headers, body: body))
        case (.follow(let follower), .subscribed):
            guard startFollow(p, follower) else {
                enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: completion.token)))
                return
            }
            pending[completion.token] = p
            subscriptions[p.responder.token] = completion.token
        case (.follow(let follower), .retainedResults(let rows, let lastSeq, let live)):
            guard startFollow(p, follower) else {
                if live { enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: completion.token))) }
                subscriptions[p.responder.token] = nil
                return
            }
            var out: [UInt8] = []
            follower.appendRetained(rows, pageLastSeq: lastSeq, to: &out)
            if !out.isEmpty {
                follower.wroteSinceTick = true
                _ = p.responder.write(out)
            }
            if live {
                pending[completion.token] = p
                subscriptions[p.responder.token] = completion.token
            } else if p.responder.unsentBytes <= runtime.limits.subscriberBacklogBytesMax / 2 {
                requestNextPage(p)
            } else {
                resuming[p.responder.token] = p
            }
        case (.watch, .subscribed):
            guard p.responder.startStreaming(status: 200, headers: Self.ndjson) else {
                enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: completion.token)))
                return
            }
            pending[completion.token] = p
            subscriptions[p.responder.token] = completion.token
            metrics.recordRequest(route: p.route, status: 200, durationNs: Self.nowNs() &- p.startNs)
        case (.batch(let state, let index), _):
            state.record(result, index: index)
            finishBatchIfDone(state, p)
        case (.streamDefine(let definition), .ok):
            var body: [UInt8] = []
            StreamDefinitionJSON.append(definition, to: &body)
            body.append(10)
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: Self.json, body: body))
        case (.streamGet, .streamStats(let stats)):
            definitions[stats.definition.name] = (stats.definition, Self.nowNs())
            var body: [UInt8] = []
            StreamDefinitionJSON.appendStats(stats, to: &body)
            body.append(10)
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: Self.json, body: body))
        case (.streamList, .streams(let names)):
            var body = Array(#"{"streams":["#.utf8)
            for (i, name) in names.sorted().enumerated() {
                if i > 0 { body.append(0x2C) }
                JSONWriter.appendString(name, to: &body)
            }
            body.append(contentsOf: "]}\n".utf8)
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: Self.json, body: body))
        case (.streamDelete, .ok):
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 204))
        case (.lookup(_, let then), .streamStats(let stats)):
            definitions[stats.definition.name] = (stats.definition, Self.nowNs())
            proceed(stats.definition, then, p)
        case (.autoCreate(let definition, let then), .ok):
            proceed(definition, then, p)
        case (.events, .eventsAccepted(let ack)):
            var body = Array(#"{"accepted":"#.utf8)
            JSONWriter.appendInteger(ack.accepted, to: &body)
            body.append(contentsOf: #","late":"#.utf8)
            JSONWriter.appendInteger(ack.late, to: &body)
            body.append(contentsOf: #","watermark":"#.utf8)
            JSONWriter.appendInteger(ack.watermarkMs, to: &body)
            body.append(contentsOf: ack.duplicate ? #","duplicate":true"#.utf8 : #","duplicate":false"#.utf8)
            body.append(contentsOf: "}\n".utf8)
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 202, headers: Self.json, body: body))
        case (.results(let limit, let fromMs, let toMs), .entries(let entries)):
            // Values are the stored result JSON; the key ends with the window start (16 hex digits).
            var body: [UInt8] = []
            body.reserveCapacity(entries.bytes.count)
            entries.forEach { key, value, _ in
                let start = Self.windowStart(key)
                if let from = fromMs, start < from { return }
                if let to = toMs, start >= to { return }
                body.append(contentsOf: value)
                body.append(10)
            }
            var headers = Self.ndjson
            if entries.count == limit, let last = entries.lastKey {
                headers.add(name: "laminar-next-after", value: RequestTarget.percentEncode(last))
            }
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: headers, body: body))
        case (.late(let definition), .lateEvents(let events)):
            var body: [UInt8] = []
            for event in events { LateLines.append(event, definition: definition, to: &body) }
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: Self.ndjson, body: body))
        case (.metrics, .storeStats(let stats)):
            let body = runtime.renderMetrics(store: stats)
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: ["content-type": PrometheusText.contentType], body: body))
        default:
            let failure = HTTPFailure(500, "internal_error", "unexpected reactor result \(result)")
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 500, headers: Self.json, body: failure.body))
        }
    }

    /// A watch's change or a follow's closed window: one NDJSON line on its long-lived answer.
    private func notify(_ completion: ReactorCompletion) {
        guard let p = pending[completion.token] else { return }  // unsubscribed meanwhile
        var line: [UInt8] = []
        switch (p.kind, completion.result) {
        case (.watch(let encoding), .change(let change)):
            // {"op":"put","key":…,"value":…,"version":n} or {"op":"delete","key":…,"version":n}
            line.append(contentsOf: (change.value == nil ? #"{"op":"delete","# : #"{"op":"put","#).utf8)
            change.key.withUnsafeBytes { KVLines.appendField("key", $0, encoding: encoding, to: &line) }
            if let value = change.value {
                line.append(0x2C)
                value.withUnsafeBytes { KVLines.appendField("value", $0, encoding: encoding, to: &line) }
            }
            line.append(contentsOf: #","version":"#.utf8)
            JSONWriter.appendInteger(change.revision, to: &line)
            line.append(contentsOf: "}\n".utf8)
        case (.follow(let follower), .windowsClosed(let results)):
            follower.appendRows(results, to: &line)
            if line.isEmpty { return }  // none passed the prefix
            follower.wroteSinceTick = true
        case (.follow(let follower), .progress(let watermarkMs, let seq)):
            // Only when nothing else went out since the last tick.
            let quiet = !follower.wroteSinceTick
            follower.wroteSinceTick = false
            guard quiet else { return }
            follower.appendProgress(watermarkMs: watermarkMs, seq: max(seq, follower.lastSeq), to: &line)
        case (_, .subscriptionEnded(let error)):
            let failure = HTTPFailure(error)
            endSubscription(completion.token, failure.code, detail: failure.detail, unsubscribe: false)
            return
        default:
            return
        }
        // Unread: what was written before this wake and is still unsent. Lines of this wake may
        // pile up to the hard cap, which keeps room for the last line.
        let unsent = p.responder.unsentBytes
        let written = writtenThisWake[completion.token, default: 0]
        let backlogMax = runtime.limits.subscriberBacklogBytesMax
        let streamingBytesMax = runtime.limits.streamingBytesMax
        if unsent - written > backlogMax || unsent + line.count > streamingBytesMax {
            endSubscription(completion.token, "slow_consumer", detail: unsent - written > backlogMax
                ? "the client left more than \(backlogMax) bytes unread"
                : "\(unsent + line.count) bytes to send at once pass the \(streamingBytesMax)-byte limit; raise --subscriber-backlog-bytes",
                unsubscribe: true)
            producer.wakeReactorIfParked()
            return
        }
        writtenThisWake[completion.token] = written + line.count
        if !p.responder.write(line) {
            // The client is gone or too slow: the HTTP layer reset it and requestClosed follows.
            return
        }
    }

    // MARK: - Streams

    private func withDefinition(_ name: String, _ then: AfterDefinition, _ responder: HTTPResponder, _ route: Route, _ start: UInt64) {
        if let cached = definitions[name], start &- cached.fetchedNs < Self.definitionFreshNs {
            proceed(cached.definition, then, Pending(responder: responder, route: route, startNs: start, kind: .lookup(name, then: then)))
            return
        }
        submit(.streamStats(name: name), responder, route, start, .lookup(name, then: then))
    }

    private func proceed(_ definition: StreamDefinition, _ then: AfterDefinition, _ p: Pending) {
        let name = definition.name
        switch then {
        case .events, .ingest:
            switch eventIngest(then, definition)! {
            case .failure(let failure): fail(p.responder, p.route, p.startNs, failure)
            case .success(let ingest): submitEvents(ingest, p)
            }
        case .decoded(let batch, let idempotencyKey):
            submit(.appendEvents(stream: name, batch: batch, idempotencyKey: idempotencyKey), p.responder, p.route, p.startNs, .events(name))
        case .results(let key, let fromMs, let toMs, let after, let limit, let keyPrefix):
            submit(.queryResults(stream: name, key: key, after: after, limit: limit, keyPrefix: keyPrefix), p.responder, p.route, p.startNs,
                   .results(limit: limit, fromMs: fromMs, toMs: toMs))
        case .follow(let since, let keyPrefix, let sse):
            let follower = Follower(definition: definition, sse: sse, keyPrefix: keyPrefix, since: since)
            if let since {
                let token = nextTokenValue()
                pending[token] = Pending(responder: p.responder, route: p.route, startNs: p.startNs, kind: .follow(follower))
                subscriptions[p.responder.token] = token
                enqueue(ReactorCommand(token: token, .resumeResults(stream: name, after: since, keyPrefix: keyPrefix)))
            } else {
                submit(.follow(stream: name), p.responder, p.route, p.startNs, .follow(follower))
            }
        case .late:
            submit(.lateEvents(stream: name), p.responder, p.route, p.startNs, .late(definition))
        }
    }

    /// The decoder holding a batch that waited for `definition` (nil when `then` is no batch):
    /// a body that arrived whole is decoded now; one decoded as it arrived must have used the
    /// definition's field names (409 otherwise).
    private func eventIngest(_ then: AfterDefinition, _ definition: StreamDefinition) -> Result<EventIngest, HTTPFailure>? {
        switch then {
        case .events(let format, let body, let idempotencyKey):
            let ingest = EventIngest(
                stream: definition.name, format: format, fields: Self.fields(of: definition),
                limits: runtime.eventLimits, idempotencyKey: idempotencyKey, arrivalMs: Self.wallClockMs())
            body.withUnsafeBytes { ingest.consume($0) }
            metrics.recordEventBody(streamed: false)
            return .success(ingest)
        case .ingest(let ingest):
            metrics.recordEventBody(streamed: true)
            if let used = ingest.fields, used != Self.fields(of: definition) {
                return .failure(HTTPFailure(409, "definition_changed",
                    "the stream's field names changed while this batch arrived; send it again"))
            }
            return .success(ingest)
        case .decoded, .results, .follow, .late:
            return nil
        }
    }

    private static func fields(of definition: StreamDefinition) -> EventFields {
        EventFields(key: definition.keyField, time: definition.timeField, values: definition.fields)
    }

    private func submitEvents(_ ingest: EventIngest, _ p: Pending) {
        switch ingest.finish() {
        case .failure(let failure):
            fail(p.responder, p.route, p.startNs, failure)
        case .success(let batch):
            submit(.appendEvents(stream: ingest.stream, batch: batch, idempotencyKey: ingest.idempotencyKey),
                   p.responder, p.route, p.startNs, .events(ingest.stream))
        }
    }

    // MARK: - Batch

    private func startBatch(_ body: [UInt8], partitionHeader: String?, _ responder: HTTPResponder, _ start: UInt64) {
        let request: BatchRequest
        switch BatchRequest.parse(body, operationsMax: runtime.limits.batchOperationsMax) {
        case .failure(let failure): fail(responder, .kvBatch, start, failure); return
        case .success(let r): request = r
        }
        if runtime.router.cluster, let refusal = Partition.refusal(ofBatchKeys: request.keys, header: partitionHeader) {
            fail(responder, .kvBatch, start, refusal)
            return
        }
        let state = BatchState(request)
        var mutations: [StoreMutation] = []
        for (index, op) in request.operations.enumerated() {
            switch op {
            case .get(let key): submit(.get(key: key), responder, .kvBatch, start, .batch(state, index: index))
            case .mutation(let m): mutations.append(m)
            }
        }
        if !mutations.isEmpty { submit(.batch(mutations), responder, .kvBatch, start, .batch(state, index: nil)) }
    }

    private func finishBatchIfDone(_ state: BatchState, _ p: Pending) {
        guard state.remaining == 0 else { return }
        if let failure = state.failure {
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: failure.status, headers: Self.json, body: failure.body))
        } else {
            respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: Self.ndjson, body: state.resultLines()))
        }
    }

    // MARK: - Answers

    private static let json: HTTPHeaders = ["content-type": "application/json"]
    private static let ndjson: HTTPHeaders = ["content-type": "application/x-ndjson"]

    private func respond(_ responder: HTTPResponder, _ route: Route, _ start: UInt64, _ response: HTTPResponse) {
        metrics.recordRequest(route: route, status: response.status, durationNs: Self.nowNs() &- start)
        responder.respond(response)
    }

    private func fail(_ responder: HTTPResponder, _ route: Route, _ start: UInt64, _ failure: HTTPFailure) {
        var headers = Self.json
        if failure.status == 405, let allowed = failure.detail.split(separator: ":").last {
            headers.add(name: "allow", value: allowed.trimmingCharacters(in: " "))
        }
        if failure.status == 401 { headers.add(name: "www-authenticate", value: #"Bearer realm="laminar""#) }
        respond(responder, route, start, HTTPResponse(status: failure.status, headers: headers, body: failure.body))
    }

    static func nowNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallClockMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func goneDetail(_ since: UInt64, _ oldest: UInt64) -> String {
        "results after seq \(since) are no longer retained; the oldest retained is seq \(oldest)"
    }

    /// The window start encoded at the end of a result key (`ReservedKeys`).
    static func windowStart(_ key: UnsafeRawBufferPointer) -> Int64 {
        guard key.count >= 16 else { return .min }
        var value: UInt64 = 0
        for byte in key[(key.count - 16)...] {
            let digit: UInt8 = byte >= 65 ? byte - 55 : byte - 48
            value = value << 4 | UInt64(digit & 0xF)
        }
        return Int64(bitPattern: value ^ (1 << 63))
    }

    /// FNV-1a of the `Idempotency-Key` header: the reactor remembers 64-bit keys.
    static func idempotencyHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash == 0 ? 1 : hash
    }
}
