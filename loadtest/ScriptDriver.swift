import LaminarHTTP

/// One request of a script: what `ScriptDriver.build` wrote into the builder's buffers.
struct ScriptRequest {
    var method: HTTPClientMethod
    var contentType: HTTPClientContentType? = nil
    var hasBody = false
    var captureBody = false
    /// An `Idempotency-Key` header (a retried event batch).
    var idempotencyKey: [UInt8]? = nil
}

/// Sends `count` numbered requests as fast as the streams allow (preload, stream set-up,
/// read-back) and hands each outcome to `finish`. Unmeasured; errors are the caller's to count.
final class ScriptDriver: ClientLoopDriver {
    private let count: Int
    private var builder: RequestBuilder
    private let build: (Int, inout RequestBuilder) -> ScriptRequest
    private let finish: (Int, ClientOutcome, [UInt8]) -> Void
    private let slotsPerConnection: Int
    private var indexOf: [Int]
    private var next = 0
    private var done = 0
    /// Last connect or completion; no progress for `connectGraceNs` while dialling fails = unreachable.
    private var lastProgressNs: Int64
    private unowned let loop: ClientLoop
    /// Why the script gave up before finishing (nothing accepted connections).
    private(set) var unreachable: ClientFailure?

    init(
        loop: ClientLoop, config: LoadConfig, count: Int,
        build: @escaping (Int, inout RequestBuilder) -> ScriptRequest,
        finish: @escaping (Int, ClientOutcome, [UInt8]) -> Void
    ) {
        self.loop = loop
        self.count = count
        self.build = build
        self.finish = finish
        builder = RequestBuilder(config: config)
        slotsPerConnection = config.streams
        indexOf = Array(repeating: 0, count: loop.connections.count * config.streams)
        lastProgressNs = loop.nowNs
    }

    var isFinished: Bool { done == count || unreachable != nil }

    private func fill(_ c: ClientConnection) {
        while next < count && c.freeSlotCount > 0 {
            let request = build(next, &builder)
            let slot: Int? = builder.path.withUnsafeBytes { path in
                if request.hasBody {
                    return builder.body.withUnsafeBytes { body in
                        (request.idempotencyKey ?? []).withUnsafeBytes { key in
                            c.submit(method: request.method, path: path, contentType: request.contentType, body: body, captureBody: request.captureBody,
                                     idempotencyKey: request.idempotencyKey == nil ? nil : key)
                        }
                    }
                }
                return c.submit(method: request.method, path: path, contentType: request.contentType, captureBody: request.captureBody)
            }
            guard let slot else { return }
            indexOf[c.index * slotsPerConnection + slot] = next
            next += 1
        }
    }

    func connected(_ connection: ClientConnection) {
        lastProgressNs = loop.nowNs
        fill(connection)
    }

    func completed(_ c: ClientConnection, slot: Int, outcome: ClientOutcome) {
        let index = indexOf[c.index * slotsPerConnection + slot]
        finish(index, outcome, c.responseBody(slot))
        done += 1
        lastProgressNs = loop.nowNs
        fill(c)
    }

    func connectionFailed(_ connection: ClientConnection, failure: ClientFailure) {
        if loop.nowNs - lastProgressNs >= Self.connectGraceNs { unreachable = failure }
    }

    func tick(nowNs: Int64) -> Int64 {
        nowNs + 100_000_000
    }

    /// How long a script keeps dialling before it calls the server unreachable.
    static let connectGraceNs: Int64 = 3_000_000_000
}
