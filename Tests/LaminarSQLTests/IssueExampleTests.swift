import LaminarReactor
import LaminarSQL
import Testing

/// The statements of issue 13 compile to the definitions SQL_CONTRACT.md describes.
@Suite struct IssueExampleTests {
    static let createTrades = """
        CREATE SOURCE trades (
          symbol TEXT KEY, price DOUBLE, volume DOUBLE, ts TIMESTAMP,
          WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
        ) WITH (idle_timeout = '10s')
        """

    static let vwap = """
        CREATE STREAM vwap AS
          SELECT symbol, window_start, window_end,
                 SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS trades
          FROM trades
          WHERE volume > 0
          GROUP BY symbol, TUMBLE(ts, INTERVAL '1' MINUTE)
          EMIT ON WINDOW CLOSE
        """

    static let p99 = """
        CREATE STREAM p99_by_symbol AS
          SELECT symbol, APPROX_PERCENTILE(price, 0.99) AS p99
          FROM trades GROUP BY symbol, HOP(ts, INTERVAL '10' SECOND, INTERVAL '5' MINUTE)
          HAVING COUNT(*) >= 10 EMIT CHANGES
        """

    @Test func theIssueScriptCompilesInOrder() throws {
        let script = Self.createTrades + ";\n\n" + Self.vwap + ";\n\n" + Self.p99 + ";\n"
        let statements = try SQLCompiler.compile(script, catalog: TestCatalog())
        #expect(statements.count == 3)
        #expect(statements[0] == .createSource(TestCatalog.trades))
        guard case .createStream(let vwap) = statements[1], case .createStream(let p99) = statements[2] else {
            Issue.record("expected two streams: \(statements)")
            return
        }
        #expect(vwap == Self.expectedVWAP)
        #expect(p99 == Self.expectedP99)
    }

    static var expectedVWAP: StreamDefinition {
        var d = StreamDefinition(name: "vwap", keyField: "symbol", timeField: "ts", windowSizeMs: 60_000, allowedLatenessMs: 5000,
                                 aggregates: [
                                    Aggregate(.sum, alias: "_a0", input: .binary(.multiply, .column("price"), .column("volume"))),
                                    Aggregate(.sum, field: 1, alias: "_a1"),
                                    Aggregate(.count, alias: "trades"),
                                 ])
        d.fields = ["price", "volume"]
        d.fieldsDeclared = true
        d.source = "trades"
        d.filter = .binary(.greater, .column("volume"), .number(0))
        d.outputColumns = [
            OutputColumn(name: "vwap", expression: .binary(.divide, .column("_a0"), .column("_a1"))),
            OutputColumn(name: "trades", expression: .column("trades")),
        ]
        d.keyColumn = "symbol"
        d.sql = vwap
        return d
    }

    static var expectedP99: StreamDefinition {
        var d = StreamDefinition(name: "p99_by_symbol", keyField: "symbol", timeField: "ts", windowSizeMs: 1, allowedLatenessMs: 5000,
                                 aggregates: [Aggregate(.p, quantile: 0.99, alias: "p99"), Aggregate(.count, alias: "_a1")])
        d.window = .hop(sizeMs: 300_000, slideMs: 10_000)
        d.fields = ["price", "volume"]
        d.fieldsDeclared = true
        d.emit = .changes
        d.source = "trades"
        d.outputColumns = [OutputColumn(name: "p99", expression: .column("p99"))]
        d.having = .binary(.greaterEqual, .column("_a1"), .number(10))
        d.keyColumn = "symbol"
        d.sql = p99
        return d
    }

