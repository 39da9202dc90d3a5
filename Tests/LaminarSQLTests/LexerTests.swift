@testable import LaminarSQL
import Testing

@Suite struct LexerTests {
    private func kinds(_ text: String) throws -> [SQLToken.Kind] {
        try SQLLexer.tokens(Array(text.utf8)).map(\.kind)
    }

    @Test func wordsAreLowerCasedUnlessQuoted() throws {
        #expect(try kinds(#"SeLeCt "MiXed ""q""" x_1"#) == [
            .word("select", quoted: false), .word("MiXed \"q\"", quoted: true), .word("x_1", quoted: false), .end,
        ])
    }

    @Test func stringsNumbersAndSymbols() throws {
        #expect(try kinds("'it''s' 42 1.5 .5 2e3 1E-2 <> != <= >= < > = ( ) , ; * + - / .") == [
            .string("it's"), .number(42, text: "42"), .number(1.5, text: "1.5"), .number(0.5, text: ".5"),
            .number(2000, text: "2e3"), .number(0.01, text: "1E-2"),
            .symbol("<>"), .symbol("!="), .symbol("<="), .symbol(">="), .symbol("<"), .symbol(">"), .symbol("="),
            .symbol("("), .symbol(")"), .symbol(","), .symbol(";"), .symbol("*"), .symbol("+"), .symbol("-"), .symbol("/"),
            .symbol("."), .end,
        ])
    }

    @Test func commentsAreSkippedAndPositionsCountLinesAndCharacters() throws {
        let tokens = try SQLLexer.tokens(Array("-- a comment\n  /* é\n */ x 'é' y\r\n\tz--\n".utf8))
        #expect(tokens.map(\.kind) == [.word("x", quoted: false), .string("é"), .word("y", quoted: false), .word("z", quoted: false), .end])
        #expect(tokens.map { [$0.line, $0.column] } == [[3, 5], [3, 7], [3, 11], [4, 2], [5, 1]])
    }

    @Test func minusMinusIsAComment() throws {
        #expect(try kinds("1 --2") == [.number(1, text: "1"), .end])
        #expect(try kinds("1 - -2") == [.number(1, text: "1"), .symbol("-"), .symbol("-"), .number(2, text: "2"), .end])
    }

    @Test(arguments: [
        ("'abc", 1, 1, "a string opened with ' is not closed"),
        ("x \"abc", 1, 3, "a name opened with \" is not closed"),
        ("a\n /* never", 2, 2, "a comment opened with /* is not closed"),
        ("a ? b", 1, 3, "unexpected character ?"),
        ("'é€' #", 1, 6, "unexpected character #"),
        ("é", 1, 1, "unexpected character é"),
        ("\"\"", 1, 1, "a quoted name must not be empty"),
        ("5s", 1, 2, "expected a space or an operator after the number 5, found a letter"),
        ("1e999", 1, 1, "the number 1e999 is out of range"),
        ("x \u{01}", 1, 3, "unexpected character U+1"),
    ])
    func errorsArePositioned(_ text: String, _ line: Int, _ column: Int, _ detail: String) {
        #expect(throws: SQLError(line: line, column: column, detail: detail)) { try SQLLexer.tokens(Array(text.utf8)) }
    }
}
