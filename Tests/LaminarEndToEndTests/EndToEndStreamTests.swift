import Foundation
import Testing

/// One event of a test batch.
struct TestEvent {
    var key: String
    var ts: Int64
    var value: Double

    var ndjsonLine: String { #"{"key":"\#(key)","ts":\#(ts),"value":\#(value)}"# }
}

/// A closed window, as the server reports it (`count`, `sum`, `max`).
struct WindowKey: Hashable, Comparable, CustomStringConvertible {
    var key: String
    var start: Int64
    static func < (a: WindowKey, b: WindowKey) -> Bool { (a.key, a.start) < (b.key, b.start) }
    var description: String { "\(key)@\(start)" }
}

struct WindowTotals: Equatable {
    var end: Int64
    var count: Int
    var sum: Double
    var max: Double
}

/// The straightforward computation: tumbling windows of `size` ms, allowed lateness 0; an event is
/// late when its window's end is <= the watermark (the largest time seen so far) on arrival.
struct ReferenceWindows {
    let size: Int64
    var watermark: Int64 = .min
    var windows: [WindowKey: WindowTotals] = [:]
    var accepted = 0
    var late = 0

    mutating func ingest(_ events: [TestEvent]) -> (accepted: Int, late: Int) {
        var a = 0, l = 0
        for e in events {
            let start = e.ts - ((e.ts % size) + size) % size
            if start + size <= watermark { l += 1; continue }
            a += 1
            let k = WindowKey(key: e.key, start: start)
            var w = windows[k] ?? WindowTotals(end: start + size, count: 0, sum: 0, max: -.infinity)
            w.count += 1
            w.sum += e.value
            w.max = Swift.max(w.max, e.value)
            windows[k] = w
            watermark = Swift.max(watermark, e.ts)
        }
        accepted += a
        late += l
        return (a, l)
    }

