import LaminarFormats

/// The aggregates of one key over one closed window `[start, end)`. The key is bytes, as the
/// event carried it (any bytes, not only UTF-8).
public struct WindowResult: Sendable, Hashable {
    /// The row's per-stream result sequence number, set when the row is emitted
    /// (`Reactor.emitRow`, the one place that assigns it): strictly increasing, the same after a
    /// restart's replay. 0 until emitted.
    public var seq: UInt64 = 0
    public var key: [UInt8]
    public var startMs: Int64
    public var endMs: Int64
    public var count: Int64
    public var sum: Double
    public var min: Double
    public var max: Double
    public var avg: Double { count == 0 ? 0 : sum / Double(count) }

    public init(key: [UInt8], startMs: Int64, endMs: Int64, count: Int64, sum: Double, min: Double, max: Double) {
        self.key = key
        self.startMs = startMs
        self.endMs = endMs
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
    }

    /// Compact JSON with the requested aggregates, always in the order `count`, `sum`, `min`,
    /// `max`, `avg` (whatever order the definition lists them in), no newline:
    /// `{"seq":7,"key":"u1","start":0,"end":1000,"count":3,"sum":4.5,"min":1,"max":2,"avg":1.5}`.
    /// `seq` comes first, always: `ResultLog.storedSeq` reads it back from a stored row.
    /// A key that is not valid UTF-8 is written as `"key_base64":"…"` instead of `"key"`.
    public func json(aggregates: [Aggregate]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + key.count * 4 / 3)
        out.append(contentsOf: #"{"seq":"#.utf8)
        JSONWriter.appendInteger(seq, to: &out)
        out.append(0x2C)
        key.withUnsafeBytes { JSONWriter.appendBytesField("key", $0, to: &out) }
        out.append(0x2C)
        JSONWriter.appendName("start", to: &out)
        JSONWriter.appendInteger(startMs, to: &out)
        out.append(0x2C)
        JSONWriter.appendName("end", to: &out)
        JSONWriter.appendInteger(endMs, to: &out)
        for a in Aggregate.allCases where aggregates.contains(a) {
            out.append(0x2C)
            switch a {
            case .count:
                JSONWriter.appendName("count", to: &out)
                JSONWriter.appendInteger(count, to: &out)
            case .sum:
                JSONWriter.appendName("sum", to: &out)
                JSONWriter.appendNumber(sum, to: &out)
            case .min:
                JSONWriter.appendName("min", to: &out)
                JSONWriter.appendNumber(min, to: &out)
            case .max:
                JSONWriter.appendName("max", to: &out)
                JSONWriter.appendNumber(max, to: &out)
            case .avg:
                JSONWriter.appendName("avg", to: &out)
                JSONWriter.appendNumber(avg, to: &out)
            }
        }
        out.append(0x7D)
        return out
    }
}

/// The reserved store keys of the reactor.
///
/// - `_streams/{name}/{key}\0\u{1}{start}`: a window result (JSON). `{key}` is the event key's
///   bytes with each `00` byte written `00 FF`, ended by `00 01`: so one key's results never
///   share a prefix with another key's, and result keys sort by event key bytes first (a key
///   before every longer key it begins), then by start. `{start}` is 16 upper-case hex digits of
///   `UInt64(bitPattern: start) ^ 1<<63`, a fixed width whose byte order is numeric order,
///   negatives included (−1 → `7FFFFFFFFFFFFFFF`, 0 → `8000000000000000`).
/// - `_resultlog/{name}/{seq}`: the retained-results log, one entry per emitted row, `{seq}` 16
///   hex digits: `[i64 window end][the row's key after _streams/{name}/]` (`ResultLog`).
/// - `_resultnext/{name}`: the next result sequence number (u64) of a deleted stream, so that a
///   stream defined again under that name goes on numbering where it stopped.
/// - `_streamdefs/{name}`: a definition; `_checkpoint/{name}`: a stream's checkpoint;
///   `_wal/{name}/{seq}`: a logged batch or watermark advance, `{seq}` 16 hex digits.
public enum ReservedKeys {
    public static let prefixes: [[UInt8]] = ["_streams/", "_streamdefs/", "_checkpoint/", "_wal/", "_resultlog/", "_resultnext/"].map { Array($0.utf8) }

    public static func isReserved(_ key: [UInt8]) -> Bool {
        guard key.first == UInt8(ascii: "_") else { return false }
        return prefixes.contains { key.starts(with: $0) }
    }

