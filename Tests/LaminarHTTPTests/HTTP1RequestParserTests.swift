import Testing
@testable import LaminarHTTP

@Suite struct HTTP1RequestParserTests {
    private func parseAll(_ text: String, chunkSize: Int = .max, bodyMax: Int = 1 << 20) throws(HTTP1ParseError) -> [HTTP1ParserEvent] {
        var parser = HTTP1RequestParser(headerBytesMax: 8192, bodyBytesMax: bodyMax)
        var events: [HTTP1ParserEvent] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunkSize)
            var offset = start
            while offset < end {  // the parser stops after each request: feed the rest again
                offset += try parser.parse(Array(bytes[offset..<end]), into: &events)
            }
            start = end
        }
        return events
    }

    private func body(_ events: [HTTP1ParserEvent]) -> [UInt8] {
        var out: [UInt8] = []
        for case .body(let b) in events { out += b }
        return out
    }

    @Test(arguments: [1, 3, 7, 1000])
    func pipelinedRequestsWithLengthAndChunkedBodies(chunkSize: Int) throws {
        let text = "PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + "POST /kv/_batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
            + "GET /health HTTP/1.0\r\n\r\n"
        let events = try parseAll(text, chunkSize: chunkSize)
        let heads = events.compactMap { if case .head(let h) = $0 { h } else { nil } }
        #expect(heads.map(\.method) == ["PUT", "POST", "GET"])
        #expect(heads.map { String(decoding: $0.target, as: UTF8.self) } == ["/kv/a", "/kv/_batch", "/health"])
        #expect(heads[0].framing == .length(5) && heads[1].framing == .chunked && heads[2].framing == HTTP1RequestHead.BodyFraming.none)
        #expect(heads[0].keepAlive && !heads[2].keepAlive)
        #expect(events.filter { $0 == .end }.count == 3)
        #expect(body(events) == Array("helloabcde".utf8))
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\nHost: x\n\n", 400),
        ("GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        ("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
        ("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
        ("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    ])
    func refusedRequests(text: String, status: Int) {
        do {
            _ = try parseAll(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.status == status)
        }
    }

    @Test func headersOverTheLimitAre431() {
        let text = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        #expect(throws: HTTP1ParseError.headersTooLarge) { _ = try parseAll(text, chunkSize: 100) }
    }

    @Test func chunkedBodyOverTheLimitIs413() {
        let text = "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + String(repeating: "a", count: 1024) + "\r\n400\r\n"
        #expect(throws: HTTP1ParseError.bodyTooLarge) { _ = try parseAll(text, bodyMax: 1500) }
    }

    /// RFC 9112 2.3 / 3.2.2 / RFC 9110 2.5: a later HTTP/1 minor version is served as 1.1, an
    /// absolute-form target as its path, HTTP/1.0 needs no Host; a line that is not HTTP at all
    /// (an invalid HTTP/2 preface) is `notHTTP`, answered by closing.
    @Test func versionsTargetsAndHost() throws {
        let text = "GET /health HTTP/1.2\r\nHost: x\r\n\r\n"
            + "GET http://127.0.0.1:7070/kv/a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:7070\r\n\r\n"
            + "GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"
            + "GET /health HTTP/1.0\r\n\r\n"
        let heads = try parseAll(text).compactMap { if case .head(let h) = $0 { h } else { nil } }
        #expect(heads.map(\.minorVersion) == [1, 1, 1, 0])
        #expect(heads.map { String(decoding: $0.target, as: UTF8.self) } == ["/health", "/kv/a?x=1", "/", "/health"])
        #expect(throws: HTTP1ParseError.notHTTP) { _ = try parseAll("INVALID CONNECTION PREFACE\r\n\r\n") }
        #expect(throws: HTTP1ParseError.notHTTP) { _ = try parseAll("GET / HTTP/x.1\r\nHost: x\r\n\r\n") }
        #expect(throws: HTTP1ParseError.notHTTP) { _ = try parseAll("\u{16}\u{3}\u{1}\u{0}") }  // TLS, no line end
    }
}
