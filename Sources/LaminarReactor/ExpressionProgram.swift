import LaminarFormats

/// What an `ExpressionProgram` reads: numbered numeric slots (event fields per event, aggregate
/// columns after aggregation), the key bytes (absent for `group_by: all` rows), and two times
/// (the event time per event; window start and end after aggregation).
protocol ExpressionInput {
    func number(_ slot: Int) -> Double
    /// `body` over the key bytes, or `nil` when there is no key.
    func withKey<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R?
    var time: Double { get }
    var windowEnd: Double { get }
}

/// The names an expression may use and what each reads, for `ExpressionProgram.compile`.
struct ExpressionScope {
    enum Name { case slot(Int), key, time, windowEnd, inline(Expression) }
    var names: [String: Name] = [:]

    /// Per event: the definition's fields (by index), the key field and the time field (ms).
    static func event(_ d: StreamDefinition) -> ExpressionScope {
        var s = ExpressionScope()
        for (i, f) in d.fields.enumerated() { s.names[f] = .slot(i) }
        s.names[d.keyField] = .key
        s.names[d.keyColumn] = .key
        s.names[d.timeField] = .time
        return s
    }

    /// After aggregation: the aggregate columns (by index), the key column, `window_start` and
    /// `window_end` (ms); `outputs` (for `having`) read as their expressions.
    static func row(_ d: StreamDefinition, outputs: [OutputColumn] = []) -> ExpressionScope {
        var s = ExpressionScope()
        for o in outputs { s.names[o.name] = .inline(o.expression) }
        for (i, c) in d.columnNames.enumerated() { s.names[c] = .slot(i) }
        s.names[d.keyColumn] = .key
        s.names["window_start"] = .time
        s.names["window_end"] = .windowEnd
        return s
    }
}

/// An `Expression` compiled against a scope to a flat program over a small value stack: names
/// resolved to slots, types checked (numbers, booleans, the key compared with string literals),
/// so evaluation neither allocates nor looks anything up.
///
/// Evaluation follows SQL: null propagates through arithmetic and comparisons, `x / 0` is null,
/// `AND`/`OR` are three-valued, `IS NULL` is never null. Numbers are f64; booleans 0/1.
/// Not thread-safe (its stack is reused): one owner, the reactor thread.
final class ExpressionProgram {
    enum Op {
        case constant(Double)
        case null
        case slot(Int)
        case time
        case windowEnd
        case negate, not, and, or
        case arithmetic(BinaryOperator)
        case compare(BinaryOperator)
        case isNull(negated: Bool)
        /// Replaces the top with whether it equals one of `numbers[start..<start+count]`.
        case inNumbers(start: Int, count: Int, hasNull: Bool, negated: Bool)
        case keyIsNull(negated: Bool)
        case keyCompare(BinaryOperator, literal: Int)
        case keyLike(pattern: Int, negated: Bool)
        case keyIn(start: Int, count: Int, negated: Bool)
    }

    enum Kind { case number, boolean, key, string, null }

    // Constants after `init` (`let`: evaluation reads them without exclusivity checks).
    let ops: [Op]
    private let numbers: [Double]
    private let literals: [[UInt8]]
    /// The value stack, `depth` entries, reused by every evaluation.
    private let stack: UnsafeMutablePointer<(x: Double, null: Bool)>
    /// Whether the value can be null (a division, a null literal).
    let mayBeNull: Bool
    /// Whether the value depends on the numbered slots only (not on the key nor the times), so
    /// equal slots give equal values.
    var readsSlotsOnly: Bool {
        ops.allSatisfy { op in
            switch op {
            case .time, .windowEnd, .keyIsNull, .keyCompare, .keyLike, .keyIn: false
            default: true
            }
        }
    }

