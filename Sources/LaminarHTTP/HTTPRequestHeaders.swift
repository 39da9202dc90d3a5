import Glibc

/// A request's header fields as they arrived: names (lowercased) and values packed into one byte
/// array, looked up by comparing bytes, so receiving a request builds no `String` per field.
/// HTTP/2 pseudo-headers are not included (`:authority` is stored as `host`). Text is made only
/// where a caller asks for it (`subscript`).
///
/// Invariant: `fields[..<fieldCount]` index `bytes[..<byteCount]` in order, each name followed
/// by its value; names hold no upper-case letter.
public struct HTTPRequestHeaders: Sendable, Equatable {
    private struct Field: Sendable, Equatable {
        var nameStart: Int32
        var nameCount: Int32
        var valueCount: Int32
    }

    /// `bytes[..<byteCount]` and `fields[..<fieldCount]` are the fields; what lies past them is
    /// room kept from earlier requests (`removeAll` only resets the counts, and an append writes
    /// over that room: no `Array.removeAll(keepingCapacity:)`, which goes through
    /// `replaceSubrange`, and no growth check per byte run once the arrays are large enough).
    private var bytes: [UInt8] = []
    private var byteCount = 0
    private var fields: [Field] = []
    private var fieldCount = 0

    public init() {}

    public static func == (lhs: HTTPRequestHeaders, rhs: HTTPRequestHeaders) -> Bool {
        lhs.fieldCount == rhs.fieldCount && lhs.byteCount == rhs.byteCount
            && lhs.fields[..<lhs.fieldCount] == rhs.fields[..<rhs.fieldCount]
            && lhs.bytes[..<lhs.byteCount] == rhs.bytes[..<rhs.byteCount]
    }

    public var count: Int { fieldCount }

    /// Appends a field; the name is lowercased on the way in.
    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let start = byteCount
        append(lowercaseName: name, value: value)
        bytes.withUnsafeMutableBufferPointer { b in
            for i in start..<(start + name.count) where b[i] &- 0x41 < 26 { b[i] |= 0x20 }
        }
    }

    /// Appends a field whose name holds no upper-case letter already (HTTP/2: nghttp2 refuses
    /// a request with one), skipping the lowercasing pass.
    public mutating func append(lowercaseName name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let start = byteCount
        let end = start + name.count + value.count
        if bytes.count < end {
            // Room for this field and as much again (zeros, overwritten below).
            bytes.append(contentsOf: repeatElement(0, count: max(end - bytes.count, end)))
        }
        bytes.withUnsafeMutableBytes { b in
            if name.count > 0 { (b.baseAddress! + start).copyMemory(from: name.baseAddress!, byteCount: name.count) }
            if value.count > 0 { (b.baseAddress! + start + name.count).copyMemory(from: value.baseAddress!, byteCount: value.count) }
        }
        byteCount = end
        let field = Field(nameStart: Int32(truncatingIfNeeded: start), nameCount: Int32(truncatingIfNeeded: name.count),
                          valueCount: Int32(truncatingIfNeeded: value.count))
        if fieldCount < fields.count {
            fields[fieldCount] = field
        } else {
            fields.append(field)
        }
        fieldCount += 1
    }

    /// Empties the list, keeping the room for the next request's fields.
    public mutating func removeAll() {
        byteCount = 0
        fieldCount = 0
    }

    /// The bytes of the first value of `name` (given in lower case), or nil.
    public func value(_ name: String) -> ArraySlice<UInt8>? {
        guard let i = firstIndex(name) else { return nil }
        return valueBytes(fields[i])
    }

    /// The first value of `name` (given in lower case) as text, or nil.
    public subscript(name: String) -> String? {
        value(name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every value of `name` (given in lower case), in order, as text.
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        var name = name
        name.withUTF8 { n in
            for f in fields[..<fieldCount] where matches(f, UnsafeRawBufferPointer(n)) {
                out.append(String(decoding: valueBytes(f), as: UTF8.self))
            }
        }
        return out
    }

    /// Every field as text, in order (for tests and the fuzzers).
    public var pairs: [(name: String, value: String)] {
        fields[..<fieldCount].map { f in
            (String(decoding: bytes[Int(f.nameStart)..<Int(f.nameStart + f.nameCount)], as: UTF8.self),
             String(decoding: valueBytes(f), as: UTF8.self))
        }
    }

    /// Every field as its bytes, in order (for the fuzzers' round trips: a value need not be UTF-8).
    public var rawPairs: [(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>)] {
        fields[..<fieldCount].map { f in (bytes[Int(f.nameStart)..<Int(f.nameStart + f.nameCount)], valueBytes(f)) }
    }

    private func firstIndex(_ name: String) -> Int? {
        var name = name
        return name.withUTF8 { n in fields[..<fieldCount].firstIndex { matches($0, UnsafeRawBufferPointer(n)) } }
    }

    @inline(__always)
    private func matches(_ f: Field, _ name: UnsafeRawBufferPointer) -> Bool {
        guard Int(f.nameCount) == name.count else { return false }
        if name.isEmpty { return true }
        return bytes.withUnsafeBytes { b in memcmp(b.baseAddress! + Int(f.nameStart), name.baseAddress!, name.count) == 0 }
    }

    @inline(__always)
    private func valueBytes(_ f: Field) -> ArraySlice<UInt8> {
        let start = Int(f.nameStart + f.nameCount)
        return bytes[start..<(start + Int(f.valueCount))]
    }
}
