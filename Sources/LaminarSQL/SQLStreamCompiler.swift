import LaminarReactor

/// Compiles one `CREATE STREAM … AS SELECT` over a known source to a self-contained stream
/// definition (SQL_CONTRACT.md): the source's key, time and fields copied; `WHERE` → `filter`;
/// each distinct aggregate call of `SELECT`/`HAVING` → one aggregate (named by its `SELECT` item
/// when the item is exactly that call, else `_a<index>`); the `SELECT` list minus the key,
/// `window_start` and `window_end` → `outputColumns` over those names; `HAVING` → `having` (an
/// output name in it stands for its expression); lateness = watermark delay + `ALLOW LATENESS`.
struct SQLStreamCompiler {
    let syntax: CreateStreamSyntax
    let source: SourceDefinition

    /// The aggregates, as `SELECT` and `HAVING` are bound.
    private let registry = SQLAggregateRegistry()
    /// Whether the stream groups by its key (else every key is one group).
    private var byKey = false

    init(syntax: CreateStreamSyntax, source: SourceDefinition) {
        self.syntax = syntax
        self.source = source
    }

    static let aggregateFunctions: [String: AggregateFunction] = [
        "count": .count, "sum": .sum, "min": .min, "max": .max, "avg": .avg,
        "stddev": .stddev, "stddev_samp": .stddev, "variance": .variance, "var_samp": .variance,
        "first_value": .first, "last_value": .last, "approx_percentile": .p, "approx_count_distinct": .countDistinct,
    ]

    static let windowFunctions: Set<String> = ["tumble", "hop", "session"]

    /// Result column names every row carries or that mean something else in a row.
    static let reservedColumns: Set<String> = ["key", "key_base64", "window_start", "window_end", "seq", "op", "before", "final"]

    mutating func compile() throws(SQLError) -> StreamDefinition {
        let window = try groupBy()
        let filter = try syntax.filter.map { f throws(SQLError) in try predicate(f, clause: "WHERE", binder: SQLStreamCompiler.eventBinder(source, inAggregate: false)) }

        // Names of the SELECT items: the key column and window bounds as they are, others by AS
        // or, for one aggregate call, by the function's name.
        var outputs: [(name: String, item: CreateStreamSyntax.Item)] = []
        var names: Set<String> = [source.keyField]
        for item in syntax.items {
            if case .column(let n) = item.expr.node, n == source.keyField || n == "window_start" || n == "window_end" {
                if n == source.keyField && !byKey {
                    throw item.expr.position.error("\(n) is not grouped: with GROUP BY only a window, every key is in one group (use it in an aggregate)")
                }
                if let alias = item.alias, alias.text != n { throw alias.position.error("\(n) keeps its name in result rows: write it without AS") }
                continue
            }
            let name: SQLName
            if let alias = item.alias {
                name = alias
            } else if case .call(let fn, _, _) = item.expr.node, SQLStreamCompiler.aggregateFunctions[fn] != nil {
                name = SQLName(text: fn, position: item.expr.position)
            } else {
                _ = try postBinder(preferredName: nil, outputs: nil, taken: []).bind(item.expr)  // a better error first, if any
                throw item.expr.position.error("name this result column with AS (… AS name)")
            }
            if SQLStreamCompiler.reservedColumns.contains(name.text) || name.text == source.keyField || name.text == source.keyField + "_base64" {
                throw name.position.error("\(name.text) is a column every row has: name this one otherwise")
            }
            if name.text.utf8.count > 256 { throw name.position.error("a column name is at most 256 bytes") }
            guard names.insert(name.text).inserted else { throw name.position.error("the result column \(name.text) is named twice: name one otherwise with AS") }
            outputs.append((name.text, item))
        }
        // An item that is exactly one aggregate call names that aggregate.
        var outputColumns: [OutputColumn] = []
        var outputTypes: [String: (Expression, SQLValueType)] = [:]
        for (name, item) in outputs {
            var exact: String?
            if case .call(let fn, _, _) = item.expr.node, SQLStreamCompiler.aggregateFunctions[fn] != nil { exact = name }
            let (e, t) = try postBinder(preferredName: exact, outputs: nil, taken: names).bind(item.expr)
            guard t.fits(.number) else { throw item.expr.position.error("a result column is a number; \(name) is \(t.described)") }
            outputColumns.append(OutputColumn(name: name, expression: e))
            outputTypes[name] = (e, t)
        }
        let having = try syntax.having.map { h throws(SQLError) in
            try predicate(h, clause: "HAVING", binder: postBinder(preferredName: nil, outputs: outputTypes, taken: names))
        }

        guard !outputs.isEmpty && !registry.aggregates.isEmpty else {
            throw syntax.items[0].expr.position.error("SELECT needs at least one aggregate, such as COUNT(*) AS n")
        }

        var lateness = source.watermarkDelayMs
        if let extra = syntax.latenessMs {
            lateness += extra
            if lateness > ReactorLimits.eventTimeAbsMaxMs { throw syntax.position.error("the watermark delay plus ALLOW LATENESS is too long") }
        }
        var d = StreamDefinition(name: syntax.name.text, keyField: source.keyField, timeField: source.timeField,
                                 windowSizeMs: 1, allowedLatenessMs: lateness, aggregates: registry.aggregates, idleTimeoutMs: source.idleTimeoutMs)
        d.fields = source.fields
        d.fieldsDeclared = true
        d.window = window
        d.groupBy = byKey ? .key : .all
        switch syntax.emit {
        case nil, .windowClose: d.emit = .final
        case .changes: d.emit = .changes
        case .every(let ms): d.emit = .every(ms: ms)
        }
        d.source = source.name
        d.filter = filter
        d.outputColumns = outputColumns
        d.having = having
        d.keyColumn = source.keyField
        d.sql = syntax.text
        if let problem = d.validate(limits: ReactorLimits()) {
            throw syntax.position.error("the compiled stream is not valid: \(problem)")
        }
        return d
    }

