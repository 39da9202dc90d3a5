/// Why a JSON text was rejected, with the byte offset in its line or document.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "\(reason) at byte \(offset)" }
}

/// A parsed JSON value (RFC 8259). Objects keep their members in order; duplicate names are
/// rejected by the reader.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .number(let n): hasher.combine(n)
        case .string(let s): hasher.combine(s)
        case .array(let a): hasher.combine(a)
        case .object(let o): for (k, v) in o { hasher.combine(k); hasher.combine(v) }
        }
    }

    /// The member named `name` of an object.
    public subscript(name: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == name }?.1
    }
}

/// A strict, allocation-light JSON reader over bytes in memory: no trailing commas, no comments,
/// strings checked as UTF-8, nesting bounded by `depthMax`. The event decoder uses its pieces
/// (`readString`, `readNumber`, `skipValue`) to pick a few fields out of each line without
/// building a tree; definitions and batch requests use `readValue`.
public struct JSONReader {
    public let bytes: UnsafeRawBufferPointer
    public var position: Int
    public static let depthMax = 64

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.position = 0
    }

    @inline(__always) public var atEnd: Bool { position >= bytes.count }

    @inline(__always) public func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    public func error(_ reason: String) -> JSONError { JSONError(offset: position, reason: reason) }

    @inline(__always)
    public mutating func skipWhitespace() {
        while position < bytes.count {
            let c = bytes[position]
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 } else { return }
        }
    }

    public mutating func expect(_ c: UInt8, _ what: String) throws(JSONError) {
        skipWhitespace()
        guard peek() == c else { throw error("expected \(what)") }
        position += 1
    }

    /// Reads a string (the opening quote is next). Without escapes, its bytes are returned as a
    /// range of `bytes` (validated UTF-8, no copy); with escapes, it is unescaped into `scratch`
    /// (replacing its content) and the result is nil.
    public mutating func readStringSpan(scratch: inout [UInt8]) throws(JSONError) -> Range<Int>? {
        skipWhitespace()
        guard peek() == 0x22 else { throw error("expected a string") }
        let start = position + 1
        var i = start
        let n = bytes.count
        var high: UInt8 = 0  // OR of the bytes: ASCII needs no UTF-8 check
        while i < n {
            let c = bytes[i]
            if c == 0x22 || c == 0x5C || c < 0x20 { break }
            high |= c
            i += 1
        }
        if i < n && bytes[i] == 0x22 {
            let run = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
            guard high < 0x80 || UTF8Validation.isValid(run) else { throw JSONError(offset: start, reason: "invalid UTF-8 in a string") }
            position = i + 1
            return start..<i
        }
        scratch.removeAll(keepingCapacity: true)
        try readString(into: &scratch)
        return nil
    }

    /// Reads a string (the opening quote is next), unescaped, appending its UTF-8 to `out`.
    public mutating func readString(into out: inout [UInt8]) throws(JSONError) {
        try expect(0x22, "a string")
        while true {
            // Copy the run of plain bytes in one go.
            let runStart = position
            while position < bytes.count {
                let c = bytes[position]
                if c == 0x22 || c == 0x5C || c < 0x20 { break }
                position += 1
            }
            if position > runStart {
                let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<position])
                guard UTF8Validation.isValid(run) else { throw JSONError(offset: runStart, reason: "invalid UTF-8 in a string") }
                out.appendBytes(run)
            }
            guard position < bytes.count else { throw error("unterminated string") }
            let c = bytes[position]
            if c == 0x22 {
                position += 1
                return
            }
            if c < 0x20 { throw error("control character in a string") }
            // Escape.
            position += 1
            guard position < bytes.count else { throw error("unterminated escape") }
            let e = bytes[position]
            position += 1
            switch e {
            case 0x22: out.append(0x22)
            case 0x5C: out.append(0x5C)
            case 0x2F: out.append(0x2F)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = try readHex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard position + 1 < bytes.count, bytes[position] == 0x5C, bytes[position + 1] == 0x75 else {
                        throw error("unpaired surrogate")
                    }
                    position += 2
                    let low = try readHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("unpaired surrogate")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default:
                throw error("bad escape")
            }
        }
    }

    private mutating func readHex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("bad \\u escape")
            }
            v = v << 4 | d
            position += 1
        }
        return v
    }

    /// Reads a number per the JSON grammar, in one pass. Integers of up to 18 digits, and decimals
    /// whose significant digits fit in 2^53 with a decimal exponent within ±22, are converted
    /// exactly here (Clinger's fast path: one correctly rounded multiply or divide of exact
    /// operands, so the result equals strtod's); anything else goes to strtod.
    public mutating func readNumber() throws(JSONError) -> Double {
        skipWhitespace()
        let start = position
        let n = bytes.count
        var i = position
        let negative = i < n && bytes[i] == 0x2D
        if negative { i += 1 }
        guard i < n, bytes[i] &- 0x30 < 10 else { throw error("expected a number") }
        var mantissa: UInt64 = 0
        var significant = 0  // digits in `mantissa`, leading zeros not counted
        var dropped = 0      // integer digits past 19 (too many for `mantissa`)
        var exponent = 0
        var plainInteger = true
        if bytes[i] == 0x30 {
            i += 1
        } else {
            while i < n, case let d = bytes[i] &- 0x30, d < 10 {
                if significant < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    significant += 1
                } else {
                    dropped += 1
                }
                i += 1
            }
        }
        if i < n && bytes[i] == 0x2E {
            plainInteger = false
            i += 1
            guard i < n, bytes[i] &- 0x30 < 10 else {
                position = i
                throw error("expected a digit after '.'")
            }
            while i < n, case let d = bytes[i] &- 0x30, d < 10 {
                if significant < 19 {
                    if mantissa != 0 || d != 0 { significant += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    exponent -= 1
                } else {
                    dropped += 1  // only matters as "not exact"
                }
                i += 1
            }
        }
        if i < n && (bytes[i] == 0x65 || bytes[i] == 0x45) {
            plainInteger = false
            exponent += try readExponent(&i)
        }
        position = i
        if dropped == 0 {
            if plainInteger && significant <= 18 {
                return negative ? -Double(mantissa) : Double(mantissa)
            }
            if mantissa == 0 { return negative ? -0.0 : 0.0 }
            if significant <= 15 && exponent >= -22 && exponent <= 22 {
                var value = Double(mantissa)
                value = exponent < 0 ? value / Self.exactPowersOfTen[-exponent] : value * Self.exactPowersOfTen[exponent]
                return negative ? -value : value
            }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw JSONError(offset: start, reason: "number out of range") }
        return value
    }

    /// A JSON number read as an integer (`readInteger`).
    public enum Integer: Sendable, Hashable {
        /// Its exact value: `1000`, `1000.0` and `1e3` are all 1000.
        case exact(Int64)
        /// It has a fraction (`1.5`).
        case notWhole
        /// It is whole but outside `Int64`.
        case outOfRange
    }

    /// Reads a number per the JSON grammar as an exact integer, without going through a Double
    /// (which rounds above 2^53). Throws only for text that is not a JSON number.
    public mutating func readInteger() throws(JSONError) -> Integer {
        skipWhitespace()
        let n = bytes.count
        var i = position
        let negative = i < n && bytes[i] == 0x2D
        if negative { i += 1 }
        guard i < n, bytes[i] &- 0x30 < 10 else { throw error("expected a number") }
        // The significant digits: the first 19 in `significand` (they fit a UInt64), zeros after
        // the last non-zero digit held back in `pendingZeros` (they only scale the value).
        var significand: UInt64 = 0
        var significantDigits = 0
        var pendingZeros = 0
        var tooManyDigits = false
        var fractionDigits = 0
        func digit(_ d: UInt8) {
            if d == 0 {
                if significantDigits > 0 { pendingZeros += 1 }
                return
            }
            significantDigits += pendingZeros + 1
            if significantDigits > 19 {
                tooManyDigits = true
            } else {
                for _ in 0..<pendingZeros { significand *= 10 }
                significand = significand * 10 + UInt64(d)
            }
            pendingZeros = 0
        }
        if bytes[i] == 0x30 {
            i += 1
        } else {
            while i < n, case let d = bytes[i] &- 0x30, d < 10 { digit(d); i += 1 }
        }
        if i < n && bytes[i] == 0x2E {
            i += 1
            guard i < n, bytes[i] &- 0x30 < 10 else {
                position = i
                throw error("expected a digit after '.'")
            }
            while i < n, case let d = bytes[i] &- 0x30, d < 10 { digit(d); fractionDigits += 1; i += 1 }
        }
        var exponent = 0
        if i < n && (bytes[i] == 0x65 || bytes[i] == 0x45) { exponent = try readExponent(&i) }
        position = i
        if significantDigits == 0 { return .exact(0) }
        // value = significand (with its held-back zeros) × 10^scale; its last digit is not zero.
        let scale = exponent - fractionDigits + pendingZeros
        if scale < 0 { return .notWhole }
        if tooManyDigits || significantDigits + scale > 19 { return .outOfRange }
        var magnitude = significand
        for _ in 0..<scale {
            let (m, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            if overflow { return .outOfRange }
            magnitude = m
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return .outOfRange }
            return .exact(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { return .outOfRange }
        return .exact(Int64(magnitude))
    }

    /// Powers of ten that a Double holds exactly (10^0 … 10^22).
    private static let exactPowersOfTen: [Double] = (0...22).map { (e: Int) -> Double in
        var p = 1.0
        for _ in 0..<e { p *= 10 }
        return p
    }

    /// Reads `true`, `false` or `null` literally.
    /// Reads the exponent of a number at `i` (just after its `e` or `E`): an optional sign and at
    /// least one digit; the magnitude saturates at 100 000 (far past any double's range).
    private mutating func readExponent(_ i: inout Int) throws(JSONError) -> Int {
        let n = bytes.count
        i += 1
        var sign = 1
        if i < n && (bytes[i] == 0x2B || bytes[i] == 0x2D) {
            if bytes[i] == 0x2D { sign = -1 }
            i += 1
        }
        guard i < n, bytes[i] &- 0x30 < 10 else {
            position = i
            throw error("expected an exponent")
        }
        var e = 0
        while i < n, case let d = bytes[i] &- 0x30, d < 10 {
            if e < 100_000 { e = e * 10 + Int(d) }
            i += 1
        }
        return sign * e
    }

    private mutating func readLiteral(_ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard position + n <= bytes.count else { throw error("unexpected end") }
        for i in 0..<n where bytes[position + i] != word.utf8Start[i] { throw error("unexpected token") }
        position += n
    }

    /// Skips one value of any kind.
    public mutating func skipValue(depth: Int = 0) throws(JSONError) {
        _ = try readValue(depth: depth, building: false)
    }

    /// Reads one value of any kind.
    public mutating func readValue(depth: Int = 0) throws(JSONError) -> JSONValue {
        try readValue(depth: depth, building: true)
    }

    private mutating func readValue(depth: Int, building: Bool) throws(JSONError) -> JSONValue {
        guard depth < JSONReader.depthMax else { throw error("nesting too deep") }
        skipWhitespace()
        guard let c = peek() else { throw error("expected a value") }
        switch c {
        case 0x22:
            var s: [UInt8] = []
            try readString(into: &s)
            return building ? .string(String(decoding: s, as: UTF8.self)) : .null
        case 0x7B:
            var members: [(String, JSONValue)] = []
            try readObject { (reader: inout JSONReader, name: [UInt8]) throws(JSONError) in
                let value = try reader.readValue(depth: depth + 1, building: building)
                if building {
                    let key = String(decoding: name, as: UTF8.self)
                    if members.contains(where: { $0.0 == key }) { throw reader.error("duplicate member \"\(key)\"") }
                    members.append((key, value))
                }
            }
            return building ? .object(members) : .null
        case 0x5B:
            position += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if peek() == 0x5D {
                position += 1
                return building ? .array([]) : .null
            }
            while true {
                let v = try readValue(depth: depth + 1, building: building)
                if building { elements.append(v) }
                skipWhitespace()
                guard let d = peek() else { throw error("unterminated array") }
                position += 1
                if d == 0x5D { break }
                guard d == 0x2C else { throw error("expected ',' or ']'") }
            }
            return building ? .array(elements) : .null
        case 0x74:
            try readLiteral("true")
            return .bool(true)
        case 0x66:
            try readLiteral("false")
            return .bool(false)
        case 0x6E:
            try readLiteral("null")
            return .null
        default:
            return .number(try readNumber())
        }
    }

    /// Reads an object, calling `member` with each member name; `member` must read the value.
    public mutating func readObject(_ member: (inout JSONReader, [UInt8]) throws(JSONError) -> Void) throws(JSONError) {
        try expect(0x7B, "an object")
        skipWhitespace()
        if peek() == 0x7D {
            position += 1
            return
        }
        var name: [UInt8] = []
        while true {
            name.removeAll(keepingCapacity: true)
            skipWhitespace()
            try readString(into: &name)
            try expect(0x3A, "':'")
            try member(&self, name)
            skipWhitespace()
            guard let d = peek() else { throw error("unterminated object") }
            position += 1
            if d == 0x7D { return }
            guard d == 0x2C else { throw error("expected ',' or '}'") }
        }
    }

    /// Parses a whole document: one value and nothing but whitespace after it.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        var reader = JSONReader(bytes)
        let value = try reader.readValue()
        reader.skipWhitespace()
        guard reader.atEnd else { throw reader.error("trailing characters") }
        return value
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        try withBytes(bytes) { (b: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue in try parse(b) }
    }
}

/// UTF-8 validation (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
public enum UTF8Validation {
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            // ASCII fast path, 8 bytes at a time.
            while i + 8 <= n && bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            guard i < n else { return true }
            let c = bytes[i]
            if c < 0x80 {
                i += 1
                continue
            }
            let length: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return false
            }
            guard i + length <= n else { return false }
            let second = bytes[i + 1]
            guard second >= lower && second <= upper else { return false }
            for j in 2..<max(2, length) where bytes[i + j] & 0xC0 != 0x80 { return false }
            i += length
        }
        return true
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }
}

/// `withUnsafeBytes` for typed throws (the standard one only rethrows `any Error`).
@inline(__always)
func withBytes<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeBytes { b in Result { () throws(E) -> R in try body(b) } }
    return try result.get()
}

extension Array where Element == UInt8 {
    /// Appends raw bytes with one memcpy (`append(contentsOf:)` on a raw buffer copies byte by byte).
    @inline(__always)
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer) {
        append(contentsOf: raw.assumingMemoryBound(to: UInt8.self))
    }
}
