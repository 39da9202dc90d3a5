import Foundation
import Testing

/// A follower that never reads: once it leaves `--subscriber-backlog-bytes` unread, the server
/// writes a last `slow_consumer` line, ends the response and drops the subscription, while
/// event batches keep being accepted.
@Suite("EndToEnd slow follower")
struct EndToEndSlowFollowerTests {
    @Test func followerThatNeverReadsGetsSlowConsumerAndIsDropped() throws {
        let server = try Server(["--memory", "--subscriber-backlog-bytes", "4096"])
        let define = try request("--http1.1", "PUT", server.url("/streams/f"),
                                 ["-d", #"{"window_ms":1,"allowed_lateness_ms":0}"#, "-H", "content-type: application/json"])
        #expect(define.status == 200, "\(define.text)")

        let fd = try connectLoopback(port: server.port, seconds: 3, receiveBufferBytes: 4096)
        defer { close(fd) }
        let ask = Array("GET /streams/f/results?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(ask.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == ask.count)
        try waitUntil(10, "the follow to be subscribed") { try server.metric("laminar_subscriptions") == 1 }

        // 1 ms windows: every event closes the previous window, one result line each (~80 bytes);
        // 40 batches give ~16 MB of lines, far past the kernel's socket buffers.
        let dir = try TempDir()
        defer { dir.remove() }
        var ts = 1
        for batch in 0..<40 {
            var body = ""
            for i in 0..<5000 {
                body += #"{"key":"k\#(i % 50)","ts":\#(ts),"value":1}"# + "\n"
                ts += 1
            }
            let file = try dir.write("batch\(batch).ndjson", Data(body.utf8))
            let answer = try request("--http2-prior-knowledge", "POST", server.url("/streams/f/events"),
                                     ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
            #expect(answer.status == 202, "batch \(batch): \(answer.text)")
        }
        try waitUntil(10, "the stuck follower to be dropped") { try server.metric("laminar_subscriptions") == 0 }

        // Now read: the lines the kernel held, then the last line and the end of the chunked body.
        let (answer, _) = readAll(fd)
        let text = String(decoding: answer, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"))
        #expect(text.hasSuffix("\r\n0\r\n\r\n"), "the response did not end: \(text.suffix(200))")
        // (Split the bytes: in a Swift String "\r\n" is one character, so "\n" would not split it.)
        let lines = answer.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        let lastLine = lines.last { $0.hasPrefix("{") } ?? ""
        #expect(lastLine.contains(#""error":"slow_consumer""#), "last line: \(lastLine)")
        // Window results came before it: the limit that cut it was the byte backlog.
        #expect(lines.filter { $0.hasPrefix(#"{"key":"#) }.count > 10)
        #expect(lastLine.contains("4096 bytes unread"), "last line: \(lastLine)")
        // Far less than was produced reached the client: the rest was never buffered.
        #expect(answer.count < 8 << 20, "\(answer.count) bytes reached the follower")

        let stats = try request("--http1.1", "GET", server.url("/streams/f"))
        #expect(stats.status == 200)
        #expect((try stats.json()["stats"] as? [String: Any])?["events"] as? Int == 200_000)
        try server.stop()
    }
}