    private func predicate(_ e: SQLExpr, clause: String, binder: SQLExpressionBinder) throws(SQLError) -> Expression {
        let (x, t) = try binder.bind(e)
        guard t.fits(.boolean) else { throw e.position.error("\(clause) needs a condition (true or false), found \(t.described)") }
        return x
    }

    // MARK: - GROUP BY

    private mutating func groupBy() throws(SQLError) -> WindowKind {
        var window: WindowKind?
        for item in syntax.groupBy {
            switch item.node {
            case .column(let n) where n == source.keyField:
                if byKey { throw item.position.error("GROUP BY names \(n) twice") }
                byKey = true
            case .call(let fn, let args, _) where SQLStreamCompiler.windowFunctions.contains(fn):
                if window != nil { throw item.position.error("GROUP BY has one window function") }
                window = try windowFunction(fn, args, at: item.position)
            default:
                throw item.position.error("a stream groups by its key column (\(source.keyField)) and one window function: TUMBLE, HOP or SESSION")
            }
        }
        guard let window else {
            throw syntax.groupByPosition.error("GROUP BY needs a window function: TUMBLE(\(source.timeField), size), HOP(\(source.timeField), slide, size) or SESSION(\(source.timeField), gap)")
        }
        return window
    }

    private func windowFunction(_ fn: String, _ args: [SQLExpr], at: SQLPosition) throws(SQLError) -> WindowKind {
        let ts = source.timeField
        let form = switch fn {
        case "tumble": "TUMBLE(\(ts), size)"
        case "hop": "HOP(\(ts), slide, size)"
        default: "SESSION(\(ts), gap)"
        }
        let parameters = fn == "hop" ? ["slide", "size"] : fn == "tumble" ? ["size"] : ["gap"]
        guard args.count == parameters.count + 1 else {
            throw at.error("\(fn.uppercased()) takes \(parameters.count + 1) arguments: \(form)")
        }
        guard case .column(let c) = args[0].node, c == ts else {
            throw args[0].position.error("the first argument of \(fn.uppercased()) is the TIMESTAMP column \(ts): \(form)")
        }
        var ms: [Int64] = []
        for (arg, what) in zip(args.dropFirst(), parameters) {
            guard case .interval(let v) = arg.node else {
                throw arg.position.error("the \(what) of \(fn.uppercased()) is an INTERVAL such as INTERVAL '1' MINUTE: \(form)")
            }
            if v <= 0 { throw arg.position.error("the \(what) of \(fn.uppercased()) must be positive") }
            ms.append(v)
        }
        switch fn {
        case "tumble": return .tumble(sizeMs: ms[0])
        case "session": return .session(gapMs: ms[0])
        default:
            let (slide, size) = (ms[0], ms[1])
            if slide > size {
                throw args[1].position.error("the slide of HOP (\(SQLIntervals.describe(slide))) is larger than its size (\(SQLIntervals.describe(size))): HOP takes the slide first, \(form)")
            }
            if size % slide != 0 {
                throw args[2].position.error("the size of HOP (\(SQLIntervals.describe(size))) must be a multiple of its slide (\(SQLIntervals.describe(slide)))")
            }
            if size / slide > StreamDefinition.hopWindowsPerEventMax {
                throw args[2].position.error("HOP's size / slide must be at most \(StreamDefinition.hopWindowsPerEventMax) (the windows an event is in)")
            }
            return .hop(sizeMs: size, slideMs: slide)
        }
    }

