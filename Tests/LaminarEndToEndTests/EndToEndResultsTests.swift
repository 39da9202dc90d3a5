import Foundation
import Testing

/// Result delivery with the real server and curl: `follow=1&since=` across a kill -9 and
/// restart (no gap, no duplicate, the same seq for the same row), `410 gone` with `oldest_seq`,
/// retention, `prefix`, Server-Sent Events resumed with `Last-Event-ID`, progress lines, a slow
/// SSE client cut with `slow_consumer`, and a 200K-key window closed in slices.
@Suite("EndToEnd results")
struct EndToEndResultsTests {
    /// Posts NDJSON events to `stream`; expects 202.
    static func post(_ server: Server, _ stream: String, _ lines: [String], proto: String = "--http1.1") throws {
        let body = Data((lines.joined(separator: "\n") + "\n").utf8)
        let dir = try TempDir()
        defer { dir.remove() }
        let file = try dir.write("events.ndjson", body)
        let answer = try request(proto, "POST", server.url("/streams/\(stream)/events"),
                                 ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
        #expect(answer.status == 202, "\(answer.text)")
    }

    /// One event for each of keys k0, k1, k2 in window `w` (1 s windows): closes window w - 1.
    static func window(_ w: Int) -> [String] {
        (0..<3).map { #"{"key":"k\#($0)","ts":\#(w * 1000 + 10 * $0),"value":\#(w)}"# }
    }

    /// The JSON rows (lines starting with `{"seq"`) of a follower's output so far.
    static func rows(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").filter { $0.hasPrefix(#"{"seq":"#) }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func seqs(_ rows: [[String: Any]]) -> [Int] { rows.compactMap { $0["seq"] as? Int } }

    @Test func followSinceAcrossKillNineHasNoGapNoDuplicate() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        var server = try Server(["--data-dir", dir.path, "--progress-interval-ms", "0"])
        #expect(try request("--http1.1", "PUT", server.url("/streams/s"), ["-d", #"{"window":"1s"}"#]).status == 200)
        for w in 0...4 { try Self.post(server, "s", Self.window(w)) }  // windows 0...3 closed: 12 rows
        let first = try Child(Paths.tool("curl"), ["-sS", "-N", "--http2-prior-knowledge", server.url("/streams/s/results?follow=1&since=0")])
        try waitUntil(10, "12 retained rows") { Self.rows(first.stdoutText).count == 12 }
        try Self.post(server, "s", Self.window(5))  // live: 3 more
        try waitUntil(10, "15 rows") { Self.rows(first.stdoutText).count == 15 }
        let before = Self.rows(first.stdoutText)
        #expect(Self.seqs(before) == Array(1...15))

        server.child.signal(SIGKILL)
        _ = try? server.child.wait(10)
        _ = try? first.wait(10)
        server = try Server(["--data-dir", dir.path, "--progress-interval-ms", "0"])
        // Replay emitted the same rows again: each keeps its seq.
        let stored = try ndjson(try request("--http1.1", "GET", server.url("/streams/s/results")).text)
        for row in before {
            let same = stored.first { $0["key"] as? String == row["key"] as? String && $0["window_start"] as? Int == row["window_start"] as? Int }
            #expect(same?["seq"] as? Int == row["seq"] as? Int, "\(row)")
        }
        try Self.post(server, "s", Self.window(6))  // closes window 5: rows 16...18
        let second = try Child(Paths.tool("curl"), ["-sS", "-N", "--http1.1", server.url("/streams/s/results?follow=1&since=15")])
        try waitUntil(10, "the rows after 15") { Self.rows(second.stdoutText).count == 3 }
        try Self.post(server, "s", Self.window(7))
        try waitUntil(10, "live rows after the retained ones") { Self.rows(second.stdoutText).count == 6 }
        let after = Self.seqs(Self.rows(second.stdoutText))
        #expect(after == Array(16...21), "no gap, no duplicate at the restart or the seam: \(after)")
        second.signal(SIGTERM)
        try server.stop()
    }

    @Test func goneRetentionPrefixAndBadSince() throws {
        let server = try Server(["--memory"])
        #expect(try request("--http1.1", "PUT", server.url("/streams/r"), ["-d", #"{"window":"1s","retention":"2s"}"#]).status == 200)
        try Self.post(server, "r", [#"{"key":"a1","ts":10,"value":1}"#, #"{"key":"b1","ts":20,"value":1}"#, #"{"key":"a2","ts":1010,"value":1}"#,
                                    #"{"key":"a1","ts":2010,"value":1}"#])  // windows 0 (seq 1, 2) and 1 (seq 3) closed
        let plain = try ndjson(try request("--http1.1", "GET", server.url("/streams/r/results?prefix=a")).text)
        #expect(plain.map { $0["key"] as? String } == ["a1", "a2"])
        #expect(Self.seqs(plain) == [1, 3])
        try Self.post(server, "r", [#"{"key":"z","ts":3500,"value":1}"#])  // watermark 3500: window 0 (end 1000) expires
        let gone = try request("--http1.1", "GET", server.url("/streams/r/results?follow=1&since=0"))
        #expect(gone.status == 410)
        let body = try gone.json()
        #expect(body["error"] as? String == "gone" && body["oldest_seq"] as? Int == 3, "\(gone.text)")
        let left = try ndjson(try request("--http1.1", "GET", server.url("/streams/r/results")).text)
        #expect(left.map { $0["key"] as? String } == ["a1", "a2"], "expired rows left the store: \(left)")
        #expect(try ndjson(try request("--http1.1", "GET", server.url("/kv?prefix=_resultlog/r/")).text).count == 2)
        let followed = try curl(["-N", "-m", "2", server.url("/streams/r/results?follow=1&since=2&prefix=a1")])
        #expect(Self.seqs(Self.rows(followed.out)) == [4], "\(followed.out)")  // a1 of window 2000
        for (query, status) in [("follow=1&since=abc", 400), ("follow=1&since=-1", 400), ("since=1", 400), ("follow=1&since=99", 400),
                                ("key=a1&prefix=a", 400)] {
            let answer = try request("--http1.1", "GET", server.url("/streams/r/results?\(query)"))
            #expect(answer.status == status, "\(query): \(answer.text)")
            #expect(answer.text.contains(#""error":"bad_request""#), "\(query): \(answer.text)")
        }
        let badHeader = try request("--http1.1", "GET", server.url("/streams/r/results"), ["-H", "Accept: text/event-stream", "-H", "Last-Event-ID: x"])
        #expect(badHeader.status == 400)
        // Late events kept (none: this stream drops them): an empty NDJSON answer; 404 for no stream.
        let late = try request("--http2-prior-knowledge", "GET", server.url("/streams/r/late"))
        #expect(late.status == 200 && late.text.isEmpty && late.headers["content-type"] == "application/x-ndjson")
        #expect(try request("--http1.1", "GET", server.url("/streams/nope/late")).status == 404)
        try server.stop()
    }

    @Test(arguments: ["--http2-prior-knowledge", "--http1.1"])
    func serverSentEventsResumeWithLastEventIDAndProgress(proto: String) throws {
        let server = try Server(["--memory", "--progress-interval-ms", "200"])
        // (No idle advance within the test: the watermark stays where the events put it.)
        #expect(try request(proto, "PUT", server.url("/streams/e"), ["-d", #"{"window":"1s","idle_timeout":"1h"}"#]).status == 200)
        for w in 0...2 { try Self.post(server, "e", Self.window(w), proto: proto) }  // 6 rows
        let sse = try Child(Paths.tool("curl"), ["-sS", "-N", "-D", "-", proto, "-H", "Accept: text/event-stream", server.url("/streams/e/results?since=0")])
        try waitUntil(10, "six events and a progress event") {
            sse.stdoutText.contains("\n\nid: 6\n") && sse.stdoutText.contains("event: progress\ndata: ")
        }
        let text = sse.stdoutText
        #expect(text.lowercased().contains("content-type: text/event-stream"))
        #expect(text.contains("id: 1\ndata: {\"seq\":1,\"key\":\"k0\",\"window_start\":0,"), "\(text)")
        #expect(text.contains(#"event: progress"# + "\n" + #"data: {"watermark":2020,"seq":6}"# + "\n\n"), "\(text)")
        sse.signal(SIGTERM)
        // Resume after id 4: rows 5 and 6, then live ones.
        let resumed = try Child(Paths.tool("curl"), ["-sS", "-N", proto, "-H", "Accept: text/event-stream", "-H", "Last-Event-ID: 4",
                                                     server.url("/streams/e/results")])
        try waitUntil(10, "rows 5 and 6") { resumed.stdoutText.contains("id: 6\n") }
        try Self.post(server, "e", Self.window(3), proto: proto)
        try waitUntil(10, "live rows 7...9") { resumed.stdoutText.contains("id: 9\n") }
        let ids = resumed.stdoutText.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { Int($0.dropFirst(4)) ?? 0 }
        #expect(ids == [5, 6, 7, 8, 9])
        // NDJSON followers get progress lines too.
        let ndjsonFollow = try curl(["-N", "-m", "1", proto, server.url("/streams/e/results?follow=1")])
        #expect(ndjsonFollow.out.contains(#"{"progress":{"watermark":3020,"seq":9}}"# + "\n"), "\(ndjsonFollow.out)")
        resumed.signal(SIGTERM)
        try server.stop()
    }

    /// An SSE client that never reads is cut like a follower: a last `event: error` with
    /// `slow_consumer`, and the subscription is gone.
    @Test func slowServerSentEventsClientIsCut() throws {
        let server = try Server(["--memory", "--subscriber-backlog-bytes", "4096", "--progress-interval-ms", "0"])
        #expect(try request("--http1.1", "PUT", server.url("/streams/f"), ["-d", #"{"window_ms":1}"#]).status == 200)
        let fd = try subscribeWithoutReading(server, "GET /streams/f/results HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        defer { close(fd) }
        try postOneMillisecondWindows(server, stream: "f", untilDropped: true)
        try waitUntil(10, "the stuck SSE client to be dropped") { try server.metric("laminar_subscriptions") == 0 }
        let (answer, _) = readAll(fd)
        let text = String(decoding: answer, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"))
        #expect(text.contains("id: 1\r\n") || text.contains("id: 1\n"))
        #expect(text.contains("event: error\ndata: {\"error\":\"slow_consumer\""), "\(text.suffix(300))")
        #expect(text.hasSuffix("\r\n0\r\n\r\n"))
        try server.stop()
    }

    /// 200K keys in one window: its close is emitted in slices (stats count them) while batches
    /// keep being answered, and every row arrives, numbered 1...200000.
    @Test func aWindowOf200KKeysClosesInSlices() throws {
        let server = try Server(["--memory", "--progress-interval-ms", "0"])
        #expect(try request("--http1.1", "PUT", server.url("/streams/big"), ["-d", #"{"window":"1s","aggregates":["count","sum"]}"#]).status == 200)
        let dir = try TempDir()
        defer { dir.remove() }
        for part in 0..<4 {
            var body = ""
            body.reserveCapacity(50_000 * 40)
            for k in (part * 50_000)..<((part + 1) * 50_000) { body += #"{"key":"key\#(k)","ts":5,"value":1}"# + "\n" }
            let file = try dir.write("p\(part).ndjson", Data(body.utf8))
            let answer = try request("--http2-prior-knowledge", "POST", server.url("/streams/big/events"),
                                     ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
            #expect(answer.status == 202, "\(answer.text)")
        }
        try Self.post(server, "big", [#"{"key":"late-closer","ts":1500,"value":1}"#], proto: "--http2-prior-knowledge")
        // Batches are answered whatever is left of the close.
        for i in 0..<5 { try Self.post(server, "big", [#"{"key":"x\#(i)","ts":1600,"value":1}"#], proto: "--http2-prior-knowledge") }
        var stats: [String: Any] = [:]
        try waitUntil(60, "every row of the close") {
            stats = (try request("--http1.1", "GET", server.url("/streams/big")).json()["stats"] as? [String: Any]) ?? [:]
            return stats["result_seq"] as? Int == 200_000 && stats["rows_pending"] as? Int == 0
        }
        let slices = stats["result_slices"] as? Int ?? 0
        #expect(slices >= 200_000 / 8192, "the close took \(slices) slices")
        let page = try request("--http1.1", "GET", server.url("/streams/big/results?limit=3"))
        #expect(Self.seqs(try ndjson(page.text)).allSatisfy { (1...200_000).contains($0) })
        try server.stop()
    }
}
