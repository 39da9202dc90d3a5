import CLinux
import Glibc

/// One accepted TCP connection on its loop thread: sniffs the HTTP/2 preface, otherwise speaks
/// HTTP/1.1 (keep-alive, pipelining answered in order, chunked bodies, 100-continue) and may
/// switch to HTTP/2 by h2c Upgrade. HTTP/2 framing lives in `HTTP2Session`.
///
/// Thread ownership: the loop thread only. Lifetime: the loop's slot table holds it; responders
/// hold it weakly, so a request answered after its connection closed is dropped.
final class Connection {
    enum Mode { case sniffing, http1, http2 }

    // unowned(unsafe): the loop outlives every connection it holds (no refcount per event).
    unowned(unsafe) let loop: EventLoop
    let fd: Int32
    let id: UInt64
    let slot: Int
    /// The slot's generation while this connection holds it (`EventLoop.connection(slot:generation:)`).
    let generation: UInt32
    private(set) var mode: Mode = .sniffing
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
    /// When the request being received started (HTTP/1.1 and the preface), for the slow-request timeout.
    private var requestStartedMs: Int64?

    // HTTP/1.1 state.
    private var parser: HTTP1RequestParser
    private var parserEvents: [HTTP1ParserEvent] = []
    private var h1Head: HTTP1RequestHead?
    private var h1Body: [UInt8] = []
    private var h1BodySink: (any HTTPBodySink)?
    private var h1Sequence: Int32 = 0
    /// The request handed to the handler and not yet answered completely (at most one: pipelined
    /// requests wait in `h1Pending`, unparsed, so answers go out in order).
    private var h1Outstanding: Int32?
    private var h1IsHead = false
    private var h1KeepAlive = true
    private var h1MinorVersion = 1
    private var h1Streaming = false
    /// Bytes read but not parsed yet: a partial preface while sniffing, or pipelined requests.
    private var h1Pending: [UInt8] = []

    private var session: HTTP2Session?

    init(loop: EventLoop, fd: Int32, id: UInt64, slot: Int, generation: UInt32) {
        self.loop = loop
        self.fd = fd
        self.id = id
        self.slot = slot
        self.generation = generation
        lastActivityMs = loop.nowMs
        requestStartedMs = loop.nowMs
        parser = HTTP1RequestParser(headerBytesMax: loop.limits.headerListBytesMax, bodyBytesMax: loop.limits.bodyBytesMax)
    }

