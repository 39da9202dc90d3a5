import LaminarFormats
import LaminarHTTP
import LaminarReactor

/// The stream routes: define, read, list and delete streams, post events, read results and late
/// events. Most of them need the stream's definition first (field names, aggregates): from the
/// `DefinitionCache` when fresh, else asked of the reactor (`lookup`), and with
/// `--auto-create-streams` a missing stream is created with the default definition.
extension RequestHandler {
    /// What a stream command's completion answers.
    enum StreamKind {
        case define(StreamDefinition)
        case get
        case list
        case delete(String)
        case lookup(String, then: AfterDefinition)
        case autoCreate(StreamDefinition, then: AfterDefinition)
        case events(String)
        case results(limit: Int, fromMs: Int64?, toMs: Int64?)
        case late(StreamDefinition)
    }

    /// What waits for a stream's definition (field names, aggregates) to be known.
    enum AfterDefinition {
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

    /// An events body is decoded as it arrives when the decoder can be set up now: binary always
    /// (to a stream or a source), NDJSON to a stream when this thread has seen its definition
    /// (its field names; checked again against the current definition when the request completes).
    func eventsBodySink(for request: borrowing HTTPRequest) -> EventIngest? {
        guard request.method == .post, request.path.reversed().starts(with: Self.eventsSuffixReversed), isAdmitted(request) else { return nil }
        if request.path.starts(with: Self.sourcesPrefix) {
            guard case .success(.sourceEvents(let name, .binary, let idempotencyKey)) = runtime.router.route(
                method: request.method, target: Array(request.path), header: { request.headers[$0] })
            else { return nil }
            return EventIngest(source: name, format: .binary, fields: EventFields(), limits: runtime.eventLimits,
                               idempotencyKey: idempotencyKey.map(Self.idempotencyHash), arrivalMs: Self.wallClockMs())
        }
        guard request.path.starts(with: Self.streamsPrefix),
              case .success(.eventsPost(let name, let format, let idempotencyKey)) = runtime.router.route(
                  method: request.method, target: Array(request.path), header: { request.headers[$0] })
        else { return nil }
        var fields = EventFields()
        if format == .ndjson {
            guard let definition = definitions.last(name) else { return nil }
            fields = Self.fields(of: definition)
        }
        return EventIngest(stream: name, format: format, fields: fields, limits: runtime.eventLimits,
                           idempotencyKey: idempotencyKey.map(Self.idempotencyHash), arrivalMs: Self.wallClockMs())
    }

    private static let streamsPrefix: [UInt8] = Array("/streams/".utf8)
    private static let sourcesPrefix: [UInt8] = Array("/sources/".utf8)
    private static let eventsSuffixReversed: [UInt8] = Array("/events".utf8.reversed())

    /// A `POST …/events` whose body `eventsBodySink` decoded as it arrived.
    func handleDecodedEvents(_ ingest: EventIngest, _ responder: HTTPResponder, _ start: UInt64) {
        let route: Route = ingest.isSource ? .sourceEvents : .eventsPost
        if draining {
            fail(responder, route, start, HTTPFailure(503, "unavailable", "the server is stopping"))
        } else if ingest.isSource {
            run(CatalogRoutes.sourceEvents(ingest), responder, route, start)
        } else {
            withDefinition(ingest.stream, .ingest(ingest), responder, .eventsPost, start)
        }
    }

    func handleStream(_ action: RouteAction, _ request: borrowing HTTPRequest, _ responder: HTTPResponder, _ start: UInt64) {
        let route = action.route
        switch action {
        case .streamDefine(let name) where CatalogRoutes.mayNameSource(request.body):
            definitions.forget(name)
            run(CatalogRoutes.defineStream(name, body: request.body, runtime: runtime), responder, route, start)
        case .streamDefine(let name):
            switch StreamDefinitionJSON.parse(name: name, body: request.body, limits: runtime.reactorLimits) {
            case .failure(let failure): fail(responder, route, start, failure)
            case .success(let definition):
                definitions.store(definition, atNs: start)
                submit(.defineStream(definition), responder, route, start, .stream(.define(definition)))
            }
        case .streamGet(let name):
            submit(.streamStats(name: name), responder, route, start, .stream(.get))
        case .streamList:
            submit(.listStreams, responder, route, start, .stream(.list))
        case .streamDelete(let name):
            definitions.forget(name)
            submit(.deleteStream(name: name), responder, route, start, .stream(.delete(name)))
        case .eventsPost(let name, let format, let idempotencyKey):
            withDefinition(name, .events(format: format, body: request.body, idempotencyKey: idempotencyKey.map(Self.idempotencyHash)),
                           responder, route, start)
        case .results(let name, let key, let fromMs, let toMs, let after, let limit, let keyPrefix):
            withDefinition(name, .results(key: key, fromMs: fromMs, toMs: toMs, after: after, limit: limit, keyPrefix: keyPrefix),
                           responder, route, start)
        case .late(let name):
            withDefinition(name, .late, responder, route, start)
        default:
            preconditionFailure("not a stream route: \(action)")
        }
    }

