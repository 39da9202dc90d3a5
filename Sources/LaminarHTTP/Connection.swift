import CLinux
import Glibc

/// One accepted TCP connection on its loop thread: sniffs the HTTP/2 preface, otherwise speaks
/// HTTP/1.1 (keep-alive, pipelining answered in order, chunked bodies, 100-continue) and may
/// switch to HTTP/2 by h2c Upgrade. HTTP/2 framing lives in `HTTP2Session`.
///
/// Thread ownership: the loop thread only. Lifetime: the loop's slot table holds it; responders
/// hold it weakly, so a request answered after its connection closed is dropped.
final class Connection {
    /// What the connection speaks, with that protocol's state: nothing yet (the first bytes
    /// decide), an HTTP/1.1 exchange, or an HTTP/2 session.
    enum Mode {
        case sniffing
        case http1(HTTP1Exchange)
        case http2(HTTP2Session)
    }

    // unowned(unsafe): the loop outlives every connection it holds (no refcount per event).
    unowned(unsafe) let loop: EventLoop
    let fd: Int32
    let id: UInt64
    let slot: Int
    /// The slot's generation while this connection holds it (`EventLoop.connection(slot:generation:)`).
    let generation: UInt32
    private(set) var mode: Mode = .sniffing {
        didSet {
            if case .http2(let session) = mode { h2 = Unmanaged.passUnretained(session) } else { h2 = nil }
        }
    }
    /// The session of `.http2` (which holds it), for the answer path without a retain.
    private var h2: Unmanaged<HTTP2Session>?
    var out = OutputBuffer()
    /// The epoll events currently registered.
    private(set) var interest: UInt32 = CLinux_EPOLLIN | CLinux_EPOLLRDHUP
    var isDirty = false
    private(set) var isClosed = false
    /// The handler asked to stop reading (its ring to the reactor is full).
    private var handlerPausedReading = false
    /// Write what is buffered, then close (an HTTP/1.1 error, `Connection: close`, end of drain).
    private var closeWhenFlushed = false
    /// The peer shut down its sending side; nothing more will be read.
    private var peerClosed = false
    /// Lingering close (`linger()`): until when, how many more input bytes are dropped, and
    /// whether our sending side is shut down yet. Nil while the connection is in use.
    private var lingerDeadlineMs: Int64?
    private var lingerBytesLeft = 0
    private var writingShutDown = false
    private var lastActivityMs: Int64
    /// Bytes read at this connection's last readable event (`EventLoop` serves connections whose
    /// last input was small first).
    private(set) var lastInputBytes = 0
    /// When the request being received started (HTTP/1.1 and the preface), for the slow-request timeout.
    private var requestStartedMs: Int64?

    /// Bytes read while sniffing: a partial preface.
    private var sniffed: [UInt8] = []

    init(loop: EventLoop, fd: Int32, id: UInt64, slot: Int, generation: UInt32) {
        self.loop = loop
        self.fd = fd
        self.id = id
        self.slot = slot
        self.generation = generation
        lastActivityMs = loop.nowMs
        requestStartedMs = loop.nowMs
    }

    /// The HTTP/1.1 exchange, when the connection speaks HTTP/1.1.
    private var h1: HTTP1Exchange? { if case .http1(let exchange) = mode { exchange } else { nil } }
    /// The HTTP/2 session, when the connection speaks HTTP/2.
    private var session: HTTP2Session? { if case .http2(let session) = mode { session } else { nil } }
    private var isHTTP2: Bool { if case .http2 = mode { true } else { false } }
    /// Whether a closed input (or a reset) leaves nothing to finish: no HTTP/1.1 answer owed, or
    /// a streaming one (nobody is left to read it), or HTTP/2 (the session ends with it).
    private var closesOnPeerClose: Bool {
        switch mode {
        case .http2, .sniffing: true
        case .http1(let h1): h1.outstanding == nil || h1.streaming
        }
    }

    var handler: HTTPHandler { loop.handler }
    var limits: HTTPLimits { loop.limits }

    /// Marks the connection for its loop's end-of-iteration flush (the loop is not touched when
    /// it already is).
    @inline(__always)
    func markDirty() {
        if !isDirty { loop.markDirty(self) }
    }

    func token(_ streamID: Int32) -> HTTPRequestToken {
        HTTPRequestToken(loopIndex: loop.index, connectionID: id, streamID: streamID)
    }

