import Foundation
import Testing

/// Continuous queries in SQL against the real server: `POST /sql`, `laminar sql`, and SQL
/// streams against their equivalent JSON definitions (proto-docs/sql.md).
@Suite("EndToEnd laminar sql and SQL against JSON", .serialized)
struct EndToEndSQLToolTests {
    static let createTrades = "CREATE SOURCE trades (symbol TEXT KEY, price DOUBLE, volume DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)"

    func sql(_ server: Server, _ script: String) throws -> HTTPAnswer {
        try request("--http2-prior-knowledge", "POST", server.url("/sql"), ["-H", "Content-Type: application/sql", "--data-binary", "@-"],
                    stdin: Data(script.utf8))
    }

    @Test func laminarSQLPrintsAnswersAndErrors() throws {
        let server = try Server()
        let dir = try TempDir()
        defer { dir.remove() }
        let file = try dir.write("script.sql", Data("""
            -- the issue's source and stream
            \(Self.createTrades) WITH (idle_timeout = '10s');
            CREATE STREAM vwap AS SELECT symbol, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS trades
              FROM trades WHERE volume > 0 GROUP BY symbol, TUMBLE(ts, INTERVAL '1' MINUTE);
            SHOW SOURCES
            """.utf8))
        let ok = try run(Paths.laminar, ["sql", "--url", server.base, "-f", file])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.out.hasPrefix("CREATE SOURCE trades\n\nCREATE STREAM vwap\n\nname    key_field"), "\(ok)")
        #expect(ok.out.contains("trades  symbol     ts          price, volume  1000"), "\(ok)")

        // A refused script: the error with its position on stderr, status 1, nothing applied.
        let bad = try run(Paths.laminar, ["sql", "--url", server.base, "-c", "DROP STREAM vwap;\nCREATE STREAM x AS SELECT COUNT(*) AS n FROM trades GROUP BY HOP(ts, INTERVAL '1' MINUTE, INTERVAL '10' SECOND)"])
        #expect(bad.status == 1)
        #expect(bad.err.hasPrefix("line 2, column 70: the slide of HOP (1 minute) is larger than its size (10 seconds)"), "\(bad)")
        let streams = try run(Paths.laminar, ["sql", "--url", server.base, "-c", "SHOW STREAMS"])
        #expect(streams.status == 0 && streams.out.contains("vwap"), "\(streams)")

