/// Which JSON members of an NDJSON event hold its key, time and numeric fields (a stream
/// definition's); `values` in the order the batch lays them out (1...`EventBatch.fieldsMax`).
public struct EventFields: Sendable, Hashable {
    public var key: String
    public var time: String
    public var values: [String]

    /// The first numeric field's name.
    public var value: String { values[0] }

    public init(key: String = "key", time: String = "ts", value: String = "value") {
        self.init(key: key, time: time, values: [value])
    }

    public init(key: String, time: String, values: [String]) {
        precondition(!values.isEmpty && values.count <= EventBatch.fieldsMax)
        self.key = key
        self.time = time
        self.values = values
    }
}

/// Decodes `application/x-ndjson` event batches incrementally, chunk by chunk as DATA frames
/// arrive: one JSON object per line with a string key, a number for each declared field (a
/// missing one refuses the line, naming it) and a time that is epoch
/// milliseconds (read exactly, never through a Double) or an RFC 3339 string (missing: arrival
/// time), within `±EventDecodeLimits.eventTimeAbsMaxMs`. Other members are ignored. A member name
/// given twice rejects the line. Blank lines are skipped. A line is parsed in place in the chunk;
/// only a line split across chunks is copied (bounded by `lineBytesMax`). Events go straight into
/// the batch builder.
public struct NDJSONEventDecoder {
    private var builder: EventBatch.Builder
    public let limits: EventDecodeLimits
    /// The time given to events without one (the request's arrival, ms since the epoch).
    public let arrivalMs: Int64
    private let keyName: [UInt8]
    private let timeName: [UInt8]
    private let valueNames: [[UInt8]]
    private var lineValues: [Double]
    private var partial: [UInt8] = []
    private var line = 0
    private var nameScratch: [UInt8] = []
    private var keyScratch: [UInt8] = []
    /// Names of the ignored members of the current line (bytes back to back, `otherNameEnds`) and
    /// their hashes (`Hasher`, seeded per process), to find a name given twice.
    private var otherNames: [UInt8] = []
    private var otherNameEnds: [Int] = []
    private var otherNameHashes: Set<Int> = []

    public init(fields: EventFields = EventFields(), limits: EventDecodeLimits = EventDecodeLimits(), arrivalMs: Int64) {
        self.limits = limits
        self.arrivalMs = arrivalMs
        keyName = Array(fields.key.utf8)
        timeName = Array(fields.time.utf8)
        valueNames = fields.values.map { Array($0.utf8) }
        lineValues = Array(repeating: 0, count: fields.values.count)
        builder = EventBatch.Builder(fieldCount: fields.values.count)
    }

