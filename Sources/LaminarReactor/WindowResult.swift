import LaminarFormats

/// One result row: the aggregates of one group over one window `[startMs, endMs)`. The key is
/// bytes, as the event carried it (any bytes, not only UTF-8); `nil` for `group_by: all`.
/// `values` are the definition's columns in order (`StreamDefinition.columnNames`), NaN for
/// null. For `emit: changes` / `every`, `change` says what the row does to the window's row.
public struct WindowResult: Sendable, Hashable {
    /// What a row of a changelog (`emit: changes`/`every`) does.
    public enum Op: String, Sendable, Hashable { case insert, update, delete }

    public var key: [UInt8]?
    public var startMs: Int64
    public var endMs: Int64
    public var values: [Double]
    /// `nil` for `emit: final` rows.
    public var op: Op?
    /// The previous values of the columns (an `update`).
    public var before: [Double]?
    /// Whether this is the window's last row (it closed).
    public var isFinal: Bool
    /// The row's per-stream result sequence number, set when the row is emitted
    /// (`Reactor.emitRow`, the one place that assigns it): strictly increasing, the same after a
    /// restart's replay. 0 until emitted.
    public var seq: UInt64 = 0

    public init(key: [UInt8]?, startMs: Int64, endMs: Int64, values: [Double], op: Op? = nil, before: [Double]? = nil, isFinal: Bool = false) {
        self.key = key
        self.startMs = startMs
        self.endMs = endMs
        self.values = values
        self.op = op
        self.before = before
        self.isFinal = isFinal
    }

    /// The column layout rows are rendered with: names and which are integers (the output
    /// columns when the definition has some, else its aggregate columns), and the key's member.
    public struct Columns: Sendable, Hashable {
        public var names: [[UInt8]]
        public var integer: [Bool]
        /// `key` unless the definition names another (`keyColumn`); `_base64` is appended for a
        /// key that is not UTF-8.
        public var keyName: String

        /// A layout read back from a stored slice (`ResultSlice`).
        init(names: [[UInt8]], integer: [Bool], keyName: String) {
            self.names = names
            self.integer = integer
            self.keyName = keyName
        }

        public init(_ definition: StreamDefinition) {
            let aggregateNames = definition.columnNames
            let aggregateInteger = definition.aggregates.map { $0.function == .count || $0.function == .countDistinct }
            keyName = definition.keyColumn
            if let outputs = definition.outputColumns {
                names = outputs.map { Array($0.name.utf8) }
                // An output that is exactly a count column stays an integer.
                integer = outputs.map { o in
                    guard case .column(let n) = o.expression, let i = aggregateNames.firstIndex(of: n) else { return false }
                    return aggregateInteger[i]
                }
            } else {
                names = aggregateNames.map { Array($0.utf8) }
                integer = aggregateInteger
            }
        }
    }

