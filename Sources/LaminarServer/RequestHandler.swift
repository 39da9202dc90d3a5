import Glibc
import LaminarFormats
import LaminarHTTP
import LaminarReactor
import LaminarStore

/// Serves the Laminar HTTP contract on one I/O thread: routes each request (`Router`), turns it
/// into reactor commands on this thread's ring, and answers when completions come back
/// (`didWake`). Decoding and encoding happen here, on the I/O thread; the reactor only applies.
///
/// This file holds what every route shares: the commands in flight, the ring and its overflow,
/// and the answers. Each family of routes lives in its own file as an extension with a `handle…`
/// for its requests and a `complete…` for its completions, and a case in `Kind` (KV:
/// `RequestHandler+KV.swift`; streams: `+Streams.swift`; watches and follows:
/// `+Subscriptions.swift`). Adding a family: a `RouteAction` case and its line in the `Router`,
/// a file like those, and a line in `handle` and in `complete` here.
///
/// Thread ownership: the loop thread only (one instance per loop); every field below belongs to
/// it. Bounds: commands in flight are bounded by the producer (`ReactorLimits.commandsInFlightMax`);
/// commands that do not fit wait in `overflow` while the connections that sent them stop reading
/// (backpressure), so the overflow holds at most what those connections had already read.
final class RequestHandler: HTTPHandler {
    let runtime: ServerRuntime
    let producer: ReactorProducer
    let metrics: ThreadMetrics
    let loopIndex: Int

    /// A command in flight (or a request waiting for a stream's definition): who to answer, and
    /// what the completion means.
    struct Pending {
        var responder: HTTPResponder
        var route: Route
        var startNs: UInt64
        var kind: Kind
    }

    /// Which family of routes a pending command belongs to, with that family's own state.
    enum Kind {
        case kv(KVKind)
        case stream(StreamKind)
        case subscription(SubscriptionKind)
        case metrics
        case status
        /// A request of several steps (`CatalogRoutes`): what to do with the result.
        case step((ReactorResult) -> RouteStep)
    }

    var pending: [UInt64: Pending] = [:]
    /// Single-key KV commands in flight (get, put, delete: most of the traffic), by slot: the
    /// command's token is `kvTokenBit | slot`. Kept apart from `pending` because an entry holds
    /// nothing reference-counted (no retain, release or hashing per request, as a Dictionary
    /// entry of `Pending` cost ~1 300 instructions per request under callgrind). A slot is
    /// freed when its command's one completion arrives, so the table grows only to the most
    /// such commands in flight (or waiting in `overflow`) at once.
    struct KVPending {
        var responder: HTTPResponder
        var route: Route
        var startNs: UInt64
        var isGet: Bool
    }

    private var kvPending: [KVPending] = []
    private var kvFreeSlots: [Int] = []
    /// Marks a token of `kvPending` (tokens of `pending` count up from 1 and never reach it).
    static let kvTokenBit: UInt64 = 1 << 63
    private var nextToken: UInt64 = 1
    /// Live watches and follows by request, to unsubscribe when the client leaves.
    var subscriptions: [HTTPRequestToken: UInt64] = [:]
    /// Follows resuming with `since` whose client has not yet taken the last page: the next page
    /// is asked for when it has (`roundDidEnd`), so a resume never outruns its reader.
    var resuming: [HTTPRequestToken: Pending] = [:]
    private var overflow: [ReactorCommand] = []
    private var overflowHead = 0
    private var pausedResponders: [HTTPResponder] = []
    var definitions = DefinitionCache()
    /// Bytes written to each subscription's response during the current `didWake`: the client
    /// has had no chance to read them yet, so they do not count towards its backlog.
    var writtenThisWake: [UInt64: Int] = [:]
    private(set) var draining = false
    /// Commands went to the ring since the reactor was last rung (`roundDidEnd`).
    private var reactorHasWork = false
    /// A single-key read went to the ring since the reactor was last rung; and whether it was
    /// rung early for one in this round already (`betweenConnections`).
    private var readSubmitted = false
    private var rangForReadsThisRound = false
    /// The debug trace of single-key reads, when the server runs with it (`ReadStageTrace`).
    private var readTracer: ReadTraceRecorder?
    /// This thread's slot for reading the store itself (`RequestHandler+KV`: GETs of durable
    /// keys); nil when the reader has no slot left (every GET then goes to the reactor).
    let storeReads: ConcurrentReader.Handle?

    init(runtime: ServerRuntime, context: HTTPLoopContext) {
        self.runtime = runtime
        loopIndex = context.loopIndex
        producer = runtime.producers[context.loopIndex]
        metrics = runtime.threadMetrics[context.loopIndex]
        readTracer = producer.readTrace.map { ReadTraceRecorder(trace: $0) }
        // Not with the read trace on: it times the reactor's path of every read.
        storeReads = readTracer == nil ? runtime.storeReader?.register() : nil
    }

