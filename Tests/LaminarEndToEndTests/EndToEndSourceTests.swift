import Foundation
import Testing

/// `/sources` and `POST /sql` over HTTP with curl: define, list, read, post events (NDJSON and
/// errors), delete; a script's error answer.
@Suite(.serialized) struct EndToEndSourceTests {
    static let body = #"{"key_field":"symbol","time_field":"ts","fields":{"price":"f64","volume":"f64"},"watermark_delay":"5s","idle_timeout":"10s"}"#

    @Test func sourcesDefineListPostDelete() throws {
        let server = try Server()
        defer { _ = try? server.stop() }
        let json = ["-H", "content-type: application/json", "--data-binary", "@-"]
        let put = try request("--http1.1", "PUT", server.url("/sources/trades"), json, stdin: Data(Self.body.utf8))
        #expect(put.status == 200, "\(put.text)")
        #expect(put.text == #"{"name":"trades","key_field":"symbol","time_field":"ts","fields":{"price":"f64","volume":"f64"},"watermark_delay_ms":5000,"idle_timeout_ms":10000,"streams":[]}"# + "\n")
        let again = try request("--http2-prior-knowledge", "PUT", server.url("/sources/trades"), json, stdin: Data(Self.body.utf8))
        #expect(again.status == 200, "an unchanged definition is accepted again")
        let list = try request("--http1.1", "GET", server.url("/sources"))
        #expect(list.status == 200)
        #expect((try list.json()["sources"] as? [[String: Any]])?.map { $0["name"] as? String } == ["trades"])
        let get = try request("--http1.1", "GET", server.url("/sources/trades"))
        #expect(try get.json()["key_field"] as? String == "symbol")

        let events = #"{"symbol":"AAPL","ts":1000,"price":10,"volume":2}"# + "\n" + #"{"symbol":"MSFT","ts":1001,"price":11,"volume":3}"# + "\n"
        let post = try request("--http1.1", "POST", server.url("/sources/trades/events"),
                               ["-H", "content-type: application/x-ndjson", "-H", "idempotency-key: b1", "--data-binary", "@-"], stdin: Data(events.utf8))
        #expect(post.status == 202, "\(post.text)")
        #expect(try post.json()["accepted"] as? Int == 2)
        let dup = try request("--http1.1", "POST", server.url("/sources/trades/events"),
                              ["-H", "content-type: application/x-ndjson", "-H", "idempotency-key: b1", "--data-binary", "@-"], stdin: Data(events.utf8))
        #expect(try dup.json()["duplicate"] as? Bool == true)
        let missing = #"{"symbol":"AAPL","ts":1000,"price":10}"# + "\n"
        let bad = try request("--http1.1", "POST", server.url("/sources/trades/events"),
                              ["-H", "content-type: application/x-ndjson", "--data-binary", "@-"], stdin: Data(missing.utf8))
        #expect(try bad.status == 400 && (bad.json()["error"] as? String) == "invalid_events", "\(bad.text)")

        // Binary bodies are decoded as they arrive (HTTP/1.1 and HTTP/2), with the same answers.
        let binary = ["-H", "content-type: application/vnd.laminar.events", "--data-binary", "@-"]
        let lev2 = Self.lev2([("AAPL", 2000, 10, 2), ("IBM", 2001, 20, 1), ("AAPL", 2002, 12, 0)])
        for (i, version) in ["--http1.1", "--http2-prior-knowledge"].enumerated() {
            let keyed = binary + ["-H", "idempotency-key: bin\(i)"]
            let first = try request(version, "POST", server.url("/sources/trades/events"), keyed, stdin: lev2)
            #expect(try first.status == 202 && (first.json()["accepted"] as? Int) == 3, "\(first.text)")
            let repeated = try request(version, "POST", server.url("/sources/trades/events"), keyed, stdin: lev2)
            #expect(try repeated.json()["duplicate"] as? Bool == true, "\(repeated.text)")
            let garbled = try request(version, "POST", server.url("/sources/trades/events"), binary, stdin: Data("LEV9xxxx".utf8))
            #expect(garbled.text == #"{"error":"invalid_events","detail":"header: bad magic: expected \"LEV1\" or \"LEV2\""}"# + "\n")
            let nowhere = try request(version, "POST", server.url("/sources/nosuch/events"), binary, stdin: lev2)
            #expect(try nowhere.status == 404 && (nowhere.json()["error"] as? String) == "not_found", "\(nowhere.text)")
        }

        let refused = try request("--http1.1", "PUT", server.url("/sources/bad"), json,
                                  stdin: Data(#"{"key_field":"k","time_field":"ts","fields":{"k":"f64"}}"#.utf8))
        #expect(try refused.status == 400 && (refused.json()["error"] as? String) == "invalid_source", "\(refused.text)")
        let unknown = try request("--http1.1", "PUT", server.url("/sources/bad"), json, stdin: Data(#"{"key_field":"k","nope":1}"#.utf8))
        #expect(try unknown.json()["detail"] as? String == "nope: unknown member")
        // A stream and a source do not share a name.
        let stream = try request("--http1.1", "PUT", server.url("/streams/trades"), json, stdin: Data("{}".utf8))
        #expect(try stream.status == 409 && (stream.json()["error"] as? String) == "conflict", "\(stream.text)")

        #expect(try request("--http1.1", "DELETE", server.url("/sources/trades")).status == 204)
        #expect(try request("--http1.1", "GET", server.url("/sources/trades")).status == 404)
        #expect(try request("--http1.1", "POST", server.url("/sources/trades/events"),
                            ["-H", "content-type: application/x-ndjson", "--data-binary", "@-"], stdin: Data(events.utf8)).status == 404)
        #expect(try request("--http1.1", "PATCH", server.url("/sources/trades")).status == 405)
    }

    /// A `LEV2` body of two fields (price, volume).
    static func lev2(_ events: [(key: String, ts: Int64, price: Double, volume: Double)]) -> Data {
        var d = Data("LEV2".utf8)
        func le<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
        le(UInt32(events.count)); le(UInt32(2))
        for e in events {
            le(UInt16(e.key.utf8.count)); d.append(contentsOf: e.key.utf8); le(e.ts)
            le(e.price.bitPattern); le(e.volume.bitPattern)
        }
        return d
    }

    @Test func sqlAnswersErrorsAsSQLErrors() throws {
        let server = try Server()
        defer { _ = try? server.stop() }
        let wrongType = try request("--http1.1", "POST", server.url("/sql"), ["-H", "content-type: application/json", "--data-binary", "@-"],
                                    stdin: Data("SHOW SOURCES".utf8))
        #expect(wrongType.status == 415)
        let bad = try request("--http1.1", "POST", server.url("/sql"), ["-H", "content-type: application/sql", "--data-binary", "@-"],
                              stdin: Data("SELEC 1".utf8))
        #expect(bad.status == 400, "\(bad.text)")
        let answer = try bad.json()
        #expect(answer["error"] as? String == "sql_error")
        #expect(answer["line"] as? Int == 1 && answer["column"] as? Int == 1)
        #expect(answer["detail"] is String)
        let big = try request("--http1.1", "POST", server.url("/sql"), ["-H", "content-type: text/plain", "--data-binary", "@-"],
                              stdin: Data(repeating: 0x20, count: (1 << 20) + 1))
        #expect(big.status == 413, "\(big.text)")
    }
}
