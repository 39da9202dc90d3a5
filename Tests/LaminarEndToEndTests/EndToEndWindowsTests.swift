import Foundation
import Testing

/// Hopping and session windows, multi-field events (NDJSON by name and binary `LEV2`),
/// percentiles and a changelog, end to end: the real server, driven with curl.
@Suite("EndToEnd windows")
struct EndToEndWindowsTests {
    let streams = EndToEndStreamTests()

    /// A `LEV2` body: each event's key, time and fields.
    static func lev2Body(_ events: [(key: String, ts: Int64, fields: [Double])]) -> Data {
        var out = Data("LEV2".utf8)
        withUnsafeBytes(of: UInt32(events.count).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(events.first?.fields.count ?? 1).littleEndian) { out.append(contentsOf: $0) }
        for e in events {
            withUnsafeBytes(of: UInt16(e.key.utf8.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: Array(e.key.utf8))
            withUnsafeBytes(of: e.ts.littleEndian) { out.append(contentsOf: $0) }
            for f in e.fields { withUnsafeBytes(of: f.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        return out
    }

    static let hop = #"{"key_field":"symbol","time_field":"ts","fields":{"price":"f64","volume":"f64"},"window":{"type":"hop","size":"1s","slide":"500ms"},"aggregates":["count",{"fn":"sum","field":"volume"},{"fn":"p","q":0.99,"field":"price"},{"fn":"avg","field":"price","as":"avg_price"}],"idle_timeout":"60s"}"#

    /// A hopping window of 1 s every 500 ms with p99: NDJSON over HTTP/2 (Upgrade) for one
    /// symbol, LEV2 with prior knowledge for another; each event counts in its two windows;
    /// p99 is within 1 % of the exact element; bad bodies and definitions are refused by name.
    @Test func hoppingWindowWithP99() throws {
        let server = try Server()
        let define = try request("--http1.1", "PUT", server.url("/streams/trades"), ["-d", Self.hop])
        #expect(define.status == 200, "\(define.text)")
        let shown = try request("--http1.1", "GET", server.url("/streams/trades")).json()
        #expect(shown["columns"] as? [String] == ["count", "sum_volume", "p99_price", "avg_price"])

        // A: prices 1...100 at 0, 10, ..., 990 ms.
        let lines = (0..<100).map { #"{"symbol":"A","ts":\#($0 * 10),"price":\#($0 + 1),"volume":2}"# }.joined(separator: "\n")
        let a = try streams.post("--http2", server, "trades", Data(lines.utf8))
        #expect(a.status == 202, "\(a.text)")
        #expect(try a.json()["accepted"] as? Int == 100)
        // B (binary): two events in [500, 1000); then Z at 5 s closes every window before 4 s.
        let body = Self.lev2Body([(key: "B", ts: 600, fields: [10, 1]), (key: "B", ts: 700, fields: [20, 1]), (key: "Z", ts: 5000, fields: [0, 0])])
        let b = try streams.post("--http2-prior-knowledge", server, "trades", body, contentType: "application/vnd.laminar.events")
        #expect(b.status == 202, "\(b.text)")

        let results = try ndjson(try request("--http1.1", "GET", server.url("/streams/trades/results")).text)
        let rowsA = results.filter { $0["key"] as? String == "A" }
        #expect(rowsA.map { $0["window_start"] as? Int } == [-500, 0, 500])
        #expect(rowsA.map { $0["count"] as? Int } == [50, 100, 50])
        let full = try #require(rowsA.first { $0["window_start"] as? Int == 0 })
        #expect(full["window_end"] as? Int == 1000)
        #expect(full["sum_volume"] as? Double == 200)
        #expect(full["avg_price"] as? Double == 50.5)
        let p99 = try #require(full["p99_price"] as? Double)
        #expect(abs(p99 - 99) <= 0.99, "p99 \(p99): the element of rank 98 is 99")
        let rowsB = results.filter { $0["key"] as? String == "B" }
        #expect(rowsB.map { $0["window_start"] as? Int } == [0, 500])
        #expect(rowsB.allSatisfy { $0["count"] as? Int == 2 && $0["avg_price"] as? Double == 15 })

        // An event missing a declared field: 400 naming the line and the field.
        let missing = try streams.post("--http1.1", server, "trades", Data("{\"symbol\":\"A\",\"ts\":9000,\"price\":1}\n{\"symbol\":\"A\",\"ts\":9000,\"volume\":1}".utf8))
        #expect(missing.status == 400)
        #expect(missing.text == #"{"error":"invalid_events","detail":"line 1: missing \"volume\""}"# + "\n")
        // A LEV1 body for a two-field stream: 400, nothing applied.
        let one = try streams.post("--http1.1", server, "trades", EndToEndKeyBytesTests.binaryBody([(key: Array("A".utf8), ts: 9000, value: 1)]),
                                   contentType: "application/vnd.laminar.events")
        #expect(one.status == 400, "\(one.text)")
        #expect(one.text.contains("2 fields"), "\(one.text)")

        // Bad definitions: 400 naming the field; nothing changes.
        let bad: [(String, String)] = [
            (#"{"window":{"type":"hop","size":"1s","slide":"300ms"}}"#, "window: slide must divide size"),
            (#"{"window":{"type":"session","gap":0}}"#, "window: gap must be a positive duration"),
            (#"{"window":{"type":"hop","size":"101s","slide":"1s"}}"#, "window: size / slide must be at most 100"),
            (#"{"aggregates":[{"fn":"median"}]}"#, "aggregates[0]: fn must be one of"),
            (#"{"aggregates":[{"fn":"p","q":1}]}"#, "aggregates[0]: q must be a number in (0,1)"),
            (#"{"fields":{"x":"f64"},"aggregates":[{"fn":"sum","field":"y"}]}"#, "aggregates[0]: field must be one of"),
            (#"{"emit":"sometimes"}"#, "emit: must be"),
        ]
        for (body, detail) in bad {
            let answer = try request("--http1.1", "PUT", server.url("/streams/trades"), ["-d", body])
            #expect(answer.status == 400, "\(body)")
            #expect((try? answer.json()["detail"] as? String)??.hasPrefix(detail) == true, "\(body): \(answer.text)")
        }
        #expect(try request("--http1.1", "GET", server.url("/streams/trades")).json()["columns"] as? [String]
            == ["count", "sum_volume", "p99_price", "avg_price"])
        try server.stop()
    }

    /// A session window (gap 1 s) with `emit: changes`, followed: inserts, an update with
    /// `before`, a bridging event that deletes the session merged away, and the final row.
    @Test func sessionWindowWithEmitChanges() throws {
        let server = try Server()
        let define = try request("--http1.1", "PUT", server.url("/streams/visits"), ["-d",
            #"{"window":{"type":"session","gap":"1s"},"aggregates":["count","sum"],"emit":"changes","allowed_lateness":"5s","idle_timeout":"60s"}"#])
        #expect(define.status == 200, "\(define.text)")
        let follow = try Child(Paths.tool("curl"), ["-sS", "-N", "-m", "30", "--http2-prior-knowledge", server.url("/streams/visits/results?follow=1")])
        try waitUntil(10, "the follow to be established") { try server.metric("laminar_subscriptions") == 1 }

        func post(_ lines: [String]) throws {
            let r = try streams.post("--http1.1", server, "visits", Data(lines.joined(separator: "\n").utf8))
            #expect(r.status == 202, "\(r.text)")
        }
        try post([#"{"key":"u1","ts":1000,"value":1}"#])                          // insert [1000, 2000)
        try post([#"{"key":"u1","ts":1500,"value":2}"#])                          // update → [1000, 2500)
        try post([#"{"key":"u1","ts":3200,"value":4}"#])                          // insert [3200, 4200)
        try post([#"{"key":"u1","ts":2400,"value":8}"#])                          // bridges: delete 3200, update 1000
        try post([#"{"key":"u2","ts":20000,"value":0}"#])                         // watermark 15 s closes u1's session
        try waitUntil(10, "the changelog") { follow.stdoutText.contains(#""final":true"#) }
        let rows = try ndjson(follow.stdoutText).filter { $0["key"] as? String == "u1" }
        let summary = rows.map { "\($0["op"] as? String ?? "?") \($0["window_start"] as? Int ?? -1)-\($0["window_end"] as? Int ?? -1) \($0["count"] as? Int ?? -1)\($0["final"] as? Bool == true ? " final" : "")" }
        #expect(summary == [
            "insert 1000-2000 1", "update 1000-2500 2", "insert 3200-4200 1",
            "delete 3200-4200 -1", "update 1000-4200 4", "update 1000-4200 4 final",
        ], "\(follow.stdoutText)")
        let update = try #require(rows.dropFirst().first)
        #expect((update["before"] as? [String: Any])?["count"] as? Int == 1)
        #expect((update["before"] as? [String: Any])?["sum"] as? Double == 1)
        // The stored (current) row of the session is its final one.
        let stored = try request("--http1.1", "GET", server.url("/streams/visits/results?key=u1"))
        #expect(stored.text == #"{"seq":6,"key":"u1","window_start":1000,"window_end":4200,"count":4,"sum":15,"final":true}"# + "\n")
        // A resume from the start: the delete (kept in the log) and each window's current row.
        let resumed = try Child(Paths.tool("curl"), ["-sS", "-N", "--http1.1", server.url("/streams/visits/results?follow=1&since=0")])
        try waitUntil(10, "the retained rows") { resumed.stdoutText.contains(#""seq":7,"#) }
        resumed.signal(SIGTERM)
        let replayed = resumed.stdoutText.split(separator: "\n").filter { !$0.hasPrefix(#"{"progress""#) }
        #expect(replayed == [
            #"{"seq":4,"key":"u1","window_start":3200,"window_end":4200,"op":"delete"}"#,
            #"{"seq":6,"key":"u1","window_start":1000,"window_end":4200,"count":4,"sum":15,"final":true}"#,
            #"{"seq":7,"key":"u2","window_start":20000,"window_end":21000,"count":1,"sum":0}"#,
        ], "\(resumed.stdoutText)")
        follow.signal(SIGTERM)
        try server.stop()
    }

    /// `group_by: all` with `count_distinct` (a HyperLogLog), stddev and first/last: one row per
    /// window, no key; 300 distinct keys counted within the sketch's error.
    @Test func groupAllWithDistinctCount() throws {
        let server = try Server()
        let define = try request("--http1.1", "PUT", server.url("/streams/all"), ["-d",
            #"{"window":"1s","group_by":"all","aggregates":["count","count_distinct","stddev","first","last"],"idle_timeout":"60s"}"#])
        #expect(define.status == 200, "\(define.text)")
        var lines = (0..<600).map { #"{"key":"user-\#($0 % 300)","ts":\#(100 + $0),"value":\#($0 % 2)}"# }
        lines.append(#"{"key":"z","ts":5000,"value":7}"#)
        let ack = try streams.post("--http2-prior-knowledge", server, "all", Data(lines.joined(separator: "\n").utf8))
        #expect(ack.status == 202, "\(ack.text)")
        let rows = try ndjson(try request("--http1.1", "GET", server.url("/streams/all/results")).text)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row["key"] == nil && row["key_base64"] == nil)
        #expect(row["window_start"] as? Int == 0 && row["count"] as? Int == 600)
        let distinct = try #require(row["count_distinct"] as? Int)
        #expect(abs(distinct - 300) <= 9, "count_distinct \(distinct)")
        #expect(row["first"] as? Double == 0 && row["last"] as? Double == 1)
        #expect(abs((row["stddev"] as? Double ?? 0) - 0.5004171882244361) < 1e-9)
        try server.stop()
    }
}