    /// Compiles `e`; throws a sentence naming what is wrong (`unknown column "prise"`).
    /// `boolean`: the expression must be a condition (a filter, `having`), else a number.
    init(_ e: Expression, scope: ExpressionScope, boolean: Bool) throws(ExpressionError) {
        var c = Compiler()
        let kind = try c.emit(e, scope, inlining: 0)
        switch (kind, boolean) {
        case (.boolean, true), (.null, true), (.number, false), (.null, false): break
        case (_, true): throw ExpressionError("must be a condition (true or false), not a \(Compiler.noun(kind))")
        case (_, false): throw ExpressionError("must be a number, not a \(Compiler.noun(kind))")
        }
        ops = c.ops
        numbers = c.numbers
        literals = c.literals
        mayBeNull = c.mayBeNull
        stack = .allocate(capacity: max(c.depth, 1))
        shape = switch (c.ops.count, c.ops.first, c.ops.dropFirst().first, c.ops.last) {
        case (3, .slot(let a)?, .slot(let b)?, .arithmetic(let o)?), (3, .slot(let a)?, .slot(let b)?, .compare(let o)?): .slots(a, b, o)
        case (3, .slot(let a)?, .constant(let k)?, .arithmetic(let o)?) where !k.isNaN,
             (3, .slot(let a)?, .constant(let k)?, .compare(let o)?) where !k.isNaN: .slotConstant(a, k, o)
        default: .general
        }
    }

    /// Programs of the commonest shapes (`price * volume`, `volume > 0`), evaluated without
    /// the stack machine.
    private enum Shape {
        case general
        case slots(Int, Int, BinaryOperator)
        case slotConstant(Int, Double, BinaryOperator)
    }
    private let shape: Shape

    deinit { stack.deallocate() }

    /// Builds a program: names resolved, types checked, ops emitted in postfix order.
    private struct Compiler {
    var ops: [Op] = []
    var numbers: [Double] = []
    var literals: [[UInt8]] = []
    var depth = 0
    var height = 0
    var mayBeNull = false

    static func noun(_ k: Kind) -> String {
        switch k {
        case .number: "number"
        case .boolean: "condition"
        case .key: "key"
        case .string: "string"
        case .null: "null"
        }
    }

    mutating func push(_ op: Op, _ delta: Int) {
        ops.append(op)
        height += delta
        depth = max(depth, height)
    }

    mutating func emit(_ e: Expression, _ scope: ExpressionScope, inlining: Int) throws(ExpressionError) -> Kind {
        switch e {
        case .number(let d):
            push(.constant(d), 1); return .number
        case .boolean(let b):
            push(.constant(b ? 1 : 0), 1); return .boolean
        case .null:
            mayBeNull = true
            push(.null, 1); return .null
        case .string(let s):
            throw ExpressionError("the string '\(s)' can only be compared with the key")
        case .column(let name):
            guard let resolved = scope.names[name] else { throw ExpressionError("unknown column \"\(name)\"") }
            switch resolved {
            case .slot(let i): push(.slot(i), 1); return .number
            case .time: push(.time, 1); return .number
            case .windowEnd: push(.windowEnd, 1); return .number
            case .key: throw ExpressionError("the key \"\(name)\" can only be compared with strings (=, <>, <, LIKE, IN, IS NULL)")
            case .inline(let inner):
                guard inlining < 8 else { throw ExpressionError("\"\(name)\" refers to itself") }
                return try emit(inner, scope, inlining: inlining + 1)
            }
        case .unary(.negate, let inner):
            try expect(try emit(inner, scope, inlining: inlining), .number, "-")
            push(.negate, 0); return .number
        case .unary(.not, let inner):
            try expect(try emit(inner, scope, inlining: inlining), .boolean, "NOT")
            push(.not, 0); return .boolean
        case .binary(let op, let l, let r):
            if case .comparison = op.group, let keyOp = try keyComparison(op, l, r, scope) { return keyOp }
            let lk = try emit(l, scope, inlining: inlining)
            let rk = try emit(r, scope, inlining: inlining)
            switch op.group {
            case .arithmetic:
                try expect(lk, .number, op.rawValue); try expect(rk, .number, op.rawValue)
                if op == .divide { mayBeNull = true }
                push(.arithmetic(op), -1); return .number
            case .comparison:
                guard lk == rk || lk == .null || rk == .null else {
                    throw ExpressionError("\(op.rawValue) compares a \(Compiler.noun(lk)) with a \(Compiler.noun(rk))")
                }
                push(.compare(op), -1); return .boolean
            case .logic:
                try expect(lk, .boolean, op.rawValue); try expect(rk, .boolean, op.rawValue)
                push(op == .and ? .and : .or, -1); return .boolean
            }
        case .isNull(let inner, let negated):
            if isKey(inner, scope) {
                push(.keyIsNull(negated: negated), 1); return .boolean
            }
            _ = try emit(inner, scope, inlining: inlining)
            push(.isNull(negated: negated), 0); return .boolean
        case .like(let inner, let pattern, let negated):
            guard isKey(inner, scope) else { throw ExpressionError("LIKE applies to the key only") }
            literals.append(Array(pattern.utf8))
            push(.keyLike(pattern: literals.count - 1, negated: negated), 1); return .boolean
        case .inList(let inner, let values, let negated):
            if isKey(inner, scope) {
                let start = literals.count
                for v in values {
                    guard case .string(let s) = v else { throw ExpressionError("IN on the key takes strings") }
                    literals.append(Array(s.utf8))
                }
                push(.keyIn(start: start, count: values.count, negated: negated), 1); return .boolean
            }
            try expect(try emit(inner, scope, inlining: inlining), .number, "IN")
            let start = numbers.count
            var hasNull = false
            for v in values {
                switch v {
                case .number(let d): numbers.append(d)
                case .unary(.negate, .number(let d)): numbers.append(-d)
                case .null: hasNull = true
                default: throw ExpressionError("IN takes a list of numbers")
                }
            }
            push(.inNumbers(start: start, count: numbers.count - start, hasNull: hasNull, negated: negated), 0)
            return .boolean
        }
    }

