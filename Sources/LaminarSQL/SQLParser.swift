import LaminarReactor

/// Parses a script into statements (syntax only; `SQLCompiler` checks names and types).
///
///     script  := [statement] { ';' [statement] }
///     statement := CREATE SOURCE name '(' element {, element} ')' [WITH '(' option {, option} ')']
///                | CREATE STREAM name AS select
///                | DROP (SOURCE | STREAM) [IF EXISTS] name
///                | SHOW (SOURCES | STREAMS)
///                | EXPLAIN CREATE STREAM name AS select
///     element := name (TEXT KEY | DOUBLE | TIMESTAMP) | WATERMARK FOR name AS name [- interval]
///     select  := SELECT item {, item} FROM name [WHERE expr] GROUP BY expr {, expr}
///                [HAVING expr] [EMIT (ON WINDOW CLOSE | CHANGES | EVERY interval)]
///                [ALLOW LATENESS interval]
///
/// Every error names what was expected and what was found, at the found token.
struct SQLParser {
    /// Most statements in one script.
    static let statementsMax = 100

    private let script: [UInt8]
    private let tokens: [SQLToken]
    private var index = 0
    /// Recursion depth of the expression parser.
    var nesting = 0

    init(script: [UInt8]) throws(SQLError) {
        self.script = script
        self.tokens = try SQLLexer.tokens(script)
    }

    // MARK: - Tokens

    var current: SQLToken { tokens[index] }

    func peek(_ offset: Int) -> SQLToken { tokens[min(index + offset, tokens.count - 1)] }

    mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    var atEnd: Bool { current.kind == .end }

    func expected(_ what: String) -> SQLError {
        SQLPosition(current).error("expected \(what), found \(current.described)")
    }

    mutating func expect(_ symbol: String, _ what: String) throws(SQLError) {
        guard current.isSymbol(symbol) else { throw expected(what) }
        advance()
    }

    mutating func expectKeyword(_ word: String) throws(SQLError) {
        guard current.isKeyword(word) else { throw expected(word.uppercased()) }
        advance()
    }

    /// A name: a quoted word, or an unquoted one that is not reserved.
    mutating func parseName(_ what: String) throws(SQLError) -> SQLName {
        let t = current
        guard case .word(let w, let quoted) = t.kind else { throw expected(what) }
        if !quoted && Expression.reservedWords.contains(w) {
            throw SQLPosition(t).error("expected \(what), found \(t.described) (a reserved word: write \"\(w)\" to use it as a name)")
        }
        advance()
        return SQLName(text: w, position: SQLPosition(t))
    }

    // MARK: - Statements

    /// Every statement of the script, in order; an empty script (only spaces and comments) is an error.
    mutating func parseScript() throws(SQLError) -> [SQLStatementSyntax] {
        var statements: [SQLStatementSyntax] = []
        while true {
            while current.isSymbol(";") { advance() }
            if atEnd { break }
            if statements.count == SQLParser.statementsMax {
                throw SQLPosition(current).error("a script has at most \(SQLParser.statementsMax) statements")
            }
            statements.append(try parseStatement())
            guard current.isSymbol(";") || atEnd else { throw expected("; or the end of the script") }
        }
        if statements.isEmpty { throw expected("a statement (CREATE, DROP, SHOW or EXPLAIN)") }
        return statements
    }

    private mutating func parseStatement() throws(SQLError) -> SQLStatementSyntax {
        let t = current
        let at = SQLPosition(t)
        guard case .word(let w, quoted: false) = t.kind else { throw expected("a statement (CREATE, DROP, SHOW or EXPLAIN)") }
        switch w {
        case "create":
            advance()
            if current.isKeyword("source") {
                advance()
                return .createSource(try parseCreateSource())
            }
            if current.isKeyword("stream") {
                advance()
                return .createStream(try parseCreateStream(at: t))
            }
            if case .word(let what, quoted: false) = current.kind, ["table", "view", "materialized", "index", "sink"].contains(what) {
                throw SQLPosition(current).error("CREATE \(what.uppercased()) is not supported: create a SOURCE or a STREAM")
            }
            throw expected("SOURCE or STREAM after CREATE")
        case "drop":
            advance()
            let isSource = current.isKeyword("source")
            guard isSource || current.isKeyword("stream") else { throw expected("SOURCE or STREAM after DROP") }
            advance()
            var ifExists = false
            if current.isKeyword("if") {
                advance()
                try expectKeyword("exists")
                ifExists = true
            }
            let name = try parseName(isSource ? "a source name" : "a stream name")
            return isSource ? .dropSource(name, ifExists: ifExists) : .dropStream(name, ifExists: ifExists)
        case "show":
            advance()
            if current.isKeyword("sources") { advance(); return .showSources }
            if current.isKeyword("streams") { advance(); return .showStreams }
            throw expected("SOURCES or STREAMS after SHOW")
        case "explain":
            advance()
            let create = current
            guard create.isKeyword("create") && peek(1).isKeyword("stream") else {
                throw expected("CREATE STREAM after EXPLAIN (only a stream's definition can be explained)")
            }
            advance(); advance()
            return .explain(try parseCreateStream(at: create))
        case "select":
            throw at.error("a query runs continuously: write CREATE STREAM name AS SELECT …")
        case "insert", "update", "delete", "upsert":
            throw at.error("\(w.uppercased()) is not supported: post events to /sources/{name}/events")
        case "alter":
            throw at.error("ALTER is not supported: drop the stream or source and create it again")
        default:
            throw expected("a statement (CREATE, DROP, SHOW or EXPLAIN)")
        }
    }

