import Glibc
import Testing
@testable import LaminarHTTP

/// `Connection`: the first bytes choose the protocol (the HTTP/2 preface, else HTTP/1.1);
/// HTTP/1.1 keep-alive, pipelining in order, chunked bodies, errors answered then closed.
/// Driven over loopback sockets against an in-process server (`TestHTTPServer`).
@Suite(.serialized) struct ConnectionTests {
    func exchange(_ server: TestHTTPServer, _ request: String, until done: ([UInt8]) -> Bool) throws -> (bytes: [UInt8], closed: Bool) {
        let fd = try connectLoopback(port: server.port)
        defer { close(fd) }
        try sendAll(fd, Array(request.utf8))
        return readUntil(fd, done)
    }

    @Test func http1RequestGetsAnHTTP1AnswerAndTheConnectionStays() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let fd = try connectLoopback(port: server.port)
        defer { close(fd) }
        try sendAll(fd, Array("POST /echo?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".utf8))
        let first = readUntil(fd) { $0.text.hasSuffix("hello") }
        let text = first.bytes.text
        #expect(text.hasPrefix("HTTP/1.1 200 "), "\(text)")
        #expect(text.lowercased().contains("content-length: 5\r\n") && text.contains("x-version: 1.1") && text.contains("x-query: x=1"), "\(text)")
        #expect(!first.closed)
        // Keep-alive: a second request on the same connection.
        try sendAll(fd, Array("GET /big?n=3 HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        let second = readUntil(fd) { $0.count(of: "\r\n\r\n") == 1 && $0.last == 2 }
        #expect(second.bytes.text.hasPrefix("HTTP/1.1 200 "), "\(second.bytes.text)")
        #expect(Array(second.bytes.suffix(3)) == [0, 1, 2])
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        var requests = ""
        for i in 0..<20 { requests += "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(String(i).utf8.count + 1)\r\n\r\n#\(i)" }
        let r = try exchange(server, requests) { $0.count(of: "HTTP/1.1 200") == 20 && $0.text.hasSuffix("#19") }
        // Each answer ends with its body: "#0" … "#19", in the order sent.
        let bodies = r.bytes.text.split(separator: "#").dropFirst().map { $0.prefix { $0.isNumber } }
        #expect(bodies == (0..<20).map { Substring("\($0)") }, "\(r.bytes.text.prefix(400))")
    }

    @Test func chunkedBodyIsReassembled() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let r = try exchange(server, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n") {
            $0.text.hasSuffix("abcdefg")
        }
        #expect(r.bytes.text.hasPrefix("HTTP/1.1 200 ") && r.bytes.text.hasSuffix("\r\n\r\nabcdefg"), "\(r.bytes.text)")
    }

    @Test func streamingResponseIsChunked() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let r = try exchange(server, "GET /stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\n") { $0.text.hasSuffix("0\r\n\r\n") }
        let text = r.bytes.text
        #expect(text.lowercased().contains("transfer-encoding: chunked"), "\(text)")
        #expect(text.hasSuffix("7\r\nline 0\n\r\n7\r\nline 1\n\r\n7\r\nline 2\n\r\n0\r\n\r\n"), "\(text)")
    }

    /// `Connection: close` and HTTP/1.0 without keep-alive: answered, then closed by the server.
    @Test func connectionCloseEndsAfterTheAnswer() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        for request in ["GET /big?n=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "GET /big?n=2 HTTP/1.0\r\n\r\n"] {
            let r = try exchange(server, request) { _ in false }
            #expect(r.closed, "\(request)")
            #expect(r.bytes.text.hasPrefix("HTTP/1.") && Array(r.bytes.suffix(2)) == [0, 1], "\(r.bytes.text)")
        }
    }

    /// Errors the layer answers itself: JSON bodies (the one JSON writer), then close.
    @Test func parserErrorsAreJSONAnswersThenClose() throws {
        var limits = HTTPLimits()
        limits.bodyBytesMax = 100
        limits.headerListBytesMax = 4096
        let server = try TestHTTPServer(limits: limits)
        defer { server.stop() }
        let cases: [(String, String, String)] = [
            ("GARBAGE\r\n\r\n", "400", "bad_request"),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", "413", "body_too_large"),
            ("GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "a", count: 5000))\r\n\r\n", "431", "headers_too_large"),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", "501", "not_implemented"),
        ]
        for (request, status, code) in cases {
            let r = try exchange(server, request) { _ in false }
            let text = r.bytes.text
            #expect(r.closed, "\(code): the connection should close")
            #expect(text.hasPrefix("HTTP/1.1 \(status) "), "\(text)")
            #expect(text.contains(#"{"error":"\#(code)","detail":""#) && text.hasSuffix("}\n"), "\(text)")
        }
    }

    /// The HTTP/2 preface, even split over several reads, switches the connection to HTTP/2: the
    /// server's first frame is its SETTINGS.
    @Test(arguments: [24, 3, 1])
    func prefaceSwitchesToHTTP2(pieceBytes: Int) throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let fd = try connectLoopback(port: server.port)
        defer { close(fd) }
        let bytes = H2Frame.preface + H2Frame(type: H2Frame.settings, flags: 0, stream: 0, payload: []).bytes
        var offset = 0
        while offset < H2Frame.preface.count {
            let end = min(offset + pieceBytes, H2Frame.preface.count)
            try sendAll(fd, Array(bytes[offset..<end]))
            offset = end
            if pieceBytes < 24 { usleep(2000) }  // separate reads on the server (not synchronisation: any split must work)
        }
        try sendAll(fd, Array(bytes[offset...]))
        let r = readUntil(fd) { H2Frame.parse($0).contains { $0.type == H2Frame.settings && $0.flags == 1 } }
        let frames = H2Frame.parse(r.bytes)
        #expect(frames.first?.type == H2Frame.settings && frames.first?.flags == 0, "\(frames)")
        #expect(frames.contains { $0.type == H2Frame.settings && $0.flags == 1 }, "our SETTINGS acknowledged: \(frames)")
        #expect(!r.closed)
    }

    /// A request line that starts like the preface ("P…") but is not it stays HTTP/1.1.
    @Test func aRequestStartingWithPIsHTTP1() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let r = try exchange(server, "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok") { $0.text.hasSuffix("ok") }
        #expect(r.bytes.text.hasPrefix("HTTP/1.1 200 ") && r.bytes.text.contains("x-version: 1.1"), "\(r.bytes.text)")
    }

    /// A broken preface is not served: the connection ends without an HTTP/2 answer.
    @Test func aBrokenPrefaceIsNotServed() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let r = try exchange(server, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n") { _ in false }
        #expect(r.closed)
        #expect(!H2Frame.parse(r.bytes).contains { $0.type == H2Frame.headers || $0.type == H2Frame.data })
    }
}
