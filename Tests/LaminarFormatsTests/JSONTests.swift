import LaminarFormats
import PropertyBased
import Testing

@Suite struct JSONTests {
    func parse(_ s: String) throws -> JSONValue { try JSONReader.parse(Array(s.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let v = try parse(#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}, "e": 0} "#)
        #expect(v["a"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(v["b"]?["c"] == .string("d\né😀"))
        #expect(v["e"] == .number(0))
    }

    @Test(arguments: [
        "", "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "01", "1.", "-", "\"abc", "\"\\x\"", "{\"a\":1}x",
        "\"\\ud800\"", "\"\\udc00\"", "tru", "nul", "{\"a\":1,\"a\":2}", "\"tab\there\"", "1e", "[" + String(repeating: "[", count: 70),
    ])
    func rejectsMalformedText(text: String) {
        #expect(throws: JSONError.self) { try parse(text) }
    }

    @Test func rejectsInvalidUTF8InStrings() {
        #expect(throws: JSONError.self) { try JSONReader.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONError.self) { try JSONReader.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }  // a surrogate
        #expect(throws: JSONError.self) { try JSONReader.parse([0x22, 0xC0, 0xAF, 0x22]) }  // overlong
        #expect((try? JSONReader.parse([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22])) == .string("😀"))
    }

    @Test func writerOutputReadsBackExactly() async {
        await propertyCheck(input: Gen.int(in: 0...0x10FFFF).array(of: 0...40)) { scalars in
            let text = String(String.UnicodeScalarView(scalars.compactMap { Unicode.Scalar(UInt32($0)) }))
            var out: [UInt8] = []
            JSONWriter.appendString(text, to: &out)
            #expect((try? JSONReader.parse(out)) == .string(text))
        }
    }

    @Test func numbersAreShortestAndIntegralWithoutFraction() {
        var out: [UInt8] = []
        JSONWriter.appendNumber(3, to: &out)
        out.append(0x20)
        JSONWriter.appendNumber(-0.1, to: &out)
        out.append(0x20)
        JSONWriter.appendNumber(1e20, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "3 -0.1 1e+20")
    }

    /// `readInteger` is exact over all of Int64 and says which numbers are not whole or too big.
    @Test(arguments: [
        ("0", JSONReader.Integer.exact(0)), ("-0", .exact(0)), ("9007199254740993", .exact(9_007_199_254_740_993)),
        ("9223372036854775807", .exact(.max)), ("-9223372036854775808", .exact(.min)),
        ("9223372036854775808", .outOfRange), ("-9223372036854775809", .outOfRange), ("1e19", .outOfRange),
        ("1.50e1", .exact(15)), ("0.0001e4", .exact(1)), ("100000000000000000000e-2", .exact(1_000_000_000_000_000_000)),
        ("1.5", .notWhole), ("1e-1", .notWhole), ("123.000", .exact(123)), ("0.5e1", .exact(5)), ("5e-0", .exact(5)),
        ("12345678901234567891e-1", .notWhole), ("1e100000000", .outOfRange), ("0e999999", .exact(0)),
    ])
    func readIntegerIsExact(text: String, expected: JSONReader.Integer) throws {
        let bytes = Array(text.utf8)
        let got = try bytes.withUnsafeBytes { raw in
            var reader = JSONReader(raw)
            let value = try reader.readInteger()
            #expect(reader.atEnd)
            return value
        }
        #expect(got == expected)
    }

    @Test func errorBodyIsJSONWithNewline() throws {
        let body = JSONWriter.errorBody("bad_request", detail: "line 3: \"x\"")
        #expect(body.last == 0x0A)
        let v = try JSONReader.parse(Array(body.dropLast()))
        #expect(v["error"] == .string("bad_request") && v["detail"] == .string("line 3: \"x\""))
    }

    /// Quotes, backslashes and every control character in a detail are escaped.
    @Test func errorBodyEscapesEveryDetail() throws {
        let detail = "a \"quoted\" \\path\\ \u{0}\u{1}\u{8}\t\n\r\u{1B}\u{1F}\u{7F} é 😀 </script>"
        let body = JSONWriter.errorBody("bad_\"request\\", detail: detail)
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.hasPrefix(#"{"error":"bad_\"request\\","detail":"a \"quoted\" \\path\\ \u0000\u0001\u0008\t\n\r\u001b\u001f"#), "\(text)")
        #expect(!body.dropLast().contains { $0 < 0x20 }, "raw control bytes in \(text)")
        let v = try JSONReader.parse(Array(body.dropLast()))
        #expect(v["error"] == .string("bad_\"request\\") && v["detail"] == .string(detail))
    }

    /// The decimal fast path agrees bit for bit with strtod on numbers of every shape.
    @Test func numbersMatchStrtod() async {
        await propertyCheck(input: Gen.int(in: 0...Int(Int32.max)).array(of: 5...5)) { r in
            let whole = [r[0] % 10, r[0] % 1000, r[0]][r[1] % 3], fraction = r[1], fractionDigits = r[2] % 9
            let exponent = r[3] % 61 - 30, shape = r[4] % 4
            var text = "\(whole)"
            if shape & 1 == 1 { text += "." + String(String(fraction).prefix(max(1, fractionDigits))) }
            if shape & 2 == 2 { text += "e\(exponent)" }
            for candidate in [text, "-" + text] {
                let bytes = Array(candidate.utf8)
                let parsed = bytes.withUnsafeBytes { raw -> Double? in
                    var reader = JSONReader(raw)
                    return try? reader.readNumber()
                }
                #expect(parsed?.bitPattern == Double(candidate)?.bitPattern, "\(candidate)")
            }
        }
        for text in ["0.1", "0.30000000000000004", "1.7976931348623157e308", "5e-324", "123456789012345678", "9007199254740993", "0.000", "-0.0", "1E22", "1e23", "12.345"] {
            let parsed = Array(text.utf8).withUnsafeBytes { raw -> Double? in
                var reader = JSONReader(raw)
                return try? reader.readNumber()
            }
            #expect(parsed?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
    }
}