    func expect(_ k: Kind, _ want: Kind, _ what: String) throws(ExpressionError) {
        guard k == want || k == .null else {
            throw ExpressionError("\(what) needs a \(Compiler.noun(want)), not a \(Compiler.noun(k))")
        }
    }

    func isKey(_ e: Expression, _ scope: ExpressionScope) -> Bool {
        if case .column(let name) = e, case .key? = scope.names[name] { return true }
        return false
    }

    /// `key = 'x'`, `'x' < key`, …; nil when neither side is the key.
    mutating func keyComparison(_ op: BinaryOperator, _ l: Expression, _ r: Expression, _ scope: ExpressionScope) throws(ExpressionError) -> Kind? {
        var op = op, other = r
        if isKey(l, scope) {
            other = r
        } else if isKey(r, scope) {
            other = l
            op = op.mirrored
        } else {
            return nil
        }
        switch other {
        case .string(let s): literals.append(Array(s.utf8))
        case .null: push(.null, 1); return .null
        default: throw ExpressionError("the key can only be compared with a string")
        }
        push(.keyCompare(op, literal: literals.count - 1), 1)
        return .boolean
    }
    }

    // MARK: - Evaluation

    /// The value, `nil` for null.
    @inline(__always)
    func number<I: ExpressionInput>(_ input: I) -> Double? {
        let v = run(input)
        return v.null ? nil : v.x
    }

    /// Whether the condition is true (null and false are not).
    @inline(__always)
    func isTrue<I: ExpressionInput>(_ input: I) -> Bool {
        let v = run(input)
        return !v.null && v.x != 0
    }

