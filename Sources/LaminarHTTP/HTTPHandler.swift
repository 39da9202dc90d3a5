// The contract between the HTTP layer and whatever serves requests (the Laminar server).
//
// Threading: every loop thread has its own handler instance, made by the server's factory on
// that thread. All handler methods, and every `HTTPResponder` method, run on that loop thread
// only. Work done elsewhere (the reactor) comes back through `HTTPLoopWaker.wake()`, after which
// the loop calls `didWake()` on its handler, which drains its completion ring and answers.

/// Which protocol a request arrived on.
public enum HTTPVersion: Sendable, Equatable {
    case http1_0, http1_1, http2
}

/// Identifies one request (an HTTP/2 stream, or one HTTP/1.1 exchange) across the whole server.
/// Sendable and hashable, so it can travel to the reactor and back inside a command/completion.
public struct HTTPRequestToken: Hashable, Sendable, CustomStringConvertible {
    /// The loop (I/O thread) that owns the connection.
    public let loopIndex: Int
    /// Unique per loop, never reused during a loop's life.
    public let connectionID: UInt64
    /// The HTTP/2 stream id, or the sequence number of the request on an HTTP/1.1 connection.
    public let streamID: Int32

    public init(loopIndex: Int, connectionID: UInt64, streamID: Int32) {
        self.loopIndex = loopIndex
        self.connectionID = connectionID
        self.streamID = streamID
    }

    public var description: String { "\(loopIndex)/\(connectionID)/\(streamID)" }
}

/// A complete request: head and whole body (at most `HTTPLimits.bodyBytesMax`), or head and
/// the `bodySink` that took the body as it arrived (`body` is then empty). The head is bytes as
/// received: the method decoded once, the target kept whole with the path and query as slices
/// of it, header fields packed into one buffer.
///
/// Not copyable: the layer lends it to the handler (`HTTPHandler.handle` borrows it) from where
/// it was received (an HTTP/2 stream keeps one, its buffers reused from request to request), so
/// handing a request over retains and releases nothing. A handler copies the fields it keeps.
public struct HTTPRequest: ~Copyable {
    public var method: HTTPMethod
    /// The request target as received: the path (percent-encoding preserved) and the query.
    public private(set) var target: [UInt8]
    /// Where the path ends in `target`: at the `?`, or at the end.
    public private(set) var pathEnd: Int
    /// Request headers, names lowercased; HTTP/2 pseudo-headers are not included
    /// (`:authority` is exposed as `host`).
    public var headers: HTTPRequestHeaders
    public var body: [UInt8]
    public var version: HTTPVersion
    public var token: HTTPRequestToken
    /// The sink `HTTPHandler.bodySink(for:)` returned for this request, if any.
    public var bodySink: (any HTTPBodySink)?

    public init(method: HTTPMethod, target: [UInt8], headers: HTTPRequestHeaders, body: [UInt8] = [],
                version: HTTPVersion, token: HTTPRequestToken, bodySink: (any HTTPBodySink)? = nil) {
        self.method = method
        self.target = target
        self.pathEnd = target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
        self.headers = headers
        self.body = body
        self.version = version
        self.token = token
        self.bodySink = bodySink
    }

    /// The path, percent-encoding preserved (no query).
    public var path: ArraySlice<UInt8> { target[..<pathEnd] }
    /// The raw query after `?`, or nil.
    public var query: ArraySlice<UInt8>? { pathEnd < target.count ? target[(pathEnd + 1)...] : nil }

    /// Replaces the target with `bytes`, keeping the buffer's capacity (a reused request).
    mutating func setTarget(_ bytes: UnsafeBufferPointer<UInt8>) {
        target.removeAll(keepingCapacity: true)
        target.append(contentsOf: bytes)
        pathEnd = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
    }
}

/// A complete response. `content-length` is added by the layer (do not set it);
/// for HEAD requests the body is not sent but its length is announced.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Instead of `body`: bytes someone else owns (a value in the store's mapping), copied once,
    /// straight into the connection's output as the DATA frames go out (HTTP/2: nghttp2's
    /// `NGHTTP2_DATA_FLAG_NO_COPY`). `body` is then empty.
    public var borrowedBody: HTTPBorrowedBytes?
    /// A strong entity tag that is a version number, sent after `headers` as `etag: "N"` and
    /// written as bytes by the layer (no `String` per response). Do not also put one in `headers`.
    public var etag: UInt64?

    public init(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = [], etag: UInt64? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.etag = etag
    }

    public init(status: Int, headers: HTTPHeaders = [:], borrowing bytes: HTTPBorrowedBytes, etag: UInt64? = nil) {
        self.status = status
        self.headers = headers
        self.body = []
        self.borrowedBody = bytes
        self.etag = etag
    }

    /// Length of the body, whichever way it is held.
    public var bodyCount: Int { borrowedBody?.count ?? body.count }
}