    func iterationDidBegin() { readTracer?.iterationBegan() }
    func didFlush(endOfIteration: Bool) { readTracer?.flushed(endOfIteration: endOfIteration) }

    // MARK: - Requests

    /// Only event posts (`POST …/events`, `eventsBodySink`) are decoded as they arrive: no
    /// request head is built to ask for the others (puts).
    func mayTakeBodySink(method: HTTPMethod) -> Bool { method == .post }

    /// Event bodies are decoded as they arrive when the decoder can be set up now
    /// (`eventsBodySink`); other bodies arrive whole.
    func bodySink(for request: borrowing HTTPRequest) -> (any HTTPBodySink)? {
        guard !draining else { return nil }
        return eventsBodySink(for: request)
    }

    /// Whether the access policy (if any) lets this request through.
    func isAdmitted(_ request: borrowing HTTPRequest) -> Bool {
        guard let access = runtime.configuration.access, access.requiresToken(method: request.method, path: request.path) else { return true }
        return access.admits(authorization: request.headers["authorization"])
    }

    func handle(_ request: borrowing HTTPRequest, responder: HTTPResponder) {
        let start = Self.nowNs()
        guard request.bodySink != nil || isAdmitted(request) else {
            fail(responder, .other, start, .unauthorized)
            return
        }
        if let ingest = request.bodySink as? EventIngest {
            // Routed when its head arrived; the body is already decoded.
            handleDecodedEvents(ingest, responder, start)
            return
        }
        let action: RouteAction
        switch runtime.router.route(method: request.method, target: request.target, header: { request.headers[$0] }) {
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
        case .status:
            submit(.storeStats, responder, route, start, .status)
        case .console(let asset):
            respond(responder, route, start, ConsoleRoutes.response(asset, ifNoneMatch: request.headers["if-none-match"]))
        case .kvGet, .kvPut, .kvDelete, .kvScanPrefix, .kvScanRange, .kvBatch:
            handleKV(action, request, responder, start)
        case .kvWatch, .resultsFollow:
            handleSubscription(action, responder, start)
        case .streamDefine, .streamGet, .streamList, .streamDelete, .eventsPost, .results, .late:
            handleStream(action, request, responder, start)
        case .sourceDefine, .sourceGet, .sourceList, .sourceDelete, .sourceEvents, .sql:
            run(CatalogRoutes.start(action, body: request.body, header: { request.headers[$0] }, runtime: runtime), responder, route, start)
        }
    }

    /// Carries out one step of a request of several steps (`CatalogRoutes`).
    func run(_ step: RouteStep, _ responder: HTTPResponder, _ route: Route, _ start: UInt64) {
        switch step {
        case .respond(let response): respond(responder, route, start, response)
        case .submit(let operation, let then): submit(operation, responder, route, start, .step(then))
        }
    }

    func requestClosed(_ token: HTTPRequestToken, reason: HTTPCloseReason) {
        // Commands in flight complete anyway (their answer is then dropped); subscriptions end.
        subscriberLeft(token)
    }

    func didWake() {
        writtenThisWake.removeAll(keepingCapacity: true)
        takeCompletions()
    }

    /// A single-key read submitted in this round rings the reactor now, once per round, rather
    /// than after the rest of the round's input (which, with a burst of PUTs from other
    /// connections, is up to ~2 ms of parsing): a read of a durable key is answered in the
    /// reactor's next round. Ringing after every connection's input made the reactor park and
    /// wake 4× as often under `h2load` GETs (0.013 → 0.05-0.066 system calls per request on the
    /// reactor, +0.02 on the I/O thread), hence once per round; writes wait for the round's end
    /// (and then for a sync anyway).
    ///
    /// Completions that arrived are answered without waiting for the loop's wake-up (whose
    /// eventfd stays set: the next round's `didWake` then finds little or nothing). The
    /// subscriptions' backlog accounting (`writtenThisWake`) still runs from one `didWake` to
    /// the next.
    func betweenConnections() -> Bool {
        if readSubmitted && !rangForReadsThisRound {
            readSubmitted = false
            rangForReadsThisRound = true
            producer.wakeReactorIfParked()
        }
        guard producer.hasCompletions else { return false }
        takeCompletions()
        return true
    }

    private func takeCompletions() {
        readTracer?.polling()
        while producer.poll(max: 256, complete) > 0 {}
        drainOverflow()
    }

    func drainStarted() {
        draining = true
        endSubscriptionsForDrain()
        producer.wakeReactorIfParked()
    }

    // MARK: - Submitting

    func nextTokenValue() -> UInt64 {
        defer { nextToken &+= 1 }
        return nextToken
    }

    func submit(_ operation: ReactorOperation, _ responder: HTTPResponder, _ route: Route, _ start: UInt64, _ kind: Kind) {
        let token = nextTokenValue()
        pending[token] = Pending(responder: responder, route: route, startNs: start, kind: kind)
        enqueue(ReactorCommand(token: token, operation), for: responder)
    }