    // MARK: - Scopes

    /// Names of one event: its fields and the key; no calls but, outside aggregates, none at all.
    static func eventBinder(_ source: SourceDefinition, inAggregate: Bool) -> SQLExpressionBinder {
        SQLExpressionBinder(
            resolve: { name, at throws(SQLError) in
                if name == source.keyField { return (.column(name), .text) }
                if source.fields.contains(name) { return (.column(name), .number) }
                if name == source.timeField {
                    throw at.error("\(name) (the event time) is used only in the window function")
                }
                if name == "window_start" || name == "window_end" {
                    throw at.error("\(name) is known only after aggregation: use it in SELECT or HAVING")
                }
                throw at.error("unknown column \(name) (\(source.name) has \(([source.keyField, source.timeField] + source.fields).joined(separator: ", ")))")
            },
            call: { fn, e throws(SQLError) in
                if SQLStreamCompiler.aggregateFunctions[fn] != nil {
                    throw e.position.error(inAggregate ? "aggregate functions cannot be nested" : "aggregate functions are not allowed in WHERE (use HAVING)")
                }
                throw SQLStreamCompiler.unknownFunction(fn, e)
            })
    }

    static func unknownFunction(_ fn: String, _ e: SQLExpr) -> SQLError {
        if windowFunctions.contains(fn) { return e.position.error("\(fn.uppercased()) is a window function: it belongs in GROUP BY") }
        return e.position.error("unknown function \(fn.uppercased()) (the functions are the aggregates COUNT, SUM, MIN, MAX, AVG, STDDEV, VARIANCE, FIRST_VALUE, LAST_VALUE, APPROX_PERCENTILE, APPROX_COUNT_DISTINCT)")
    }

    /// Names of a result row: the key (when grouped by it), window_start, window_end, and in
    /// `HAVING` the output names (standing for their expressions); calls are aggregates, added to
    /// `registry` once each. `preferredName` names the aggregate of an item that is exactly one call.
    private func postBinder(preferredName: String?, outputs: [String: (Expression, SQLValueType)]?, taken: Set<String>) -> SQLExpressionBinder {
        let source = source, byKey = byKey, registry = registry
        return SQLExpressionBinder(
            resolve: { name, at throws(SQLError) in
                if name == source.keyField {
                    guard byKey else { throw at.error("\(name) is not grouped: with GROUP BY only a window, every key is in one group") }
                    return (.column(name), .text)
                }
                if name == "window_start" || name == "window_end" { return (.column(name), .number) }
                if let outputs, let e = outputs[name] { return e }
                if source.fields.contains(name) || name == source.timeField {
                    throw at.error("\(name) must be inside an aggregate (a result row knows \(byKey ? source.keyField + ", " : "")window_start, window_end and aggregates)")
                }
                throw at.error("unknown column \(name)")
            },
            call: { fn, e throws(SQLError) in
                (.column(try registry.add(fn, e, source: source, preferredName: preferredName, taken: taken)), .number)
            })
    }
}

