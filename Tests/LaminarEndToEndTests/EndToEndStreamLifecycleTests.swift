import Foundation
import Testing

/// How streams come to be and how their state is kept: `--auto-create-streams`, checkpoints.
@Suite("EndToEnd stream lifecycle")
struct EndToEndStreamLifecycleTests {
    /// `ReactorLimits.walEntriesPerCheckpointMax` (no serve flag changes it).
    static let walEntriesPerCheckpoint = 256

    func postFile(_ proto: String, _ server: Server, _ stream: String, _ file: String) throws -> HTTPAnswer {
        try request(proto, "POST", server.url("/streams/\(stream)/events"),
                    ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
    }

    func streamNames(_ server: Server) throws -> [String] {
        let list = try request("--http1.1", "GET", server.url("/streams"))
        #expect(list.status == 200, "\(list.text)")
        return try #require(try list.json()["streams"] as? [String], "\(list.text)")
    }

    @Test func autoCreateStreamsCreatesAnUnknownStreamWithTheDefaults() throws {
        let streams = EndToEndStreamTests()
        let tmp = try TempDir()
        let events = [TestEvent(key: "u1", ts: base + 0, value: 1.5), TestEvent(key: "u2", ts: base + 1500, value: 2),
                      TestEvent(key: "u1", ts: base + 2500, value: 4), TestEvent(key: "u1", ts: base + 10, value: 9)]
        var reference = ReferenceWindows(size: 1000)
        let expected = reference.ingest(events)
        #expect(expected.late == 1)
        let file = try tmp.write("events.ndjson", streams.ndjsonBody(events))

        // Without the flag: 404, and nothing is created.
        let plain = try Server()
        let refused = try postFile("--http2-prior-knowledge", plain, "new1", file)
        #expect(refused.status == 404, "\(refused.text)")
        #expect(try refused.json()["error"] as? String == "not_found", "\(refused.text)")
        #expect(try request("--http1.1", "GET", plain.url("/streams/new1")).status == 404)
        #expect(try streamNames(plain) == [])
        try plain.stop()

        let server = try Server(["--memory", "--auto-create-streams"])
        let ack = try postFile("--http2-prior-knowledge", server, "new1", file)
        #expect(ack.status == 202, "\(ack.text)")
        let a = try ack.json()
        #expect(a["accepted"] as? Int == expected.accepted, "\(ack.text)")
        #expect(a["late"] as? Int == expected.late, "\(ack.text)")
        #expect((a["watermark"] as? NSNumber)?.int64Value == reference.watermark, "\(ack.text)")

        let got = try request("--http2", "GET", server.url("/streams/new1"))
        #expect(got.status == 200, "\(got.text)")
        let d = try got.json()
        #expect(d["name"] as? String == "new1")
        #expect(d["window_ms"] as? Int == 1000, "\(got.text)")
        #expect(d["allowed_lateness_ms"] as? Int == 0, "\(got.text)")
        #expect(d["aggregates"] as? [String] == ["count", "sum", "min", "max", "avg"], "\(got.text)")
        #expect(d["key_field"] as? String == "key")
        #expect(d["time_field"] as? String == "ts")
        #expect(d["value_field"] as? String == "value")
        // The same definition as a PUT with an empty body (every default).
        #expect(try request("--http1.1", "PUT", server.url("/streams/defaults"), ["--data-binary", ""]).status == 200)
        let defaults = try request("--http1.1", "GET", server.url("/streams/defaults")).json()
        for field in ["window_ms", "allowed_lateness_ms", "idle_timeout_ms", "key_field", "time_field", "value_field", "aggregates"] {
            #expect(d[field] as? NSObject == defaults[field] as? NSObject, "\(field): auto-created \(d), PUT defaults \(defaults)")
        }
        let s = try #require(d["stats"] as? [String: Any], "\(got.text)")
        #expect(s["events"] as? Int == expected.accepted, "\(s)")
        #expect(s["late_events"] as? Int == expected.late, "\(s)")
        #expect(try streamNames(server) == ["defaults", "new1"])

        // The second batch goes to the stream the first created (counted on top, not a new one).
        let more = [TestEvent(key: "u3", ts: base + 2600, value: 1)]
        let second = try postFile("--http2", server, "new1", try tmp.write("more.ndjson", streams.ndjsonBody(more)))
        let expectedMore = reference.ingest(more)
        #expect(second.status == 202, "\(second.text)")
        #expect(try second.json()["accepted"] as? Int == expectedMore.accepted)
        #expect(try streams.stats(server, "new1")["events"] as? Int == reference.accepted)

        // A refused batch to an unknown stream: 400 naming the line.
        let badFile = try tmp.write("bad.ndjson", Data(#"{"key":"a","ts":1,"value":1}\#n{"key":"a","ts":1,"value":"x"}\#n"#.utf8))
        let bad = try postFile("--http2-prior-knowledge", server, "new2", badFile)
        #expect(bad.status == 400, "\(bad.text)")
        #expect(try bad.json()["error"] as? String == "invalid_events", "\(bad.text)")
        #expect((try bad.json()["detail"] as? String)?.hasPrefix("line 2:") == true, "\(bad.text)")
        // ... and creates nothing: the batch is decoded before the stream would be created.
        #expect(try request("--http1.1", "GET", server.url("/streams/new2")).status == 404)
        #expect(try streamNames(server) == ["defaults", "new1"])
        try server.stop()
    }

    /// Every `walEntriesPerCheckpoint` write-ahead entries the stream is checkpointed: before,
    /// `last_checkpoint` is null and `wal_entries` counts the batches; after, it is the time of
    /// the checkpoint and the log is empty again.
    @Test func aCheckpointIsWrittenAfterEnoughBatches() throws {
        let server = try Server()
        let streams = EndToEndStreamTests()
        let tmp = try TempDir()
        #expect(try request("--http2-prior-knowledge", "PUT", server.url("/streams/cp"), ["-d", EndToEndStreamTests.definition]).status == 200)
        let file = try tmp.write("one.ndjson", streams.ndjsonBody([TestEvent(key: "k", ts: base + 500, value: 1)]))

        // walEntriesPerCheckpoint - 1 batches from one curl over one kept-alive HTTP/1.1
        // connection (curl 7.88.1 cannot reuse a prior-knowledge HTTP/2 connection: the second
        // URL fails with "Error in the HTTP2 framing layer", curl/curl#10634).
        let url = server.url("/streams/cp/events")
        let n = Self.walEntriesPerCheckpoint - 1
        let r = try curl(["--http1.1", "--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson",
                          "-w", "%{http_code}\n"] + Array(repeating: url, count: n), timeout: 60)
        #expect(r.status == 0, "\(r)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 2 * n, "\(r.out.prefix(500))")
        let codes = stride(from: 1, to: lines.count, by: 2).map { String(lines[$0]) }
        #expect(codes == Array(repeating: "202", count: n), "\(r.out.prefix(500))")
        let acks = try stride(from: 0, to: lines.count, by: 2).map { try JSONSerialization.jsonObject(with: Data(lines[$0].utf8)) as? [String: Any] }
        #expect(acks.allSatisfy { $0?["accepted"] as? Int == 1 }, "\(r.out.prefix(500))")

        var s = try streams.stats(server, "cp")
        #expect(s["events"] as? Int == n, "\(s)")
        #expect(s["wal_entries"] as? Int == n, "\(s)")
        #expect(s["last_checkpoint"] is NSNull, "checkpointed before \(Self.walEntriesPerCheckpoint) entries: \(s)")

        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let last = try postFile("--http2", server, "cp", file)
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(last.status == 202, "\(last.text)")
        s = try streams.stats(server, "cp")
        #expect(s["events"] as? Int == n + 1, "\(s)")
        let at = try #require((s["last_checkpoint"] as? NSNumber)?.int64Value, "no checkpoint after \(n + 1) batches: \(s)")
        #expect(at >= before - 1000 && at <= after + 1000, "last_checkpoint \(at) not within [\(before), \(after)]: \(s)")
        #expect(s["wal_entries"] as? Int == 0, "the checkpoint should cover every logged entry: \(s)")
        try server.stop()
    }
}