    /// Feeds the next chunk of the body.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) throws(EventDecodeError) {
        var start = 0
        while start < chunk.count {
            guard let newline = Self.indexOfNewline(chunk, from: start) else {
                let rest = chunk.count - start
                if partial.count + rest > limits.lineBytesMax {
                    throw EventDecodeError(line: line + 1, reason: "line longer than \(limits.lineBytesMax) bytes")
                }
                partial.appendBytes(UnsafeRawBufferPointer(rebasing: chunk[start...]))
                return
            }
            if partial.isEmpty {
                // The limit holds for a line within one chunk too, so that the verdict on a body
                // does not depend on how it was cut into chunks.
                if newline - start > limits.lineBytesMax {
                    throw EventDecodeError(line: line + 1, reason: "line longer than \(limits.lineBytesMax) bytes")
                }
                try decodeLine(UnsafeRawBufferPointer(rebasing: chunk[start..<newline]))
            } else {
                if partial.count + (newline - start) > limits.lineBytesMax {
                    throw EventDecodeError(line: line + 1, reason: "line longer than \(limits.lineBytesMax) bytes")
                }
                partial.appendBytes(UnsafeRawBufferPointer(rebasing: chunk[start..<newline]))
                let whole = partial
                partial.removeAll(keepingCapacity: true)
                try withBytes(whole) { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try decodeLine(b) }
            }
            start = newline + 1
        }
    }

    public mutating func feed(_ bytes: [UInt8]) throws(EventDecodeError) {
        try withBytes(bytes) { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try feed(b) }
    }

    /// Events decoded so far.
    public var count: Int { builder.count }

    /// Ends the body: decodes a last line without a newline and returns the batch.
    public mutating func finish() throws(EventDecodeError) -> EventBatch {
        if !partial.isEmpty {
            let whole = partial
            partial.removeAll()
            try withBytes(whole) { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try decodeLine(b) }
        }
        return builder.build()
    }

    private static func indexOfNewline(_ chunk: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < chunk.count, let base = chunk.baseAddress else { return nil }
        guard let p = memchr(base + start, 0x0A, chunk.count - start) else { return nil }
        return UnsafeRawPointer(p) - base
    }

    private mutating func decodeLine(_ bytes: UnsafeRawBufferPointer) throws(EventDecodeError) {
        line += 1
        var content = bytes
        if let last = content.last, last == 0x0D { content = UnsafeRawBufferPointer(rebasing: content.dropLast()) }
        var reader = JSONReader(content)
        reader.skipWhitespace()
        if reader.atEnd { return }  // blank line
        if builder.count >= limits.eventsMax {
            throw EventDecodeError(line: line, reason: "more than \(limits.eventsMax) events in one batch")
        }
        var timestamp = arrivalMs
        var timeInRange = true
        var seen: UInt32 = 0       // bit 0 key, 1 time, 2 + j field j
        if !otherNameEnds.isEmpty {
            otherNames.removeAll(keepingCapacity: true)
            otherNameEnds.removeAll(keepingCapacity: true)
            otherNameHashes.removeAll(keepingCapacity: true)
        }
        var key: Range<Int>?       // in place in the line, or
        var keyEscaped = false     // unescaped in `keyScratch`
        do throws(JSONError) {
            // One flat object; members other than the three are skipped, whatever they hold.
            try reader.expect(0x7B, "an object")
            reader.skipWhitespace()
            var more = reader.peek() != 0x7D
            if !more { reader.position += 1 }
            while more {
                let nameOffset = reader.position
                let nameSpan = try reader.readStringSpan(scratch: &nameScratch)
                let which = member(nameSpan, content)
                let bit: UInt32 = switch which { case .key: 1; case .time: 2; case .value(let j): 4 << j; case .other: 0 }
                if bit != 0 ? seen & bit != 0 : !rememberOtherName(nameSpan, content) {
                    throw JSONError(offset: nameOffset, reason: "duplicate member \"\(memberName(nameSpan, content))\"")
                }
                seen |= bit
                try reader.expect(0x3A, "':'")
                switch which {
                case .key:
                    guard reader.peekNonWhitespace() == 0x22 else { throw reader.error("\"\(fieldName(keyName))\" must be a string") }
                    key = try reader.readStringSpan(scratch: &keyScratch)
                    keyEscaped = key == nil
                case .time:
                    switch reader.peekNonWhitespace() {
                    case 0x22:
                        let span = try reader.readStringSpan(scratch: &nameScratch)
                        let ms = span.map { RFC3339.parseMilliseconds(UnsafeRawBufferPointer(rebasing: content[$0])) }
                            ?? nameScratch.withUnsafeBytes { RFC3339.parseMilliseconds($0) }
                        guard let ms else { throw reader.error("\"\(fieldName(timeName))\" is not an RFC 3339 time") }
                        timestamp = ms
                    case 0x6E:
                        try reader.skipValue()  // null: arrival time
                    default:
                        switch try reader.readInteger() {
                        case .exact(let ms): timestamp = ms
                        case .outOfRange: timeInRange = false
                        case .notWhole: throw reader.error("\"\(fieldName(timeName))\" must be whole milliseconds")
                        }
                    }
                case .value(let j):
                    let c = reader.peekNonWhitespace()
                    guard c == 0x2D || (c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false) else {
                        throw reader.error("\"\(fieldName(valueNames[j]))\" must be a number")
                    }
                    lineValues[j] = try reader.readNumber()
                case .other:
                    try reader.skipValue(depth: 1)
                }
                reader.skipWhitespace()
                guard let d = reader.peek() else { throw reader.error("unterminated object") }
                reader.position += 1
                if d == 0x7D { break }
                guard d == 0x2C else { throw reader.error("expected ',' or '}'") }
                more = true
            }
            reader.skipWhitespace()
            guard reader.atEnd else { throw reader.error("trailing characters after the object") }
        } catch {
            throw EventDecodeError(line: line, reason: error.description)
        }
        guard key != nil || keyEscaped else { throw EventDecodeError(line: line, reason: "missing \"\(fieldName(keyName))\"") }
        let keyLength = key?.count ?? keyScratch.count
        guard keyLength >= 1, keyLength <= limits.keyBytesMax else {
            throw EventDecodeError(line: line, reason: "key must be 1 to \(limits.keyBytesMax) bytes")
        }
        if seen >> 2 != (1 << valueNames.count) - 1 {
            let j = (~(seen >> 2)).trailingZeroBitCount
            throw EventDecodeError(line: line, reason: "missing \"\(fieldName(valueNames[j]))\"")
        }
        guard timeInRange, timestamp >= -EventDecodeLimits.eventTimeAbsMaxMs, timestamp <= EventDecodeLimits.eventTimeAbsMaxMs else {
            throw EventDecodeError(line: line, reason: EventDecodeLimits.timeOutOfRange)
        }
        lineValues.withUnsafeBufferPointer { values in
            if let key {
                builder.append(key: UnsafeRawBufferPointer(rebasing: content[key]), timestamp: timestamp, fields: values)
            } else {
                builder.append(key: keyScratch, timestamp: timestamp, fields: values)
            }
        }
    }

    private enum Member { case key, time, value(Int), other }

    /// Which of the three fields a member name is (its bytes in place in `line`, or in `nameScratch`).
    @inline(__always)
    private func member(_ span: Range<Int>?, _ line: UnsafeRawBufferPointer) -> Member {
        func equals(_ name: [UInt8]) -> Bool {
            guard let span else { return nameScratch == name }
            guard span.count == name.count else { return false }
            var i = 0
            while i < name.count {  // names are short: a loop beats a memcmp call
                if name[i] != line[span.lowerBound + i] { return false }
                i += 1
            }
            return true
        }
        if equals(keyName) { return .key }
        if equals(timeName) { return .time }
        for j in 0..<valueNames.count where equals(valueNames[j]) { return .value(j) }
        return .other
    }

    private func fieldName(_ name: [UInt8]) -> String { String(decoding: name, as: UTF8.self) }

    /// A member name as text, for an error (in place in `line`, or in `nameScratch`).
    private func memberName(_ span: Range<Int>?, _ line: UnsafeRawBufferPointer) -> String {
        span.map { String(decoding: UnsafeRawBufferPointer(rebasing: line[$0]), as: UTF8.self) } ?? fieldName(nameScratch)
    }

    /// Records the name of an ignored member; false if the line had it already.
    private mutating func rememberOtherName(_ span: Range<Int>?, _ line: UnsafeRawBufferPointer) -> Bool {
        let name = span.map { UnsafeRawBufferPointer(rebasing: line[$0]) }
        var hasher = Hasher()
        if let name { hasher.combine(bytes: name) } else { nameScratch.withUnsafeBytes { hasher.combine(bytes: $0) } }
        if !otherNameHashes.insert(hasher.finalize()).inserted {
            // Same hash: a duplicate, unless two names collide (then both are kept).
            var start = 0
            for end in otherNameEnds {
                let earlier = otherNames[start..<end]
                let same = name.map { earlier.elementsEqual($0) } ?? earlier.elementsEqual(nameScratch)
                if same { return false }
                start = end
            }
        }
        if let name { otherNames.appendBytes(name) } else { otherNames.append(contentsOf: nameScratch) }
        otherNameEnds.append(otherNames.count)
        return true
    }
}