/// Bytes the HTTP layer reads but does not own: `owner` keeps `start..<start+count` alive and
/// unchanged for as long as this value is held (the layer holds it until the bytes are sent or
/// the request is gone). The owner must allow reads from the loop thread.
public struct HTTPBorrowedBytes: @unchecked Sendable {
    public let owner: AnyObject
    public let start: UnsafeRawPointer
    public let count: Int

    public init(owner: AnyObject, start: UnsafeRawPointer, count: Int) {
        self.owner = owner
        self.start = start
        self.count = count
    }

    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: start, count: count) }
}

/// Why the layer reports a request finished (`HTTPHandler.requestClosed`).
public enum HTTPCloseReason: Sendable, Equatable {
    /// The whole response was handed to the connection (it may still be in flight to the client).
    case completed
    /// The client reset the stream or went away, the server reset it (a limit), or the connection
    /// closed (timeout, shutdown deadline, error). Any later answer is dropped.
    case aborted
}

/// A Sendable handle that wakes a loop from any thread. After `wake()`, the loop calls its
/// handler's `didWake()` on the loop thread (several wakes may be coalesced into one call).
public struct HTTPLoopWaker: Sendable {
    let signal: @Sendable () -> Void
    public func wake() { signal() }
}

/// What a handler knows of its loop. Owned by the loop thread.
public struct HTTPLoopContext: Sendable {
    /// 0 ..< ioThreads.
    public let loopIndex: Int
    /// Hand this to producers on other threads (the reactor) to wake this loop.
    public let waker: HTTPLoopWaker
}

/// Takes a request body chunk by chunk as it arrives (HTTP/2 DATA frames, HTTP/1.1 reads),
/// instead of the layer buffering it whole. Called on the loop thread while input is being read:
/// it must not answer or touch responders. The layer still enforces `HTTPLimits.bodyBytesMax`;
/// a rejected or aborted request just drops its sink.
public protocol HTTPBodySink: AnyObject {
    func consume(_ chunk: UnsafeRawBufferPointer)
}

/// Serves requests on one loop thread. Not Sendable: one instance per loop, used on that thread.
public protocol HTTPHandler: AnyObject {
    /// A request's head is complete and a body follows: return a sink to take the body as it
    /// arrives (the request then reaches `handle` with it in `bodySink`), or nil to receive the
    /// body whole in `HTTPRequest.body`. `request.body` is empty here.
    func bodySink(for request: borrowing HTTPRequest) -> (any HTTPBodySink)?

    /// Whether a request with this method may get a body sink: when false, `bodySink(for:)` is
    /// not asked (no request head is built for it). Default: every method.
    func mayTakeBodySink(method: HTTPMethod) -> Bool

    /// A complete request. Answer now or later (from `didWake`) through `responder`, which may be
    /// stored. Every request gets exactly one `requestClosed` call afterwards.
    func handle(_ request: borrowing HTTPRequest, responder: HTTPResponder)

    /// The request is finished: answered completely, or aborted. Free anything held for it
    /// (a watch subscription, a pending completion); the responder is dead from now on.
    func requestClosed(_ token: HTTPRequestToken, reason: HTTPCloseReason)

    /// The loop was woken by `HTTPLoopWaker.wake()`: drain completions and answer.
    func didWake()

    /// The loop handled one round of input: every request it could dispatch reached `handle`.
    /// The place to hand batched work to other threads once per round instead of per request.
    func roundDidEnd()

    /// Called between two connections' input within a round: answer what came back meanwhile
    /// (as `didWake` would, without waiting for the wake-up). Returns whether anything was
    /// answered: the loop then writes it before reading on. Default: nothing, false.
    func betweenConnections() -> Bool

    /// Debug tracing hooks: a loop iteration begins (`epoll_wait` returned); the output of the
    /// connections marked for it was written (several times per iteration), the last time at
    /// the end of the iteration's work (`endOfIteration`).
    func iterationDidBegin()
    func didFlush(endOfIteration: Bool)

    /// The server is stopping: new requests are refused from now on. End long-lived responses
    /// (watches, follows) so their connections can close before the drain deadline.
    func drainStarted()