    func completeStream(_ kind: StreamKind, _ result: ReactorResult, _ p: Pending) {
        if case .failure(let error) = result {
            switch kind {
            case .lookup(let name, let then) where error == .unknownStream(name) && runtime.configuration.autoCreateStreams:
                autoCreate(name, then, p)
                return
            case .events(let name) where error == .unknownStream(name):
                definitions.forget(name)
            default: break
            }
            respond(p, error)
            return
        }
        switch (kind, result) {
        case (.define(let definition), .ok):
            var body: [UInt8] = []
            StreamDefinitionJSON.append(definition, to: &body)
            body.append(10)
            respond(p, HTTPResponse(status: 200, headers: Self.json, body: body))
        case (.get, .streamStats(let stats)):
            definitions.store(stats.definition, atNs: Self.nowNs())
            var body: [UInt8] = []
            StreamDefinitionJSON.appendStats(stats, to: &body)
            body.append(10)
            respond(p, HTTPResponse(status: 200, headers: Self.json, body: body))
        case (.list, .streams(let names)):
            var body = Array(#"{"streams":["#.utf8)
            for (i, name) in names.sorted().enumerated() {
                if i > 0 { body.append(0x2C) }
                JSONWriter.appendString(name, to: &body)
            }
            body.append(contentsOf: "]}\n".utf8)
            respond(p, HTTPResponse(status: 200, headers: Self.json, body: body))
        case (.delete, .ok):
            respond(p, HTTPResponse(status: 204))
        case (.lookup(_, let then), .streamStats(let stats)):
            definitions.store(stats.definition, atNs: Self.nowNs())
            proceed(stats.definition, then, p)
        case (.autoCreate(let definition, let then), .ok):
            proceed(definition, then, p)
        case (.events, .eventsAccepted(let ack)):
            metrics.recordEvents(accepted: ack.accepted, late: ack.late)
            respond(p, HTTPResponse(status: 202, headers: Self.json, body: ack.jsonBody))
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
            respond(p, HTTPResponse(status: 200, headers: headers, body: body))
        case (.late(let definition), .lateEvents(let events)):
            var body: [UInt8] = []
            for event in events { LateLines.append(event, definition: definition, to: &body) }
            respond(p, HTTPResponse(status: 200, headers: Self.ndjson, body: body))
        default:
            unexpected(result, p)
        }
    }

    // MARK: - Definitions

    func withDefinition(_ name: String, _ then: AfterDefinition, _ responder: HTTPResponder, _ route: Route, _ start: UInt64) {
        if let definition = definitions.fresh(name, nowNs: start) {
            proceed(definition, then, Pending(responder: responder, route: route, startNs: start, kind: .stream(.lookup(name, then: then))))
            return
        }
        submit(.streamStats(name: name), responder, route, start, .stream(.lookup(name, then: then)))
    }

    /// `--auto-create-streams`: creates the stream a request found missing with the default
    /// definition, then carries on. A batch waiting for it is decoded first, so a refused batch
    /// creates nothing.
    private func autoCreate(_ name: String, _ then: AfterDefinition, _ p: Pending) {
        let definition = StreamDefinition(name: name, windowSizeMs: StreamDefinitionJSON.windowDefaultMs)
        var after = then
        if let decoder = eventIngest(then, definition) {
            switch decoder.flatMap({ ingest in ingest.finish().map { (ingest, $0) } }) {
            case .failure(let failure):
                definitions.forget(name)  // a stale definition (409) is not used again
                fail(p.responder, p.route, p.startNs, failure)
                return
            case .success(let (ingest, batch)):
                after = .decoded(batch, idempotencyKey: ingest.idempotencyKey)
            }
        }
        definitions.store(definition, atNs: Self.nowNs())
        submit(.defineStream(definition), p.responder, p.route, p.startNs, .stream(.autoCreate(definition, then: after)))
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
            submit(.appendEvents(stream: name, batch: batch, idempotencyKey: idempotencyKey), p.responder, p.route, p.startNs, .stream(.events(name)))
        case .results(let key, let fromMs, let toMs, let after, let limit, let keyPrefix):
            submit(.queryResults(stream: name, key: key, after: after, limit: limit, keyPrefix: keyPrefix), p.responder, p.route, p.startNs,
                   .stream(.results(limit: limit, fromMs: fromMs, toMs: toMs)))
        case .follow(let since, let keyPrefix, let sse):
            startFollow(definition, since: since, keyPrefix: keyPrefix, sse: sse, p)
        case .late:
            submit(.lateEvents(stream: name), p.responder, p.route, p.startNs, .stream(.late(definition)))
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
                   p.responder, p.route, p.startNs, .stream(.events(ingest.stream)))
        }
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