    // MARK: - CREATE SOURCE

    private mutating func parseCreateSource() throws(SQLError) -> CreateSourceSyntax {
        let name = try parseName("a source name")
        try expect("(", "( and the source's columns")
        var columns: [CreateSourceSyntax.Column] = []
        var watermark: CreateSourceSyntax.Watermark?
        repeat {
            if !columns.isEmpty || watermark != nil { advance() }
            if current.isKeyword("watermark") {
                let at = SQLPosition(current)
                if watermark != nil { throw at.error("a source has one WATERMARK") }
                advance()
                try expectKeyword("for")
                let column = try parseName("the TIMESTAMP column")
                try expectKeyword("as")
                let base = try parseName("the TIMESTAMP column")
                var delay: Int64 = 0
                if current.isSymbol("-") {
                    advance()
                    guard current.isKeyword("interval") else { throw expected("INTERVAL after -") }
                    delay = try parseInterval()
                } else if !current.isSymbol(",") && !current.isSymbol(")") {
                    throw expected("- INTERVAL '…' or the end of the WATERMARK")
                }
                watermark = .init(position: at, column: column, base: base, delayMs: delay)
                continue
            }
            if current.isKeyword("primary") || current.isKeyword("constraint") {
                throw SQLPosition(current).error("\(current.described) is not supported: write KEY after the key column's type (symbol TEXT KEY)")
            }
            let columnName = try parseName("a column name or WATERMARK")
            let typeToken = current
            guard case .word(let typeWord, quoted: false) = typeToken.kind else { throw expected("a type (TEXT, DOUBLE or TIMESTAMP)") }
            let type: CreateSourceSyntax.Column.SQLType
            switch typeWord {
            case "text", "varchar", "string": type = .text
            case "double", "float8", "float": type = .double
            case "timestamp": type = .timestamp
            default:
                throw SQLPosition(typeToken).error("unknown type \(typeToken.described): a column is TEXT KEY, DOUBLE or TIMESTAMP")
            }
            advance()
            if type == .double && current.isKeyword("precision") { advance() }
            var key: SQLPosition?
            if current.isKeyword("key") {
                key = SQLPosition(current)
                advance()
            } else if current.isKeyword("primary") && peek(1).isKeyword("key") {
                key = SQLPosition(current)
                advance(); advance()
            }
            if current.isKeyword("not") && peek(1).isKeyword("null") { advance(); advance() }  // every column is present
            columns.append(.init(name: columnName, type: type, key: key))
        } while current.isSymbol(",")
        try expect(")", ", or ) after a column")
        var idleTimeoutMs: Int64?
        if current.isKeyword("with") {
            advance()
            try expect("(", "( after WITH")
            repeat {
                if idleTimeoutMs != nil { advance() }
                let option = try parseName("an option name (idle_timeout)")
                guard option.text == "idle_timeout" else {
                    throw option.position.error("unknown option \(option.text): a source takes idle_timeout")
                }
                if idleTimeoutMs != nil { throw option.position.error("idle_timeout is given twice") }
                try expect("=", "= after idle_timeout")
                idleTimeoutMs = try parseDuration()
            } while current.isSymbol(",")
            try expect(")", ", or ) after an option")
        }
        return .init(name: name, columns: columns, watermark: watermark, idleTimeoutMs: idleTimeoutMs)
    }

    /// An option's duration: `'10s'`, `'1.5 seconds'` or `INTERVAL …`.
    private mutating func parseDuration() throws(SQLError) -> Int64 {
        if current.isKeyword("interval") { return try parseInterval() }
        guard case .string(let text) = current.kind else { throw expected("a duration such as '10s' or INTERVAL '10' SECOND") }
        switch SQLIntervals.milliseconds(text: text) {
        case .success(let ms):
            advance()
            return ms
        case .failure(let why):
            throw SQLPosition(current).error(why.reason)
        }
    }

    // MARK: - CREATE STREAM