    private func run<I: ExpressionInput>(_ input: I) -> (x: Double, null: Bool) {
        switch shape {
        case .slots(let a, let b, let o): return ExpressionProgram.binary(input.number(a), input.number(b), o)
        case .slotConstant(let a, let k, let o): return ExpressionProgram.binary(input.number(a), k, o)
        case .general: break
        }
        do {
            let s = stack
            var top = -1
            for op in ops {
                switch op {
                case .constant(let d): top += 1; s[top] = (d, false)
                case .null: top += 1; s[top] = (0, true)
                case .slot(let i): let v = input.number(i); top += 1; s[top] = (v, v.isNaN)  // NaN: a null aggregate
                case .time: top += 1; s[top] = (input.time, false)
                case .windowEnd: top += 1; s[top] = (input.windowEnd, false)
                case .negate: s[top].x = -s[top].x
                case .not: s[top].x = s[top].x == 0 ? 1 : 0
                case .and:
                    let b = s[top]; top -= 1; let a = s[top]
                    if (!a.null && a.x == 0) || (!b.null && b.x == 0) { s[top] = (0, false) }
                    else { s[top] = (1, a.null || b.null) }
                case .or:
                    let b = s[top]; top -= 1; let a = s[top]
                    if (!a.null && a.x != 0) || (!b.null && b.x != 0) { s[top] = (1, false) }
                    else { s[top] = (0, a.null || b.null) }
                case .arithmetic(let o):
                    let b = s[top]; top -= 1; let a = s[top]
                    if a.null || b.null { s[top] = (0, true); continue }
                    switch o {
                    case .add: s[top].x = a.x + b.x
                    case .subtract: s[top].x = a.x - b.x
                    case .multiply: s[top].x = a.x * b.x
                    default: s[top] = b.x == 0 ? (0, true) : (a.x / b.x, false)
                    }
                    if !s[top].null && !s[top].x.isFinite { s[top] = (0, true) }  // overflow: no value
                case .compare(let o):
                    let b = s[top]; top -= 1; let a = s[top]
                    s[top] = a.null || b.null ? (0, true) : (o.holds(a.x, b.x) ? 1 : 0, false)
                case .isNull(let negated):
                    s[top] = ((s[top].null != negated) ? 1 : 0, false)
                case .inNumbers(let start, let count, let hasNull, let negated):
                    if s[top].null { continue }
                    var found = false
                    for k in start..<(start + count) where numbers[k] == s[top].x { found = true; break }
                    if found { s[top] = (negated ? 0 : 1, false) }
                    else { s[top] = (negated ? 1 : 0, hasNull) }
                case .keyIsNull(let negated):
                    let present = input.withKey { _ in true } ?? false
                    top += 1; s[top] = ((present == negated) ? 1 : 0, false)
                case .keyCompare(let o, let literal):
                    let c: Int? = literals[literal].withUnsafeBytes { lit in input.withKey { ExpressionProgram.compareBytes($0, lit) } }
                    top += 1; s[top] = c.map { (o.holds(Double($0), 0) ? 1 : 0, false) } ?? (0, true)
                case .keyLike(let pattern, let negated):
                    let m: Bool? = literals[pattern].withUnsafeBytes { p in input.withKey { ExpressionProgram.like($0, p) } }
                    top += 1; s[top] = m.map { ($0 != negated ? 1 : 0, false) } ?? (0, true)
                case .keyIn(let start, let count, let negated):
                    let found: Bool? = input.withKey { key in
                        for k in start..<(start + count) where literals[k].withUnsafeBytes({ ExpressionProgram.compareBytes(key, $0) == 0 }) {
                            return true
                        }
                        return false
                    }
                    top += 1; s[top] = found.map { ($0 != negated ? 1 : 0, false) } ?? (0, true)
                }
            }
            return s[0]
        }
    }

    /// `number` of every event of `events` (`kept`: those events only, in order) into `out`, NaN
    /// for null: the commonest shapes a column at a time, with no call per event.
    func numbers(_ events: EventBatch.EventView, _ kept: [Int]?, into out: UnsafeMutablePointer<Double>) {
        guard let kept else { return numbers(events, count: events.count, into: out) { $0 } }
        kept.withUnsafeBufferPointer { k in numbers(events, count: k.count, into: out) { k[$0] } }
    }

    /// `numbers` of the events `event(0..<count)`.
    @inline(__always)
    private func numbers(_ events: EventBatch.EventView, count n: Int, into out: UnsafeMutablePointer<Double>, _ event: (Int) -> Int) {
        switch shape {
        case .slots(let a, let b, let o):
            for j in 0..<n {
                let i = event(j)
                out[j] = ExpressionProgram.number(ExpressionProgram.binary(events.field(i, a), events.field(i, b), o))
            }
        case .slotConstant(let a, let k, let o):
            for j in 0..<n { out[j] = ExpressionProgram.number(ExpressionProgram.binary(events.field(event(j), a), k, o)) }
        case .general:
            for j in 0..<n { out[j] = number(EventInput(events: events, i: event(j))) ?? .nan }
        }
    }

