import LaminarReactor
import LaminarSQL
import Testing
@testable import LaminarServer

/// The JSON form of continuous-query definitions (SQL_CONTRACT.md): a compiled SQL stream
/// renders to JSON that parses back to the same definition (but `sql`, which is output only).
@Suite struct SQLDefinitionJSONTests {
    static let trades = SourceDefinition(name: "trades", keyField: "symbol", timeField: "ts", fields: ["price", "volume"],
                                         watermarkDelayMs: 5000, idleTimeoutMs: 10_000)

    struct Catalog: SQLCatalog {
        func source(named name: String) -> SourceDefinition? { name == "trades" ? SQLDefinitionJSONTests.trades : nil }
        func streamExists(named name: String) -> Bool { false }
        func streams(readingSource name: String) -> [String] { [] }
    }

    func parse(_ text: String, name: String = "s") -> Result<StreamDefinition, HTTPFailure> {
        StreamDefinitionJSON.parse(name: name, body: Array(text.utf8), limits: ReactorLimits()) { $0 == "trades" ? Self.trades : nil }
    }

    func render(_ d: StreamDefinition) -> String {
        var out: [UInt8] = []
        StreamDefinitionJSON.append(d, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test(arguments: [
        """
        CREATE STREAM vwap AS SELECT symbol, window_start, window_end, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS trades
        FROM trades WHERE volume > 0 AND symbol NOT LIKE 'X%' GROUP BY symbol, TUMBLE(ts, INTERVAL '1' MINUTE) EMIT ON WINDOW CLOSE
        """,
        """
        CREATE STREAM p99 AS SELECT symbol, APPROX_PERCENTILE(price, 0.99) AS p99 FROM trades
        GROUP BY symbol, HOP(ts, INTERVAL '10' SECOND, INTERVAL '5' MINUTE) HAVING COUNT(*) >= 10 EMIT CHANGES
        """,
        """
        CREATE STREAM sessions AS SELECT COUNT(price / volume) AS n, STDDEV(price) AS sd, MAX(price) - MIN(price) AS "the spread"
        FROM trades WHERE symbol IN ('A', 'B') GROUP BY SESSION(ts, INTERVAL '30' SECOND) EMIT EVERY INTERVAL '1' SECOND
        ALLOW LATENESS INTERVAL '2' SECOND
        """,
    ])
    func compiledStreamsRoundTripThroughJSON(_ sql: String) throws {
        guard case .createStream(let d) = try SQLCompiler.compile(sql, catalog: Catalog())[0] else {
            Issue.record("not a stream")
            return
        }
        let text = render(d)
        #expect(text.contains(#""sql":"#) && text.contains(#""source":"trades""#) && text.contains(#""key_column":"symbol""#))
        var expected = d
        expected.sql = nil
        let back = try parse(text, name: d.name).get()
        #expect(back == expected, "\(text)")
    }

    @Test func theVWAPStreamRendersAsTheContractSays() throws {
        guard case .createStream(let d) = try SQLCompiler.compile(
            "CREATE STREAM vwap AS SELECT symbol, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS trades FROM trades WHERE volume > 0 GROUP BY symbol, TUMBLE(ts, INTERVAL '1' MINUTE)",
            catalog: Catalog())[0] else { return }
        #expect(render(d) == #"{"name":"vwap","source":"trades","key_field":"symbol","time_field":"ts","fields":{"price":"f64","volume":"f64"},"#
            + #""window":{"type":"tumble","size_ms":60000},"window_ms":60000,"group_by":"key","allowed_lateness_ms":5000,"filter":"volume > 0","#
            + #""aggregates":[{"fn":"sum","expr":"price * volume","as":"_a0"},{"fn":"sum","field":"volume","as":"_a1"},{"fn":"count","as":"trades"}],"#
            + #""select":[{"as":"vwap","expr":"_a0 / _a1"},{"as":"trades","expr":"trades"}],"columns":["vwap","trades"],"key_column":"symbol","#
            + #""emit":"final","late_data":"drop","idle_timeout_ms":10000,"retention_ms":86400000,"#
            + #""sql":"CREATE STREAM vwap AS SELECT symbol, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS trades FROM trades WHERE volume > 0 GROUP BY symbol, TUMBLE(ts, INTERVAL '1' MINUTE)"}"#)
    }

    @Test func aStreamOverASourceTakesItsFieldsAndDefaults() throws {
        let d = try parse(#"{"source":"trades","window":"1m","aggregates":[{"fn":"sum","expr":"price * volume","as":"notional"}],"filter":"symbol = 'A'"}"#).get()
        #expect(d.source == "trades" && d.keyField == "symbol" && d.timeField == "ts" && d.fields == ["price", "volume"] && d.fieldsDeclared)
        #expect(d.allowedLatenessMs == 5000 && d.idleTimeoutMs == 10_000)
        #expect(d.aggregates == [Aggregate(.sum, alias: "notional", input: .binary(.multiply, .column("price"), .column("volume")))])
        #expect(d.filter == .binary(.equal, .column("symbol"), .string("A")))
        #expect(try parse(#"{"source":"trades","key_field":"symbol","fields":{"price":"f64","volume":"f64"},"allowed_lateness":"1s"}"#).get().allowedLatenessMs == 1000)
    }

    @Test(arguments: [
        (#"{"source":"nowhere"}"#, "source: must name an existing source"),
        (#"{"source":"trades","key_field":"k"}"#, "key_field: must be the source's (symbol) or omitted"),
        (#"{"source":"trades","time_field":"t"}"#, "time_field: must be the source's (ts) or omitted"),
        (#"{"source":"trades","fields":{"volume":"f64","price":"f64"}}"#, "fields: must be the source's (price, volume) or omitted"),
        (#"{"filter":"value >"}"#, "filter: line 1, column 8: expected an expression, found the end"),
        (#"{"filter":3}"#, #"filter: must be an expression in SQL, such as "volume > 0""#),
        (#"{"having":"sum(value) > 1"}"#, "having: line 1, column 1: SUM(…) is not allowed here: functions and aggregates belong to SQL statements"),
        (#"{"aggregates":[{"fn":"sum","expr":"value * 2"}]}"#, "aggregates[0]: as is required with expr"),
        (#"{"aggregates":[{"fn":"sum","expr":"value * 2","field":"value","as":"x"}]}"#, "aggregates[0]: field or expr, not both"),
        (#"{"aggregates":[{"fn":"sum","expr":"value *","as":"x"}]}"#, "aggregates[0]: expr: line 1, column 8: expected an expression, found the end"),
        (#"{"select":[]}"#, #"select: must be an array of 1 to 64 objects {"as":name,"expr":expression}"#),
        (#"{"select":[{"as":"x"}]}"#, "select[0]: as and expr are required"),
        (#"{"select":[{"as":"x","expr":"sum"},{"as":"x","expr":"sum"}]}"#, #"select[1]: column "x" given twice"#),
        (#"{"select":[{"as":"x","expr":"sum","y":1}]}"#, "select[0]: y: unknown field"),
        (#"{"key_column":""}"#, "key_column: must be a non-empty string of at most 256 bytes"),
    ])
    func badMembersAreNamed(_ body: String, _ detail: String) {
        guard case .failure(let f) = parse(body) else {
            Issue.record("accepted \(body)")
            return
        }
        #expect(f.code == "invalid_stream")
        #expect(f.detail == detail)
    }

    /// The output form carries `window` and `window_ms` (its size): read back, the window stays a hop or session.
    @Test func theOutputFormKeepsItsWindowKind() throws {
        #expect(try parse(#"{"window":{"type":"hop","size_ms":20000,"slide_ms":10000},"window_ms":20000}"#).get().window == .hop(sizeMs: 20_000, slideMs: 10_000))
        #expect(try parse(#"{"window_ms":5000,"window":{"type":"session","gap_ms":5000}}"#).get().window == .session(gapMs: 5000))
        #expect(try parse(#"{"window_ms":7000}"#).get().window == .tumble(sizeMs: 7000))
        guard case .failure(let f) = parse(#"{"window":{"type":"hop","size_ms":20000,"slide_ms":10000},"window_ms":3000}"#) else {
            Issue.record("accepted")
            return
        }
        #expect(f.detail == "window_ms: must be the window's size (or gap) when both are given")
    }

    @Test func sqlIsOutputOnly() throws {
        #expect(try parse(#"{"sql":"CREATE STREAM whatever"}"#).get().sql == nil)
    }
}
