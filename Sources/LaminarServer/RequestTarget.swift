import Glibc

/// A request target (`/kv/some%2Fkey?prefix=a&limit=10`) split into a percent-decoded path and
/// query parameters. Keys are bytes, so decoding is binary-safe: `%00` and `%FF` are allowed and
/// `+` is a literal plus (use `%20` for a space). Pure; fuzzable.
public struct RequestTarget: Sendable, Hashable {
    /// The raw path (before `?`), still percent-encoded.
    public var rawPath: [UInt8]
    /// Query parameters in order, names and values percent-decoded.
    public var query: [(name: String, value: [UInt8])]

    public static func == (a: RequestTarget, b: RequestTarget) -> Bool {
        a.rawPath == b.rawPath && a.query.count == b.query.count
            && zip(a.query, b.query).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawPath)
        for q in query { hasher.combine(q.name); hasher.combine(q.value) }
    }

    public enum ParseError: Error, Sendable, Hashable {
        case badPercentEncoding
        case notOriginForm
    }

    public init(_ target: [UInt8]) throws(ParseError) {
        guard target.first == 0x2F else { throw .notOriginForm }
        let questionMark = target.firstIndex(of: 0x3F)
        rawPath = Array(target[..<(questionMark ?? target.endIndex)])
        query = []
        guard let questionMark else { return }
        for pair in target[(questionMark + 1)...].split(separator: 0x26, omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: 0x3D)
            let name = try RequestTarget.percentDecode(pair[..<(equals ?? pair.endIndex)])
            let value = equals.map { Array(pair[($0 + 1)...]) } ?? []
            query.append((String(decoding: name, as: UTF8.self), try RequestTarget.percentDecode(value[...])))
        }
    }

    public init(_ target: String) throws(ParseError) {
        try self.init(Array(target.utf8))
    }

    /// The first value of parameter `name`.
    public func parameter(_ name: String) -> [UInt8]? {
        query.first { $0.name == name }?.value
    }

    public func parameterString(_ name: String) -> String? {
        parameter(name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The decoded rest of the path after `prefix` (e.g. the key after `/kv/`), or `nil` if the
    /// path does not start with `prefix`.
    public func pathRemainder(after prefix: String) throws(ParseError) -> [UInt8]? {
        let p = prefix.utf8
        guard rawPath.starts(with: p) else { return nil }
        return try RequestTarget.percentDecode(rawPath[p.count...])
    }

    /// Percent-encodes every byte but the unreserved ones (RFC 3986 §2.3): a key as a query value.
    public static func percentEncode(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for b in bytes {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: out.append(b)
            default: out.append(contentsOf: [0x25, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func percentDecode(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> [UInt8] {
        // Most keys hold no escape: one allocation and a copy instead of an append per byte.
        let escaped = bytes.withUnsafeBufferPointer { b in b.count > 0 && memchr(b.baseAddress!, 0x25, b.count) != nil }
        if !escaped { return Array(bytes) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let c = bytes[i]
            if c == 0x25 {
                guard i + 2 < bytes.endIndex, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2])
                else { throw .badPercentEncoding }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

/// Durations in query parameters and flags: `1500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number
/// of seconds. Positive and at most 100 years.
public enum DurationText {
    public static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        var number = Substring(text)
        var scale: Int64 = 1000
        for (suffix, ms) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = ms
            break
        }
        guard !number.isEmpty, number.allSatisfy(\.isASCII), let n = Int64(number), n > 0 else { return nil }
        let (total, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow, total <= 100 * 365 * 86_400_000 else { return nil }
        return total
    }
}