        // Follow: rows as windows close. Each event closes the window of the one before it, so
        // rows keep coming until the follow (registered some time after the start) prints one.
        let follow = try Child(Paths.laminar, ["sql", "--url", server.base, "--follow", "vwap"])
        var k = 0
        try waitUntil(20, "a followed row") {
            k += 1
            let event = #"{"symbol":"A","ts":\#(k * 60_000 + 6000),"price":10,"volume":2}"#
            let r = try request("--http1.1", "POST", server.url("/sources/trades/events"), ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@-"],
                                stdin: Data(event.utf8))
            #expect(r.status / 100 == 2, "\(r.text)")
            return follow.stdoutText.split(separator: "\n").count >= 2
        }
        let lines = follow.stdoutText.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines[0] == ["seq", "symbol", "window_start", "window_end", "vwap", "trades"], "\(lines)")
        if lines[1].count == 6, let start = Int(lines[1][2]), let end = Int(lines[1][3]) {
            #expect(lines[1][1] == "A" && end - start == 60_000 && start % 60_000 == 0 && lines[1][4] == "10" && lines[1][5] == "1", "\(lines)")
        } else {
            Issue.record("not a row: \(lines)")
        }
        follow.signal(SIGTERM)
        _ = try? follow.wait(5)
        try server.stop()
    }

    /// The batch to the source (the SQL streams) and to each JSON stream.
    func post(_ server: Server, _ body: String, to pairs: [(String, String)]) throws {
        for path in ["/sources/trades/events"] + pairs.map({ "/streams/\($0.1)/events" }) {
            let r = try request("--http1.1", "POST", server.url(path), ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@-"], stdin: Data(body.utf8))
            #expect(r.status / 100 == 2, "\(path): \(r.text)")
        }
    }

    /// Result rows without what depends on emission order: (key, window, output columns).
    static func rows(_ server: Server, _ stream: String) throws -> [String] {
        let r = try curl([server.url("/streams/\(stream)/results")])
        return try ndjson(r.out).map { row in
            var r = row
            for k in ["seq", "op", "before", "final"] { r.removeValue(forKey: k) }
            let data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }.sorted()
    }

    /// For each window kind and emit mode, a SQL stream (reading the source) and its equivalent
    /// JSON definition (a plain stream, sent the same batches) give the same rows on random
    /// event sets.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func sqlStreamsMatchTheirJSONDefinitions(seed: UInt64) throws {
        let server = try Server()
        #expect(try sql(server, Self.createTrades).status == 200)
        let windows: [(String, String, String)] = [
            ("tumble", "symbol, TUMBLE(ts, INTERVAL '2' SECOND)", #""window":"2s""#),
            ("hop", "symbol, HOP(ts, INTERVAL '500' MILLISECOND, INTERVAL '2' SECOND)", #""window":{"type":"hop","size":"2s","slide":"500ms"}"#),
            ("session", "symbol, SESSION(ts, INTERVAL '1' SECOND)", #""window":{"type":"session","gap":"1s"}"#),
            ("all", "TUMBLE(ts, INTERVAL '2' SECOND)", #""window":"2s","group_by":"all""#),
        ]
        let emits: [(String, String, String)] = [
            ("final", "EMIT ON WINDOW CLOSE", #""emit":"final""#),
            ("changes", "EMIT CHANGES", #""emit":"changes""#),
            ("every", "EMIT EVERY INTERVAL '100' MILLISECOND", #""emit":{"every":"100ms"}"#),
        ]
        var pairs: [(String, String)] = []
        for (w, group, windowJSON) in windows {
            for (e, emit, emitJSON) in emits {
                let name = "\(w)_\(e)"
                let keyed = w != "all"
                let select = keyed ? "symbol, " : ""
                let script = "CREATE STREAM sql_\(name) AS SELECT \(select)SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS n, MAX(price) - MIN(price) AS spread FROM trades WHERE volume > 0 OR symbol = 'C' GROUP BY \(group) HAVING n >= 2 \(emit) ALLOW LATENESS INTERVAL '200' MILLISECOND"
                let answer = try sql(server, script)
                #expect(answer.status == 200, "\(answer.text)")
                let json = #"{"key_field":"symbol","fields":{"price":"f64","volume":"f64"},\#(windowJSON),\#(emitJSON),"allowed_lateness":"1200ms","filter":"volume > 0 OR symbol = 'C'","#
                    + #""aggregates":[{"fn":"sum","expr":"price * volume","as":"pv"},{"fn":"sum","field":"volume","as":"v"},{"fn":"count","as":"n"},{"fn":"max","field":"price","as":"hi"},{"fn":"min","field":"price","as":"lo"}],"#
                    + #""select":[{"as":"vwap","expr":"pv / v"},{"as":"n","expr":"n"},{"as":"spread","expr":"hi - lo"}],"having":"n >= 2","key_column":"symbol"}"#
                let put = try request("--http1.1", "PUT", server.url("/streams/json_\(name)"), ["--data-binary", "@-"], stdin: Data(json.utf8))
                #expect(put.status == 200, "\(put.text)")
                pairs.append(("sql_\(name)", "json_\(name)"))
            }
        }
        var rng = SeededGenerator(state: seed)
        var clock: Int64 = 0
        for _ in 0..<8 {
            var body = ""
            for _ in 0..<Int(rng.next() % 40 + 1) {
                clock += Int64(rng.next() % 700) - 150
                let key = ["A", "B", "C"][Int(rng.next() % 3)]
                body += #"{"symbol":"\#(key)","ts":\#(clock),"price":\#(rng.next() % 50 + 1),"volume":\#(rng.next() % 4)}"# + "\n"
            }
            try post(server, body, to: pairs)
        }
        // A far event closes every window (its own, with one event, fails HAVING); within a
        // day of them, so that retention keeps their rows.
        try post(server, #"{"symbol":"Z","ts":10000000,"price":1,"volume":1}"#, to: pairs)
        for (a, b) in pairs {
            var last: ([String], [String]) = ([], [])
            var failure: (any Error)?
            do {
                try waitUntil(10, "\(a) and \(b) to agree") {
                    last = (try Self.rows(server, a), try Self.rows(server, b))
                    return last.0 == last.1 && !last.0.isEmpty
                }
            } catch {
                failure = error
            }
            #expect(failure == nil, "seed \(seed): \(failure.map { "\($0)" } ?? ""): \(a) \(last.0) vs \(b) \(last.1) \((try? curl([server.url("/streams/\(a)")]).out) ?? "")")
        }
        try server.stop()
    }
}