    /// The loop's last call, after every connection closed.
    func loopWillStop()
}

extension HTTPHandler {
    public func bodySink(for request: borrowing HTTPRequest) -> (any HTTPBodySink)? { nil }
    public func mayTakeBodySink(method: HTTPMethod) -> Bool { true }
    public func requestClosed(_ token: HTTPRequestToken, reason: HTTPCloseReason) {}
    public func didWake() {}
    public func roundDidEnd() {}
    public func betweenConnections() -> Bool { false }
    public func iterationDidBegin() {}
    public func didFlush(endOfIteration: Bool) {}
    public func drainStarted() {}
    public func loopWillStop() {}
}

/// Answers one request. Use it only on the loop thread that handed it out. Every method is safe
/// to call after the stream went away: it then does nothing and returns false.
///
/// Either `respond` once, or `startStreaming` once, then `write` any number of times, then `finish`.
public struct HTTPResponder {
    // The connection is found again by slot and generation in its loop's table: no reference
    // counting per request, and a closed connection (its slot freed or reused) is simply gone.
    // Unmanaged: responders live in the loop's handler, which the loop outlives; used through
    // `_withUnsafeGuaranteedRef` (a use of an unowned(unsafe) reference retains and releases it).
    let loop: Unmanaged<EventLoop>
    let slot: Int32
    let generation: UInt32
    public let token: HTTPRequestToken

    init(connection: Connection, token: HTTPRequestToken) {
        loop = Unmanaged.passUnretained(connection.loop)
        slot = Int32(truncatingIfNeeded: connection.slot)
        generation = connection.generation
        self.token = token
    }

    private var connection: Connection? {
        loop._withUnsafeGuaranteedRef { $0.connection(slot: Int(slot), generation: generation) }
    }

    private var unretainedConnection: Unmanaged<Connection>? {
        loop._withUnsafeGuaranteedRef { $0.unretainedConnection(slot: Int(slot), generation: generation) }
    }

    /// Whether the request is still open for an answer (or for more streamed data).
    public var isOpen: Bool { connection?.isOpen(token.streamID) ?? false }

    /// Sends a complete response.
    @discardableResult
    public func respond(_ response: HTTPResponse) -> Bool {
        guard let connection = unretainedConnection else { return false }
        return connection._withUnsafeGuaranteedRef { $0.respond(token.streamID, response) }
    }

    /// Sends a complete response whose headers are a content type known when compiling (or none),
    /// an `etag: "N"` and the length: as `respond(_:)` with those, without building an
    /// `HTTPResponse` (the KV answers, most of the traffic).
    @discardableResult
    public func respond(status: Int, contentType: StaticString?, borrowing body: HTTPBorrowedBytes?, etag: UInt64?) -> Bool {
        guard let connection = unretainedConnection else { return false }
        return connection._withUnsafeGuaranteedRef {
            $0.respond(token.streamID, status: status, contentType: contentType, borrowing: body, etag: etag)
        }
    }

    /// Sends the status and headers of a long-lived response whose body is appended with `write`
    /// (HTTP/2: DATA frames from a deferred data provider; HTTP/1.1: chunked transfer encoding).
    @discardableResult
    public func startStreaming(status: Int, headers: HTTPHeaders = [:]) -> Bool {
        connection?.startStreaming(token.streamID, status: status, headers: headers) ?? false
    }

    /// Appends body bytes to a streaming response. False when the stream is gone, or when the
    /// client is so slow that the unsent bytes passed `HTTPLimits.streamingBufferedBytesMax`
    /// (the stream is then reset and `requestClosed(.aborted)` follows).
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        connection?.writeStreaming(token.streamID, bytes) ?? false
    }


    /// Bytes of a streaming response appended with `write` that the client has not taken yet
    /// (held by the server, kernel buffers aside): how far behind a long-lived reader is.
    public var unsentBytes: Int { connection?.streamingUnsentBytes(token.streamID) ?? 0 }

    /// Ends a streaming response.
    @discardableResult
    public func finish() -> Bool {
        connection?.finishStreaming(token.streamID) ?? false
    }

    /// Aborts the request (HTTP/2: RST_STREAM(CANCEL); HTTP/1.1: closes the connection).
    public func abort() {
        connection?.abort(token.streamID)
    }

    /// Backpressure: stop reading from this request's connection (e.g. the reactor ring is full),
    /// until `resumeReading()`. Responses still go out.
    public func pauseReading() { connection?.setReadingPaused(true) }
    public func resumeReading() { connection?.setReadingPaused(false) }
}
