import LaminarReactor

/// Reads one expression in SQL syntax, as JSON definitions carry them (`"filter":"volume > 0"`):
/// the grammar of `SQLParser` without function calls and intervals; names are not resolved.
/// For every expression `e` without negative number literals, `parse(e.description) == e`.
public enum SQLExpressionParser {
    public static func parse(_ text: String) throws(SQLError) -> Expression {
        var parser = try SQLParser(script: Array(text.utf8))
        let e = try parser.parseExpression()
        guard parser.atEnd else { throw parser.expected("an operator or the end of the expression") }
        let binder = SQLExpressionBinder(
            resolve: { name, _ throws(SQLError) in (.column(name), .null) },
            call: { name, e throws(SQLError) in throw e.position.error("\(name.uppercased())(…) is not allowed here: functions and aggregates belong to SQL statements") })
        return try plain(e, binder)
    }

    /// The expression without type checks (names are untyped here), refusing calls and intervals.
    private static func plain(_ e: SQLExpr, _ binder: SQLExpressionBinder) throws(SQLError) -> Expression {
        switch e.node {
        case .literal(let v): return v
        case .column(let n): return .column(n)
        case .interval, .call: return try binder.bind(e).0
        case .unary(let op, let x): return .unary(op, try plain(x, binder))
        case .binary(let op, let l, let r): return .binary(op, try plain(l, binder), try plain(r, binder))
        case .isNull(let x, let negated): return .isNull(try plain(x, binder), negated: negated)
        case .like(let x, let pattern, let negated): return .like(try plain(x, binder), pattern: pattern, negated: negated)
        case .inList(let x, let values, let negated):
            var out: [Expression] = []
            for v in values { out.append(try plain(v, binder)) }
            return .inList(try plain(x, binder), out, negated: negated)
        }
    }
}
