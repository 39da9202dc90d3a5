import LaminarReactor

/// The expression grammar (a Pratt parser over `BinaryOperator.precedence`), shared by the
/// statements and `SQLExpressionParser`:
///
///     expr    := prefix { infix }
///     prefix  := number | 'string' | TRUE | FALSE | NULL | name | name '(' [* | expr {, expr}] ')'
///              | INTERVAL … | '(' expr ')' | '-' prefix | NOT expr(above AND)
///     infix   := op expr | IS [NOT] NULL | [NOT] LIKE 'pattern' | [NOT] IN '(' literal {, literal} ')'
///
/// Operators are left-associative; `IS`, `LIKE` and `IN` bind as comparisons. Trees are at most
/// `SQLParser.depthMax` deep, so nothing later (printing, evaluation) recurses without bound.
extension SQLParser {
    static let depthMax = 100

    private static let comparisonPrecedence = BinaryOperator.equal.precedence

    mutating func parseExpression(_ minPrecedence: Int = 0) throws(SQLError) -> SQLExpr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > SQLParser.depthMax {
            throw SQLPosition(current).error("the expression is nested too deeply (at most \(SQLParser.depthMax) levels)")
        }
        var left = try parsePrefix()
        while true {
            let t = current
            var op: BinaryOperator?
            switch t.kind {
            case .symbol(let s):
                op = s == "!=" ? .notEqual : BinaryOperator(rawValue: s)
            case .word(let w, quoted: false):
                if w == "and" { op = .and }
                if w == "or" { op = .or }
                if w == "between" { throw SQLPosition(t).error("BETWEEN is not supported: write x >= a AND x <= b") }
            default:
                break
            }
            if let op {
                guard op.precedence >= minPrecedence else { return left }
                advance()
                let right = try parseExpression(op.precedence + 1)
                left = try node(.binary(op, left, right), at: left.position, children: [left, right])
                continue
            }
            guard SQLParser.comparisonPrecedence >= minPrecedence else { return left }
            if t.isKeyword("is") {
                advance()
                let negated = current.isKeyword("not")
                if negated { advance() }
                guard current.isKeyword("null") else { throw expected(negated ? "NULL" : "NULL or NOT NULL") }
                advance()
                left = try node(.isNull(left, negated: negated), at: left.position, children: [left])
                continue
            }
            var negated = false
            if t.isKeyword("not") && (peek(1).isKeyword("like") || peek(1).isKeyword("in")) {
                negated = true
                advance()
            }
            if current.isKeyword("like") {
                advance()
                guard case .string(let pattern) = current.kind else { throw expected("a 'pattern' after LIKE") }
                advance()
                left = try node(.like(left, pattern: pattern, negated: negated), at: left.position, children: [left])
            } else if current.isKeyword("in") {
                advance()
                if current.isSymbol("(") && peek(1).isKeyword("select") { throw SQLPosition(peek(1)).error("subqueries are not supported") }
                try expect("(", "( after IN")
                var values: [SQLExpr] = []
                repeat {
                    if !values.isEmpty { advance() }
                    values.append(try parseInValue())
                } while current.isSymbol(",")
                try expect(")", ", or ) in the IN list")
                left = try node(.inList(left, values, negated: negated), at: left.position, children: [left] + values)
            } else {
                return left
            }
        }
    }

    /// A literal of an `IN` list: a number (negative ones included), a string, TRUE, FALSE, NULL.
    private mutating func parseInValue() throws(SQLError) -> SQLExpr {
        let t = current
        let value = try parsePrefix()
        switch value.node {
        case .literal: return value
        case .unary(.negate, let inner) where { if case .literal(.number) = inner.node { true } else { false } }(): return value
        default: throw SQLPosition(t).error("the values of IN must be literals (numbers, 'strings', TRUE, FALSE, NULL)")
        }
    }

    private func node(_ n: SQLExpr.Node, at position: SQLPosition, children: [SQLExpr]) throws(SQLError) -> SQLExpr {
        let depth = 1 + children.reduce(0) { max($0, $1.depth) }
        if depth > SQLParser.depthMax {
            throw position.error("the expression is nested too deeply (at most \(SQLParser.depthMax) levels)")
        }
        return SQLExpr(node: n, position: position, depth: depth)
    }

    private mutating func parsePrefix() throws(SQLError) -> SQLExpr {
        let t = current
        let at = SQLPosition(t)
        switch t.kind {
        case .number(let value, _):
            advance()
            return SQLExpr(node: .literal(.number(value)), position: at, depth: 1)
        case .string(let s):
            advance()
            return SQLExpr(node: .literal(.string(s)), position: at, depth: 1)
        case .symbol("-"):
            advance()
            let operand = try parseExpression(7)
            return try node(.unary(.negate, operand), at: at, children: [operand])
        case .symbol("("):
            if peek(1).isKeyword("select") { throw SQLPosition(peek(1)).error("subqueries are not supported") }
            advance()
            let inner = try parseExpression()
            try expect(")", ")")
            return try node(inner.node, at: at, children: inner.children)
        case .word(let w, quoted: true):
            advance()
            return SQLExpr(node: .column(w), position: at, depth: 1)
        case .word(let w, quoted: false):
            switch w {
            case "true", "false":
                advance()
                return SQLExpr(node: .literal(.boolean(w == "true")), position: at, depth: 1)
            case "null":
                advance()
                return SQLExpr(node: .literal(.null), position: at, depth: 1)
            case "not":
                advance()
                let operand = try parseExpression(UnaryOperator.notPrecedence)
                return try node(.unary(.not, operand), at: at, children: [operand])
            case "interval":
                return SQLExpr(node: .interval(try parseInterval()), position: at, depth: 1)
            case "case": throw at.error("CASE is not supported")
            case "exists": throw at.error("subqueries are not supported")
            case "cast": throw at.error("CAST is not supported")
            default:
                break
            }
            if Expression.reservedWords.contains(w) {
                throw at.error("expected an expression, found \(t.described) (a reserved word: write \"\(w)\" to use it as a name)")
            }
            advance()
            if current.isSymbol(".") { throw SQLPosition(current).error("qualified names (\(w).…) are not supported: write the column name alone") }
            guard current.isSymbol("(") else { return SQLExpr(node: .column(w), position: at, depth: 1) }
            advance()
            var args: [SQLExpr] = []
            var star = false
            if current.isKeyword("distinct") {
                throw SQLPosition(current).error(w == "count" ? "COUNT(DISTINCT …) is not supported: use APPROX_COUNT_DISTINCT(key)" : "DISTINCT is not supported in \(w.uppercased())(…)")
            }
            if current.isSymbol("*") {
                star = true
                advance()
            } else if !current.isSymbol(")") {
                repeat {
                    if !args.isEmpty { advance() }
                    args.append(try parseExpression())
                } while current.isSymbol(",")
            }
            try expect(")", ", or ) in the arguments of \(w.uppercased())")
            if current.isKeyword("over") { throw SQLPosition(current).error("window functions (OVER) are not supported: group by a window function (TUMBLE, HOP or SESSION) instead") }
            if current.isKeyword("filter") && peek(1).isSymbol("(") { throw SQLPosition(current).error("FILTER (WHERE …) on an aggregate is not supported") }
            return try node(.call(w, args, star: star), at: at, children: args)
        default:
            throw expected("an expression")
        }
    }

    /// `INTERVAL '5' SECOND` or `INTERVAL '1.5 seconds'`, at `INTERVAL`.
    mutating func parseInterval() throws(SQLError) -> Int64 {
        try expectKeyword("interval")
        let t = current
        guard case .string(let text) = t.kind else { throw expected("a string after INTERVAL, such as '5' SECOND or '1.5 seconds'") }
        advance()
        let result: Result<Int64, SQLIntervals.Problem>
        if case .word(let unit, quoted: false) = current.kind, SQLIntervals.unitWords.contains(unit), let ms = SQLIntervals.units[unit] {
            advance()
            result = SQLIntervals.milliseconds(number: Substring(text), unitMs: ms)
        } else {
            result = SQLIntervals.milliseconds(text: text)
        }
        switch result {
        case .success(let ms): return ms
        case .failure(let why): throw SQLPosition(t).error(why.reason)
        }
    }
}

extension UnaryOperator {
    /// `NOT` binds tighter than `AND`, looser than comparisons.
    static let notPrecedence = 3
}
