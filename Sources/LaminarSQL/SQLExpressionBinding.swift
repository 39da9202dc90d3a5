import LaminarReactor

/// The type of a bound expression. `null` (the literal) goes with any type.
enum SQLValueType: String, Sendable, Hashable {
    case number, text, boolean, null

    var described: String {
        switch self {
        case .number: "a number"
        case .text: "text"
        case .boolean: "a boolean"
        case .null: "NULL"
        }
    }

    func fits(_ other: SQLValueType) -> Bool { self == other || self == .null || other == .null }
}

/// Binds an expression's names and checks its types: the operators of `Expression` over numbers,
/// the key (text, compared with strings byte by byte, `LIKE` and `IN`) and booleans. What a name
/// means, and what calls are, is up to `resolve` and `call` (per-event or post-aggregate scope).
struct SQLExpressionBinder {
    /// A name to its bound form and type, or a positioned error.
    var resolve: (String, SQLPosition) throws(SQLError) -> (Expression, SQLValueType)
    /// A call (`name`, the call itself) to its bound form and type, or a positioned error.
    var call: (String, SQLExpr) throws(SQLError) -> (Expression, SQLValueType)

    func bind(_ e: SQLExpr) throws(SQLError) -> (Expression, SQLValueType) {
        let at = e.position
        switch e.node {
        case .literal(let value):
            switch value {
            case .number: return (value, .number)
            case .string: return (value, .text)
            case .boolean: return (value, .boolean)
            default: return (value, .null)
            }
        case .column(let name):
            return try resolve(name, at)
        case .interval:
            throw at.error("an INTERVAL is only allowed in TUMBLE, HOP, SESSION, EMIT EVERY and ALLOW LATENESS")
        case .call(let name, _, _):
            return try call(name, e)
        case .unary(let op, let operand):
            let (x, t) = try bind(operand)
            let wanted: SQLValueType = op == .negate ? .number : .boolean
            guard t.fits(wanted) else { throw operand.position.error("\(op == .negate ? "-" : "NOT") needs \(wanted.described), found \(t.described)") }
            return (.unary(op, x), wanted)
        case .binary(let op, let l, let r):
            let (x, tx) = try bind(l)
            let (y, ty) = try bind(r)
            switch op {
            case .add, .subtract, .multiply, .divide:
                for (side, t) in [(l, tx), (r, ty)] where !t.fits(.number) {
                    throw side.position.error("\(op.rawValue) needs numbers, found \(t.described)")
                }
                return (.binary(op, x, y), .number)
            case .and, .or:
                for (side, t) in [(l, tx), (r, ty)] where !t.fits(.boolean) {
                    throw side.position.error("\(op.rawValue) needs booleans, found \(t.described)")
                }
                return (.binary(op, x, y), .boolean)
            case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
                guard tx.fits(ty) else { throw at.error("\(op.rawValue) cannot compare \(tx.described) with \(ty.described)") }
                if tx == .boolean || ty == .boolean { throw at.error("\(op.rawValue) compares numbers or the key, not booleans") }
                if tx == .text && ty == .text {  // text is the key or a string: one of each
                    if case .string = x, case .string = y { throw at.error("\(op.rawValue) compares the key with a string, not two strings") }
                    if !SQLExpressionBinder.isString(x) && !SQLExpressionBinder.isString(y) { throw r.position.error("the key can only be compared with a string") }
                }
                return (.binary(op, x, y), .boolean)
            }
        case .isNull(let operand, let negated):
            return (.isNull(try bind(operand).0, negated: negated), .boolean)
        case .like(let operand, let pattern, let negated):
            let (x, t) = try bind(operand)
            guard t == .text && !SQLExpressionBinder.isString(x) else {
                throw operand.position.error("LIKE applies to the key (text), found \(SQLExpressionBinder.isString(x) ? "a string" : t.described)")
            }
            return (.like(x, pattern: pattern, negated: negated), .boolean)
        case .inList(let operand, let values, let negated):
            let (x, t) = try bind(operand)
            guard t != .boolean && !SQLExpressionBinder.isString(x) else {
                throw operand.position.error("IN applies to the key or a number, found \(t == .boolean ? "a boolean" : "a string")")
            }
            var bound: [Expression] = []
            for v in values {
                let (y, ty) = try bind(v)
                guard ty.fits(t), ty != .boolean else { throw v.position.error("IN (…) of \(t.described) cannot hold \(ty.described)") }
                // The key's list holds strings only; a number's, numbers and NULL.
                if t == .text && ty != .text { throw v.position.error("IN (…) of the key holds strings, found \(ty.described)") }
                if t == .null && ty == .text { throw operand.position.error("IN of strings applies to the key, found NULL") }
                bound.append(y)
            }
            return (.inList(x, bound, negated: negated), .boolean)
        }
    }

    /// Whether a bound text value is a string literal (the other text is the key).
    static func isString(_ x: Expression) -> Bool {
        if case .string = x { true } else { false }
    }
}
