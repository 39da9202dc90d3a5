import LaminarFormats
@testable import LaminarReactor
import Testing

/// The engine side of SQL streams: expressions (compile errors, three-valued logic, LIKE/IN on
/// the key), `filter`, aggregate `input`, `select`/`having` and `key_column`, each window kind
/// and emit mode, with definitions built from the AST.
@Suite struct ContinuousQueryTests {
    // MARK: - Expressions

    struct Row: ExpressionInput {
        var values: [Double]
        var key: [UInt8]?
        func number(_ slot: Int) -> Double { values[slot] }
        func withKey<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? { key.map { $0.withUnsafeBytes(body) } }
        var time: Double { 0 }
        var windowEnd: Double { 0 }
    }

    static let scope: ExpressionScope = {
        var s = ExpressionScope()
        s.names = ["a": .slot(0), "b": .slot(1), "n": .slot(2), "symbol": .key]
        return s
    }()

    static func value(_ e: Expression, a: Double = 6, b: Double = 0, n: Double = .nan, key: String? = "AAPL") throws -> Double? {
        let p = try ExpressionProgram(e, scope: scope, boolean: false)
        return p.number(Row(values: [a, b, n], key: key.map { Array($0.utf8) }))
    }

    static func truth(_ e: Expression, a: Double = 6, b: Double = 0, n: Double = .nan, key: String? = "AAPL") throws -> Bool? {
        let p = try ExpressionProgram(e, scope: scope, boolean: true)
        let row = Row(values: [a, b, n], key: key.map { Array($0.utf8) })
        // Null is neither true nor (via NOT) false.
        if p.isTrue(row) { return true }
        let negated = try ExpressionProgram(.unary(.not, e), scope: scope, boolean: true)
        return negated.isTrue(row) ? false : nil
    }

    let a = Expression.column("a"), b = Expression.column("b"), n = Expression.column("n"), symbol = Expression.column("symbol")

    /// Programs run a column at a time over a batch (`numbers`, `select`: the commonest shapes
    /// without a call per event) give what they give event by event, with a subset of events too.
    @Test func columnEvaluationMatchesEventByEvent() throws {
        let batch = EventBatch(keys: ["A", "B", "AB", "C", "A"], timestamps: [1, 2, 3, 4, 5],
                               fields: [6, 0, -1, 3, 2.5, 2, 1e308, 1e308, 0, -0.0])
        let scope = ExpressionScope(names: ["a": .slot(0), "b": .slot(1), "symbol": .key, "ts": .time])
        let expressions: [Expression] = [.binary(.multiply, a, b), .binary(.divide, a, b), .binary(.greater, b, .number(0)),
                                         .binary(.lessEqual, a, b), .binary(.subtract, a, .number(1)),
                                         .binary(.add, .binary(.multiply, a, b), .column("ts")),
                                         .binary(.and, .binary(.greater, a, .number(0)), .like(symbol, pattern: "A%", negated: false))]
        try batch.withEvents { events in
            for e in expressions {
                let boolean: Bool = if case .binary(let op, _, _) = e { op.group != .arithmetic } else { false }
                let p = try ExpressionProgram(e, scope: scope, boolean: boolean)
                let one = (0..<events.count).map { p.number(EventInput(events: events, i: $0)) ?? .nan }
                for kept in [nil, [1, 3, 4], []] as [[Int]?] {
                    var out = [Double](repeating: 42, count: events.count)
                    out.withUnsafeMutableBufferPointer { p.numbers(events, kept, into: $0.baseAddress!) }
                    let want = (kept ?? Array(0..<events.count)).map { one[$0] }
                    #expect(WindowOperator.same(Array(out.prefix(want.count)), want), "\(e)")
                }
                if boolean {
                    var kept: [Int] = []
                    p.select(events, into: &kept)
                    #expect(kept == (0..<events.count).filter { p.isTrue(EventInput(events: events, i: $0)) }, "\(e)")
                }
            }
        }
    }

    @Test func arithmeticAndDivisionByZero() throws {
        #expect(try Self.value(.binary(.add, a, .binary(.multiply, .number(2), a))) == 18)
        #expect(try Self.value(.binary(.divide, a, b)) == nil)  // x / 0 is null
        #expect(try Self.value(.binary(.divide, a, .number(4))) == 1.5)
        #expect(try Self.value(.unary(.negate, .binary(.subtract, a, .number(1)))) == -5)
        #expect(try Self.value(.binary(.add, a, n)) == nil)  // NaN slot (a null aggregate) propagates
        #expect(try Self.value(.binary(.add, a, .null)) == nil)
    }