/// The aggregates of a stream as its `SELECT` and `HAVING` are bound: one per distinct call.
final class SQLAggregateRegistry {
    private(set) var aggregates: [Aggregate] = []

    /// The column name of aggregate call `e` (function `fn`), adding it if it is new.
    func add(_ fn: String, _ e: SQLExpr, source: SourceDefinition, preferredName: String?, taken: Set<String>) throws(SQLError) -> String {
        guard let function = SQLStreamCompiler.aggregateFunctions[fn], case .call(_, let args, let star) = e.node else {
            throw SQLStreamCompiler.unknownFunction(fn, e)
        }
        let shown = fn.uppercased()
        let binder = SQLStreamCompiler.eventBinder(source, inAggregate: true)
        var a = Aggregate(function)
        if star && function != .count { throw e.position.error("only COUNT takes *: \(shown)(expression)") }
        switch function {
        case .count:
            if !star {
                guard args.count == 1 else { throw e.position.error("COUNT takes * or one argument") }
                let (x, _) = try binder.bind(args[0])
                if case .column = x {} else { a.input = x }  // fields and the key are never null
            }
        case .countDistinct:
            guard args.count == 1, case .column(let c) = args[0].node, c == source.keyField else {
                throw e.position.error("APPROX_COUNT_DISTINCT counts distinct keys: APPROX_COUNT_DISTINCT(\(source.keyField))")
            }
        default:
            let arity = function == .p ? 2 : 1
            guard args.count == arity else {
                throw e.position.error(function == .p ? "APPROX_PERCENTILE takes two arguments: APPROX_PERCENTILE(expression, q)" : "\(shown) takes one argument")
            }
            let (x, t) = try binder.bind(args[0])
            guard t.fits(.number) else { throw args[0].position.error("\(shown) needs a number, found \(t.described)") }
            if (function == .first || function == .last) && SQLAggregateRegistry.mayBeNull(x) {
                throw args[0].position.error("\(shown) of an expression that can be null (a division or NULL) is not supported")
            }
            if case .column(let c) = x, let index = source.fields.firstIndex(of: c) { a.field = index } else { a.input = x }
            if function == .p {
                guard case .literal(.number(let q)) = args[1].node, q > 0, q < 1 else {
                    throw args[1].position.error("the quantile of APPROX_PERCENTILE is a number between 0 and 1, such as 0.99")
                }
                a.quantile = q
            }
        }
        if let same = aggregates.first(where: { $0.function == a.function && $0.field == a.field && $0.input == a.input && $0.quantile == a.quantile }), let alias = same.alias {
            return alias
        }
        var name = preferredName ?? "_a\(aggregates.count)"
        while preferredName == nil && (taken.contains(name) || aggregates.contains(where: { $0.alias == name })) { name = "_" + name }
        a.alias = name
        aggregates.append(a)
        return name
    }

    /// Whether an aggregate's input (over an event's fields, never null) can be null: it divides
    /// (`x / 0`) or holds `NULL` (as ExpressionProgram's `mayBeNull`).
    static func mayBeNull(_ e: Expression) -> Bool {
        switch e {
        case .null: true
        case .binary(.divide, _, _): true
        case .binary(_, let l, let r): mayBeNull(l) || mayBeNull(r)
        case .unary(_, let x): mayBeNull(x)
        default: false
        }
    }
}
