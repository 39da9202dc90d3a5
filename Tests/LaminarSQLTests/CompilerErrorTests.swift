import LaminarReactor
import LaminarSQL
import Testing

/// Every refusal of the parser and the binder: kind, position and sentence.
@Suite struct CompilerErrorTests {
    static let s = "CREATE STREAM s AS SELECT "
    static let g = " FROM trades GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)"
    static let w = " GROUP BY symbol, TUMBLE(ts, INTERVAL '1' SECOND)"

    @Test(arguments: [
        // Scripts and statements.
        ("", 1, 1, "expected a statement (CREATE, DROP, SHOW or EXPLAIN), found the end"),
        (" ; -- nothing\n;", 2, 2, "expected a statement (CREATE, DROP, SHOW or EXPLAIN), found the end"),
        ("SHOW SOURCES SHOW STREAMS", 1, 14, "expected ; or the end of the script, found SHOW"),
        ("SELECT 1", 1, 1, "a query runs continuously: write CREATE STREAM name AS SELECT …"),
        ("INSERT INTO trades VALUES (1)", 1, 1, "INSERT is not supported: post events to /sources/{name}/events"),
        ("ALTER STREAM s", 1, 1, "ALTER is not supported: drop the stream or source and create it again"),
        ("GRANT", 1, 1, "expected a statement (CREATE, DROP, SHOW or EXPLAIN), found GRANT"),
        ("CREATE TABLE t (a DOUBLE)", 1, 8, "CREATE TABLE is not supported: create a SOURCE or a STREAM"),
        ("CREATE s", 1, 8, "expected SOURCE or STREAM after CREATE, found S"),
        ("DROP TABLE t", 1, 6, "expected SOURCE or STREAM after DROP, found TABLE"),
        ("DROP STREAM IF s", 1, 16, "expected EXISTS, found S"),
        ("DROP STREAM from", 1, 13, "expected a stream name, found FROM (a reserved word: write \"from\" to use it as a name)"),
        ("SHOW TABLES", 1, 6, "expected SOURCES or STREAMS after SHOW, found TABLES"),
        ("EXPLAIN SHOW STREAMS", 1, 9, "expected CREATE STREAM after EXPLAIN (only a stream's definition can be explained), found SHOW"),
        // CREATE SOURCE.
        ("CREATE SOURCE x k TEXT KEY", 1, 17, "expected ( and the source's columns, found K"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v INT)", 1, 45, "unknown type INT: a column is TEXT KEY, DOUBLE or TIMESTAMP"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v)", 1, 44, "expected a type (TEXT, DOUBLE or TIMESTAMP), found )"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE", 1, 51, "expected , or ) after a column, found the end"),
        ("CREATE SOURCE x (k TEXT, t TIMESTAMP, v DOUBLE)", 1, 18, "only the key column is TEXT: write k TEXT KEY (a source has one key)"),
        ("CREATE SOURCE x (k TEXT KEY, j TEXT KEY, t TIMESTAMP, v DOUBLE)", 1, 30, "a source has one KEY column (k is the key)"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP KEY, v DOUBLE)", 1, 42, "the KEY column is TEXT"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE KEY)", 1, 52, "the KEY column is TEXT"),
        ("CREATE SOURCE x (t TIMESTAMP, v DOUBLE)", 1, 15, "a source needs a key column: name TEXT KEY"),
        ("CREATE SOURCE x (k TEXT KEY, v DOUBLE)", 1, 15, "a source needs a TIMESTAMP column (its event time)"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP)", 1, 15, "a source needs at least one DOUBLE column"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, u TIMESTAMP, v DOUBLE)", 1, 43, "a source has one TIMESTAMP column (t is its event time)"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, v DOUBLE)", 1, 53, "column v is declared twice"),
        ("CREATE SOURCE x (seq TEXT KEY, t TIMESTAMP, v DOUBLE)", 1, 18, "seq names a member of every result row: the key column needs another name"),
        ("CREATE SOURCE x (k TEXT KEY, PRIMARY KEY (k))", 1, 30, "PRIMARY is not supported: write KEY after the key column's type (symbol TEXT KEY)"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR v AS v - INTERVAL '1' SECOND)", 1, 67, "the WATERMARK is FOR the TIMESTAMP column t, found v"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS v)", 1, 72, "the watermark is t - INTERVAL '…', found v"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t - 5)", 1, 76, "expected INTERVAL after -, found 5"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t + INTERVAL '1' SECOND)", 1, 74, "expected - INTERVAL '…' or the end of the WATERMARK, found +"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t, WATERMARK FOR t AS t)", 1, 75, "a source has one WATERMARK"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE) WITH (retention = '1h')", 1, 59, "unknown option retention: a source takes idle_timeout"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE) WITH (idle_timeout = 10)", 1, 74, "expected a duration such as '10s' or INTERVAL '10' SECOND, found 10"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE) WITH (idle_timeout = '10 fortnights')", 1, 74, "unknown interval unit 'fortnights': use milliseconds, seconds, minutes, hours or days"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE) WITH (idle_timeout = '0s')", 1, 15, "idle_timeout must be positive"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE) WITH (idle_timeout = '1s', idle_timeout = '2s')", 1, 80, "idle_timeout is given twice"),
        ("CREATE SOURCE \"a/b\" (k TEXT KEY, t TIMESTAMP, v DOUBLE)", 1, 15, "a name is 1 to 128 bytes without /"),
        // Intervals.
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t - INTERVAL 5 SECOND)", 1, 85, "expected a string after INTERVAL, such as '5' SECOND or '1.5 seconds', found 5"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t - INTERVAL 'five' SECOND)", 1, 85, "an interval needs a number such as '5' or '1.5', found 'five'"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t - INTERVAL '5')", 1, 85, "an interval needs a unit: '5 seconds' or INTERVAL '5' SECOND"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t - INTERVAL '0.0001' SECOND)", 1, 85, "an interval must be a whole number of milliseconds"),
        ("CREATE SOURCE x (k TEXT KEY, t TIMESTAMP, v DOUBLE, WATERMARK FOR t AS t - INTERVAL '1000000' DAY)", 1, 85, "the interval is too long (at most 100 years)"),
        // CREATE STREAM: clauses.
        ("CREATE STREAM s SELECT", 1, 17, "expected AS, found SELECT"),
        ("CREATE STREAM s AS FROM", 1, 20, "expected SELECT after AS, found FROM"),
        ("CREATE STREAM s WITH (a = 1) AS SELECT", 1, 17, "WITH options are not supported on a stream"),
        (s + "DISTINCT symbol", 1, 27, "SELECT DISTINCT is not supported"),
        (s + "*" + g, 1, 27, "SELECT * is not supported: name the result columns"),
        (s + "COUNT(*) AS n trades", 1, 41, "expected , or FROM, found TRADES"),
        (s + "COUNT(*) AS n FROM (SELECT 1)", 1, 46, "subqueries are not supported"),
        (s + "COUNT(*) AS n FROM trades JOIN quotes ON a = b", 1, 53, "JOIN is not supported"),
        (s + "COUNT(*) AS n FROM trades, quotes", 1, 52, "JOIN is not supported (FROM reads one source)"),
        (s + "COUNT(*) AS n FROM trades AS t", 1, 53, "a source cannot be renamed with AS in FROM"),
        (s + "COUNT(*) AS n FROM trades", 1, 52, "expected GROUP BY with a window function (TUMBLE, HOP or SESSION), found the end: a continuous query aggregates over windows"),
        (s + "COUNT(*) AS n FROM trades ORDER BY symbol", 1, 53, "ORDER BY is not supported in a continuous query"),
        (s + "COUNT(*) AS n" + g + " ORDER BY symbol", 1, 102, "ORDER BY is not supported in a continuous query"),
        (s + "COUNT(*) AS n" + g + " LIMIT 5", 1, 102, "LIMIT is not supported in a continuous query"),
        (s + "COUNT(*) AS n" + g + " UNION SELECT 1", 1, 102, "UNION is not supported"),
        (s + "COUNT(*) AS n FROM trades WINDOW w AS (x)", 1, 53, "WINDOW clauses are not supported: group by a window function (TUMBLE, HOP or SESSION)"),
        (s + "COUNT(*) AS n" + g + " EMIT NOW", 1, 107, "expected ON WINDOW CLOSE, CHANGES or EVERY INTERVAL '…' after EMIT, found NOW"),
        (s + "COUNT(*) AS n" + g + " EMIT ON CLOSE", 1, 110, "expected WINDOW, found CLOSE"),
        (s + "COUNT(*) AS n" + g + " EMIT ON WINDOW END", 1, 117, "expected CLOSE after EMIT ON WINDOW, found END"),
        (s + "COUNT(*) AS n" + g + " EMIT EVERY '1s'", 1, 113, "expected INTERVAL after EMIT EVERY, found '1s'"),
        (s + "COUNT(*) AS n" + g + " EMIT EVERY INTERVAL '0' SECOND", 1, 113, "EMIT EVERY needs a positive interval"),
        (s + "COUNT(*) AS n" + g + " EMIT CHANGES EMIT CHANGES", 1, 115, "EMIT is given twice"),
        (s + "COUNT(*) AS n" + g + " ALLOW 5", 1, 108, "expected LATENESS after ALLOW, found 5"),
        (s + "COUNT(*) AS n" + g + " ALLOW LATENESS 5", 1, 117, "expected INTERVAL after ALLOW LATENESS, found 5"),
        (s + "COUNT(*) AS n" + g + " ALLOW LATENESS INTERVAL '1' SECOND ALLOW LATENESS INTERVAL '1' SECOND", 1, 137, "ALLOW LATENESS is given twice"),
        (s + "COUNT(*) AS n" + g + " extra", 1, 102, "expected , or HAVING, EMIT, ALLOW LATENESS, ; or the end of the script, found EXTRA"),
        (s + "COUNT(*) AS n" + g + " EMIT CHANGES extra", 1, 115, "expected EMIT, ALLOW LATENESS, ; or the end of the script, found EXTRA"),
        // CREATE STREAM: names and types.
        ("CREATE STREAM s AS SELECT COUNT(*) AS n FROM nowhere GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", 1, 46, "no source named nowhere"),
        (s + "price" + g, 1, 27, "price must be inside an aggregate (a result row knows symbol, window_start, window_end and aggregates)"),
        (s + "SUM(nothing) AS x" + g, 1, 31, "unknown column nothing (trades has symbol, ts, price, volume)"),
        (s + "SUM(ts) AS x" + g, 1, 31, "ts (the event time) is used only in the window function"),
        (s + "SUM(window_start) AS x" + g, 1, 31, "window_start is known only after aggregation: use it in SELECT or HAVING"),
        (s + "SUM(SUM(price)) AS x" + g, 1, 31, "aggregate functions cannot be nested"),
        (s + "SUM(price, volume) AS x" + g, 1, 27, "SUM takes one argument"),
        (s + "SUM(*) AS x" + g, 1, 27, "only COUNT takes *: SUM(expression)"),
        (s + "SUM(symbol) AS x" + g, 1, 31, "SUM needs a number, found text"),
        (s + "COUNT() AS x" + g, 1, 27, "COUNT takes * or one argument"),
        (s + "APPROX_PERCENTILE(price) AS x" + g, 1, 27, "APPROX_PERCENTILE takes two arguments: APPROX_PERCENTILE(expression, q)"),
        (s + "APPROX_PERCENTILE(price, 1.5) AS x" + g, 1, 52, "the quantile of APPROX_PERCENTILE is a number between 0 and 1, such as 0.99"),
        (s + "APPROX_COUNT_DISTINCT(price) AS x" + g, 1, 27, "APPROX_COUNT_DISTINCT counts distinct keys: APPROX_COUNT_DISTINCT(symbol)"),
        (s + "FIRST_VALUE(price / volume) AS f" + g, 1, 39, "FIRST_VALUE of an expression that can be null (a division or NULL) is not supported"),
        (s + "LAST_VALUE(-(price + NULL)) AS f" + g, 1, 38, "LAST_VALUE of an expression that can be null (a division or NULL) is not supported"),
        (s + "ABS(price) AS x" + g, 1, 27, "unknown function ABS (the functions are the aggregates COUNT, SUM, MIN, MAX, AVG, STDDEV, VARIANCE, FIRST_VALUE, LAST_VALUE, APPROX_PERCENTILE, APPROX_COUNT_DISTINCT)"),
        (s + "TUMBLE(ts, INTERVAL '1' SECOND) AS x" + g, 1, 27, "TUMBLE is a window function: it belongs in GROUP BY"),
        (s + "SUM(price) + 1" + g, 1, 27, "name this result column with AS (… AS name)"),
        (s + "SUM(price) AS seq" + g, 1, 41, "seq is a column every row has: name this one otherwise"),
        (s + "SUM(price) AS symbol" + g, 1, 41, "symbol is a column every row has: name this one otherwise"),
        (s + "SUM(price) AS symbol_base64" + g, 1, 41, "symbol_base64 is a column every row has: name this one otherwise"),
        (s + "symbol, window_start" + g + " HAVING COUNT(*) > 1", 1, 27, "SELECT needs at least one aggregate, such as COUNT(*) AS n"),
        (s + "SUM(price) AS x, MAX(price) AS x" + g, 1, 58, "the result column x is named twice: name one otherwise with AS"),
        (s + "SUM(price), SUM(volume)" + g, 1, 39, "the result column sum is named twice: name one otherwise with AS"),
        (s + "symbol AS s2, COUNT(*) AS n" + g, 1, 37, "symbol keeps its name in result rows: write it without AS"),
        (s + "symbol" + g, 1, 27, "SELECT needs at least one aggregate, such as COUNT(*) AS n"),
        (s + "COUNT(*) > 1 AS x" + g, 1, 27, "a result column is a number; x is a boolean"),
        (s + "SUM(price) + symbol AS x" + g, 1, 40, "+ needs numbers, found text"),
        (s + "COUNT(*) AS n FROM trades WHERE price" + w, 1, 59, "WHERE needs a condition (true or false), found a number"),
        (s + "COUNT(*) AS n FROM trades WHERE COUNT(*) > 1" + w, 1, 59, "aggregate functions are not allowed in WHERE (use HAVING)"),
        (s + "COUNT(*) AS n FROM trades WHERE symbol = 1" + w, 1, 59, "= cannot compare text with a number"),
        (s + "COUNT(*) AS n FROM trades WHERE price LIKE 'a%'" + w, 1, 59, "LIKE applies to the key (text), found a number"),
        (s + "COUNT(*) AS n FROM trades WHERE symbol IN (1, 2)" + w, 1, 70, "IN (…) of text cannot hold a number"),
        // What only the key takes, at the token at fault (not at CREATE: the stream's validation).
        (s + "COUNT(*) AS n FROM trades WHERE symbol IN ('A', NULL)" + w, 1, 75, "IN (…) of the key holds strings, found NULL"),
        (s + "COUNT(*) AS n FROM trades WHERE 'A' LIKE 'A'" + w, 1, 59, "LIKE applies to the key (text), found a string"),
        (s + "COUNT(*) AS n FROM trades WHERE NULL LIKE 'A'" + w, 1, 59, "LIKE applies to the key (text), found NULL"),
        (s + "COUNT(*) AS n FROM trades WHERE 'A' = 'B'" + w, 1, 59, "= compares the key with a string, not two strings"),
        (s + "COUNT(*) AS n FROM trades WHERE symbol = symbol" + w, 1, 68, "the key can only be compared with a string"),
        (s + "COUNT(*) AS n FROM trades WHERE 'A' IN ('A')" + w, 1, 59, "IN applies to the key or a number, found a string"),
        (s + "COUNT(*) AS n FROM trades WHERE NULL IN ('A')" + w, 1, 59, "IN of strings applies to the key, found NULL"),
        (s + "COUNT(*) AS n FROM trades WHERE NOT price" + w, 1, 63, "NOT needs a boolean, found a number"),
        (s + "COUNT(*) AS n FROM trades WHERE -(price > 1)" + w, 1, 60, "- needs a number, found a boolean"),
        (s + "COUNT(*) AS n FROM trades WHERE price AND volume > 1" + w, 1, 59, "AND needs booleans, found a number"),
        (s + "COUNT(*) AS n FROM trades WHERE (price > 1) = TRUE" + w, 1, 59, "= compares numbers or the key, not booleans"),
        (s + "COUNT(*) AS n" + g + " HAVING COUNT(*)", 1, 109, "HAVING needs a condition (true or false), found a number"),
        (s + "COUNT(*) AS n" + g + " HAVING price > 1", 1, 109, "price must be inside an aggregate (a result row knows symbol, window_start, window_end and aggregates)"),
        (s + "COUNT(*) AS n" + g + " HAVING nothing > 1", 1, 109, "unknown column nothing"),
        // GROUP BY and window functions.
        (s + "COUNT(*) AS n FROM trades GROUP BY symbol", 1, 53, "GROUP BY needs a window function: TUMBLE(ts, size), HOP(ts, slide, size) or SESSION(ts, gap)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY price, TUMBLE(ts, INTERVAL '1' SECOND)", 1, 62, "a stream groups by its key column (symbol) and one window function: TUMBLE, HOP or SESSION"),
        (s + "COUNT(*) AS n FROM trades GROUP BY symbol, symbol, TUMBLE(ts, INTERVAL '1' SECOND)", 1, 70, "GROUP BY names symbol twice"),
        (s + "COUNT(*) AS n" + g + ", SESSION(ts, INTERVAL '1' SECOND)", 1, 103, "GROUP BY has one window function"),
        (s + "COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts)", 1, 62, "TUMBLE takes 2 arguments: TUMBLE(ts, size)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY TUMBLE(price, INTERVAL '1' SECOND)", 1, 69, "the first argument of TUMBLE is the TIMESTAMP column ts: TUMBLE(ts, size)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts, 1000)", 1, 73, "the size of TUMBLE is an INTERVAL such as INTERVAL '1' MINUTE: TUMBLE(ts, size)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY SESSION(ts, INTERVAL '0' SECOND)", 1, 74, "the gap of SESSION must be positive"),
        (s + "COUNT(*) AS n FROM trades GROUP BY HOP(ts, INTERVAL '5' MINUTE, INTERVAL '10' SECOND)", 1, 70, "the slide of HOP (5 minutes) is larger than its size (10 seconds): HOP takes the slide first, HOP(ts, slide, size)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY HOP(ts, INTERVAL '2' SECOND, INTERVAL '5' SECOND)", 1, 91, "the size of HOP (5 seconds) must be a multiple of its slide (2 seconds)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY HOP(ts, INTERVAL '1' SECOND, INTERVAL '1' HOUR)", 1, 91, "HOP's size / slide must be at most 100 (the windows an event is in)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY HOP(ts, INTERVAL '1' SECOND)", 1, 62, "HOP takes 3 arguments: HOP(ts, slide, size)"),
        (s + "symbol, COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", 1, 27, "symbol is not grouped: with GROUP BY only a window, every key is in one group (use it in an aggregate)"),
        (s + "COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts, INTERVAL '1' SECOND) HAVING symbol = 'a'", 1, 101, "symbol is not grouped: with GROUP BY only a window, every key is in one group"),
        // The catalog.
        ("CREATE STREAM trades AS SELECT COUNT(*) AS n" + g, 1, 15, "a source named trades already exists"),
        ("CREATE STREAM s AS SELECT COUNT(*) AS n" + g + "; CREATE STREAM s AS SELECT COUNT(*) AS n" + g, 1, 117, "a stream named s already exists"),
        ("DROP SOURCE nothing", 1, 13, "no source named nothing"),
        ("DROP STREAM nothing", 1, 13, "no stream named nothing"),
        ("CREATE STREAM s AS SELECT COUNT(*) AS n" + g + ";\nDROP SOURCE trades", 2, 13, "source trades is read by stream s: drop it first"),
        ("DROP SOURCE trades; CREATE STREAM s AS SELECT COUNT(*) AS n" + g, 1, 66, "no source named trades"),
        ("EXPLAIN CREATE STREAM s AS SELECT COUNT(*) AS n FROM json_stream GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", 1, 54, "json_stream is a stream: FROM reads a source"),
    ] as [(String, Int, Int, String)])
    func refusals(_ script: String, _ line: Int, _ column: Int, _ detail: String) {
        var catalog = TestCatalog.withTrades
        catalog.streams["json_stream"] = .some(nil)
        let error = compileError(script, catalog)
        #expect(error.map { [String($0.line), String($0.column), $0.detail] } == [String(line), String(column), detail], "\(script)")
    }

    @Test func kindsGiveTheHTTPStatus() {
        var catalog = TestCatalog.withTrades
        catalog.streams["vwap"] = "trades"
        catalog.streams["other"] = "trades"
        #expect(compileError("DROP SOURCE trades", catalog)?.kind == .conflict)
        #expect(compileError("DROP SOURCE trades", catalog)?.detail == "source trades is read by streams other, vwap: drop them first")
        #expect(compileError("DROP SOURCE trades", catalog)?.httpStatus == 409)
        #expect(compileError("DROP STREAM nothing")?.kind == .notFound)
        #expect(compileError("DROP STREAM nothing")?.httpStatus == 404)
        #expect(compileError("CREATE SOURCE trades (k TEXT KEY, t TIMESTAMP, v DOUBLE)")?.kind == .conflict)
        #expect(compileError("SHOW")?.httpStatus == 400)
        // Dropping the readers first (in the same script) lets the source go.
        #expect(compileError("DROP STREAM vwap; DROP STREAM other; DROP SOURCE trades", catalog) == nil)
    }

    @Test func aScriptHasAtMostAHundredStatements() {
        #expect(compileError(Array(repeating: "SHOW SOURCES", count: 100).joined(separator: ";")) == nil)
        let error = compileError(Array(repeating: "SHOW SOURCES", count: 101).joined(separator: ";"))
        #expect(error?.detail == "a script has at most 100 statements" && error?.column == 1 + 13 * 100)
    }
}