    @Test func threeValuedLogic() throws {
        let null = Expression.binary(.greater, .binary(.divide, a, b), .number(0))  // null > 0: null
        let yes = Expression.binary(.greater, a, .number(1)), no = Expression.binary(.less, a, .number(1))
        #expect(try Self.truth(null) == nil)
        #expect(try Self.truth(.binary(.and, null, no)) == false)
        #expect(try Self.truth(.binary(.and, null, yes)) == nil)
        #expect(try Self.truth(.binary(.or, null, yes)) == true)
        #expect(try Self.truth(.binary(.or, null, no)) == nil)
        #expect(try Self.truth(.isNull(.binary(.divide, a, b), negated: false)) == true)
        #expect(try Self.truth(.isNull(a, negated: true)) == true)
        #expect(try Self.truth(.inList(a, [.number(1), .number(6)], negated: false)) == true)
        #expect(try Self.truth(.inList(a, [.number(1), .null], negated: false)) == nil)
        #expect(try Self.truth(.inList(a, [.number(1), .number(2)], negated: true)) == true)
    }

    @Test func keyComparisonsLikeAndIn() throws {
        #expect(try Self.truth(.binary(.equal, symbol, .string("AAPL"))) == true)
        #expect(try Self.truth(.binary(.less, .string("AAPM"), symbol)) == false)  // 'AAPM' < symbol ⇔ symbol > 'AAPM'
        #expect(try Self.truth(.binary(.less, symbol, .string("AAPM"))) == true)
        #expect(try Self.truth(.like(symbol, pattern: "A%", negated: false)) == true)
        #expect(try Self.truth(.like(symbol, pattern: "A_PL", negated: false)) == true)
        #expect(try Self.truth(.like(symbol, pattern: "%P", negated: false)) == false)
        #expect(try Self.truth(.like(symbol, pattern: "%a%", negated: true)) == true)  // bytes: case matters
        #expect(try Self.truth(.inList(symbol, [.string("MSFT"), .string("AAPL")], negated: false)) == true)
        #expect(try Self.truth(.inList(symbol, [.string("MSFT")], negated: false), key: nil) == nil)  // no key (group_by all)
        #expect(try Self.truth(.isNull(symbol, negated: false), key: nil) == true)
        for (s, p, m) in [("", "%", true), ("abc", "a%c", true), ("abbc", "a%b%c", true), ("ab", "a_c", false), ("aXbXc", "%X%c", true), ("abc", "", false)] {
            let r = Array(s.utf8).withUnsafeBytes { sb in Array(p.utf8).withUnsafeBytes { ExpressionProgram.like(sb, $0) } }
            #expect(r == m, "\(s) LIKE \(p)")
        }
    }

    @Test func compileErrorsNameWhatIsWrong() {
        func detail(_ e: Expression, boolean: Bool = true) -> String? {
            do { _ = try ExpressionProgram(e, scope: Self.scope, boolean: boolean); return nil } catch { return error.detail }
        }
        #expect(detail(.binary(.greater, .column("prise"), .number(1))) == "unknown column \"prise\"")
        #expect(detail(a) == "must be a condition (true or false), not a number")
        #expect(detail(.binary(.greater, a, .number(1)), boolean: false) == "must be a number, not a condition")
        #expect(detail(.like(a, pattern: "x", negated: false)) == "LIKE applies to the key only")
        #expect(detail(.binary(.equal, symbol, .number(1))) == "the key can only be compared with a string")
        #expect(detail(.binary(.add, symbol, .number(1)), boolean: false)?.hasPrefix("the key \"symbol\"") == true)
        #expect(detail(.binary(.and, a, .boolean(true))) == "AND needs a condition, not a number")
        #expect(detail(.binary(.equal, a, .string("x")))?.contains("can only be compared with the key") == true)
    }

