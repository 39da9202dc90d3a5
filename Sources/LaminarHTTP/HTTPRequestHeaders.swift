import Glibc

/// A request's header fields as they arrived: names (lowercased) and values packed into one byte
/// array, looked up by comparing bytes, so receiving a request builds no `String` per field.
/// HTTP/2 pseudo-headers are not included (`:authority` is stored as `host`). Text is made only
/// where a caller asks for it (`subscript`).
///
/// Invariant: `fields` index `bytes` in order, each name followed by its value; names hold no
/// upper-case letter.
public struct HTTPRequestHeaders: Sendable, Equatable {
    private struct Field: Sendable, Equatable {
        var nameStart: Int32
        var nameCount: Int32
        var valueCount: Int32
    }

    private var bytes: [UInt8] = []
    private var fields: [Field] = []

    public init() {}

    public var count: Int { fields.count }

    /// Appends a field; the name is lowercased on the way in.
    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let start = bytes.count
        append(lowercaseName: name, value: value)
        bytes.withUnsafeMutableBufferPointer { b in
            for i in start..<(start + name.count) where b[i] &- 0x41 < 26 { b[i] |= 0x20 }
        }
    }

    /// Appends a field whose name holds no upper-case letter already (HTTP/2: nghttp2 refuses
    /// a request with one), skipping the lowercasing pass.
    public mutating func append(lowercaseName name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let start = bytes.count
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.baseAddress?.assumingMemoryBound(to: UInt8.self), count: name.count))
        bytes.append(contentsOf: UnsafeBufferPointer(start: value.baseAddress?.assumingMemoryBound(to: UInt8.self), count: value.count))
        fields.append(Field(nameStart: Int32(truncatingIfNeeded: start), nameCount: Int32(truncatingIfNeeded: name.count),
                            valueCount: Int32(truncatingIfNeeded: value.count)))
    }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
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
            for f in fields where matches(f, UnsafeRawBufferPointer(n)) { out.append(String(decoding: valueBytes(f), as: UTF8.self)) }
        }
        return out
    }

    /// Every field as text, in order (for tests and the fuzzers).
    public var pairs: [(name: String, value: String)] {
        fields.map { f in
            (String(decoding: bytes[Int(f.nameStart)..<Int(f.nameStart + f.nameCount)], as: UTF8.self),
             String(decoding: valueBytes(f), as: UTF8.self))
        }
    }

    /// Every field as its bytes, in order (for the fuzzers' round trips: a value need not be UTF-8).
    public var rawPairs: [(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>)] {
        fields.map { f in (bytes[Int(f.nameStart)..<Int(f.nameStart + f.nameCount)], valueBytes(f)) }
    }

    private func firstIndex(_ name: String) -> Int? {
        var name = name
        return name.withUTF8 { n in fields.firstIndex { matches($0, UnsafeRawBufferPointer(n)) } }
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