    // MARK: - Events

    func handleEvents(_ events: UInt32) {
        if events & (CLinux_EPOLLERR | CLinux_EPOLLHUP) != 0 && events & CLinux_EPOLLIN == 0 {
            close(reason: "socket error or hang-up")
            return
        }
        if lingerDeadlineMs != nil {
            if events & (CLinux_EPOLLIN | CLinux_EPOLLRDHUP) != 0 { discardInput() }
            if !isClosed && events & CLinux_EPOLLOUT != 0 { writeBuffered() }
            if !isClosed { loop.markDirty(self) }
            return
        }
        if events & CLinux_EPOLLIN != 0 {
            readAvailable()
        } else if events & CLinux_EPOLLRDHUP != 0 {
            // Not reading now (backpressure or an answer pending): remember, stop asking. A
            // streaming answer (watch, follow) has nobody left to read it: close.
            peerClosed = true
            if closesOnPeerClose { close(reason: "peer closed"); return }
        }
        if isClosed { return }
        if events & CLinux_EPOLLOUT != 0 { writeBuffered() }
        loop.markDirty(self)
    }

    private var mayRead: Bool {
        !isClosed && !peerClosed && !closeWhenFlushed && !handlerPausedReading && lingerDeadlineMs == nil
            && h1?.outstanding == nil && out.count < limits.outputBufferedBytesMax
    }

