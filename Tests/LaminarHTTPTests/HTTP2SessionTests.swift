import Glibc
import Testing
@testable import LaminarHTTP

/// The project's own client session (`HTTP2ClientSession`) over a blocking loopback socket,
/// driven by hand: submit, write what nghttp2 produces, feed back what arrives.
final class H2TestClient {
    let fd: Int32
    let session: HTTP2ClientSession
    private var out = OutputBuffer()
    private(set) var closed: [Int: UInt32] = [:]

    init(port: UInt16, slots: Int = 16, windowBytes: UInt32 = 1 << 20) throws {
        fd = try connectLoopback(port: port, timeoutMs: 100)
        session = HTTP2ClientSession(slotCount: slots, authority: "127.0.0.1", windowBytes: windowBytes)
    }

    deinit { close(fd) }

    @discardableResult
    func submit(slot: Int, _ method: HTTPClientMethod, _ path: String, body: [UInt8]? = nil) -> Int32? {
        let pathBytes = Array(path.utf8)
        return pathBytes.withUnsafeBytes { p in
            if let body {
                return body.withUnsafeBytes { b in
                    session.submit(slot: slot, method: method, path: p, contentType: .octetStream, body: b, captureBody: true)
                }
            }
            return session.submit(slot: slot, method: method, path: p, contentType: nil, body: nil, captureBody: true)
        }
    }

    /// Exchanges bytes until every slot in `slots` has closed (or `seconds` pass without progress),
    /// writing and reading as the socket allows (a stalled side never blocks the other).
    func run(until slots: [Int], seconds: Double = 10) throws {
        var idleMs = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !slots.allSatisfy({ closed[$0] != nil }) {
            try #require(session.produceOutput(into: &out, limitBytes: 1 << 20) == nil)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (out.isEmpty ? 0 : Int16(POLLOUT)), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else {
                idleMs += 100
                try #require(Double(idleMs) < seconds * 1000, "no progress for \(seconds) s waiting for slots \(slots)")
                continue
            }
            idleMs = 0
            if pfd.revents & Int16(POLLOUT) != 0 {
                let n = out.withUnsentBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n > 0 { out.consume(n) }
            }
            if pfd.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n == 0 || (n < 0 && errno != EAGAIN) {
                    Issue.record("the server closed the connection")
                    return
                }
                if n > 0 {
                    let problem = buffer.withUnsafeBytes { session.receive(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    try #require(problem == nil, "client session: \(problem ?? "")")
                }
            }
            for c in session.completions { closed[c.slot] = c.errorCode }
            session.completions.removeAll()
        }
    }

    func status(_ slot: Int) -> Int32 { session.status[slot] }
    func body(_ slot: Int) -> [UInt8] { session.responseBodies[slot] }
}