extension JSONReader {
    /// The next byte that is not whitespace, without consuming anything but whitespace.
    public mutating func peekNonWhitespace() -> UInt8? {
        skipWhitespace()
        return peek()
    }
}

/// The binary event batch formats, `application/vnd.laminar.events` (see
/// `proto-docs/event-formats.md`); all little-endian.
/// - `LEV1` (one numeric field): an 8-byte header (`"LEV1"`, u32 event count), then per event a
///   u16 key length, the key, an i64 time in ms (`Int64.min`: arrival time) and an f64 value.
/// - `LEV2` (several fields): a 12-byte header (`"LEV2"`, u32 event count, u32 fields per event
///   `m`, 1...`EventBatch.fieldsMax`), then per event a u16 key length, the key, an i64 time and
///   `m` f64 values in the order of the stream's `fields`.
public enum BinaryEventFormat {
    public static let magic: [UInt8] = Array("LEV1".utf8)
    public static let magic2: [UInt8] = Array("LEV2".utf8)
    public static let headerBytes = 8
    public static let header2Bytes = 12
    /// Bytes of a one-field event besides its key.
    public static let fixedEventBytes = 2 + 8 + 8

    /// Encodes the events of `batch` (the sending side, e.g. the load-test client): `LEV1` for
    /// one field, `LEV2` for more; `EventBatch.arrivalTime` as a time asks for the arrival time.
    public static func encode(_ batch: EventBatch.Builder, into out: inout [UInt8]) {
        let m = batch.fieldCount
        out.reserveCapacity(out.count + header2Bytes + batch.keyByteCount + batch.count * (10 + 8 * m))
        out.append(contentsOf: m == 1 ? magic : magic2)
        withUnsafeBytes(of: UInt32(batch.count).littleEndian) { out.append(contentsOf: $0) }
        if m > 1 { withUnsafeBytes(of: UInt32(m).littleEndian) { out.append(contentsOf: $0) } }
        for i in 0..<batch.count {
            batch.withKey(i) { key in
                withUnsafeBytes(of: UInt16(key.count).littleEndian) { out.append(contentsOf: $0) }
                out.appendBytes(key)
            }
            withUnsafeBytes(of: batch.timestamp(i).littleEndian) { out.append(contentsOf: $0) }
            for j in 0..<m { withUnsafeBytes(of: batch.field(i, j).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
    }
}

/// Decodes the binary event formats incrementally, chunk by chunk. Errors name the 1-based event
/// (`event 3: …`) or the header (`header: …`); times must lie within
/// `±EventDecodeLimits.eventTimeAbsMaxMs`. Events are read in place in
/// the chunk; only an event split across chunks is copied. Events go straight into the batch
/// builder, which has the header's field count (the reactor checks it against the stream's).
public struct BinaryEventDecoder {
    private var builder = EventBatch.Builder()
    public let limits: EventDecodeLimits
    /// The time given to events sent with `EventBatch.arrivalTime`.
    public let arrivalMs: Int64
    private var partial: [UInt8] = []
    private var expected: Int?
    private var fields = 1

    public init(limits: EventDecodeLimits = EventDecodeLimits(), arrivalMs: Int64) {
        self.limits = limits
        self.arrivalMs = arrivalMs
    }

    /// Events decoded so far.
    public var count: Int { builder.count }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) throws(EventDecodeError) {
        var chunk = chunk
        // Complete a split header or event with bytes from this chunk first.
        while !partial.isEmpty && !chunk.isEmpty {
            let need = try bytesNeeded(partial)
            let take = min(need - partial.count, chunk.count)
            partial.appendBytes(UnsafeRawBufferPointer(rebasing: chunk[..<take]))
            chunk = UnsafeRawBufferPointer(rebasing: chunk[take...])
            if partial.count == (try bytesNeeded(partial)) {
                let whole = partial
                partial.removeAll(keepingCapacity: true)
                var used = 0
                used = try withBytes(whole) { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try consume(b) }
                precondition(used == whole.count)
            }
        }
        var offset = 0
        while offset < chunk.count {
            let rest = UnsafeRawBufferPointer(rebasing: chunk[offset...])
            let used = try consume(rest)
            if used == 0 {
                partial.appendBytes(rest)
                return
            }
            offset += used
        }
    }

    public mutating func feed(_ bytes: [UInt8]) throws(EventDecodeError) {
        try withBytes(bytes) { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try feed(b) }
    }

    public mutating func finish() throws(EventDecodeError) -> EventBatch {
        guard let expected else {
            let two = partial.count >= 4 && partial[0..<4].elementsEqual(BinaryEventFormat.magic2)
            throw EventDecodeError(event: 0, reason: "missing the \(two ? BinaryEventFormat.header2Bytes : BinaryEventFormat.headerBytes)-byte header")
        }
        if !partial.isEmpty || builder.count != expected {
            throw EventDecodeError(event: builder.count + 1, reason: "truncated: header says \(expected) events, body has \(builder.count)")
        }
        return builder.build()
    }

    /// Size of the unit (header or event) that `bytes` starts, as far as it can tell; at least
    /// `bytes.count + 1` while the size field itself is incomplete. A bad key length throws at
    /// once, as `consume` does, so the error does not depend on where the body was cut.
    private func bytesNeeded(_ bytes: [UInt8]) throws(EventDecodeError) -> Int {
        if expected == nil {
            return bytes.count >= 4 && bytes[0..<4].elementsEqual(BinaryEventFormat.magic2)
                ? BinaryEventFormat.header2Bytes : BinaryEventFormat.headerBytes
        }
        if bytes.count < 2 { return 2 }
        let keyLength = Int(bytes[0]) | Int(bytes[1]) << 8
        guard keyLength >= 1 && keyLength <= limits.keyBytesMax else {
            throw EventDecodeError(event: builder.count + 1, reason: "key must be 1 to \(limits.keyBytesMax) bytes, got \(keyLength)")
        }
        return 10 + 8 * fields + keyLength
    }

    /// Decodes one whole unit at the start of `bytes`; returns its size, or 0 if incomplete.
    private mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(EventDecodeError) -> Int {
        guard let expected else {
            guard bytes.count >= BinaryEventFormat.headerBytes else { return 0 }
            let two = (0..<4).allSatisfy { bytes[$0] == BinaryEventFormat.magic2[$0] }
            if !two {
                for i in 0..<4 where bytes[i] != BinaryEventFormat.magic[i] {
                    throw EventDecodeError(event: 0, reason: "bad magic: expected \"LEV1\" or \"LEV2\"")
                }
            }
            // The whole header first, so the verdict does not depend on where the body was cut.
            if two && bytes.count < BinaryEventFormat.header2Bytes { return 0 }
            let n = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            guard n <= limits.eventsMax else { throw EventDecodeError(event: 0, reason: "more than \(limits.eventsMax) events in one batch") }
            var size = BinaryEventFormat.headerBytes
            if two {
                let m = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
                guard m >= 1 && m <= EventBatch.fieldsMax else {
                    throw EventDecodeError(event: 0, reason: "fields per event must be 1 to \(EventBatch.fieldsMax), got \(m)")
                }
                fields = m
                builder = EventBatch.Builder(fieldCount: m)
                size = BinaryEventFormat.header2Bytes
            }
            self.expected = n
            builder.reserveCapacity(min(n, 1 << 16))  // the header is not trusted with memory
            return size
        }
        guard bytes.count >= 2 else { return 0 }
        let event = builder.count + 1
        let keyLength = Int(UInt16(littleEndian: bytes.loadUnaligned(as: UInt16.self)))
        guard keyLength >= 1 && keyLength <= limits.keyBytesMax else {
            throw EventDecodeError(event: event, reason: "key must be 1 to \(limits.keyBytesMax) bytes, got \(keyLength)")
        }
        let size = 10 + 8 * fields + keyLength
        guard bytes.count >= size else { return 0 }
        guard builder.count < expected else {
            throw EventDecodeError(event: event, reason: "more events than the header's \(expected)")
        }
        let time = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 + keyLength, as: Int64.self))
        let timestamp = time == EventBatch.arrivalTime ? arrivalMs : time
        let fields = self.fields
        let key = UnsafeRawBufferPointer(rebasing: bytes[2..<(2 + keyLength)])
        // The values go straight into the builder's column, each checked as it is written.
        try builder.append(key: key, timestamp: timestamp) { (slot: UnsafeMutablePointer<Double>) throws(EventDecodeError) in
            for j in 0..<fields {
                let value = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 10 + keyLength + 8 * j, as: UInt64.self)))
                guard value.isFinite else {
                    throw EventDecodeError(event: event, reason: fields == 1 ? "value is not a finite number" : "field \(j + 1) is not a finite number")
                }
                (slot + j).initialize(to: value)
            }
            guard timestamp >= -EventDecodeLimits.eventTimeAbsMaxMs, timestamp <= EventDecodeLimits.eventTimeAbsMaxMs else {
                throw EventDecodeError(event: event, reason: EventDecodeLimits.timeOutOfRange)
            }
        }
        return size
    }
}