    private func readAvailable() {
        // Bounded per wake-up so one busy connection cannot starve the others of the loop.
        var rounds = 0
        lastInputBytes = 0
        while mayRead && rounds < 16 {
            rounds += 1
            let result: IOResult<Int>
            do {
                result = try System.read(fd, loop.readBuffer)
            } catch {
                close(reason: "read: \(error)")
                return
            }
            guard case .done(let n) = result else { return }
            if n == 0 {
                peerClosed = true
                if closesOnPeerClose { close(reason: "peer closed") }
                return
            }
            lastActivityMs = loop.nowMs
            lastInputBytes += n
            received(UnsafeRawBufferPointer(rebasing: loop.readBuffer[..<n]))
            if n < loop.readBuffer.count { return }
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        switch mode {
        case .http2(let session): session.receive(bytes)
        case .http1(let h1): processHTTP1(h1, bytes)
        case .sniffing: sniff(bytes)
        }
    }

    /// Decides the protocol from the first bytes: the 24-byte HTTP/2 client preface, or HTTP/1.x.
    /// Input that starts with the preface's request line (`PRI * HTTP/2.0`) and then departs from
    /// it is an invalid HTTP/2 preface: nghttp2 answers it with GOAWAY(PROTOCOL_ERROR) (RFC 9113 3.4).
    private func sniff(_ bytes: UnsafeRawBufferPointer) {
        sniffed.append(contentsOf: bytes)
        let preface = HTTP2Session.clientPreface
        let compared = min(sniffed.count, preface.count)
        let matching = zip(sniffed[..<compared], preface[..<compared]).prefix { $0 == $1 }.count
        if matching == compared || matching >= Self.prefaceRequestLineBytes {
            if matching == compared && compared < preface.count { return }  // a prefix of the preface: wait for the rest
            let pending = sniffed
            sniffed = []
            let session = startHTTP2()
            requestStartedMs = nil
            pending.withUnsafeBytes { session.receive($0) }
            return
        }
        let h1 = HTTP1Exchange(limits: limits)
        mode = .http1(h1)
        let pending = sniffed
        sniffed = []
        pending.withUnsafeBytes { processHTTP1(h1, $0) }
    }

    /// `PRI * HTTP/2.0\r\n`: the part of the preface that no HTTP/1.x request starts with.
    private static let prefaceRequestLineBytes = 16

    private func startHTTP2() -> HTTP2Session {
        let session = HTTP2Session(connection: self)
        mode = .http2(session)
        return session
    }

    // MARK: - HTTP/1.1

    private func processHTTP1(_ h1: HTTP1Exchange, _ bytes: UnsafeRawBufferPointer) {
        var index = 0
        while index < bytes.count {
            if case .http2(let session) = mode {
                session.receive(UnsafeRawBufferPointer(rebasing: bytes[index...]))
                return
            }
            // The next pipelined request waits while an answer is outstanding, and also while the
            // client has not taken earlier answers: one answered at once (a GET on the I/O thread)
            // would otherwise let `out` grow by an answer per request read (`flush` resumes).
            if h1.outstanding != nil || closeWhenFlushed || isClosed || out.count >= limits.outputBufferedBytesMax {
                if !closeWhenFlushed && !isClosed { h1.pending.append(contentsOf: bytes[index...]) }
                return
            }
            if requestStartedMs == nil { requestStartedMs = loop.nowMs }
            h1.parserEvents.removeAll(keepingCapacity: true)
            let consumed: Int
            do {
                consumed = try h1.parser.parse(UnsafeRawBufferPointer(rebasing: bytes[index...]), into: &h1.parserEvents)
            } catch {
                if error == .notHTTP {
                    h1.keepAlive = false  // what was answered before goes out, then the close
                    closeWhenFlushed = true
                    loop.markDirty(self)
                } else {
                    replyHTTP1Error(h1, status: error.status, detail: errorDetail(error))
                }
                return
            }
            index += consumed
            for event in h1.parserEvents {
                switch event {
                case .head(let head):
                    h1.head = head
                    h1.body = []
                    h1.bodySink = nil
                    if head.framing != .none && head.framing != .length(0) && handler.mayTakeBodySink(method: head.method) {
                        h1.bodySink = handler.bodySink(for: HTTPRequest(
                            method: head.method, target: head.target, headers: head.headers,
                            version: head.minorVersion == 0 ? .http1_0 : .http1_1, token: token(h1.sequence &+ 1)))
                    }
                    if head.expectsContinue && head.minorVersion == 1 && head.framing != .none
                        && head.framing != .length(0) {
                        out.append("HTTP/1.1 100 Continue\r\n\r\n")
                    }
                case .body(let chunk):
                    if let sink = h1.bodySink {
                        chunk.withUnsafeBytes { sink.consume($0) }
                    } else {
                        h1.body.append(contentsOf: chunk)
                    }
                case .end:
                    requestStartedMs = nil
                    completeHTTP1Request(h1)
                }
            }
        }
    }

    private func errorDetail(_ error: HTTP1ParseError) -> String {
        switch error {
        case .malformed(let why): "malformed HTTP/1.1 request: \(why)"
        case .headersTooLarge: "request line and headers exceed \(limits.headerListBytesMax) bytes"
        case .bodyTooLarge: "request body exceeds \(limits.bodyBytesMax) bytes"
        case .unsupportedTransferEncoding: "only chunked transfer-encoding is supported"
        case .versionNotSupported: "HTTP/1.0 and HTTP/1.1 only (HTTP/2: the connection preface or Upgrade: h2c)"
        case .notHTTP: "not an HTTP request"
        }
    }

    private func completeHTTP1Request(_ h1: HTTP1Exchange) {
        guard let head = h1.head else { return }
        h1.head = nil
        let body = h1.body
        h1.body = []
        h1.sequence &+= 1
        var request = HTTPRequest(
            method: head.method, target: head.target, headers: head.headers, body: body,
            version: head.minorVersion == 0 ? .http1_0 : .http1_1, token: token(h1.sequence), bodySink: h1.bodySink)
        h1.bodySink = nil
        if let settings = H2CUpgrade.settingsPayload(head) {
            // RFC 7540 §3.2: 101, then the server preface, then the answer on stream 1.
            out.append("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
            request.version = .http2
            request.token = token(1)
            startHTTP2().upgrade(settings: settings, request: request)
            return
        }
        h1.isHead = head.method == .head
        h1.keepAlive = head.keepAlive && !loop.shared.isStopping
        h1.minorVersion = head.minorVersion
        h1.outstanding = h1.sequence
        handler.handle(request, responder: HTTPResponder(connection: self, token: request.token))
    }

    /// Answers a request the parser refused, then closes (the stream position is lost).
    private func replyHTTP1Error(_ h1: HTTP1Exchange, status: Int, detail: String) {
        let body = HTTPStatus.errorBody(status, detail: detail)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        h1.keepAlive = false
        h1.isHead = false
        h1.minorVersion = 1
        writeHTTP1Head(h1, status: status, headers: headers, contentLength: body.count)
        out.append(contentsOf: body)
        closeWhenFlushed = true
        loop.markDirty(self)
    }

    private func writeHTTP1Head(_ h1: HTTP1Exchange, status: Int, headers: HTTPHeaders, etag: UInt64? = nil, contentLength: Int?) {
        var head = "HTTP/1.\(h1.minorVersion) \(status) \(HTTPStatus.reason(status))\r\n"
        for (name, value) in headers where name != "content-length" && name != "connection" && name != "transfer-encoding" {
            head += "\(name): \(value)\r\n"
        }
        if let etag { head += "etag: \"\(etag)\"\r\n" }
        if let length = contentLength {
            if status != 204 && status != 304 && status >= 200 { head += "content-length: \(length)\r\n" }
        } else if h1.minorVersion == 1 {
            head += "transfer-encoding: chunked\r\n"
        }
        if !h1.keepAlive {
            head += "connection: close\r\n"
        } else if h1.minorVersion == 0 {
            head += "connection: keep-alive\r\n"
        }
        head += "\r\n"
        out.append(head)
    }

    private func h1Finished(_ h1: HTTP1Exchange) {
        h1.outstanding = nil
        h1.streaming = false
        if !h1.keepAlive { closeWhenFlushed = true }
        loop.markDirty(self)
    }

    // MARK: - Responder operations (loop thread)

    func isOpen(_ streamID: Int32) -> Bool {
        if isClosed { return false }
        switch mode {
        case .http2(let session): return session.isOpen(streamID)
        case .http1(let h1): return h1.outstanding == streamID
        case .sniffing: return false
        }
    }

    func respond(_ streamID: Int32, _ response: HTTPResponse) -> Bool {
        if isClosed { return false }
        if let h2 { return h2._withUnsafeGuaranteedRef { $0.respond(streamID, response) } }
        guard let h1, h1.outstanding == streamID, !h1.streaming else { return false }
        writeHTTP1Head(h1, status: response.status, headers: response.headers, etag: response.etag, contentLength: response.bodyCount)
        if !h1.isHead && response.status != 204 && response.status != 304 {
            if let borrowed = response.borrowedBody { out.append(borrowed.buffer) } else { out.append(contentsOf: response.body) }
        }
        let token = self.token(streamID)
        h1Finished(h1)
        handler.requestClosed(token, reason: .completed)
        return true
    }

    func respond(_ streamID: Int32, status: Int, contentType: StaticString?, borrowing body: HTTPBorrowedBytes?, etag: UInt64?) -> Bool {
        if isClosed { return false }
        if let h2 {
            return h2._withUnsafeGuaranteedRef { $0.respond(streamID, status: status, contentType: contentType, borrowing: body, etag: etag) }
        }
        let headers: HTTPHeaders = contentType.map { ["content-type": $0.description] } ?? [:]
        let response = body.map { HTTPResponse(status: status, headers: headers, borrowing: $0, etag: etag) }
            ?? HTTPResponse(status: status, headers: headers, etag: etag)
        return respond(streamID, response)
    }

    func startStreaming(_ streamID: Int32, status: Int, headers: HTTPHeaders) -> Bool {
        if isClosed { return false }
        if let session { return session.startStreaming(streamID, status: status, headers: headers) }
        guard let h1, h1.outstanding == streamID, !h1.streaming else { return false }
        if h1.minorVersion == 0 { h1.keepAlive = false }  // HTTP/1.0: the close ends the body
        h1.streaming = true
        writeHTTP1Head(h1, status: status, headers: headers, contentLength: nil)
        loop.markDirty(self)
        return true
    }

    /// Bytes of a streaming response written and not yet sent (HTTP/1.1: the output buffer).
    func streamingUnsentBytes(_ streamID: Int32) -> Int {
        if isClosed { return 0 }
        if let session { return session.streamingUnsentBytes(streamID) }
        guard let h1 else { return 0 }
        return h1.outstanding == streamID && h1.streaming ? out.count : 0
    }

    func writeStreaming(_ streamID: Int32, _ bytes: [UInt8]) -> Bool {
        if isClosed { return false }
        if let session { return session.writeStreaming(streamID, bytes) }
        guard let h1, h1.outstanding == streamID, h1.streaming else { return false }
        if out.count + bytes.count > limits.streamingBufferedBytesMax {
            close(reason: "streaming consumer too slow")
            return false
        }
        if bytes.isEmpty { return true }
        if h1.minorVersion == 1 { out.append(String(bytes.count, radix: 16) + "\r\n") }
        out.append(contentsOf: bytes)
        if h1.minorVersion == 1 { out.append("\r\n") }
        loop.markDirty(self)
        return true
    }

    func finishStreaming(_ streamID: Int32) -> Bool {
        if isClosed { return false }
        if let session { return session.finishStreaming(streamID) }
        guard let h1, h1.outstanding == streamID, h1.streaming else { return false }
        if h1.minorVersion == 1 { out.append("0\r\n\r\n") }
        let token = self.token(streamID)
        h1Finished(h1)
        handler.requestClosed(token, reason: .completed)
        return true
    }

    func abort(_ streamID: Int32) {
        if isClosed { return }
        if let session { session.abort(streamID); return }
        if let h1, h1.outstanding == streamID { close(reason: "request aborted by the server") }
    }

    func setReadingPaused(_ paused: Bool) {
        if handlerPausedReading != paused {
            handlerPausedReading = paused
            if !isClosed { loop.markDirty(self) }
        }
    }

    // MARK: - Output

    /// End-of-iteration work: resume pipelined parsing, pull HTTP/2 frames, write, update interest,
    /// close when done.
    func flush() {
        if isClosed { return }
        if lingerDeadlineMs != nil { flushLingering(); return }
        // Pipelined requests wait while the client is not reading earlier answers: each answer
        // goes to `out`, so parsing on would let it grow by one answer per request read.
        if let h1, h1.outstanding == nil, !h1.pending.isEmpty, !closeWhenFlushed,
           out.count < limits.outputBufferedBytesMax {
            let pending = h1.pending
            h1.pending = []
            pending.withUnsafeBytes { processHTTP1(h1, $0) }
            if isClosed { return }
        }
        if let session {
            session.produceOutput()
            if isClosed { return }
        }
        writeBuffered()
        if isClosed { return }
        if out.isEmpty {
            if closeWhenFlushed { linger(); return }
            if let session, session.isFinished { linger(); return }
            if !isHTTP2 && peerClosed && h1?.outstanding == nil { close(reason: nil); return }
        }
        // A session may have more frames than fit in the buffer: ask to be flushed again when
        // the socket drains (EPOLLOUT).
        var wanted = CLinux_EPOLLRDHUP
        if mayRead { wanted |= CLinux_EPOLLIN }
        if !out.isEmpty { wanted |= CLinux_EPOLLOUT }
        if peerClosed { wanted &= ~(CLinux_EPOLLRDHUP | CLinux_EPOLLIN) }
        if wanted != interest {
            interest = wanted
            loop.updateInterest(self, wanted)
        }
    }

    private func writeBuffered() {
        while !out.isEmpty {
            let result: IOResult<Int>
            do {
                result = try out.withUnsentBytes { bytes throws(SystemError) in try System.send(fd, bytes) }
            } catch {
                close(reason: "send: \(error)")
                return
            }
            guard case .done(let n) = result else { return }
            out.consume(n)
            lastActivityMs = loop.nowMs
            if isHTTP2 && lingerDeadlineMs == nil && out.count < limits.outputBufferedBytesMax / 2 {
                session?.produceOutput()
                if isClosed { return }
            }
        }
    }

    // MARK: - Timeouts, drain, close

    func checkTimeouts(nowMs: Int64) {
        if isClosed { return }
        if let deadline = lingerDeadlineMs {
            if nowMs >= deadline { close(reason: "linger timeout") }
            return
        }
        if let started = requestStartedMs ?? session?.slowRequestStartedMs, nowMs - started > limits.slowRequestTimeoutMs {
            loop.shared.timeouts.add(1, ordering: .relaxed)
            if let h1, h1.outstanding == nil {
                replyHTTP1Error(h1, status: 408, detail: "the request did not arrive within \(limits.slowRequestTimeoutMs) ms")
            } else {
                close(reason: "slow request")
            }
            return
        }
        // Busy: the server owes an answer or a long-lived response is open. Answers the client
        // does not read do not count: no bytes moving for the idle timeout closes the connection.
        let busy: Bool
        switch mode {
        case .http2(let session): busy = session.isBusy
        case .http1(let h1): busy = h1.outstanding != nil
        case .sniffing: busy = false
        }
        if !busy && nowMs - lastActivityMs > limits.idleTimeoutMs {
            loop.shared.timeouts.add(1, ordering: .relaxed)
            if let session, out.isEmpty, !closeWhenFlushed {
                session.goAway()
                closeWhenFlushed = true
                loop.markDirty(self)
            } else {
                close(reason: out.isEmpty ? nil : "output stalled")
            }
        }
    }

    func startDrain() {
        if lingerDeadlineMs != nil { return }
        switch mode {
        case .http2(let session): session.goAway()
        case .sniffing: closeWhenFlushed = true
        case .http1(let h1):
            h1.keepAlive = false
            if h1.outstanding == nil { closeWhenFlushed = true }
        }
        loop.markDirty(self)
    }

    /// Appends `bytes` (whole frames) after what is buffered and closes by lingering: a last word
    /// (a GOAWAY) for a connection being cut.
    func close(sendingFirst bytes: [UInt8], reason: String?) {
        if isClosed { return }
        out.append(contentsOf: bytes)
        linger()
    }

    /// Starts the lingering close: nothing more is read as requests or produced; what is buffered
    /// is written, then our sending side is shut down (FIN) and the client's input is read and
    /// dropped until it closes, for at most `lingerTimeoutMs` and `lingerBytesMax`. Closing with
    /// input unread would make the kernel send a reset, which can destroy our last frames (the
    /// GOAWAY) before the client reads them (RFC 9113 6.8; Apache and nginx linger the same way).
    private func linger() {
        if isClosed || lingerDeadlineMs != nil { return }
        if peerClosed && out.isEmpty { close(reason: nil); return }
        lingerDeadlineMs = loop.nowMs + limits.lingerTimeoutMs
        lingerBytesLeft = limits.lingerBytesMax
        h1?.pending = []
        loop.markDirty(self)
    }

    private func flushLingering() {
        writeBuffered()
        if isClosed { return }
        if out.isEmpty {
            if peerClosed { close(reason: nil); return }
            if !writingShutDown {
                writingShutDown = true
                System.shutdownWriting(fd)
            }
        }
        var wanted: UInt32 = peerClosed ? 0 : CLinux_EPOLLIN | CLinux_EPOLLRDHUP
        if !out.isEmpty { wanted |= CLinux_EPOLLOUT }
        if wanted != interest {
            interest = wanted
            loop.updateInterest(self, wanted)
        }
    }

    /// Reads and drops input while lingering; the client's close (or too much input) ends it.
    private func discardInput() {
        for _ in 0..<16 {
            guard let result = try? System.read(fd, loop.readBuffer) else { close(reason: "read while lingering"); return }
            guard case .done(let n) = result else { return }
            if n == 0 {
                peerClosed = true
                if out.isEmpty { close(reason: nil) }
                return
            }
            lingerBytesLeft -= n
            if lingerBytesLeft <= 0 { close(reason: "input while lingering"); return }
        }
    }

    /// Closes at once: every open request is reported aborted to the handler.
    func close(reason: String?) {
        if isClosed { return }
        isClosed = true
        loop.remove(self)
        System.close(fd)
        out.removeAll()
        sniffed = []
        switch mode {
        case .http2(let session):
            session.teardown()
        case .http1(let h1):
            h1.pending = []
            if let outstanding = h1.outstanding {
                h1.outstanding = nil
                handler.requestClosed(token(outstanding), reason: .aborted)
            }
        case .sniffing:
            break
        }
    }
}

/// The HTTP/1.1 side of a connection: the request being parsed and the one being answered.
/// Requests are answered one at a time, in order: pipelined ones wait in `pending`, unparsed.
/// Owned by its connection, on the loop thread.
final class HTTP1Exchange {
    var parser: HTTP1RequestParser
    var parserEvents: [HTTP1ParserEvent] = []
    /// The head of the request being received, and its body (or the sink taking it).
    var head: HTTP1RequestHead?
    var body: [UInt8] = []
    var bodySink: (any HTTPBodySink)?
    /// Requests received so far on the connection (the request token's stream id).
    var sequence: Int32 = 0
    /// The request handed to the handler and not yet answered completely (at most one).
    var outstanding: Int32?
    var isHead = false
    var keepAlive = true
    var minorVersion = 1
    /// The outstanding answer is a streaming one (chunked, or until close for HTTP/1.0).
    var streaming = false
    /// Bytes read but not parsed yet: pipelined requests.
    var pending: [UInt8] = []

    init(limits: HTTPLimits) {
        parser = HTTP1RequestParser(headerBytesMax: limits.headerListBytesMax, bodyBytesMax: limits.bodyBytesMax)
    }
}