    private mutating func parseCreateStream(at create: SQLToken) throws(SQLError) -> CreateStreamSyntax {
        let name = try parseName("a stream name")
        if current.isKeyword("with") { throw SQLPosition(current).error("WITH options are not supported on a stream") }
        try expectKeyword("as")
        guard current.isKeyword("select") else { throw expected("SELECT after AS") }
        advance()
        if current.isKeyword("distinct") { throw SQLPosition(current).error("SELECT DISTINCT is not supported") }
        var items: [CreateStreamSyntax.Item] = []
        repeat {
            if !items.isEmpty { advance() }
            if current.isSymbol("*") { throw SQLPosition(current).error("SELECT * is not supported: name the result columns") }
            let expr = try parseExpression()
            var alias: SQLName?
            if current.isKeyword("as") {
                advance()
                alias = try parseName("a column name after AS")
            } else if case .word(let w, let quoted) = current.kind, quoted || !Expression.reservedWords.contains(w) {
                alias = try parseName("a column name")
            }
            items.append(.init(expr: expr, alias: alias))
        } while current.isSymbol(",")
        guard current.isKeyword("from") else { throw expected(", or FROM") }
        advance()
        if current.isSymbol("(") { throw SQLPosition(current).error(peek(1).isKeyword("select") ? "subqueries are not supported" : "expected a source name, found (") }
        let from = try parseName("a source name")
        try refuseUnsupported(joins: true)
        var filter: SQLExpr?
        if current.isKeyword("where") {
            advance()
            filter = try parseExpression()
        }
        try refuseUnsupported(joins: false)
        guard current.isKeyword("group") else {
            throw SQLPosition(current).error("expected GROUP BY with a window function (TUMBLE, HOP or SESSION), found \(current.described): a continuous query aggregates over windows")
        }
        let groupByPosition = SQLPosition(current)
        advance()
        try expectKeyword("by")
        var groupBy: [SQLExpr] = []
        repeat {
            if !groupBy.isEmpty { advance() }
            groupBy.append(try parseExpression())
        } while current.isSymbol(",")
        var having: SQLExpr?
        if current.isKeyword("having") {
            advance()
            having = try parseExpression()
        }
        var emit: CreateStreamSyntax.Emit?
        var lateness: Int64?
        while true {
            try refuseUnsupported(joins: false)
            if current.isKeyword("emit") {
                if emit != nil { throw SQLPosition(current).error("EMIT is given twice") }
                advance()
                if current.isKeyword("on") {
                    advance()
                    try expectKeyword("window")
                    guard current.isKeyword("close") else { throw expected("CLOSE after EMIT ON WINDOW") }
                    advance()
                    emit = .windowClose
                } else if current.isKeyword("changes") {
                    advance()
                    emit = .changes
                } else if current.isKeyword("every") {
                    advance()
                    guard current.isKeyword("interval") else { throw expected("INTERVAL after EMIT EVERY") }
                    let at = SQLPosition(current)
                    let ms = try parseInterval()
                    if ms == 0 { throw at.error("EMIT EVERY needs a positive interval") }
                    emit = .every(ms: ms)
                } else {
                    throw expected("ON WINDOW CLOSE, CHANGES or EVERY INTERVAL '…' after EMIT")
                }
            } else if current.isKeyword("allow") {
                if lateness != nil { throw SQLPosition(current).error("ALLOW LATENESS is given twice") }
                advance()
                guard current.isKeyword("lateness") else { throw expected("LATENESS after ALLOW") }
                advance()
                guard current.isKeyword("interval") else { throw expected("INTERVAL after ALLOW LATENESS") }
                lateness = try parseInterval()
            } else {
                break
            }
        }
        guard current.isSymbol(";") || atEnd else {
            throw expected(having == nil && emit == nil && lateness == nil ? ", or HAVING, EMIT, ALLOW LATENESS, ; or the end of the script"
                : "EMIT, ALLOW LATENESS, ; or the end of the script")
        }
        let end = tokens[index - 1].end
        let text = String(decoding: script[create.start..<end], as: UTF8.self)
        return .init(position: SQLPosition(create), name: name, items: items, from: from, filter: filter, groupBy: groupBy,
                     groupByPosition: groupByPosition, having: having, emit: emit, latenessMs: lateness, text: text)
    }

    /// Names the clauses a continuous query does not have, where they appear.
    private func refuseUnsupported(joins: Bool) throws(SQLError) {
        let at = SQLPosition(current)
        guard case .word(let w, quoted: false) = current.kind else {
            if joins && current.isSymbol(",") { throw at.error("JOIN is not supported (FROM reads one source)") }
            return
        }
        switch w {
        case "join", "inner", "left", "right", "full", "cross", "natural":
            throw at.error("JOIN is not supported")
        case "order": throw at.error("ORDER BY is not supported in a continuous query")
        case "limit", "fetch", "offset": throw at.error("\(w.uppercased()) is not supported in a continuous query")
        case "union", "intersect", "except": throw at.error("\(w.uppercased()) is not supported")
        case "window": throw at.error("WINDOW clauses are not supported: group by a window function (TUMBLE, HOP or SESSION)")
        case "as" where joins: throw at.error("a source cannot be renamed with AS in FROM")
        default: return
        }
    }
}