    var handler: HTTPHandler { loop.handler }
    var limits: HTTPLimits { loop.limits }

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
            if mode == .http2 || h1Outstanding == nil || h1Streaming { close(reason: "peer closed"); return }
        }
        if isClosed { return }
        if events & CLinux_EPOLLOUT != 0 { writeBuffered() }
        loop.markDirty(self)
    }

    private var mayRead: Bool {
        !isClosed && !peerClosed && !closeWhenFlushed && !handlerPausedReading && lingerDeadlineMs == nil
            && h1Outstanding == nil && out.count < limits.outputBufferedBytesMax
    }

    private func readAvailable() {
        // Bounded per wake-up so one busy connection cannot starve the others of the loop.
        var rounds = 0
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
                if mode == .http2 || h1Outstanding == nil || h1Streaming { close(reason: "peer closed") }
                return
            }
            lastActivityMs = loop.nowMs
            received(UnsafeRawBufferPointer(rebasing: loop.readBuffer[..<n]))
            if n < loop.readBuffer.count { return }
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        switch mode {
        case .http2: session!.receive(bytes)
        case .http1: processHTTP1(bytes)
        case .sniffing: sniff(bytes)
        }
    }

    /// Decides the protocol from the first bytes: the 24-byte HTTP/2 client preface, or HTTP/1.x.
    /// Input that starts with the preface's request line (`PRI * HTTP/2.0`) and then departs from
    /// it is an invalid HTTP/2 preface: nghttp2 answers it with GOAWAY(PROTOCOL_ERROR) (RFC 9113 3.4).
    private func sniff(_ bytes: UnsafeRawBufferPointer) {
        h1Pending.append(contentsOf: bytes)
        let preface = HTTP2Session.clientPreface
        let compared = min(h1Pending.count, preface.count)
        let matching = zip(h1Pending[..<compared], preface[..<compared]).prefix { $0 == $1 }.count
        if matching == compared || matching >= Self.prefaceRequestLineBytes {
            if matching == compared && compared < preface.count { return }  // a prefix of the preface: wait for the rest
            let pending = h1Pending
            h1Pending = []
            startHTTP2(upgradeSettings: nil, upgradeRequest: nil)
            requestStartedMs = nil
            pending.withUnsafeBytes { session?.receive($0) }
            return
        }
        mode = .http1
        let pending = h1Pending
        h1Pending = []
        pending.withUnsafeBytes { processHTTP1($0) }
    }

    /// `PRI * HTTP/2.0\r\n`: the part of the preface that no HTTP/1.x request starts with.
    private static let prefaceRequestLineBytes = 16

    private func startHTTP2(upgradeSettings: [UInt8]?, upgradeRequest: HTTPRequest?) {
        mode = .http2
        let session = HTTP2Session(connection: self)
        self.session = session
        if let settings = upgradeSettings, let request = upgradeRequest {
            session.upgrade(settings: settings, request: request)
        }
    }

    // MARK: - HTTP/1.1

    private func processHTTP1(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        while index < bytes.count {
            if mode == .http2 {
                session!.receive(UnsafeRawBufferPointer(rebasing: bytes[index...]))
                return
            }
            if h1Outstanding != nil || closeWhenFlushed || isClosed {
                if !closeWhenFlushed && !isClosed { h1Pending.append(contentsOf: bytes[index...]) }
                return
            }
            if requestStartedMs == nil { requestStartedMs = loop.nowMs }
            parserEvents.removeAll(keepingCapacity: true)
            let consumed: Int
            do {
                consumed = try parser.parse(UnsafeRawBufferPointer(rebasing: bytes[index...]), into: &parserEvents)
            } catch {
                replyHTTP1Error(status: error.status, detail: errorDetail(error))
                return
            }
            index += consumed
            for event in parserEvents {
                switch event {
                case .head(let head):
                    h1Head = head
                    h1Body = []
                    h1BodySink = nil
                    if head.framing != .none && head.framing != .length(0) {
                        h1BodySink = handler.bodySink(for: HTTPRequest(
                            method: head.method, target: head.target, headers: head.headers,
                            version: head.minorVersion == 0 ? .http1_0 : .http1_1, token: token(h1Sequence &+ 1)))
                    }
                    if head.expectsContinue && head.minorVersion == 1 && head.framing != .none
                        && head.framing != .length(0) {
                        out.append("HTTP/1.1 100 Continue\r\n\r\n")
                    }
                case .body(let chunk):
                    if let sink = h1BodySink {
                        chunk.withUnsafeBytes { sink.consume($0) }
                    } else {
                        h1Body.append(contentsOf: chunk)
                    }
                case .end:
                    requestStartedMs = nil
                    completeHTTP1Request()
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
        }
    }

    private func completeHTTP1Request() {
        guard let head = h1Head else { return }
        h1Head = nil
        let body = h1Body
        h1Body = []
        h1Sequence &+= 1
        var request = HTTPRequest(
            method: head.method, target: head.target, headers: head.headers, body: body,
            version: head.minorVersion == 0 ? .http1_0 : .http1_1, token: token(h1Sequence), bodySink: h1BodySink)
        h1BodySink = nil
        if let settings = H2CUpgrade.settingsPayload(head) {
            // RFC 7540 §3.2: 101, then the server preface, then the answer on stream 1.
            out.append("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
            request.version = .http2
            request.token = token(1)
            startHTTP2(upgradeSettings: settings, upgradeRequest: request)
            return
        }
        h1IsHead = head.method == .head
        h1KeepAlive = head.keepAlive && !loop.shared.isStopping
        h1MinorVersion = head.minorVersion
        h1Outstanding = h1Sequence
        handler.handle(request, responder: HTTPResponder(connection: self, token: request.token))
    }

    /// Answers a request the parser refused, then closes (the stream position is lost).
    private func replyHTTP1Error(status: Int, detail: String) {
        let body = HTTPStatus.errorBody(status, detail: detail)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        h1KeepAlive = false
        h1IsHead = false
        h1MinorVersion = 1
        writeHTTP1Head(status: status, headers: headers, contentLength: body.count)
        out.append(contentsOf: body)
        closeWhenFlushed = true
        loop.markDirty(self)
    }

    private func writeHTTP1Head(status: Int, headers: HTTPHeaders, contentLength: Int?) {
        var head = "HTTP/1.\(h1MinorVersion) \(status) \(HTTPStatus.reason(status))\r\n"
        for (name, value) in headers where name != "content-length" && name != "connection" && name != "transfer-encoding" {
            head += "\(name): \(value)\r\n"
        }
        if let length = contentLength {
            if status != 204 && status != 304 && status >= 200 { head += "content-length: \(length)\r\n" }
        } else if h1MinorVersion == 1 {
            head += "transfer-encoding: chunked\r\n"
        }
        if !h1KeepAlive {
            head += "connection: close\r\n"
        } else if h1MinorVersion == 0 {
            head += "connection: keep-alive\r\n"
        }
        head += "\r\n"
        out.append(head)
    }

    private func h1Finished() {
        h1Outstanding = nil
        h1Streaming = false
        if !h1KeepAlive { closeWhenFlushed = true }
        loop.markDirty(self)
    }

    // MARK: - Responder operations (loop thread)

    func isOpen(_ streamID: Int32) -> Bool {
        if isClosed { return false }
        switch mode {
        case .http2: return session!.isOpen(streamID)
        default: return h1Outstanding == streamID
        }
    }

    func respond(_ streamID: Int32, _ response: HTTPResponse) -> Bool {
        if isClosed { return false }
        if mode == .http2 { return session!.respond(streamID, response) }
        guard h1Outstanding == streamID, !h1Streaming else { return false }
        writeHTTP1Head(status: response.status, headers: response.headers, contentLength: response.bodyCount)
        if !h1IsHead && response.status != 204 && response.status != 304 {
            if let borrowed = response.borrowedBody { out.append(borrowed.buffer) } else { out.append(contentsOf: response.body) }
        }
        let token = self.token(streamID)
        h1Finished()
        handler.requestClosed(token, reason: .completed)
        return true
    }

    func startStreaming(_ streamID: Int32, status: Int, headers: HTTPHeaders) -> Bool {
        if isClosed { return false }
        if mode == .http2 { return session!.startStreaming(streamID, status: status, headers: headers) }
        guard h1Outstanding == streamID, !h1Streaming else { return false }
        if h1MinorVersion == 0 { h1KeepAlive = false }  // HTTP/1.0: the close ends the body
        h1Streaming = true
        writeHTTP1Head(status: status, headers: headers, contentLength: nil)
        loop.markDirty(self)
        return true
    }

    /// Bytes of a streaming response written and not yet sent (HTTP/1.1: the output buffer).
    func streamingUnsentBytes(_ streamID: Int32) -> Int {
        if isClosed { return 0 }
        if mode == .http2 { return session!.streamingUnsentBytes(streamID) }
        return h1Outstanding == streamID && h1Streaming ? out.count : 0
    }

    func writeStreaming(_ streamID: Int32, _ bytes: [UInt8]) -> Bool {
        if isClosed { return false }
        if mode == .http2 { return session!.writeStreaming(streamID, bytes) }
        guard h1Outstanding == streamID, h1Streaming else { return false }
        if out.count + bytes.count > limits.streamingBufferedBytesMax {
            close(reason: "streaming consumer too slow")
            return false
        }
        if bytes.isEmpty { return true }
        if h1MinorVersion == 1 { out.append(String(bytes.count, radix: 16) + "\r\n") }
        out.append(contentsOf: bytes)
        if h1MinorVersion == 1 { out.append("\r\n") }
        loop.markDirty(self)
        return true
    }

    func finishStreaming(_ streamID: Int32) -> Bool {
        if isClosed { return false }
        if mode == .http2 { return session!.finishStreaming(streamID) }
        guard h1Outstanding == streamID, h1Streaming else { return false }
        if h1MinorVersion == 1 { out.append("0\r\n\r\n") }
        let token = self.token(streamID)
        h1Finished()
        handler.requestClosed(token, reason: .completed)
        return true
    }

    func abort(_ streamID: Int32) {
        if isClosed { return }
        if mode == .http2 { session!.abort(streamID); return }
        if h1Outstanding == streamID { close(reason: "request aborted by the server") }
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
        if mode == .http1, h1Outstanding == nil, !h1Pending.isEmpty, !closeWhenFlushed,
           out.count < limits.outputBufferedBytesMax {
            let pending = h1Pending
            h1Pending = []
            pending.withUnsafeBytes { processHTTP1($0) }
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
            if mode != .http2 && peerClosed && h1Outstanding == nil { close(reason: nil); return }
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
            if mode == .http2 && lingerDeadlineMs == nil && out.count < limits.outputBufferedBytesMax / 2 {
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
            if mode == .http1 && h1Outstanding == nil {
                replyHTTP1Error(status: 408, detail: "the request did not arrive within \(limits.slowRequestTimeoutMs) ms")
            } else {
                close(reason: "slow request")
            }
            return
        }
        // Busy: the server owes an answer or a long-lived response is open. Answers the client
        // does not read do not count: no bytes moving for the idle timeout closes the connection.
        let busy = mode == .http2 ? session!.isBusy : h1Outstanding != nil
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
        case .http2: session!.goAway()
        case .sniffing: closeWhenFlushed = true
        case .http1:
            h1KeepAlive = false
            if h1Outstanding == nil { closeWhenFlushed = true }
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
        h1Pending = []
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
        h1Pending = []
        if let session {
            self.session = nil
            session.teardown()
        } else if let outstanding = h1Outstanding {
            h1Outstanding = nil
            handler.requestClosed(token(outstanding), reason: .aborted)
        }
    }
}
