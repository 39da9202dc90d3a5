/// A scalar expression of a continuous query, as written (syntax only: names are not resolved).
///
/// Expressions appear in a stream definition in four places: the per-event `filter`, the input
/// of an aggregate (`SUM(price * volume)`), the post-aggregate output `columns` and `having`.
/// Per event, a `column` names an event field or the key field; after aggregation it names an
/// aggregate column, the key column, `window_start` or `window_end`. The engine resolves names
/// when it compiles a definition and refuses unknown ones.
///
/// Values are numbers (f64), booleans, strings (only literals, compared with the key) and
/// SQL null, with SQL's three-valued logic: arithmetic and comparisons with null give null,
/// `x / 0` gives null, `NULL AND FALSE` is false, `NULL OR TRUE` is true; a filter or `having`
/// keeps a row only when it is true.
///
/// The canonical text form (`description`) is SQL: JSON definitions carry expressions as that
/// text, and `SQLExpressionParser` (LaminarSQL) reads it back to an equal value.
public indirect enum Expression: Sendable, Hashable {
    case number(Double)
    case string(String)
    case boolean(Bool)
    case null
    /// A name: unquoted names are lower-cased by the parser; quoted ones are kept as written.
    case column(String)
    case unary(UnaryOperator, Expression)
    case binary(BinaryOperator, Expression, Expression)
    /// `e IS NULL` / `e IS NOT NULL`.
    case isNull(Expression, negated: Bool)
    /// `e LIKE 'pattern'`: `%` any run of bytes, `_` one byte (no escape character).
    case like(Expression, pattern: String, negated: Bool)
    /// `e IN (v1, v2, …)`, values literals.
    case inList(Expression, [Expression], negated: Bool)
}

/// `-e` and `NOT e`.
public enum UnaryOperator: String, Sendable, Hashable {
    case negate = "-"
    case not = "NOT"
}

/// Infix operators, with SQL precedence (`precedence`: higher binds tighter).
public enum BinaryOperator: String, Sendable, Hashable, CaseIterable {
    case multiply = "*", divide = "/"
    case add = "+", subtract = "-"
    case equal = "=", notEqual = "<>", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case and = "AND"
    case or = "OR"

    public var precedence: Int {
        switch self {
        case .multiply, .divide: 6
        case .add, .subtract: 5
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual: 4
        case .and: 2
        case .or: 1
        }
    }
}

extension Expression: CustomStringConvertible {
    /// SQL text that parses back to this expression: parentheses only where precedence needs
    /// them, names quoted when they are not plain lower-case identifiers or are keywords.
    public var description: String { text(parentPrecedence: 0) }

    private func text(parentPrecedence: Int) -> String {
        switch self {
        case .number(let d):
            if d.isFinite && d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            return d.description
        case .string(let s): return Expression.quotedString(s)
        case .boolean(let b): return b ? "TRUE" : "FALSE"
        case .null: return "NULL"
        case .column(let name): return Expression.identifier(name)
        case .unary(.negate, let e):
            let inner = e.text(parentPrecedence: 7)
            return inner.hasPrefix("-") ? "-(" + inner + ")" : "-" + inner  // never "--", a comment
        case .unary(.not, let e): return Expression.wrap("NOT " + e.text(parentPrecedence: 3), 3, parentPrecedence)
        case .binary(let op, let l, let r):
            // Left-associative: the right operand needs parentheses at equal precedence.
            let s = l.text(parentPrecedence: op.precedence) + " " + op.rawValue + " " + r.text(parentPrecedence: op.precedence + 1)
            return Expression.wrap(s, op.precedence, parentPrecedence)
        case .isNull(let e, let negated):
            return Expression.wrap(e.text(parentPrecedence: 5) + (negated ? " IS NOT NULL" : " IS NULL"), 4, parentPrecedence)
        case .like(let e, let pattern, let negated):
            return Expression.wrap(e.text(parentPrecedence: 5) + (negated ? " NOT LIKE " : " LIKE ") + Expression.quotedString(pattern), 4, parentPrecedence)
        case .inList(let e, let values, let negated):
            let list = values.map { $0.text(parentPrecedence: 0) }.joined(separator: ", ")
            return Expression.wrap(e.text(parentPrecedence: 5) + (negated ? " NOT IN (" : " IN (") + list + ")", 4, parentPrecedence)
        }
    }

    private static func wrap(_ s: String, _ precedence: Int, _ parent: Int) -> String {
        precedence < parent ? "(" + s + ")" : s
    }

    static func quotedString(_ s: String) -> String {
        "'" + s.replacingAll("'", with: "''") + "'"
    }

    /// Words that must be quoted to be read as names.
    public static let reservedWords: Set<String> = [
        "all", "allow", "and", "as", "by", "create", "day", "drop", "emit", "every", "exists", "explain", "false",
        "for", "from", "group", "having", "hour", "if", "in", "interval", "is", "key", "like", "minute", "not",
        "null", "on", "or", "second", "select", "show", "source", "sources", "stream", "streams", "true",
        "watermark", "where", "window", "with",
    ]

    static func identifier(_ name: String) -> String {
        let plain = !name.isEmpty && name.utf8.enumerated().allSatisfy { (i, c) in
            c == UInt8(ascii: "_") || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
                || (i > 0 && c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
        }
        if plain && !reservedWords.contains(name) { return name }
        return "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }
}

extension String {
    /// By scalar, not by character: a quote followed by a combining mark is one `Character`
    /// but still a quote to the lexer.
    fileprivate func replacingAll(_ target: Unicode.Scalar, with replacement: String) -> String {
        var out = String.UnicodeScalarView()
        for c in unicodeScalars {
            if c == target { out.append(contentsOf: replacement.unicodeScalars) } else { out.append(c) }
        }
        return String(out)
    }
}

/// One column of a stream's result rows computed after aggregation: a name and an expression
/// over the aggregate columns, the key column, `window_start` and `window_end`.
public struct OutputColumn: Sendable, Hashable {
    public var name: String
    public var expression: Expression

    public init(name: String, expression: Expression) {
        self.name = name
        self.expression = expression
    }
}