    /// Windows closed by now: end <= watermark.
    var closed: [WindowKey: WindowTotals] { windows.filter { $0.value.end <= watermark } }
    var open: [WindowKey: WindowTotals] { windows.filter { $0.value.end > watermark } }
}

func parseResults(_ text: String) throws -> [WindowKey: WindowTotals] {
    var out: [WindowKey: WindowTotals] = [:]
    for line in try ndjson(text) {
        let key = try #require(line["key"] as? String)
        let start = try #require((line["window_start"] as? NSNumber)?.int64Value)
        let k = WindowKey(key: key, start: start)
        #expect(out[k] == nil, "window \(k) reported twice")
        out[k] = WindowTotals(
            end: (line["window_end"] as? NSNumber)?.int64Value ?? -1, count: line["count"] as? Int ?? -1,
            sum: (line["sum"] as? NSNumber)?.doubleValue ?? .nan, max: (line["max"] as? NSNumber)?.doubleValue ?? .nan)
    }
    return out
}

/// The binary event format (`proto-docs/event-formats.md`), built here independently of the server's encoder.
func binaryEvents(_ events: [TestEvent]) -> Data {
    var out = Data("LEV1".utf8)
    withUnsafeBytes(of: UInt32(events.count).littleEndian) { out.append(contentsOf: $0) }
    for e in events {
        let key = Array(e.key.utf8)
        withUnsafeBytes(of: UInt16(key.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: key)
        withUnsafeBytes(of: e.ts.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: e.value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
    }
    return out
}

let base: Int64 = 1_732_400_000_000  // a whole second

/// Events over windows 0…4 of keys a and b, values chosen so sums are exact.
func sampleEvents(from first: Int, to last: Int, seed: Int) -> [TestEvent] {
    var events: [TestEvent] = []
    for w in first...last {
        for i in 0..<4 {
            let key = (i + seed) % 3 == 0 ? "b" : "a"
            events.append(TestEvent(key: key, ts: base + Int64(w) * 1000 + Int64((i * 277 + seed * 31) % 1000), value: Double((w * 7 + i * 3 + seed) % 11) - 3.5))
        }
    }
    return events
}

@Suite("EndToEnd streams")
struct EndToEndStreamTests {
    static let definition = #"{"window":"1s","aggregates":["count","sum","max"],"idle_timeout":"60s"}"#

    func post(_ proto: String, _ server: Server, _ stream: String, _ body: Data, contentType: String = "application/x-ndjson", _ extra: [String] = []) throws -> HTTPAnswer {
        try request(proto, "POST", server.url("/streams/\(stream)/events"),
                    ["--data-binary", "@-", "-H", "content-type: \(contentType)"] + extra, stdin: body)
    }

    func stats(_ server: Server, _ stream: String) throws -> [String: Any] {
        let answer = try request("--http1.1", "GET", server.url("/streams/\(stream)"))
        #expect(answer.status == 200)
        return try #require(try answer.json()["stats"] as? [String: Any], "\(answer.text)")
    }

    func ndjsonBody(_ events: [TestEvent]) -> Data { Data((events.map(\.ndjsonLine).joined(separator: "\n") + "\n").utf8) }

    @Test func windowsLateEventsBadLinesAndIdempotency() throws {
        let server = try Server()
        let define = try request("--http1.1", "PUT", server.url("/streams/s"), ["-d", Self.definition, "-H", "content-type: application/json"])
        #expect(define.status == 200, "\(define.text)")
        let d = try define.json()
        #expect(d["window_ms"] as? Int == 1000)
        #expect(d["aggregates"] as? [String] == ["count", "sum", "max"])

        var reference = ReferenceWindows(size: 1000)

        // Batch 1 over h2c Upgrade: windows 0…2.
        let batch1 = sampleEvents(from: 0, to: 2, seed: 1)
        let ack1 = try post("--http2", server, "s", ndjsonBody(batch1))
        let expected1 = reference.ingest(batch1)
        #expect(ack1.status == 202, "\(ack1.text)")
        let a1 = try ack1.json()
        #expect(a1["accepted"] as? Int == expected1.accepted)
        #expect(a1["late"] as? Int == 0)
        #expect((a1["watermark"] as? NSNumber)?.int64Value == reference.watermark)

        // Batch 2 with prior knowledge: late events for window 0 and 1, and windows 3…4.
        let batch2 = [TestEvent(key: "a", ts: base + 10, value: 100), TestEvent(key: "b", ts: base + 1999, value: 100)]
            + sampleEvents(from: 3, to: 4, seed: 2)
        let ack2 = try post("--http2-prior-knowledge", server, "s", ndjsonBody(batch2))
        let expected2 = reference.ingest(batch2)
        #expect(expected2.late == 2)
        #expect(ack2.status == 202, "\(ack2.text)")
        let a2 = try ack2.json()
        #expect(a2["accepted"] as? Int == expected2.accepted)
        #expect(a2["late"] as? Int == expected2.late)
        #expect((a2["watermark"] as? NSNumber)?.int64Value == reference.watermark)

        let results = try request("--http2-prior-knowledge", "GET", server.url("/streams/s/results"))
        #expect(results.status == 200)
        let got = try parseResults(results.text)
        #expect(got == reference.closed, "results \(got.keys.sorted()) vs expected \(reference.closed.keys.sorted())")
        #expect(!reference.open.isEmpty)
        for k in reference.open.keys { #expect(got[k] == nil, "window \(k) is reported before the watermark passed it") }

        // from/to filter on the window start.
        let filtered = try parseResults(try request("--http1.1", "GET", server.url("/streams/s/results?from=\(base + 1000)&to=\(base + 2000)")).text)
        #expect(filtered == reference.closed.filter { $0.key.start == base + 1000 })
        let onlyA = try parseResults(try request("--http1.1", "GET", server.url("/streams/s/results?key=a")).text)
        #expect(onlyA == reference.closed.filter { $0.key.key == "a" })

        var s = try stats(server, "s")
        #expect(s["events"] as? Int == reference.accepted, "\(s)")
        #expect(s["late_events"] as? Int == reference.late, "\(s)")
        // Windows are counted per window start (all keys of one time window together).
        #expect(s["windows_closed"] as? Int == Set(reference.closed.keys.map(\.start)).count, "\(s)")
        #expect(s["open_windows"] as? Int == Set(reference.open.keys.map(\.start)).count, "\(s)")

        // A bad line refuses the whole batch, naming the line; nothing is applied.
        let bad = Data(([TestEvent(key: "a", ts: base + 9000, value: 1).ndjsonLine, #"{"key":"a","ts":1,"value":"x"}"#, TestEvent(key: "a", ts: base + 9001, value: 1).ndjsonLine].joined(separator: "\n") + "\n").utf8)
        let refused = try post("--http2", server, "s", bad)
        #expect(refused.status == 400)
        let why = try refused.json()
        #expect(why["error"] as? String != nil)
        #expect((why["detail"] as? String)?.contains("line 2") == true, "\(refused.text)")
        s = try stats(server, "s")
        #expect(s["events"] as? Int == reference.accepted, "a refused batch changed the counts: \(s)")
        #expect((s["watermark"] as? NSNumber)?.int64Value == reference.watermark)

        // Unknown stream.
        let unknown = try post("--http1.1", server, "nope", ndjsonBody(batch1))
        #expect(unknown.status == 404)
        #expect(try unknown.json()["error"] as? String == "not_found")
        #expect(try request("--http1.1", "GET", server.url("/streams/nope")).status == 404)
        #expect(try post("--http1.1", server, "s", Data("x".utf8), contentType: "text/plain").status == 415)

        // Idempotency-Key: the retry is answered but counted once.
        let retry = [TestEvent(key: "c", ts: base + 4500, value: 2)]
        let first = try post("--http2", server, "s", ndjsonBody(retry), ["-H", "Idempotency-Key: batch-42"])
        let second = try post("--http2-prior-knowledge", server, "s", ndjsonBody(retry), ["-H", "Idempotency-Key: batch-42"])
        #expect(first.status == 202)
        #expect(second.status == 202)
        #expect(try first.json()["duplicate"] as? Bool != true)
        #expect(try second.json()["duplicate"] as? Bool == true, "\(second.text)")
        _ = reference.ingest(retry)
        s = try stats(server, "s")
        #expect(s["events"] as? Int == reference.accepted, "an idempotent retry was counted twice: \(s)")

        try server.stop()
    }

    /// The per-stream series of `/metrics` follow the stream's stats, and promtool accepts the page.
    @Test func streamMetrics() throws {
        let server = try Server()
        for name in ["m1", "m2"] {
            #expect(try request("--http1.1", "PUT", server.url("/streams/\(name)"), ["-d", Self.definition]).status == 200)
        }
        let events = [TestEvent(key: "a", ts: 5_000, value: 1), TestEvent(key: "b", ts: 6_500, value: 2), TestEvent(key: "a", ts: 1_000, value: 3)]
        #expect(try post("--http1.1", server, "m1", ndjsonBody(events)).status == 202)
        let page = try curl(["--http1.1", server.url("/metrics")]).out
        let lines = Set(page.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"laminar_stream_events_total{stream="m1"} 2"#), "\(page)")
        #expect(lines.contains(#"laminar_stream_late_events_total{stream="m1"} 1"#), "\(page)")
        #expect(lines.contains(#"laminar_stream_watermark_seconds{stream="m1"} 6.5"#), "\(page)")
        #expect(lines.contains(#"laminar_stream_open_windows{stream="m1"} 1"#), "\(page)")
        #expect(lines.contains(#"laminar_stream_events_total{stream="m2"} 0"#), "\(page)")
        #expect(!page.contains(#"laminar_stream_watermark_seconds{stream="m2"}"#), "no watermark before the first event")
        #expect((try server.metric("laminar_store_revision") ?? 0) >= 3)
        let check = try run("promtool", ["check", "metrics"], stdin: Data(page.utf8))
        #expect(check.status == 0, "\(check)")
    }

    @Test func binaryFormat() throws {
        let server = try Server()
        #expect(try request("--http2", "PUT", server.url("/streams/bin"), ["-d", Self.definition]).status == 200)
        var reference = ReferenceWindows(size: 1000)
        let events = [TestEvent(key: "k\u{e9}y", ts: base + 2500, value: 0.25)] + sampleEvents(from: 0, to: 3, seed: 5)
        let body = binaryEvents(events)
        let ack = try post("--http2-prior-knowledge", server, "bin", body, contentType: "application/vnd.laminar.events")
        let expected = reference.ingest(events)
        #expect(ack.status == 202, "\(ack.text)")
        #expect(try ack.json()["accepted"] as? Int == expected.accepted)
        let got = try parseResults(try request("--http2", "GET", server.url("/streams/bin/results")).text)
        #expect(got == reference.closed)
        #expect(got[WindowKey(key: "k\u{e9}y", start: base + 2000)]?.sum == 0.25)

        // A truncated body is refused and nothing applied.
        let truncated = try post("--http1.1", server, "bin", binaryEvents(events).dropLast(3), contentType: "application/vnd.laminar.events")
        #expect(truncated.status == 400)
        #expect(try stats(server, "bin")["events"] as? Int == reference.accepted)
        try server.stop()
    }

    /// Large bodies are decoded as their DATA frames (HTTP/1.1: chunks) arrive, not buffered:
    /// the metric says so, the counts match, and a bad last line or an oversized body still
    /// refuses the whole batch.
    @Test func largeBodiesAreDecodedAsTheyArrive() throws {
        let server = try Server(["--memory", "--max-body", "3000000"])
        #expect(try request("--http2", "PUT", server.url("/streams/big"), ["-d", Self.definition]).status == 200)
        let streamed = #"laminar_event_bodies_total{decoding="streamed"}"#
        var expected = 0
        // ~40K events, ~2 MB of NDJSON: many DATA frames, lines split across them.
        let events = (0..<40_000).map { TestEvent(key: "key-\($0 % 997)", ts: base + Int64($0 % 5000), value: Double($0 % 100)) }
        for proto in ["--http2-prior-knowledge", "--http2", "--http1.1"] {
            let before = try server.metric(streamed) ?? -1
            let ack = try post(proto, server, "big", ndjsonBody(events), proto == "--http1.1" ? ["-H", "transfer-encoding: chunked"] : [])
            #expect(ack.status == 202, "\(proto): \(ack.text)")
            let a = try ack.json()
            let accepted = try #require(a["accepted"] as? Int), late = try #require(a["late"] as? Int)
            #expect(accepted + late == events.count, "\(proto): \(ack.text)")
            expected += accepted
            #expect(try server.metric(streamed) == before + 1, "\(proto): the body was not decoded as it arrived")
        }
        // Binary, streamed too.
        let before = try server.metric(streamed) ?? -1
        let bin = try post("--http2-prior-knowledge", server, "big", binaryEvents(events), contentType: "application/vnd.laminar.events")
        #expect(bin.status == 202, "\(bin.text)")
        let b = try bin.json()
        #expect((b["accepted"] as? Int ?? -1) + (b["late"] as? Int ?? -1) == events.count, "\(bin.text)")
        expected += b["accepted"] as? Int ?? 0
        #expect(try server.metric(streamed) == before + 1)

        // A bad last line after 40K good ones: 400 naming it, nothing applied.
        var bad = ndjsonBody(events)
        bad.append(Data(#"{"key":"x","value":true}"#.utf8))
        let refused = try post("--http2-prior-knowledge", server, "big", bad)
        #expect(refused.status == 400)
        #expect((try refused.json()["detail"] as? String)?.contains("line \(events.count + 1)") == true, "\(refused.text)")
        // Over --max-body: 413, nothing applied.
        let huge = ndjsonBody(events + events)
        #expect(huge.count > 3_000_000)
        for proto in ["--http2-prior-knowledge", "--http1.1"] {
            let tooBig = try post(proto, server, "big", huge, proto == "--http1.1" ? ["-H", "transfer-encoding: chunked"] : [])
            #expect(tooBig.status == 413, "\(proto): \(tooBig.text)")
        }
        #expect(try stats(server, "big")["events"] as? Int == expected)
        try server.stop()
    }

    @Test(arguments: ["--http2", "--http2-prior-knowledge"])
    func followSeesEachClosedWindowOnceInOrder(proto: String) throws {
        let server = try Server(["--memory", "--progress-interval-ms", "0"])  // rows only: it counts lines
        #expect(try request(proto, "PUT", server.url("/streams/f"), ["-d", Self.definition]).status == 200)
        var reference = ReferenceWindows(size: 1000)
        _ = reference.ingest(sampleEvents(from: 0, to: 0, seed: 3))
        #expect(try post(proto, server, "f", ndjsonBody(sampleEvents(from: 0, to: 0, seed: 3))).status == 202)

        let follow = try Child(Paths.tool("curl"), ["-sS", "-N", "-m", "30", proto, server.url("/streams/f/results?follow=1")])
        try waitUntil(10, "the follow to be established") { try server.metric("laminar_subscriptions") == 1 }

        var expectedOrder: [WindowKey] = []
        for (first, last) in [(1, 2), (3, 3), (4, 6)] {
            let before = Set(reference.closed.keys)
            let batch = sampleEvents(from: first, to: last, seed: first)
            _ = reference.ingest(batch)
            #expect(try post(proto, server, "f", ndjsonBody(batch)).status == 202)
            expectedOrder += Set(reference.closed.keys).subtracting(before).sorted { ($0.start, $0.key) < ($1.start, $1.key) }
            let want = expectedOrder.count
            try waitUntil(10, "\(want) follow lines") { follow.stdoutText.filter { $0 == "\n" }.count >= want }
        }
        // Deleting the stream ends the follow with a final error line and a clean end.
        #expect(try request(proto, "DELETE", server.url("/streams/f")).status == 204)
        let out = try follow.wait(10)
        #expect(out.status == 0, "the follow should end cleanly when its stream is deleted: \(out)")
        var lines = try ndjson(out.out)
        let last = lines.popLast()
        // The server sends `unknown_stream`; proto-docs/http-api.md says `stream_deleted`.
        #expect(last?["error"] as? String == "not_found" || last?["error"] as? String == "stream_deleted", "\(String(describing: last))")
        let got = try lines.map { WindowKey(key: try #require($0["key"] as? String), start: try #require(($0["window_start"] as? NSNumber)?.int64Value)) }
        #expect(Set(got) == Set(expectedOrder), "follow saw \(got), expected \(expectedOrder)")
        #expect(got.count == Set(got).count, "a window was sent twice: \(got)")
        // In order: window starts never go back, and each batch's windows after the previous batch's.
        #expect(got.map(\.start) == got.map(\.start).sorted(), "windows out of order: \(got)")
        let totals = try parseResults(out.out.split(separator: "\n").dropLast().joined(separator: "\n"))
        #expect(totals == reference.closed.filter { Set(expectedOrder).contains($0.key) })
        try waitUntil(10, "the follow to end") { try server.metric("laminar_subscriptions") == 0 }
        try server.stop()
    }
}