    /// `submit` for a get, put or delete: the answer's state goes to `kvPending`.
    func submitKV(_ operation: ReactorOperation, _ responder: HTTPResponder, _ route: Route, _ start: UInt64, isGet: Bool) {
        let entry = KVPending(responder: responder, route: route, startNs: start, isGet: isGet)
        let slot: Int
        if let free = kvFreeSlots.popLast() {
            slot = free
            kvPending[slot] = entry
        } else {
            slot = kvPending.count
            kvPending.append(entry)
        }
        if isGet {
            readSubmitted = true
            readTracer?.submitted(slot: slot)
        }
        enqueue(ReactorCommand(token: Self.kvTokenBit | UInt64(slot), operation), for: responder)
    }

    /// Queues a request's command; while commands wait in the overflow, its connection stops reading.
    private func enqueue(_ command: ReactorCommand, for responder: HTTPResponder) {
        enqueue(command)
        if overflowHead < overflow.count {
            responder.pauseReading()
            pausedResponders.append(responder)
        }
    }

    func enqueue(_ command: ReactorCommand) {
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
        readSubmitted = false
        rangForReadsThisRound = false
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

    // MARK: - Completions

    private func complete(_ completion: ReactorCompletion) {
        if completion.result.isNotification {
            notify(completion)
            return
        }
        if completion.token & Self.kvTokenBit != 0 {
            let slot = Int(truncatingIfNeeded: completion.token & ~Self.kvTokenBit)
            precondition(slot < kvPending.count, "completion for a KV slot never handed out")
            let entry = kvPending[slot]
            if entry.isGet { readTracer?.completed(slot: slot, handledNs: entry.startNs) }
            kvFreeSlots.append(slot)
            completeKV(entry.isGet ? .get : .write, completion.result,
                       Pending(responder: entry.responder, route: entry.route, startNs: entry.startNs, kind: .kv(entry.isGet ? .get : .write)))
            return
        }
        guard let p = pending.removeValue(forKey: completion.token) else { return }
        switch p.kind {
        case .step(let then):
            if case .eventsAccepted(let ack) = completion.result { metrics.recordEvents(accepted: ack.accepted, late: ack.late) }
            run(then(completion.result), p.responder, p.route, p.startNs)
        case .kv(let kind): completeKV(kind, completion.result, p)
        case .stream(let kind): completeStream(kind, completion.result, p)
        case .subscription(let kind): completeSubscription(kind, completion.result, token: completion.token, p)
        case .metrics:
            switch completion.result {
            case .storeStats(let stats):
                let body = runtime.renderMetrics(store: stats)
                respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: ["content-type": PrometheusText.contentType], body: body))
            case .failure(let error): respond(p, error)
            default: unexpected(completion.result, p)
            }
        case .status:
            switch completion.result {
            case .storeStats(let stats):
                respond(p.responder, p.route, p.startNs, HTTPResponse(status: 200, headers: Self.json, body: runtime.renderStatus(store: stats)))
            case .failure(let error): respond(p, error)
            default: unexpected(completion.result, p)
            }
        }
    }

    // MARK: - Answers

    static let json: HTTPHeaders = ["content-type": "application/json"]
    static let ndjson: HTTPHeaders = ["content-type": "application/x-ndjson"]

    func respond(_ responder: HTTPResponder, _ route: Route, _ start: UInt64, _ response: HTTPResponse) {
        metrics.recordRequest(route: route, status: response.status, durationNs: Self.nowNs() &- start)
        responder.respond(response)
    }

    func respond(_ p: Pending, _ response: HTTPResponse) {
        respond(p.responder, p.route, p.startNs, response)
    }

    /// A KV answer: a status, a static content type, the value where it lies (`HTTPResponder`'s
    /// path that builds no `HTTPResponse`).
    func respond(_ p: Pending, status: Int, contentType: StaticString?, borrowing body: HTTPBorrowedBytes?, etag: UInt64) {
        metrics.recordRequest(route: p.route, status: status, durationNs: Self.nowNs() &- p.startNs)
        p.responder.respond(status: status, contentType: contentType, borrowing: body, etag: etag)
    }

    /// Answers a reactor error (`HTTPResponse(error:)`).
    func respond(_ p: Pending, _ error: ReactorError) {
        respond(p, HTTPResponse(error: error))
    }

    func fail(_ responder: HTTPResponder, _ route: Route, _ start: UInt64, _ failure: HTTPFailure) {
        respond(responder, route, start, failure.response)
    }

    /// A completion that does not fit its command: a bug in the reactor, answered as a 500.
    func unexpected(_ result: ReactorResult, _ p: Pending) {
        respond(p, HTTPFailure(500, "internal_error", "unexpected reactor result \(result)").response)
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
}