    public static func orderedStart(_ start: Int64) -> String { hex16(UInt64(bitPattern: start) ^ (1 << 63)) }

    /// Appends `orderedStart(start)`'s 16 bytes without making a string (emitting rows).
    static func appendOrderedStart(_ start: Int64, to out: inout [UInt8]) {
        appendHex16(UInt64(bitPattern: start) ^ (1 << 63), to: &out)
    }

    /// Appends `x` as 16 upper-case hex digits.
    static func appendHex16(_ x: UInt64, to out: inout [UInt8]) {
        for shift in stride(from: 60, through: 0, by: -4) {
            let d = UInt8(truncatingIfNeeded: (x >> UInt64(shift)) & 15)
            out.append(d < 10 ? 0x30 + d : 0x37 + d)
        }
    }

    static func hex16(_ v: UInt64) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        var x = v
        for i in (0..<16).reversed() { out[i] = digits[Int(x & 15)]; x >>= 4 }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes that end an event key inside a result key.
    static let keyTerminator: [UInt8] = [0x00, 0x01]

    /// Appends an event key as it appears in a result key: `00` → `00 FF`, then `00 01`.
    static func appendEscapedKey<Key: Collection<UInt8>>(_ key: Key, to out: inout [UInt8]) {
        for b in key {
            out.append(b)
            if b == 0 { out.append(0xFF) }
        }
        out.append(contentsOf: keyTerminator)
    }

    public static func resultPrefix(stream: String) -> [UInt8] { Array("_streams/\(stream)/".utf8) }
    public static func resultPrefix<Key: Collection<UInt8>>(stream: String, key: Key) -> [UInt8] {
        var out = resultPrefix(stream: stream)
        appendEscapedKey(key, to: &out)
        return out
    }
    public static func result<Key: Collection<UInt8>>(stream: String, key: Key, startMs: Int64) -> [UInt8] {
        resultPrefix(stream: stream, key: key) + Array(orderedStart(startMs).utf8)
    }

    /// The current key of a result stored under the layout of earlier versions,
    /// `_streams/{name}/{key}/{start}` with `%` and `/` of `{key}` written `%25` and `%2F`
    /// (which sorted results by that escaped text, not by key bytes); `nil` if `key` is not one.
    /// A current result key has `01` where that layout has `/` before the start, so the two
    /// never mix up.
    public static func resultKeyFromEarlierLayout(_ key: [UInt8]) -> [UInt8]? {
        let streams = prefixes[0]
        let n = key.count
        guard n > streams.count + 20, key.starts(with: streams), key[n - 17] == UInt8(ascii: "/"),
              key[(n - 16)...].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }),
              let nameEnd = key[streams.count..<(n - 17)].firstIndex(of: UInt8(ascii: "/")),
              nameEnd > streams.count, nameEnd + 1 < n - 17
        else { return nil }
        var eventKey: [UInt8] = []
        var i = nameEnd + 1
        while i < n - 17 {
            if key[i] == UInt8(ascii: "%"), i + 2 < n - 17, key[i + 1] == UInt8(ascii: "2") {
                if key[i + 2] == UInt8(ascii: "5") { eventKey.append(UInt8(ascii: "%")); i += 3; continue }
                if key[i + 2] == UInt8(ascii: "F") { eventKey.append(UInt8(ascii: "/")); i += 3; continue }
            }
            eventKey.append(key[i])
            i += 1
        }
        var out = Array(key[..<(nameEnd + 1)])
        appendEscapedKey(eventKey, to: &out)
        out.append(contentsOf: key[(n - 16)...])
        return out
    }

    public static func definition(_ stream: String) -> [UInt8] { Array("_streamdefs/\(stream)".utf8) }
    public static let definitionPrefix: [UInt8] = Array("_streamdefs/".utf8)
    public static func checkpoint(_ stream: String) -> [UInt8] { Array("_checkpoint/\(stream)".utf8) }
    public static func walPrefix(_ stream: String) -> [UInt8] { Array("_wal/\(stream)/".utf8) }
    public static func wal(_ stream: String, sequence: UInt64) -> [UInt8] { Array("_wal/\(stream)/\(hex16(sequence))".utf8) }
    public static func resultLogPrefix(_ stream: String) -> [UInt8] { Array("_resultlog/\(stream)/".utf8) }
    public static func resultNext(_ stream: String) -> [UInt8] { Array("_resultnext/\(stream)".utf8) }
}