    @Test func sessionGroupedByWindowOnlyWithLatenessAndEveryEmit() throws {
        let d = try compileStream("""
            create stream sessions as select count(*), avg(price) as "Avg Price", window_start
            from trades where symbol like 'A%' or symbol in ('MSFT', 'IBM')
            group by session(ts, interval '30 seconds') emit every interval '2' second allow lateness interval '1.5 seconds'
            """)
        #expect(d.window == .session(gapMs: 30_000))
        #expect(d.groupBy == .all)
        #expect(d.emit == .every(ms: 2000))
        #expect(d.allowedLatenessMs == 6500)  // 5 s watermark delay + 1.5 s
        #expect(d.aggregates == [Aggregate(.count, alias: "count"), Aggregate(.avg, field: 0, alias: "Avg Price")])
        #expect(d.outputColumns == [OutputColumn(name: "count", expression: .column("count")),
                                    OutputColumn(name: "Avg Price", expression: .column("Avg Price"))])
        #expect(d.filter == .binary(.or, .like(.column("symbol"), pattern: "A%", negated: false),
                                    .inList(.column("symbol"), [.string("MSFT"), .string("IBM")], negated: false)))
    }

    @Test func repeatedAggregatesAreComputedOnceAndHavingSeesOutputNames() throws {
        let d = try compileStream("""
            CREATE STREAM s AS SELECT symbol, SUM(volume) AS v, SUM(volume) * 2 AS v2, MAX(price) - MIN(price) AS spread
            FROM trades GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND) HAVING spread > 1 AND SUM(volume) > 0
            """)
        #expect(d.aggregates == [Aggregate(.sum, field: 1, alias: "v"), Aggregate(.max, field: 0, alias: "_a1"),
                                 Aggregate(.min, field: 0, alias: "_a2")])
        #expect(d.outputColumns?.map(\.name) == ["v", "v2", "spread"])
        #expect(d.outputColumns?[1].expression == .binary(.multiply, .column("v"), .number(2)))
        #expect(d.having == .binary(.and, .binary(.greater, .binary(.subtract, .column("_a1"), .column("_a2")), .number(1)),
                                    .binary(.greater, .column("v"), .number(0))))
    }

    @Test func explainCompilesWithoutCreatingAndDropsSeeEarlierStatements() throws {
        let statements = try SQLCompiler.compile("""
            EXPLAIN \(Self.vwap);
            DROP STREAM IF EXISTS nothing; SHOW SOURCES; SHOW STREAMS;
            CREATE STREAM a AS SELECT COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts, INTERVAL '1' SECOND);
            DROP STREAM a; DROP SOURCE trades; CREATE SOURCE trades (k TEXT KEY, t TIMESTAMP, x DOUBLE)
            """, catalog: TestCatalog.withTrades)
        #expect(statements.count == 8)
        #expect(statements[0] == .explain(Self.expectedVWAP))
        #expect(statements[1] == .dropStream(name: "nothing", ifExists: true))
        #expect(statements[2] == .showSources && statements[3] == .showStreams)
        #expect(statements[5] == .dropStream(name: "a", ifExists: false))
        #expect(statements[6] == .dropSource(name: "trades", ifExists: false))
        #expect(statements[7] == .createSource(SourceDefinition(name: "trades", keyField: "k", timeField: "t", fields: ["x"])))
    }

    @Test func theKeyComparesWithStrings() throws {
        let d = try compileStream("CREATE STREAM c AS SELECT COUNT(*) AS n FROM trades WHERE symbol >= 'M' AND 'Z' <> symbol GROUP BY symbol, TUMBLE(ts, INTERVAL '1' HOUR)")
        #expect(d.filter == .binary(.and, .binary(.greaterEqual, .column("symbol"), .string("M")), .binary(.notEqual, .string("Z"), .column("symbol"))))
    }

    @Test func countOfAnExpressionCountsItsNonNullValues() throws {
        let d = try compileStream("CREATE STREAM c AS SELECT COUNT(price / volume) AS n, COUNT(price) AS m, APPROX_COUNT_DISTINCT(symbol) AS keys FROM trades GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)")
        #expect(d.aggregates == [Aggregate(.count, alias: "n", input: .binary(.divide, .column("price"), .column("volume"))),
                                 Aggregate(.count, alias: "m"), Aggregate(.countDistinct, alias: "keys")])
    }
}
