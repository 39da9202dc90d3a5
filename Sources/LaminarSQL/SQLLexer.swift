/// A token of a SQL script, with where it starts (1-based line and column, in characters) and the
/// byte range it covers in the script.
struct SQLToken: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        /// A name or keyword. Unquoted words are lower-cased (`quoted` false); `"…"` keeps its text.
        case word(String, quoted: Bool)
        /// A numeric literal, with its text as written.
        case number(Double, text: String)
        /// A `'…'` literal, `''` read as one quote.
        case string(String)
        /// An operator or punctuation: `( ) , ; * + - / = <> != < <= > >= .`
        case symbol(String)
        case end
    }

    var kind: Kind
    var line: Int
    var column: Int
    /// Byte offsets into the script: `start..<end`.
    var start: Int
    var end: Int

    /// How errors name it: `SELECT`, `"x"`, `'abc'`, `42`, `(`, `the end`.
    var described: String {
        switch kind {
        case .word(let w, let quoted): quoted ? "\"" + w + "\"" : w.uppercased()
        case .number(_, let text): text
        case .string(let s): "'" + (s.count > 30 ? String(s.prefix(30)) + "…" : s) + "'"
        case .symbol(let s): s
        case .end: "the end"
        }
    }

    /// Whether this is the unquoted word `w` (lower case).
    func isKeyword(_ w: String) -> Bool {
        if case .word(let x, false) = kind { return x == w }
        return false
    }

    func isSymbol(_ s: String) -> Bool {
        if case .symbol(let x) = kind { return x == s }
        return false
    }
}

/// Splits a script into tokens. Byte-based; skips whitespace, `-- …` line comments and `/* … */`
/// block comments (not nested). Columns count characters (UTF-8 continuation bytes do not count).
struct SQLLexer {
    private let bytes: [UInt8]
    private var at = 0
    private var line = 1
    private var column = 1

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Every token of the script, the last one `.end`.
    static func tokens(_ script: [UInt8]) throws(SQLError) -> [SQLToken] {
        var lexer = SQLLexer(script)
        var out: [SQLToken] = []
        while true {
            let t = try lexer.next()
            out.append(t)
            if t.kind == .end { return out }
        }
    }

    private func peek(_ offset: Int = 0) -> UInt8? {
        at + offset < bytes.count ? bytes[at + offset] : nil
    }

    private mutating func advance() {
        let b = bytes[at]
        at += 1
        if b == 0x0A {
            line += 1
            column = 1
        } else if b & 0xC0 != 0x80 {
            column += 1
        }
    }

    private static func isLetter(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private mutating func skipSpaceAndComments() throws(SQLError) {
        while let b = peek() {
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C {
                advance()
            } else if b == UInt8(ascii: "-") && peek(1) == UInt8(ascii: "-") {
                while let c = peek(), c != 0x0A { advance() }
            } else if b == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                let (l, c) = (line, column)
                advance(); advance()
                while true {
                    guard let x = peek() else { throw SQLError(line: l, column: c, detail: "a comment opened with /* is not closed") }
                    if x == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") { advance(); advance(); break }
                    advance()
                }
            } else {
                return
            }
        }
    }

    mutating func next() throws(SQLError) -> SQLToken {
        try skipSpaceAndComments()
        let (l, c, s) = (line, column, at)
        func token(_ kind: SQLToken.Kind) -> SQLToken { SQLToken(kind: kind, line: l, column: c, start: s, end: at) }
        guard let b = peek() else { return token(.end) }
        if SQLLexer.isLetter(b) {
            var word: [UInt8] = []
            while let x = peek(), SQLLexer.isLetter(x) || SQLLexer.isDigit(x) {
                word.append(x >= 0x41 && x <= 0x5A ? x + 0x20 : x)
                advance()
            }
            return token(.word(String(decoding: word, as: UTF8.self), quoted: false))
        }
        if SQLLexer.isDigit(b) || (b == UInt8(ascii: ".") && peek(1).map(SQLLexer.isDigit) == true) {
            while let x = peek(), SQLLexer.isDigit(x) { advance() }
            if peek() == UInt8(ascii: ".") {
                advance()
                while let x = peek(), SQLLexer.isDigit(x) { advance() }
            }
            if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
                let sign = peek(1) == UInt8(ascii: "+") || peek(1) == UInt8(ascii: "-") ? 1 : 0
                if let d = peek(1 + sign), SQLLexer.isDigit(d) {
                    for _ in 0...sign { advance() }
                    while let x = peek(), SQLLexer.isDigit(x) { advance() }
                }
            }
            let text = String(decoding: bytes[s..<at], as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw SQLError(line: l, column: c, detail: "the number \(text) is out of range")
            }
            if let x = peek(), SQLLexer.isLetter(x) {
                throw SQLError(line: line, column: column, detail: "expected a space or an operator after the number \(text), found a letter")
            }
            return token(.number(value, text: text))
        }
        if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
            advance()
            var text: [UInt8] = []
            while true {
                guard let x = peek() else {
                    let what = b == UInt8(ascii: "'") ? "a string opened with ' is not closed" : "a name opened with \" is not closed"
                    throw SQLError(line: l, column: c, detail: what)
                }
                advance()
                if x == b {
                    if peek() == b { advance(); text.append(b); continue }
                    break
                }
                text.append(x)
            }
            let value = String(decoding: text, as: UTF8.self)
            if b == UInt8(ascii: "'") { return token(.string(value)) }
            if text.isEmpty { throw SQLError(line: l, column: c, detail: "a quoted name must not be empty") }
            return token(.word(value, quoted: true))
        }
        let two: [String] = ["<>", "!=", "<=", ">="]
        if let b1 = peek(1) {
            let pair = String(decoding: [b, b1], as: UTF8.self)
            if two.contains(pair) { advance(); advance(); return token(.symbol(pair)) }
        }
        if "(),;*+-/=<>.".utf8.contains(b) {
            advance()
            return token(.symbol(String(decoding: [b], as: UTF8.self)))
        }
        var scalarEnd = at + 1
        while scalarEnd < bytes.count && bytes[scalarEnd] & 0xC0 == 0x80 { scalarEnd += 1 }
        let shown = String(decoding: bytes[at..<scalarEnd], as: UTF8.self)
        throw SQLError(line: l, column: c, detail: "unexpected character \(shown.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F } ? shown : "U+" + String(shown.unicodeScalars.first!.value, radix: 16, uppercase: true))")
    }
}
