import Foundation
import Testing

/// Event keys are bytes end to end, and results come back exactly as `proto-docs` says: in key
/// byte order, columns in the definition's order, `key_base64` for keys that are not UTF-8.
/// The real server, driven with curl.
@Suite("EndToEnd key bytes")
struct EndToEndKeyBytesTests {
    let streams = EndToEndStreamTests()

    /// A binary (`LEV1`) body: each event's key bytes, time and value.
    static func binaryBody(_ events: [(key: [UInt8], ts: Int64, value: Double)]) -> Data {
        var out = Data("LEV1".utf8)
        withUnsafeBytes(of: UInt32(events.count).littleEndian) { out.append(contentsOf: $0) }
        for e in events {
            withUnsafeBytes(of: UInt16(e.key.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: e.key)
            withUnsafeBytes(of: e.ts.littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: e.value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// The key of a result, scan or watch line: `key`, or the bytes of `key_base64`.
    static func keyBytes(_ line: [String: Any]) -> [UInt8]? {
        if let text = line["key"] as? String { return Array(text.utf8) }
        return (line["key_base64"] as? String).flatMap { Data(base64Encoded: $0) }.map { Array($0) }
    }

    static func percentEncoded(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%%%02X", $0) }.joined() }

    static let fourKeys: [[UInt8]] = [[0xFF], [0xFE], [0xFE, 0xFF], Array("caf\u{e9}".utf8)]

    /// The issue's case: `ff`, `fe`, `fe ff` and `café` in one window gave three results (the
    /// first three became U+FFFD). Now four, each addressable with `?key=`, each under its own
    /// store key, in key byte order, through a follow and across a restart.
    @Test func binaryKeysThatAreNotUTF8GiveFourResults() throws {
        let tmp = try TempDir()
        let dataDir = tmp.file("data")
        var server = try Server(["--data-dir", dataDir, "--progress-interval-ms", "0"])  // rows only: it counts lines
        let define = try request("--http1.1", "PUT", server.url("/streams/bin"), ["-d", EndToEndStreamTests.definition])
        #expect(define.status == 200, "\(define.text)")
        let follow = try Child(Paths.tool("curl"), ["-sS", "-N", "-m", "30", "--http2-prior-knowledge", server.url("/streams/bin/results?follow=1")])
        try waitUntil(10, "the follow to be established") { try server.metric("laminar_subscriptions") == 1 }

        var events = Self.fourKeys.enumerated().map { (key: $0.element, ts: Int64(100 + $0.offset), value: Double($0.offset + 1)) }
        events.append((key: [0xFE], ts: 200, value: 10))
        events.append((key: Array("z".utf8), ts: 5000, value: 0))  // closes [0, 1000)
        let file = try tmp.write("keys.lev1", Self.binaryBody(events))
        let ack = try request("--http2-prior-knowledge", "POST", server.url("/streams/bin/events"),
                              ["--data-binary", "@\(file)", "-H", "content-type: application/vnd.laminar.events"])
        #expect(ack.status == 202, "\(ack.text)")
        #expect(try ack.json()["accepted"] as? Int == 6)

        let byBytes = Self.fourKeys.sorted { $0.lexicographicallyPrecedes($1) }
        func checkResults(_ server: Server) throws {
            let all = try request("--http1.1", "GET", server.url("/streams/bin/results"))
            #expect(all.status == 200)
            let lines = try ndjson(all.text)
            #expect(lines.compactMap(Self.keyBytes) == byBytes, "\(all.text)")
            #expect(all.text.contains(#","key_base64":"/v8=","window_start":0,"window_end":1000,"count":1,"sum":3,"max":3}"#), "\(all.text)")
            #expect(all.text.contains(#","key":"café","window_start":0,"window_end":1000,"count":1,"sum":4,"max":4}"#), "\(all.text)")
            for key in Self.fourKeys {
                let one = try request("--http2-prior-knowledge", "GET", server.url("/streams/bin/results?key=\(Self.percentEncoded(key))"))
                let got = try ndjson(one.text)
                #expect(got.count == 1 && got.first.flatMap(Self.keyBytes) == key, "\(key): \(one.text)")
                if key == [0xFE] { #expect(got.first?["count"] as? Int == 2 && got.first?["sum"] as? Int == 12) }
            }
            // Rows are in result slices, not keys of their own; pages of one row, by cursor, give the same order.
            #expect(try ndjson(try request("--http1.1", "GET", server.url("/kv?prefix=_streams/bin/")).text).isEmpty)
            #expect(try ndjson(try request("--http1.1", "GET", server.url("/kv?prefix=_results/bin/&encoding=base64")).text).count >= 1)
            var paged: [[UInt8]] = []
            var after: String? = nil
            for _ in 0..<6 {
                let page = try request("--http1.1", "GET", server.url("/streams/bin/results?limit=1" + (after.map { "&after=\($0)" } ?? "")))
                paged += try ndjson(page.text).compactMap(Self.keyBytes)
                guard let next = page.headers["laminar-next-after"] else { break }
                after = next
            }
            #expect(paged == byBytes, "\(paged)")
        }
        try checkResults(server)

        // The follow got the same four lines, `key_base64` where the key is not UTF-8.
        try waitUntil(10, "four follow lines") { follow.stdoutText.filter { $0 == "\n" }.count >= 4 }
        follow.signal(SIGKILL)
        _ = try follow.wait(10)
        let followed = try ndjson(follow.stdoutText)
        #expect(Set(followed.compactMap(Self.keyBytes)) == Set(Self.fourKeys), "\(follow.stdoutText)")

        // Keys survive a restart byte for byte (write-ahead log and checkpoint of binary keys).
        try server.stop()
        server = try Server(["--data-dir", dataDir])
        try checkResults(server)
        let more = try request("--http1.1", "POST", server.url("/streams/bin/events"),
                               ["--data-binary", "@-", "-H", "content-type: application/vnd.laminar.events"],
                               stdin: Self.binaryBody([(key: [0xFF], ts: 5100, value: 1), (key: Array("z".utf8), ts: 7000, value: 0)]))
        #expect(more.status == 202, "\(more.text)")
        let z = try ndjson(try request("--http1.1", "GET", server.url("/streams/bin/results?key=z")).text)
        #expect(z.first?["count"] as? Int == 1, "the window [5000, 6000) of z, closed after the restart")
        try server.stop()
    }

    /// Results are ordered by key bytes (`a`, `a b`, `a.`, `a/b`) in every query: whole, paged
    /// with the cursor, filtered by time; `?key=` finds a key with `/` in it.
    @Test func resultsComeInKeyByteOrder() throws {
        let server = try Server()
        #expect(try request("--http1.1", "PUT", server.url("/streams/o"), ["-d", EndToEndStreamTests.definition]).status == 200)
        let keys = ["a/b", "a.", "a", "a b"]
        var lines: [String] = []
        for (i, key) in keys.enumerated() { lines.append(#"{"key":"\#(key)","ts":\#(100 + i),"value":1}"#) }
        for (i, key) in keys.enumerated() { lines.append(#"{"key":"\#(key)","ts":\#(1100 + i),"value":2}"#) }
        lines.append(#"{"key":"end","ts":9000,"value":0}"#)
        let ack = try streams.post("--http1.1", server, "o", Data((lines.joined(separator: "\n") + "\n").utf8))
        #expect(ack.status == 202, "\(ack.text)")
        let sorted = ["a", "a b", "a.", "a/b"]
        func keysAndStarts(_ text: String) throws -> [String] {
            try ndjson(text).map { "\($0["key"] as? String ?? "?")@\($0["window_start"] as? Int ?? -1)" }
        }
        let all = try request("--http1.1", "GET", server.url("/streams/o/results"))
        #expect(try keysAndStarts(all.text) == sorted.flatMap { ["\($0)@0", "\($0)@1000"] }, "\(all.text)")
        let from = try request("--http1.1", "GET", server.url("/streams/o/results?from=1000"))
        #expect(try keysAndStarts(from.text) == sorted.map { "\($0)@1000" }, "\(from.text)")
        var paged: [String] = []
        var after: String? = nil
        repeat {
            let page = try request("--http2-prior-knowledge", "GET", server.url("/streams/o/results?limit=3&to=1000" + (after.map { "&after=\($0)" } ?? "")))
            paged += try keysAndStarts(page.text)
            after = page.headers["laminar-next-after"]
        } while after != nil
        #expect(paged == sorted.map { "\($0)@0" })
        let slash = try request("--http1.1", "GET", server.url("/streams/o/results?key=a%2Fb"))
        #expect(try keysAndStarts(slash.text) == ["a/b@0", "a/b@1000"], "\(slash.text)")
        try server.stop()
    }

    /// NDJSON as `event-formats.md` says: a member given twice rejects the batch naming the
    /// line; integer times are exact; times beyond ±2^61 ms are refused by both formats alike;
    /// JSON bodies end with a newline; result members in the documented order.
    @Test func eventInputExactlyAsDocumented() throws {
        let server = try Server()
        let definition = #"{"window_ms":1000,"aggregates":["avg","max","count"],"idle_timeout":"60s"}"#
        #expect(try request("--http1.1", "PUT", server.url("/streams/x"), ["-d", definition]).status == 200)

        let duplicate = try streams.post("--http1.1", server, "x", Data(("{\"key\":\"u0\",\"ts\":1,\"value\":1}\n"
            + #"{"key":"u1","ts":1000,"value":1,"value":2}"# + "\n").utf8))
        #expect(duplicate.status == 400)
        #expect(duplicate.text == #"{"error":"invalid_events","detail":"line 2: duplicate member \"value\" at byte 32"}"# + "\n")
        #expect(try streams.stats(server, "x")["events"] as? Int == 0, "nothing of the batch applied")

        let exact = try streams.post("--http2-prior-knowledge", server, "x", Data(#"{"key":"u1","ts":9007199254740993,"value":1}"#.utf8))
        #expect(exact.text == #"{"accepted":1,"late":0,"watermark":9007199254740993,"duplicate":false}"# + "\n")

        let tooLate = try streams.post("--http1.1", server, "x", Data(#"{"key":"u1","ts":2305843009213693953,"value":1}"#.utf8))
        #expect(tooLate.status == 400)
        #expect(tooLate.text == #"{"error":"invalid_events","detail":"line 1: time out of range (-2^61 to 2^61 ms)"}"# + "\n")
        let binary = try streams.post("--http1.1", server, "x", Self.binaryBody([(key: Array("u1".utf8), ts: (1 << 61) + 1, value: 1)]),
                                      contentType: "application/vnd.laminar.events")
        #expect(binary.status == 400)
        #expect(binary.text == #"{"error":"invalid_events","detail":"event 1: time out of range (-2^61 to 2^61 ms)"}"# + "\n")
        let badMagic = try streams.post("--http1.1", server, "x", Data("LEVX\u{0}\u{0}\u{0}\u{0}".utf8), contentType: "application/vnd.laminar.events")
        #expect(badMagic.text == #"{"error":"invalid_events","detail":"header: bad magic: expected \"LEV1\" or \"LEV2\""}"# + "\n")

        // The window of 9007199254740993 closes at a later event; its columns in the definition's order: avg, max, count.
        let later = try streams.post("--http1.1", server, "x", Data(#"{"key":"u1","ts":9007199254750000,"value":3}"#.utf8))
        #expect(later.status == 202)
        let results = try request("--http1.1", "GET", server.url("/streams/x/results"))
        #expect(results.text == #"{"seq":1,"key":"u1","window_start":9007199254740000,"window_end":9007199254741000,"avg":1,"max":1,"count":1}"# + "\n")
        try server.stop()
    }
}