    @Test func definitionsRefuseUnknownNamesByMember() {
        var d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.filter = .binary(.greater, .column("prise"), .number(0))
        #expect(d.validate(limits: .default) == "filter: unknown column \"prise\"")
        d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.aggregates[1].input = .binary(.multiply, .column("price"), .column("volumes"))
        #expect(d.validate(limits: .default) == "aggregates[1]: unknown column \"volumes\"")
        d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.outputColumns = [OutputColumn(name: "x", expression: .column("_a9"))]
        #expect(d.validate(limits: .default) == "select[0] (x): unknown column \"_a9\"")
        d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.having = .binary(.greater, .column("price"), .number(0))  // an event field is no column after aggregation
        #expect(d.validate(limits: .default) == "having: unknown column \"price\"")
        d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.aggregates[0].alias = nil
        d.aggregates[1].alias = nil
        #expect(d.validate(limits: .default) == "aggregates[1]: an aggregate over an expression needs as")
    }

    // MARK: - Streams

    /// `symbol` keyed trades with price and volume: `_a0` count, `_a1` SUM(price * volume),
    /// `_a2` SUM(volume), `_a3` MAX(price).
    static func trades(window: WindowKind, emit: EmitMode) -> StreamDefinition {
        var d = StreamDefinition(name: "t", keyField: "symbol", windowSizeMs: 1000,
            aggregates: [Aggregate(.count, alias: "_a0"),
                         Aggregate(.sum, alias: "_a1", input: .binary(.multiply, .column("price"), .column("volume"))),
                         Aggregate(.sum, field: 1, alias: "_a2"),
                         Aggregate(.max, field: 0, alias: "_a3")])
        d.fields = ["price", "volume"]
        d.fieldsDeclared = true
        d.window = window
        d.emit = emit
        d.keyColumn = "symbol"
        return d
    }

    /// Runs batches through a stream as the reactor does (stage, operator, projection), then
    /// closes every window; returns the rows.
    static func run(_ d: StreamDefinition, _ batches: [EventBatch]) -> [WindowResult] {
        #expect(d.validate(limits: .default) == nil)
        let s = StreamRuntime(id: 1, definition: d, nowMs: 0)
        var rows: [WindowResult] = []
        func take() {
            var r = s.op.takeOutput()
            if let p = s.projection { r = p.apply(r) }
            rows += r
        }
        for batch in batches {
            let input = s.stage.map { $0.project(batch) } ?? batch
            _ = input.withEvents { s.op.ingest($0, keysMax: 1000) }
            take()
            s.op.flushChanges(showing: s.projection)
            take()
        }
        s.op.advanceWatermark(toMs: 1 << 50)
        take()
        return rows
    }