/// RFC 3339 timestamps (`2024-11-24T12:00:00Z`, `2024-11-24T12:00:00.123+01:00`) to epoch ms.
public enum RFC3339 {
    public static func parseMilliseconds(_ text: [UInt8]) -> Int64? {
        text.withUnsafeBytes { parseMilliseconds($0) }
    }

    public static func parseMilliseconds(_ text: UnsafeRawBufferPointer) -> Int64? {
        let n = text.count
        guard n >= 20 else { return nil }
        func digits(_ at: Int, _ count: Int) -> Int? {
            var v = 0
            for i in at..<(at + count) {
                guard i < n, text[i] >= 0x30 && text[i] <= 0x39 else { return nil }
                v = v * 10 + Int(text[i] - 0x30)
            }
            return v
        }
        guard let year = digits(0, 4), text[4] == 0x2D, let month = digits(5, 2), text[7] == 0x2D, let day = digits(8, 2),
            text[10] == 0x54 || text[10] == 0x74 || text[10] == 0x20,
            let hour = digits(11, 2), text[13] == 0x3A, let minute = digits(14, 2), text[16] == 0x3A, let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month), hour < 24, minute < 60, second <= 60 else { return nil }
        var i = 19
        var millis = 0
        if i < n && text[i] == 0x2E {
            i += 1
            var scale = 100
            let start = i
            while i < n && text[i] >= 0x30 && text[i] <= 0x39 {
                millis += Int(text[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < n else { return nil }
        var offsetMinutes = 0
        switch text[i] {
        case 0x5A, 0x7A:
            i += 1
        case 0x2B, 0x2D:
            guard let oh = digits(i + 1, 2), i + 3 < n, text[i + 3] == 0x3A, let om = digits(i + 4, 2), oh < 24, om < 60 else { return nil }
            offsetMinutes = (oh * 60 + om) * (text[i] == 0x2D ? -1 : 1)
            i += 6
        default:
            return nil
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(millis)
    }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
