import Foundation
import Testing

/// Bad input to streams changes nothing: malformed NDJSON event files posted with curl, and
/// stream definitions that break a rule.
@Suite("EndToEnd stream input")
struct EndToEndStreamInputTests {
    /// `EventDecodeLimits.lineBytesMax` (the server keeps the decoder's default).
    static let lineBytesMax = 64 << 10

    /// A body refused as a whole: the 1-based line the server must name, and a piece of its reason.
    struct BadBody: CustomStringConvertible {
        var name: String
        var lines: [Data]
        var badLine: Int
        var reason: String?
        var description: String { "\(name) (bad line \(badLine))" }
    }

    /// Events far in the future: applied, they would move the watermark and make later batches late.
    static func good(_ i: Int) -> Data {
        Data(TestEvent(key: "g", ts: base + 1_000_000 + Int64(i), value: 1).ndjsonLine.utf8)
    }

    /// A valid event line of exactly `bytes` bytes (padded with an ignored member).
    static func paddedLine(_ bytes: Int, ts: Int64) -> Data {
        let head = #"{"key":"p","ts":\#(ts),"value":2,"pad":""#
        let tail = #""}"#
        let line = head + String(repeating: "x", count: bytes - head.utf8.count - tail.utf8.count) + tail
        precondition(line.utf8.count == bytes)
        return Data(line.utf8)
    }