    /// A changelog flush told the stream's projection builds only the rows the projection keeps:
    /// the rows emitted are those of the flush that builds every row, projected afterwards, and
    /// fewer rows are built (a hop's windows holding the same panes, updates whose output did
    /// not change, windows `having` hides). With programs that read the key and window too.
    @Test(arguments: [WindowKind.tumble(sizeMs: 1000), .hop(sizeMs: 1000, slideMs: 250)], [false, true])
    func flushWithTheProjectionBuildsOnlyTheRowsItKeeps(window: WindowKind, readsKey: Bool) {
        var built = (all: 0, kept: 0)
        for seed in 1...20 as ClosedRange<UInt64> {
            var d = Self.trades(window: window, emit: .changes)
            d.outputColumns = [OutputColumn(name: "top", expression: .column("_a3"))]
            d.having = .binary(.greaterEqual, .column("_a0"), .number(2))
            if readsKey {
                d.having = .binary(.and, d.having!, .binary(.or, .like(.column("symbol"), pattern: "A%", negated: false),
                                                           .binary(.greater, .column("window_start"), .number(600))))
            }
            #expect(d.validate(limits: .default) == nil)
            let all = StreamRuntime(id: 1, definition: d, nowMs: 0), kept = StreamRuntime(id: 2, definition: d, nowMs: 0)
            var rows: (all: [WindowResult], kept: [WindowResult]) = ([], [])
            for batch in Self.randomBatches(seed: seed) {
                for s in [all, kept] { _ = (s.stage.map { $0.project(batch) } ?? batch).withEvents { s.op.ingest($0, keysMax: 1000) } }
                rows.all += all.projection!.apply(all.op.takeOutput())
                rows.kept += kept.projection!.apply(kept.op.takeOutput())
                all.op.flushChanges()
                kept.op.flushChanges(showing: kept.projection)
                built.all += all.op.rowsQueued
                built.kept += kept.op.rowsQueued
                rows.all += all.projection!.apply(all.op.takeOutput())
                rows.kept += kept.projection!.apply(kept.op.takeOutput())
            }
            for s in [all, kept] { s.op.advanceWatermark(toMs: 1 << 50) }
            rows.all += all.projection!.apply(all.op.takeOutput())
            rows.kept += kept.projection!.apply(kept.op.takeOutput())
            #expect(rows.kept.count == rows.all.count, "seed \(seed)")
            for (k, a) in zip(rows.kept, rows.all) {
                #expect(k.key == a.key && k.startMs == a.startMs && k.endMs == a.endMs && k.op == a.op && k.isFinal == a.isFinal, "seed \(seed)")
                #expect(WindowOperator.same(k.values, a.values) && (k.before == nil) == (a.before == nil), "seed \(seed)")
                if let kb = k.before, let ab = a.before { #expect(WindowOperator.same(kb, ab), "seed \(seed)") }
            }
        }
        #expect(built.kept < built.all)
    }

    static func randomBatches(seed: UInt64) -> [EventBatch] {
        var rng = SeededRandom(state: seed)
        var clock: Int64 = 0
        return (0..<6).map { _ in
            var keys: [String] = [], times: [Int64] = [], fields: [Double] = []
            for _ in 0..<Int.random(in: 1...25, using: &rng) {
                clock += Int64.random(in: -40...300, using: &rng)
                keys.append(["AAPL", "MSFT", "AMZN"][Int.random(in: 0..<3, using: &rng)])
                times.append(clock)
                fields += [Double(Int.random(in: 1...50, using: &rng)), Double(Int.random(in: 0...4, using: &rng))]
            }
            return EventBatch(keys: keys, timestamps: times, fields: fields)
        }
    }

    /// A stream with a filter, an aggregate over an expression and output columns gives the
    /// rows of the plain stream over the events filtered and computed beforehand, with the
    /// output columns computed from its columns: every window kind, every emit mode.
    @Test(arguments: [WindowKind.tumble(sizeMs: 1000), .hop(sizeMs: 1000, slideMs: 250), .session(gapMs: 400)],
          [EmitMode.final, .changes])
    func expressionsMatchThePlainStreamOverPreparedEvents(window: WindowKind, emit: EmitMode) {
        for seed in 1...20 as ClosedRange<UInt64> {
            let batches = Self.randomBatches(seed: seed)
            var sql = Self.trades(window: window, emit: emit)
            sql.filter = .binary(.and, .binary(.greater, .column("volume"), .number(0)), .like(.column("symbol"), pattern: "A%", negated: false))
            sql.outputColumns = [OutputColumn(name: "vwap", expression: .binary(.divide, .column("_a1"), .column("_a2"))),
                                 OutputColumn(name: "trades", expression: .column("_a0")),
                                 OutputColumn(name: "top", expression: .binary(.multiply, .column("_a3"), .number(2)))]
            // The plain stream: events with volume > 0 and a key starting with A, a third field price * volume.
            var plain = Self.trades(window: window, emit: emit)
            plain.fields = ["price", "volume", "pv"]
            plain.aggregates[1] = Aggregate(.sum, field: 2, alias: "_a1")
            let prepared = batches.map { batch in
                batch.withEvents { e in
                    var builder = EventBatch.Builder(fieldCount: 3)
                    for i in 0..<e.count where e.field(i, 1) > 0 && e.key(i).first == UInt8(ascii: "A") {
                        [e.field(i, 0), e.field(i, 1), e.field(i, 0) * e.field(i, 1)].withUnsafeBufferPointer {
                            builder.append(key: e.key(i), timestamp: e.timestamp(i), fields: $0)
                        }
                    }
                    return builder.build()
                }
            }
            let got = Self.run(sql, batches)
            let expected = Self.run(plain, prepared).map { r -> WindowResult in
                var r = r
                func out(_ v: [Double]) -> [Double] { [v[2] == 0 ? .nan : v[1] / v[2], v[0], v[3] * 2] }
                if r.op != .delete { r.values = out(r.values) }
                r.before = r.before.map(out)
                return r
            }
            // Updates whose output columns did not change are not emitted.
            let shown = expected.filter { r in r.op != .update || r.isFinal || !WindowOperator.same(r.values, r.before!) }
            #expect(got.count == shown.count, "seed \(seed)")
            for (g, e) in zip(got, shown) {
                #expect(g.key == e.key && g.startMs == e.startMs && g.endMs == e.endMs && g.op == e.op && g.isFinal == e.isFinal, "seed \(seed)")
                #expect(WindowOperator.same(g.values, e.values), "seed \(seed): \(g.values) vs \(e.values)")
            }
        }
    }

    @Test func nullInputsSkipTheEventForThatAggregateOnly() {
        var d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        let ratio = Expression.binary(.divide, .column("price"), .column("volume"))  // null when volume is 0
        d.aggregates = [Aggregate(.count, alias: "n"), Aggregate(.count, alias: "ratios", input: ratio),
                        Aggregate(.avg, alias: "avg_ratio", input: ratio), Aggregate(.sum, field: 0, alias: "price_sum"),
                        Aggregate(.p, quantile: 0.5, alias: "p50_ratio", input: ratio), Aggregate(.stddev, alias: "sd", input: ratio)]
        let batch = EventBatch(keys: ["A", "A", "A", "B"], timestamps: [1, 2, 3, 4], fields: [10, 2, 9, 0, 30, 3, 7, 0])
        let rows = Self.run(d, [batch])
        #expect(rows.count == 2)
        let a = rows[0].values, b = rows[1].values
        #expect(a[0] == 3 && a[1] == 2 && a[2] == 7.5 && a[3] == 49)
        #expect(abs(a[4] - 5) < 0.2 || abs(a[4] - 10) < 0.2)
        #expect(abs(a[5] - (12.5).squareRoot()) < 1e-9)
        #expect(b[0] == 1 && b[1] == 0 && b[2].isNaN && b[3] == 7 && b[4].isNaN && b[5].isNaN)  // no input: null
        #expect(Self.run(d, [batch]).map(\.values).elementsEqual(rows.map(\.values), by: WindowOperator.same))
    }

    /// Values whose squared deviations overflow: VARIANCE and STDDEV are null (an overflow, as
    /// everywhere), never 0.
    @Test func varianceThatOverflowsIsNullNotZero() {
        var d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.aggregates = [Aggregate(.variance, field: 0, alias: "v"), Aggregate(.stddev, field: 0, alias: "sd"),
                        Aggregate(.variance, field: 1, alias: "small")]
        let batch = EventBatch(keys: ["A", "A", "A"], timestamps: [1, 2, 3], fields: [1e308, 1, -1.7e308, 2, 1.5e308, 3])
        let rows = Self.run(d, [batch])
        #expect(rows.count == 1)
        let v = rows[0].values
        #expect(!(v[0] >= 0 && v[0] < 1e300) && !(v[1] >= 0 && v[1] < 1e150), "\(v)")  // null or ∞ (JSON null), not 0
        #expect(v[2] == 1)
    }

    /// A hop window merges its panes into an empty slot: large values (δ² beyond Double) must
    /// keep their variance, not become NaN.
    @Test func hopVarianceOfLargeValues() {
        var d = Self.trades(window: .hop(sizeMs: 2000, slideMs: 1000), emit: .final)
        d.aggregates = [Aggregate(.variance, field: 0, alias: "v")]
        let batch = EventBatch(keys: ["A", "A", "A"], timestamps: [1, 2, 9000], fields: [1e160, 1, 1e160 + 1e150, 1, 1, 1])
        let rows = Self.run(d, [batch]).filter { $0.startMs == 0 }  // values 1e-10 apart: cancellation, 1e-4 relative
        #expect(rows.count == 1)
        #expect(abs(rows[0].values[0] - 5e299) < 5e295, "\(rows.map(\.values))")
    }

    @Test func havingFiltersFinalRows() {
        var d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.having = .binary(.greaterEqual, .column("_a0"), .number(2))
        let batch = EventBatch(keys: ["A", "A", "B", "A"], timestamps: [1, 2, 3, 1500], fields: [1, 1, 1, 1, 1, 1, 1, 1])
        let rows = Self.run(d, [batch])
        #expect(rows.map { String(decoding: $0.key!, as: UTF8.self) } == ["A"])
        #expect(rows[0].startMs == 0 && rows[0].values[0] == 2)
    }

    /// Under a changelog, `having` turns rows into inserts when a window starts satisfying it and
    /// deletes when it stops (a sum that goes negative), and hides windows never satisfying it.
    @Test(arguments: [WindowKind.tumble(sizeMs: 1000), .session(gapMs: 5000)])
    func havingUnderChangesInsertsAndDeletes(window: WindowKind) {
        var d = Self.trades(window: window, emit: .changes)
        d.having = .binary(.greater, .column("_a2"), .number(0))  // SUM(volume) > 0
        d.outputColumns = [OutputColumn(name: "volume", expression: .column("_a2"))]
        let step = { (v: Double, t: Int64) in EventBatch(keys: ["A"], timestamps: [t], fields: [1, v]) }
        let rows = Self.run(d, [step(-1, 1), step(3, 2), step(1, 3), step(-10, 4), step(20, 5)])
        let ops = rows.map { "\($0.op!.rawValue) \($0.values.first.map { String(Int($0)) } ?? "-") \($0.before?.first.map { String(Int($0)) } ?? "-")\($0.isFinal ? " final" : "")" }
        #expect(ops == ["insert 2 -", "update 3 2", "delete - -", "insert 13 -", "update 13 13 final"])
        let json = rows.map { String(decoding: $0.json(columns: WindowResult.Columns(d)), as: UTF8.self) }
        #expect(json[0].hasPrefix(#"{"symbol":"A","window_start":"#))
        #expect(json[0].hasSuffix(#""volume":2,"op":"insert"}"#))
    }

    @Test func keyColumnNamesTheKeyInRows() {
        var d = Self.trades(window: .tumble(sizeMs: 1000), emit: .final)
        d.outputColumns = [OutputColumn(name: "trades", expression: .column("_a0")), OutputColumn(name: "vol", expression: .column("_a2"))]
        let columns = WindowResult.Columns(d)
        #expect(columns.integer == [true, false])
        let utf8 = WindowResult(key: Array("AAPL".utf8), startMs: 0, endMs: 1000, values: [3, 1.5])
        #expect(String(decoding: utf8.json(columns: columns), as: UTF8.self) == #"{"symbol":"AAPL","window_start":0,"window_end":1000,"trades":3,"vol":1.5}"#)
        let binary = WindowResult(key: [0xFF, 0x00], startMs: 0, endMs: 1000, values: [1, 2])
        #expect(String(decoding: binary.json(columns: columns), as: UTF8.self).hasPrefix(#"{"symbol_base64":"/wA=","#))
        var reserved = d
        reserved.outputColumns = [OutputColumn(name: "symbol", expression: .column("_a0"))]
        #expect(reserved.validate(limits: .default) == "select[0]: column name \"symbol\" is reserved")
    }

    @Test func definitionVersion3KeepsEveryMember() throws {
        var d = Self.trades(window: .hop(sizeMs: 1000, slideMs: 500), emit: .every(ms: 200))
        d.source = "trades"
        d.filter = .binary(.or, .inList(.column("symbol"), [.string("A'B"), .string("C")], negated: true),
                           .isNull(.binary(.divide, .column("price"), .unary(.negate, .number(2.5))), negated: false))
        d.outputColumns = [OutputColumn(name: "vwap", expression: .binary(.divide, .column("_a1"), .column("_a2")))]
        d.having = .like(.column("symbol"), pattern: "A%", negated: true)
        d.sql = "CREATE STREAM t AS SELECT …"
        let bytes = d.encoded()
        #expect(bytes.first == 3)
        #expect(try StreamDefinition(decoding: bytes) == d)
        var plain = StreamDefinition(name: "p", windowSizeMs: 1000)
        plain.sql = nil
        #expect(try StreamDefinition(decoding: plain.encoded()) == plain)
    }

    @Test func sourceDefinitionsRoundTripAndValidate() throws {
        let s = SourceDefinition(name: "trades", keyField: "symbol", timeField: "ts", fields: ["price", "volume"], watermarkDelayMs: 5000)
        #expect(s.validate(limits: .default) == nil)
        #expect(try SourceDefinition(decoding: s.encoded()) == s)
        var bad = s
        bad.fields = ["price", "symbol"]
        #expect(bad.validate(limits: .default) == "fields: names must be non-empty and differ from key_field and time_field")
        bad = s
        bad.watermarkDelayMs = -1
        #expect(bad.validate(limits: .default) == "watermark_delay must be >= 0")
    }
}