    /// Compact JSON, no newline:
    /// `{"key":"u1","window_start":0,"window_end":1000,"count":3,"sum":4.5}`, then for changelog
    /// rows `"op":"update","before":{…}` and `"final":true` at close. A key that is not valid
    /// UTF-8 is written `"key_base64":"…"`; `group_by: all` rows have no key; null for NaN.
    /// `seq` is written first when set (non-zero). `stored`: the form of a window's current row
    /// (`GET …/results`, resumes: no `op`, no `before`).
    public func json(columns: Columns, stored: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + (key?.count ?? 0) * 4 / 3 + values.count * 24)
        out.append(0x7B)
        if seq != 0 {
            JSONWriter.appendName("seq", to: &out)
            JSONWriter.appendInteger(Int64(seq), to: &out)
            out.append(0x2C)
        }
        if let key {
            key.withUnsafeBytes { JSONWriter.appendBytesField(name: columns.keyName, $0, to: &out) }
            out.append(0x2C)
        }
        JSONWriter.appendName("window_start", to: &out)
        JSONWriter.appendInteger(startMs, to: &out)
        out.append(0x2C)
        JSONWriter.appendName("window_end", to: &out)
        JSONWriter.appendInteger(endMs, to: &out)
        if op != .delete { Self.appendColumns(values, columns, to: &out) }
        if let op, !stored {
            out.append(contentsOf: #","op":""#.utf8)
            out.append(contentsOf: op.rawValue.utf8)
            out.append(0x22)
        }
        if let before, !stored {
            out.append(contentsOf: #","before":{"#.utf8)
            Self.appendColumns(before, columns, to: &out, leadingComma: false)
            out.append(0x7D)
        }
        if isFinal { out.append(contentsOf: #","final":true"#.utf8) }
        out.append(0x7D)
        return out
    }

    private static func appendColumns(_ values: [Double], _ columns: Columns, to out: inout [UInt8], leadingComma: Bool = true) {
        for (i, v) in values.enumerated() {
            if i > 0 || leadingComma { out.append(0x2C) }
            JSONWriter.appendString(columns.names[i], to: &out)
            out.append(0x3A)
            if v.isNaN {
                out.append(contentsOf: "null".utf8)
            } else if columns.integer[i] {
                JSONWriter.appendInteger(Int64(v), to: &out)
            } else {
                JSONWriter.appendNumber(v, to: &out)
            }
        }
    }
}

/// The reserved store keys of the reactor.
///
/// - `_results/{name}/{first seq}`: a result slice, rows with consecutive `seq`s (`ResultSlice`);
///   `_resulthead/{name}`: the oldest retained `seq` (u64), written as rows leave.
/// - `_streams/{name}/{key}\0\u{1}{start}`: the form of a result cursor (`GET …/results` pages);
///   a store key only for rows of earlier versions (`EarlierResults`). `{key}` is the event
///   key's bytes with each `00` byte written `00 FF`, ended by `00 01`: so cursors sort by event
///   key bytes first (a key before every longer key it begins), then by start. `{start}` is 16
///   upper-case hex digits of `UInt64(bitPattern: start) ^ 1<<63`, a fixed width whose byte
///   order is numeric order, negatives included (−1 → `7FFFFFFFFFFFFFFF`, 0 → `8000000000000000`).
/// - `_resultlog/{name}/{seq}`: earlier versions' retained-results log, moved into slices at
///   start-up (`migrateEarlierResults`).
/// - `_resultnext/{name}`: the next result sequence number (u64) of a deleted stream, so that a
///   stream defined again under that name goes on numbering where it stopped.
/// - `_streamdefs/{name}`: a definition; `_checkpoint/{name}`: a stream's checkpoint (or the head
///   of one stored in parts, `_checkpoint/{name}/{generation}/{part}`, 16 and 8 hex digits);
///   `_wal/{name}/{seq}`: a logged batch, watermark advance or changelog flush, `{seq}` 16 hex
///   digits.
/// - `_sources/{name}`: a named source's definition; `_sourcecp/{name}`: its checkpoint (the
///   oldest entry kept, the next sequence number, idempotency keys); `_srcwal/{name}/{seq}`: a
///   batch posted to it, read by every stream of the source.
public enum ReservedKeys {
    public static let prefixes: [[UInt8]] = ["_streams/", "_streamdefs/", "_checkpoint/", "_wal/", "_resultlog/", "_resultnext/",
                                             "_sources/", "_sourcecp/", "_srcwal/", "_results/", "_resulthead/"].map { Array($0.utf8) }

    /// Inlined first-byte test (every put asks; a call that looked at `key.first` was ~23
    /// instructions per put on the reactor), the prefixes compared only for keys starting `_`.
    @inline(__always)
    public static func isReserved(_ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { $0.first == UInt8(ascii: "_") } && startsWithReservedPrefix(key)
    }

    @inline(never)
    static func startsWithReservedPrefix(_ key: [UInt8]) -> Bool {
        prefixes.contains { key.starts(with: $0) }
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
    /// A stream name has no `/`, so these never meet another stream's keys.
    static func checkpointPartPrefix(_ stream: String) -> [UInt8] { Array("_checkpoint/\(stream)/".utf8) }
    static func checkpointPartPrefix(_ stream: String, generation: UInt64) -> [UInt8] {
        Array("_checkpoint/\(stream)/\(hex16(generation))/".utf8)
    }
    static func checkpointPart(_ stream: String, generation: UInt64, index: Int) -> [UInt8] {
        checkpointPartPrefix(stream, generation: generation) + Array(hex16(UInt64(index)).suffix(8).utf8)
    }
    public static func walPrefix(_ stream: String) -> [UInt8] { Array("_wal/\(stream)/".utf8) }
    public static func wal(_ stream: String, sequence: UInt64) -> [UInt8] { Array("_wal/\(stream)/\(hex16(sequence))".utf8) }
    public static func resultNext(_ stream: String) -> [UInt8] { Array("_resultnext/\(stream)".utf8) }
    public static let resultSlicePrefixAll: [UInt8] = Array("_results/".utf8)
    public static func resultSlicePrefix(_ stream: String) -> [UInt8] { Array("_results/\(stream)/".utf8) }
    public static func resultHead(_ stream: String) -> [UInt8] { Array("_resulthead/\(stream)".utf8) }
    public static let sourcePrefix: [UInt8] = Array("_sources/".utf8)
    public static func source(_ name: String) -> [UInt8] { Array("_sources/\(name)".utf8) }
    public static func sourceCheckpoint(_ name: String) -> [UInt8] { Array("_sourcecp/\(name)".utf8) }
    public static func sourceWALPrefix(_ name: String) -> [UInt8] { Array("_srcwal/\(name)/".utf8) }
    public static func sourceWAL(_ name: String, sequence: UInt64) -> [UInt8] { Array("_srcwal/\(name)/\(hex16(sequence))".utf8) }
}
