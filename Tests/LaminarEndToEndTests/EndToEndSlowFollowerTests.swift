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

        let fd = try subscribeWithoutReading(server, "GET /streams/f/results?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        defer { close(fd) }
        try postOneMillisecondWindows(server, stream: "f", untilDropped: false)
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
        #expect(lines.filter { $0.hasPrefix(#"{"seq":"#) }.count > 10)
        #expect(lastLine.contains("4096 bytes unread"), "last line: \(lastLine)")
        // Far less than was produced reached the client: the rest was never buffered.
        #expect(answer.count < 8 << 20, "\(answer.count) bytes reached the follower")

        let stats = try request("--http1.1", "GET", server.url("/streams/f"))
        #expect(stats.status == 200)
        #expect((try stats.json()["stats"] as? [String: Any])?["events"] as? Int == 200_000)
        try server.stop()
    }

    /// A follower that reads keeps up however far a round of windows exceeds the backlog (what
    /// one wake writes is not its backlog), also through a close larger than a slice (8192 rows,
    /// sent over several rounds), up to the burst limit (4 x the backlog, at least 4 MiB) of one
    /// slice, where it gets a slow_consumer line that says to raise the flag.
    @Test(arguments: ["--http2-prior-knowledge", "--http1.1"])
    func followerThatReadsKeepsUpUntilABurstPassesTheLimit(proto: String) throws {
        // (No progress lines: the test counts lines.)
        let server = try Server(["--memory", "--subscriber-backlog-bytes", "4096", "--progress-interval-ms", "0"])
        // (A long idle timeout: on a loaded machine the stages take more than the default 10 s,
        // and idle time would advance the watermark past the windows still to come.)
        #expect(try request(proto, "PUT", server.url("/streams/b"), ["-d", #"{"window_ms":1000,"allowed_lateness_ms":0,"idle_timeout_ms":3600000}"#]).status == 200)
        let follow = try Child(Paths.tool("curl"), ["-sS", "-N", "-m", "60", proto, server.url("/streams/b/results?follow=1")])
        try waitUntil(10, "the follow to be established") { try server.metric("laminar_subscriptions") == 1 }
        let dir = try TempDir()
        defer { dir.remove() }
        /// One event for each of `keys` keys in window `w` (its first event closes window w - 1).
        func post(window w: Int, keys: Int, pad: String = "") throws {
            var body = ""
            for k in 0..<keys { body += #"{"key":"key-\#(pad)\#(k)","ts":\#(base + Int64(w) * 1000 + Int64(k % 1000)),"value":1}"# + "\n" }
            let file = try dir.write("w\(w).ndjson", Data(body.utf8))
            let answer = try request(proto, "POST", server.url("/streams/b/events"),
                                     ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
            #expect(answer.status == 202, "window \(w): \(answer.text)")
        }
        // Rounds of 2000 windows (~150 KB of lines, 37 times the backlog) are all delivered.
        for w in 0..<5 { try post(window: w, keys: 2000) }
        try post(window: 5, keys: 1)
        try waitUntil(20, "5 rounds of 2000 lines") { follow.stdoutText.filter { $0 == "\n" }.count >= 10_000 }
        #expect(try server.metric("laminar_subscriptions") == 1, "a follower that reads was cut")
        // A window of 20 000 keys (~1.5 MB) goes out in three slices, all delivered.
        try post(window: 6, keys: 20_000)
        try post(window: 7, keys: 1)
        try waitUntil(20, "the 20 000 lines of a sliced close") { follow.stdoutText.filter { $0 == "\n" }.count >= 30_001 }
        #expect(try server.metric("laminar_subscriptions") == 1, "a follower that reads was cut")
        // A slice of 8192 rows with 600-byte keys (~5.6 MB at once) passes the 4 MiB burst limit.
        try post(window: 8, keys: 10_000, pad: String(repeating: "p", count: 600))
        try post(window: 9, keys: 1)
        let out = try follow.wait(20)
        let lines = out.out.split(separator: "\n")
        #expect(lines.count == 30_003, "\(lines.count) lines")
        #expect(lines.last?.contains(#""error":"slow_consumer""#) == true, "\(lines.last ?? "")")
        #expect(lines.last?.contains("raise --subscriber-backlog-bytes") == true, "\(lines.last ?? "")")
        try waitUntil(10, "the follow to be dropped") { try server.metric("laminar_subscriptions") == 0 }
        try server.stop()
    }
}