/// `HTTP2Session`: requests and answers, many streams at once, flow control both ways, and the
/// limits it enforces (body, header list, concurrent streams advertised). Only public behaviour
/// that RFC 9113 fixes; stream-state details are tested by the abuse suite.
@Suite(.serialized) struct HTTP2SessionTests {
    @Test func requestsAndAnswersOnConcurrentStreams() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = try H2TestClient(port: server.port)
        for slot in 0..<10 {
            client.submit(slot: slot, slot % 2 == 0 ? .put : .post, "/echo?slot=\(slot)", body: Array("body \(slot)".utf8))
        }
        client.submit(slot: 10, .get, "/nowhere")
        client.submit(slot: 11, .head, "/big?n=100")
        try client.run(until: Array(0...11))
        for slot in 0..<10 {
            #expect(client.closed[slot] == 0 && client.status(slot) == 200)
            #expect(client.body(slot) == Array("body \(slot)".utf8))
        }
        #expect(client.status(10) == 404)
        #expect(client.status(11) == 200 && client.body(11).isEmpty, "HEAD has no body")
    }

    /// A response far larger than the client's 64 KiB window arrives whole (the server waits for
    /// WINDOW_UPDATE); a request body larger than the server's stream window arrives whole too.
    @Test func flowControlBothWays() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = try H2TestClient(port: server.port, windowBytes: 65_535)
        let big = 3 << 20
        client.submit(slot: 0, .get, "/big?n=\(big)")
        let upload = EchoHandler.pattern(5 << 20)  // past the 1 MiB stream window the server advertises
        client.submit(slot: 1, .post, "/echo", body: upload)
        try client.run(until: [0, 1], seconds: 30)
        #expect(client.status(0) == 200 && client.body(0) == EchoHandler.pattern(big))
        #expect(client.status(1) == 200 && client.body(1).count == upload.count && client.body(1) == upload)
    }

    @Test func streamingResponseArrivesInOrder() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = try H2TestClient(port: server.port)
        client.submit(slot: 0, .get, "/stream?n=100")
        try client.run(until: [0])
        #expect(client.status(0) == 200)
        #expect(client.body(0).text == (0..<100).map { "line \($0)\n" }.joined())
    }

    /// Past the body limit: 413 `body_too_large` on that stream; the connection goes on.
    @Test func bodyOverTheLimitIs413AndTheConnectionStays() throws {
        var limits = HTTPLimits()
        limits.bodyBytesMax = 64 * 1024
        let server = try TestHTTPServer(limits: limits)
        defer { server.stop() }
        let client = try H2TestClient(port: server.port)
        client.submit(slot: 0, .put, "/echo", body: EchoHandler.pattern(64 * 1024))
        client.submit(slot: 1, .put, "/echo", body: EchoHandler.pattern(64 * 1024 + 1))
        try client.run(until: [0, 1])
        #expect(client.status(0) == 200 && client.body(0).count == 64 * 1024)
        #expect(client.status(1) == 413)
        #expect(client.body(1).text.hasPrefix(#"{"error":"body_too_large","detail":"request body exceeds 65536 bytes"}"#), "\(client.body(1).text)")
        client.submit(slot: 2, .get, "/big?n=10")
        try client.run(until: [2])
        #expect(client.status(2) == 200 && client.body(2) == EchoHandler.pattern(10))
    }

    /// The server's SETTINGS carry the configured limits; a header list over its limit gets a
    /// 431 `headers_too_large` on that stream (hand-built frames: clients refuse to send one).
    @Test func settingsAdvertiseTheLimitsAndLargeHeaderListsGet431() throws {
        var limits = HTTPLimits()
        limits.concurrentStreamsMax = 17
        limits.headerListBytesMax = 8192
        let server = try TestHTTPServer(limits: limits)
        defer { server.stop() }
        let fd = try connectLoopback(port: server.port)
        defer { close(fd) }
        try sendAll(fd, H2Frame.preface + H2Frame(type: H2Frame.settings, flags: 0, stream: 0, payload: []).bytes)
        let head = readUntil(fd) { !H2Frame.parse($0).isEmpty }
        let settings = try #require(H2Frame.parse(head.bytes).first { $0.type == H2Frame.settings && $0.flags == 0 })
        let values = Dictionary(settings.settings, uniquingKeysWith: { $1 })
        #expect(values[3] == 17, "MAX_CONCURRENT_STREAMS: \(settings.settings)")
        #expect(values[6] == 8192, "MAX_HEADER_LIST_SIZE: \(settings.settings)")
        #expect(values[4] == limits.streamWindowBytes, "INITIAL_WINDOW_SIZE: \(settings.settings)")

        try sendAll(fd, H2Frame(type: H2Frame.settings, flags: 1, stream: 0, payload: []).bytes)
        try sendAll(fd, requestFrames(stream: 1, method: "GET", path: "/echo", extra: [("x-big", String(repeating: "b", count: 9000))]))
        try sendAll(fd, requestFrames(stream: 3, method: "GET", path: "/big?n=5"))
        let r = readUntil(fd) { bytes in
            let frames = H2Frame.parse(bytes)
            return frames.contains { $0.stream == 3 && $0.type == H2Frame.data && $0.flags & 1 == 1 }
                && frames.contains { $0.stream == 1 && $0.type == H2Frame.data && $0.flags & 1 == 1 }
        }
        let frames = H2Frame.parse(head.bytes + r.bytes)
        let data1 = frames.filter { $0.stream == 1 && $0.type == H2Frame.data }.flatMap(\.payload)
        #expect(data1.text.hasPrefix(#"{"error":"headers_too_large""#), "stream 1: \(data1.text)")
        let data3 = frames.filter { $0.stream == 3 && $0.type == H2Frame.data }.flatMap(\.payload)
        #expect(data3 == EchoHandler.pattern(5), "the connection goes on: \(frames.map { ($0.type, $0.stream) })")
        #expect(!frames.contains { $0.type == H2Frame.goAway })
    }

    /// A PING is answered with the same payload (ACK), before or between requests.
    @Test func pingIsAcknowledged() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let fd = try connectLoopback(port: server.port)
        defer { close(fd) }
        let opaque: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        try sendAll(fd, H2Frame.preface + H2Frame(type: H2Frame.settings, flags: 0, stream: 0, payload: []).bytes
            + H2Frame(type: H2Frame.ping, flags: 0, stream: 0, payload: opaque).bytes)
        let r = readUntil(fd) { H2Frame.parse($0).contains { $0.type == H2Frame.ping } }
        #expect(H2Frame.parse(r.bytes).contains(H2Frame(type: H2Frame.ping, flags: 1, stream: 0, payload: opaque)))
    }
}
