/// The aggregates of one key over one closed window `[start, end)`.
public struct WindowResult: Sendable, Hashable {
    public var key: String
    public var startMs: Int64
    public var endMs: Int64
    public var count: Int64
    public var sum: Double
    public var min: Double
    public var max: Double
    public var avg: Double { count == 0 ? 0 : sum / Double(count) }

    public init(key: String, startMs: Int64, endMs: Int64, count: Int64, sum: Double, min: Double, max: Double) {
        self.key = key
        self.startMs = startMs
        self.endMs = endMs
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
    }

    /// Compact JSON with the requested aggregates:
    /// `{"key":"u1","start":0,"end":1000,"count":3,"sum":4.5,"min":1,"max":2,"avg":1.5}`.
    public func json(aggregates: [Aggregate]) -> String {
        var s = "{\"key\":" + jsonString(key) + ",\"start\":\(startMs),\"end\":\(endMs)"
        for a in aggregates {
            switch a {
            case .count: s += ",\"count\":\(count)"
            case .sum: s += ",\"sum\":" + jsonNumber(sum)
            case .min: s += ",\"min\":" + jsonNumber(min)
            case .max: s += ",\"max\":" + jsonNumber(max)
            case .avg: s += ",\"avg\":" + jsonNumber(avg)
            }
        }
        return s + "}"
    }
}

func jsonNumber(_ v: Double) -> String {
    if v.isFinite, v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return v.isFinite ? "\(v)" : "null"
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// The reserved store keys of the reactor.
///
/// - `_streams/{name}/{key}/{start}`: a window result (JSON). `{key}` escapes `%` and `/` as
///   `%25` and `%2F` so one key's results never share a prefix with another's; `{start}` is
///   16 upper-case hex digits of `UInt64(bitPattern: start) ^ 1<<63`, a fixed width whose byte
///   order is numeric order, negatives included (−1 → `7FFFFFFFFFFFFFFF`, 0 → `8000000000000000`).
/// - `_streamdefs/{name}`: a definition; `_checkpoint/{name}`: a stream's checkpoint;
///   `_wal/{name}/{seq}`: a logged batch or watermark advance, `{seq}` 16 hex digits.
public enum ReservedKeys {
    public static let prefixes: [[UInt8]] = ["_streams/", "_streamdefs/", "_checkpoint/", "_wal/"].map { Array($0.utf8) }

    public static func isReserved(_ key: [UInt8]) -> Bool {
        guard key.first == UInt8(ascii: "_") else { return false }
        return prefixes.contains { key.starts(with: $0) }
    }

    public static func orderedStart(_ start: Int64) -> String { hex16(UInt64(bitPattern: start) ^ (1 << 63)) }

    static func hex16(_ v: UInt64) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        var x = v
        for i in (0..<16).reversed() { out[i] = digits[Int(x & 15)]; x >>= 4 }
        return String(decoding: out, as: UTF8.self)
    }

    public static func escapeKey(_ key: String) -> String {
        guard key.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "%") }) else { return key }
        return key.replacingAll("%", with: "%25").replacingAll("/", with: "%2F")
    }

    public static func resultPrefix(stream: String) -> [UInt8] { Array("_streams/\(stream)/".utf8) }
    public static func resultPrefix(stream: String, key: String) -> [UInt8] { Array("_streams/\(stream)/\(escapeKey(key))/".utf8) }
    public static func result(stream: String, key: String, startMs: Int64) -> [UInt8] {
        Array("_streams/\(stream)/\(escapeKey(key))/\(orderedStart(startMs))".utf8)
    }
    public static func definition(_ stream: String) -> [UInt8] { Array("_streamdefs/\(stream)".utf8) }
    public static let definitionPrefix: [UInt8] = Array("_streamdefs/".utf8)
    public static func checkpoint(_ stream: String) -> [UInt8] { Array("_checkpoint/\(stream)".utf8) }
    public static func walPrefix(_ stream: String) -> [UInt8] { Array("_wal/\(stream)/".utf8) }
    public static func wal(_ stream: String, sequence: UInt64) -> [UInt8] { Array("_wal/\(stream)/\(hex16(sequence))".utf8) }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