    /// Made anew on each use: a stored static would live to the end of the process, which
    /// LeakSanitizer (`make test-sanitize`) reports as a leak.
    static var badBodies: [BadBody] { [
        BadBody(name: "bad JSON syntax", lines: [good(1), good(2), Data(#"{"key":"a","ts":1,"value":}"#.utf8), good(3)], badLine: 3, reason: nil),
        BadBody(name: "missing comma", lines: [good(1), good(2), Data(#"{"key":"a" "ts":1,"value":1}"#.utf8)], badLine: 3, reason: "expected ','"),
        BadBody(name: "value as a string", lines: [good(1), Data(#"{"key":"a","ts":1,"value":"1.5"}"#.utf8), good(2)], badLine: 2, reason: #""value" must be a number"#),
        BadBody(name: "key as a number", lines: [Data(#"{"key":7,"ts":1,"value":1}"#.utf8), good(1)], badLine: 1, reason: #""key" must be a string"#),
        BadBody(name: "line over the limit", lines: [good(1), good(2), good(3), paddedLine(lineBytesMax + 1, ts: base + 1_000_010), good(4)], badLine: 4,
                reason: "line longer than \(lineBytesMax) bytes"),
        BadBody(name: "invalid UTF-8 in a key", lines: [good(1), Data(#"{"key":"a"#.utf8) + Data([0xFF, 0xFE]) + Data(#"b","ts":1,"value":1}"#.utf8), good(2)],
                badLine: 2, reason: "invalid UTF-8"),
        BadBody(name: "missing key", lines: [good(1), good(2), good(3), good(4), Data(#"{"ts":1,"value":1}"#.utf8)], badLine: 5, reason: #"missing "key""#),
    ] }

    /// `curl --data-binary @file` as NDJSON.
    func postFile(_ proto: String, _ server: Server, _ stream: String, _ file: String) throws -> HTTPAnswer {
        try request(proto, "POST", server.url("/streams/\(stream)/events"),
                    ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
    }

    func body(_ lines: [Data]) -> Data {
        var out = Data()
        for line in lines { out.append(line); out.append(0x0A) }
        return out
    }

    @Test(arguments: ["--http2-prior-knowledge", "--http2"])
    func malformedNDJSONFilesChangeNothing(proto: String) throws {
        let server = try Server()
        let streams = EndToEndStreamTests()
        let tmp = try TempDir()
        let define = try request(proto, "PUT", server.url("/streams/in"), ["-d", EndToEndStreamTests.definition])
        #expect(define.status == 200, "\(define.text)")
        var reference = ReferenceWindows(size: 1000)

        // Some state first, including a late event, so "unchanged" is not just zeros.
        let first = sampleEvents(from: 0, to: 2, seed: 4) + [TestEvent(key: "a", ts: base + 5, value: 1)]
        let ack = try postFile(proto, server, "in", try tmp.write("first.ndjson", streams.ndjsonBody(first)))
        let expectedFirst = reference.ingest(first)
        #expect(expectedFirst.late == 1)
        #expect(ack.status == 202, "\(ack.text)")
        #expect(try ack.json()["accepted"] as? Int == expectedFirst.accepted)

        for (i, bad) in Self.badBodies.enumerated() {
            let before = try streams.stats(server, "in")
            #expect(before["events"] as? Int == reference.accepted, "\(bad): \(before)")
            #expect(before["late_events"] as? Int == reference.late, "\(bad): \(before)")

            let refused = try postFile(proto, server, "in", try tmp.write("bad-\(i).ndjson", body(bad.lines)))
            #expect(refused.status == 400, "\(bad): \(refused.status) \(refused.text)")
            let why = try refused.json()
            #expect(why["error"] as? String == "invalid_events", "\(bad): \(refused.text)")
            let detail = why["detail"] as? String ?? ""
            #expect(detail.hasPrefix("line \(bad.badLine):"), "\(bad): \(refused.text)")
            if let reason = bad.reason { #expect(detail.contains(reason), "\(bad): \(refused.text)") }

            let after = try streams.stats(server, "in")
            #expect(after["events"] as? Int == before["events"] as? Int, "\(bad) changed the counts: \(before) -> \(after)")
            #expect(after["late_events"] as? Int == before["late_events"] as? Int, "\(bad) changed the counts: \(before) -> \(after)")
            #expect((after["watermark"] as? NSNumber)?.int64Value == reference.watermark, "\(bad) moved the watermark: \(after)")

            // A valid batch afterwards: accepted and late as if the bad one never came.
            let next = sampleEvents(from: 3 + i, to: 3 + i, seed: i) + [TestEvent(key: "b", ts: base + 100 + Int64(i), value: 3)]
            let ok = try postFile(proto, server, "in", try tmp.write("ok-\(i).ndjson", streams.ndjsonBody(next)))
            let expected = reference.ingest(next)
            #expect(expected.late == 1)
            #expect(ok.status == 202, "after \(bad): \(ok.text)")
            let a = try ok.json()
            #expect(a["accepted"] as? Int == expected.accepted, "after \(bad): \(ok.text)")
            #expect(a["late"] as? Int == expected.late, "after \(bad): \(ok.text)")
            #expect((a["watermark"] as? NSNumber)?.int64Value == reference.watermark, "after \(bad): \(ok.text)")
        }

        // The limit itself: a line of exactly lineBytesMax bytes is fine.
        let atLimit = Self.paddedLine(Self.lineBytesMax, ts: reference.watermark)
        let limitAck = try postFile(proto, server, "in", try tmp.write("limit.ndjson", body([atLimit])))
        let expectedLimit = reference.ingest([TestEvent(key: "p", ts: reference.watermark, value: 2)])
        #expect(limitAck.status == 202, "\(limitAck.text)")
        #expect(try limitAck.json()["accepted"] as? Int == expectedLimit.accepted)

        let s = try streams.stats(server, "in")
        #expect(s["events"] as? Int == reference.accepted, "\(s)")
        #expect(s["late_events"] as? Int == reference.late, "\(s)")
        try server.stop()
    }

    /// A bad definition: the body and the field its detail must start with (nil: not JSON at all).
    static let badDefinitions: [(body: String, field: String?)] = [
        (#"{"window":"1s","colour":"red"}"#, "colour"),
        (#"{"window_ms":-1000}"#, "window_ms"),
        (#"{"window":"-1s"}"#, "window"),
        (#"{"window":0}"#, "window"),
        (#"{"window":"0s"}"#, "window"),
        (#"{"window":"1s","aggregates":["count","median"]}"#, "aggregates[1]"),
        (#"{"allowed_lateness":true}"#, "allowed_lateness"),
        (#"{"allowed_lateness_ms":"soon"}"#, "allowed_lateness_ms"),
        ("window=1s", nil),
        (#"{"window":"1s""#, nil),
    ]

    @Test func badStreamDefinitionsAreRefusedNamingTheField() throws {
        let server = try Server()
        let tmp = try TempDir()
        // An existing stream a bad PUT must leave as it is.
        let keep = try request("--http1.1", "PUT", server.url("/streams/keep"), ["-d", EndToEndStreamTests.definition])
        #expect(keep.status == 200, "\(keep.text)")
        let keepBefore = try request("--http1.1", "GET", server.url("/streams/keep")).json()

        var tried: [String] = []
        for (p, proto) in ["--http2-prior-knowledge", "--http2", "--http1.1"].enumerated() {
            for (i, bad) in Self.badDefinitions.enumerated() {
                let file = try tmp.write("def-\(p)-\(i).json", Data(bad.body.utf8))
                for name in ["bad-\(p)-\(i)", "keep"] {
                    let r = try request(proto, "PUT", server.url("/streams/\(name)"),
                                        ["--data-binary", "@\(file)", "-H", "content-type: application/json"])
                    #expect(r.status == 400, "\(proto) \(bad.body): \(r.status) \(r.text)")
                    let why = try r.json()
                    #expect(why["error"] as? String == "invalid_stream", "\(proto) \(bad.body): \(r.text)")
                    let detail = why["detail"] as? String ?? ""
                    if let field = bad.field {
                        #expect(detail.hasPrefix("\(field):"), "\(proto) \(bad.body): the detail should name \(field): \(r.text)")
                    } else {
                        #expect(detail.contains("not JSON"), "\(proto) \(bad.body): \(r.text)")
                    }
                }
                tried.append("bad-\(p)-\(i)")
                #expect(try request(proto, "GET", server.url("/streams/bad-\(p)-\(i)")).status == 404)
            }
        }
        let list = try request("--http2-prior-knowledge", "GET", server.url("/streams"))
        #expect(list.status == 200, "\(list.text)")
        let names = try #require(try list.json()["streams"] as? [String], "\(list.text)")
        #expect(names == ["keep"], "after \(tried.count) refused definitions: \(names)")
        // The refused PUTs to an existing name left its definition alone.
        let keepAfter = try request("--http1.1", "GET", server.url("/streams/keep")).json()
        for field in ["window_ms", "allowed_lateness_ms", "idle_timeout_ms", "key_field", "time_field", "value_field"] {
            #expect(keepAfter[field] as? NSObject == keepBefore[field] as? NSObject, "\(field): \(keepBefore) -> \(keepAfter)")
        }
        #expect(keepAfter["aggregates"] as? [String] == ["count", "sum", "max"], "\(keepAfter)")
        #expect(keepAfter["window_ms"] as? Int == 1000)
        try server.stop()
    }
}
