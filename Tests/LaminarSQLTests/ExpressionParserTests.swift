import LaminarReactor
import LaminarSQL
import PropertyBased
import Testing

@Suite struct ExpressionParserTests {
    @Test func precedenceAndAssociativity() throws {
        let a = Expression.column("a"), b = Expression.column("b"), c = Expression.column("c")
        #expect(try SQLExpressionParser.parse("a + b * c") == .binary(.add, a, .binary(.multiply, b, c)))
        #expect(try SQLExpressionParser.parse("a - b - c") == .binary(.subtract, .binary(.subtract, a, b), c))
        #expect(try SQLExpressionParser.parse("(a - b) * -c") == .binary(.multiply, .binary(.subtract, a, b), .unary(.negate, c)))
        #expect(try SQLExpressionParser.parse("NOT a = 1 AND b OR c") ==
            .binary(.or, .binary(.and, .unary(.not, .binary(.equal, a, .number(1))), b), c))
        #expect(try SQLExpressionParser.parse("a IS NOT NULL") == .isNull(a, negated: true))
        #expect(try SQLExpressionParser.parse("a != 2") == .binary(.notEqual, a, .number(2)))
        #expect(try SQLExpressionParser.parse("k NOT LIKE 'x%' OR k IN ('a', NULL) OR v NOT IN (1, -2.5)") ==
            .binary(.or, .binary(.or, .like(.column("k"), pattern: "x%", negated: true), .inList(.column("k"), [.string("a"), .null], negated: false)),
                    .inList(.column("v"), [.number(1), .unary(.negate, .number(2.5))], negated: true)))
        #expect(try SQLExpressionParser.parse(#"_a0 / "Sum of x" >= TRUE"#) ==
            .binary(.greaterEqual, .binary(.divide, .column("_a0"), .column("Sum of x")), .boolean(true)))
    }

    @Test(arguments: [
        ("", 1, 1, "expected an expression, found the end"),
        ("a +", 1, 4, "expected an expression, found the end"),
        ("a b", 1, 3, "expected an operator or the end of the expression, found B"),
        ("(a", 1, 3, "expected ), found the end"),
        ("sum(x) > 1", 1, 1, "SUM(…) is not allowed here: functions and aggregates belong to SQL statements"),
        ("INTERVAL '1' SECOND", 1, 1, "an INTERVAL is only allowed in TUMBLE, HOP, SESSION, EMIT EVERY and ALLOW LATENESS"),
        ("a IS 1", 1, 6, "expected NULL or NOT NULL, found 1"),
        ("a IS NOT 1", 1, 10, "expected NULL, found 1"),
        ("k LIKE k", 1, 8, "expected a 'pattern' after LIKE, found K"),
        ("k IN (a)", 1, 7, "the values of IN must be literals (numbers, 'strings', TRUE, FALSE, NULL)"),
        ("k IN 'a'", 1, 6, "expected ( after IN, found 'a'"),
        ("k IN ('a' 'b')", 1, 11, "expected , or ) in the IN list, found 'b'"),
        ("a BETWEEN 1 AND 2", 1, 3, "BETWEEN is not supported: write x >= a AND x <= b"),
        ("CASE WHEN a THEN 1 END", 1, 1, "CASE is not supported"),
        ("CAST(a AS DOUBLE)", 1, 1, "CAST is not supported"),
        ("EXISTS (SELECT 1)", 1, 1, "subqueries are not supported"),
        ("a IN (SELECT b)", 1, 7, "subqueries are not supported"),
        ("(SELECT 1)", 1, 2, "subqueries are not supported"),
        ("t.a > 1", 1, 2, "qualified names (t.…) are not supported: write the column name alone"),
        ("key = 'a'", 1, 1, "expected an expression, found KEY (a reserved word: write \"key\" to use it as a name)"),
        ("rank() OVER (ORDER BY a)", 1, 8, "window functions (OVER) are not supported: group by a window function (TUMBLE, HOP or SESSION) instead"),
        ("count(DISTINCT k)", 1, 7, "COUNT(DISTINCT …) is not supported: use APPROX_COUNT_DISTINCT(key)"),
        ("sum(x) FILTER (WHERE x > 1)", 1, 8, "FILTER (WHERE …) on an aggregate is not supported"),
        ("f(a b)", 1, 5, "expected , or ) in the arguments of F, found B"),
        ("+a", 1, 1, "expected an expression, found +"),
    ])
    func errorsArePositioned(_ text: String, _ line: Int, _ column: Int, _ detail: String) {
        #expect(throws: SQLError(line: line, column: column, detail: detail)) { try SQLExpressionParser.parse(text) }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "(", count: 150) + "a" + String(repeating: ")", count: 150)
        #expect(throws: SQLError.self) { try SQLExpressionParser.parse(deep) }
        let long = Array(repeating: "a", count: 150).joined(separator: " + ")
        #expect(throws: SQLError.self) { try SQLExpressionParser.parse(long) }
        let negations = String(repeating: "- ", count: 5000) + "1"
        #expect(throws: SQLError.self) { try SQLExpressionParser.parse(negations) }
        let fine = String(repeating: "(", count: 40) + "a" + String(repeating: ")", count: 40)
        #expect(try SQLExpressionParser.parse(fine) == .column("a"))
    }

    /// A random expression drawn from `tape` (no negative literals: `-3` reads as `-(3)`).
    static func expression(_ tape: inout [Int], depth: Int = 0) -> Expression {
        func next(_ n: Int) -> Int { tape.isEmpty ? 0 : tape.removeLast() % n }
        let names = ["a", "price", "_a0", "window_start", "Mixed Case", "key", "select", "x\"y", "é", "sum"]
        let strings = ["", "it's", "A%", "é€", "--", "/*"]
        let numbers: [Double] = [0, 1, 2.5, 1e20, 5e-324, 0.1, 123456789012345678, 1e15, 3]
        let leaf = depth >= 6 || next(3) == 0
        if leaf {
            switch next(6) {
            case 0: return .number(numbers[next(numbers.count)])
            case 1: return .string(strings[next(strings.count)])
            case 2: return .boolean(next(2) == 0)
            case 3: return .null
            default: return .column(names[next(names.count)])
            }
        }
        func sub() -> Expression { expression(&tape, depth: depth + 1) }
        switch next(6) {
        case 0: return .unary(next(2) == 0 ? .negate : .not, sub())
        case 1: return .isNull(sub(), negated: next(2) == 0)
        case 2: return .like(sub(), pattern: strings[next(strings.count)], negated: next(2) == 0)
        case 3:
            let values: [Expression] = (0...next(3)).map { _ in
                [.number(numbers[next(numbers.count)]), .string(strings[next(strings.count)]), .null, .boolean(true)][next(4)]
            }
            return .inList(sub(), values, negated: next(2) == 0)
        default:
            let op = BinaryOperator.allCases[next(BinaryOperator.allCases.count)]
            return .binary(op, sub(), sub())
        }
    }

    @Test func theTextFormParsesBackToTheSameExpression() async {
        await propertyCheck(count: 2000, input: Gen.int(in: 0...Int(Int32.max)).array(of: 1...80)) { tape in
            var t = tape
            let e = Self.expression(&t)
            let text = e.description
            #expect((try? SQLExpressionParser.parse(text)) == e, "\(text)")
        }
    }
}

extension ExpressionParserTests {
    /// Found by fuzz-sql: a quote followed by a combining mark is one Character, and was not
    /// doubled in the text form.
    @Test func quotesBeforeCombiningMarksAreEscaped() throws {
        for e in [Expression.string("a'\u{658}b"), .column("x\"\u{301}y"), .like(.column("k"), pattern: "'\u{301}%", negated: false)] {
            #expect(try SQLExpressionParser.parse(e.description) == e, "\(e.description)")
        }
    }
}