    /// Appends to `kept` the index of every event of `events` for which the condition is true.
    func select(_ events: EventBatch.EventView, into kept: inout [Int]) {
        switch shape {
        case .slots(let a, let b, let o):
            for i in 0..<events.count where ExpressionProgram.truth(ExpressionProgram.binary(events.field(i, a), events.field(i, b), o)) {
                kept.append(i)
            }
        case .slotConstant(let a, let k, let o):
            for i in 0..<events.count where ExpressionProgram.truth(ExpressionProgram.binary(events.field(i, a), k, o)) { kept.append(i) }
        case .general:
            for i in 0..<events.count where isTrue(EventInput(events: events, i: i)) { kept.append(i) }
        }
    }

    @inline(__always) private static func number(_ v: (x: Double, null: Bool)) -> Double { v.null ? .nan : v.x }
    @inline(__always) private static func truth(_ v: (x: Double, null: Bool)) -> Bool { !v.null && v.x != 0 }

    /// `a o b` for an arithmetic or comparison `o`, as the stack machine computes it (NaN is null).
    @inline(__always)
    private static func binary(_ a: Double, _ b: Double, _ o: BinaryOperator) -> (x: Double, null: Bool) {
        if a.isNaN || b.isNaN { return (0, true) }
        let x: Double
        switch o {
        case .add: x = a + b
        case .subtract: x = a - b
        case .multiply: x = a * b
        case .divide:
            if b == 0 { return (0, true) }
            x = a / b
        default: return (o.holds(a, b) ? 1 : 0, false)
        }
        return x.isFinite ? (x, false) : (0, true)  // overflow: no value
    }

    /// -1, 0, 1 as `a` sorts before, with, after `b` (bytes, shorter first on a common prefix).
    static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        for i in 0..<n where a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// SQL LIKE over bytes: `%` any run, `_` one byte, no escape (greedy with backtracking to the
    /// last `%`: time linear in practice, at most `key × pattern`).
    static func like(_ s: UnsafeRawBufferPointer, _ p: UnsafeRawBufferPointer) -> Bool {
        let percent = UInt8(ascii: "%"), one = UInt8(ascii: "_")
        var i = 0, j = 0, star = -1, mark = 0
        while i < s.count {
            if j < p.count && (p[j] == one || (p[j] != percent && p[j] == s[i])) {
                i += 1; j += 1
            } else if j < p.count && p[j] == percent {
                star = j; mark = i; j += 1
            } else if star >= 0 {
                j = star + 1; mark += 1; i = mark
            } else {
                return false
            }
        }
        while j < p.count && p[j] == percent { j += 1 }
        return j == p.count
    }
}

/// Why an expression does not compile (a sentence; the caller prefixes the member).
struct ExpressionError: Error {
    var detail: String
    init(_ detail: String) { self.detail = detail }
}

extension BinaryOperator {
    enum Group { case arithmetic, comparison, logic }

    var group: Group {
        switch self {
        case .add, .subtract, .multiply, .divide: .arithmetic
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual: .comparison
        case .and, .or: .logic
        }
    }

    /// The operator with its operands swapped (`a < b` ⇔ `b > a`).
    var mirrored: BinaryOperator {
        switch self {
        case .less: .greater
        case .lessEqual: .greaterEqual
        case .greater: .less
        case .greaterEqual: .lessEqual
        default: self
        }
    }

    @inline(__always)
    func holds(_ a: Double, _ b: Double) -> Bool {
        switch self {
        case .equal: a == b
        case .notEqual: a != b
        case .less: a < b
        case .lessEqual: a <= b
        case .greater: a > b
        case .greaterEqual: a >= b
        default: false
        }
    }
}
