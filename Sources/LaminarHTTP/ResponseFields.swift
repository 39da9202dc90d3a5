import CNGHTTP2
import Glibc

/// The header fields of one HTTP/2 response, laid out for `nghttp2_submit_response`: names and
/// values packed into one raw buffer and the `nghttp2_nv` list pointing into it. One per session,
/// reused for every response (nghttp2 copies the fields during the submit call).
///
/// Sized before anything is written (`begin`), so no pointer into the buffer is ever invalidated
/// by growth, and written through raw pointers: no Array append, uniqueness check or retain per
/// field (the Array-based packing cost ~2 000 instructions per response under callgrind).
///
/// Names and values known when compiling (`StaticString`: `:status`, `content-type`, its value)
/// are not copied here but pointed at where they lie, flagged `NGHTTP2_NV_FLAG_NO_COPY_NAME` /
/// `_VALUE`: nghttp2 then neither copies them into its own block nor lowercases the name again
/// (they are lowercase, and static, so alive whenever nghttp2 reads them).
///
/// Invariants: `used <= bytesCapacity`, `count <= fieldsCapacity`; the fields are valid from
/// `begin` until the next `begin`. Loop thread only.
struct ResponseFields: ~Copyable {
    private var bytes: UnsafeMutablePointer<UInt8>
    private var bytesCapacity: Int
    private var used = 0
    private(set) var fields: UnsafeMutablePointer<nghttp2_nv>
    private var fieldsCapacity: Int
    private(set) var count = 0

    /// Room for a status, a content-type, an etag and a content-length without growing.
    init() {
        bytesCapacity = 256
        bytes = .allocate(capacity: bytesCapacity)
        fieldsCapacity = 8
        fields = .allocate(capacity: fieldsCapacity)
    }

    deinit {
        bytes.deallocate()
        fields.deallocate()
    }

    /// Digits a decimal `UInt64` takes at most.
    static let decimalBytesMax = 20

    /// Starts a new list of at most `fieldCount` fields and `byteCount` name and value bytes.
    mutating func begin(fieldCount: Int, byteCount: Int) {
        if byteCount > bytesCapacity {
            bytes.deallocate()
            bytesCapacity = max(byteCount, bytesCapacity * 2)
            bytes = .allocate(capacity: bytesCapacity)
        }
        if fieldCount > fieldsCapacity {
            fields.deallocate()
            fieldsCapacity = max(fieldCount, fieldsCapacity * 2)
            fields = .allocate(capacity: fieldsCapacity)
        }
        used = 0
        count = 0
    }

    /// Appends a field whose name and value are written by `writeName` / `writeValue`, each
    /// returning how many bytes it wrote (within what `begin` reserved).
    @inline(__always)
    private mutating func add(_ writeName: (UnsafeMutablePointer<UInt8>) -> Int, _ writeValue: (UnsafeMutablePointer<UInt8>) -> Int) {
        let name = bytes + used
        let nameLength = writeName(name)
        used += nameLength
        append(name: name, nameLength, writeValue, flags: 0)
    }

    /// Appends a field whose name is static (not copied) and whose value `writeValue` writes.
    @inline(__always)
    private mutating func add(_ name: StaticString, _ writeValue: (UnsafeMutablePointer<UInt8>) -> Int) {
        append(name: UnsafeMutablePointer(mutating: name.utf8Start), name.utf8CodeUnitCount, writeValue,
               flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue))
    }

    @inline(__always)
    private mutating func append(name: UnsafeMutablePointer<UInt8>, _ nameLength: Int,
                                 _ writeValue: (UnsafeMutablePointer<UInt8>) -> Int, flags: UInt8) {
        precondition(count < fieldsCapacity, "ResponseFields: more fields than begin reserved")
        let value = bytes + used
        let valueLength = writeValue(value)
        used += valueLength
        precondition(used <= bytesCapacity, "ResponseFields: more bytes than begin reserved")
        (fields + count).initialize(to: nghttp2_nv(name: name, value: value, namelen: nameLength, valuelen: valueLength, flags: flags))
        count += 1
    }

    @inline(__always)
    mutating func add(_ name: StaticString, _ value: String) {
        add(name) { Self.write(value, to: $0) }
    }

    /// A field whose name and value are both static: neither is copied.
    @inline(__always)
    mutating func add(_ name: StaticString, _ value: StaticString) {
        precondition(count < fieldsCapacity, "ResponseFields: more fields than begin reserved")
        (fields + count).initialize(to: nghttp2_nv(
            name: UnsafeMutablePointer(mutating: name.utf8Start), value: UnsafeMutablePointer(mutating: value.utf8Start),
            namelen: name.utf8CodeUnitCount, valuelen: value.utf8CodeUnitCount,
            flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)))
        count += 1
    }

    @inline(__always)
    mutating func add(_ name: String, _ value: String) {
        add({ Self.write(name, to: $0) }, { Self.write(value, to: $0) })
    }

    @inline(__always)
    mutating func add(_ name: StaticString, decimal: UInt64) {
        add(name) { Self.write(decimal: decimal, to: $0) }
    }

    /// `name: "N"`: an entity tag that is a number.
    @inline(__always)
    mutating func add(_ name: StaticString, quotedDecimal: UInt64) {
        add(name) { p in
            p[0] = 0x22
            let n = Self.write(decimal: quotedDecimal, to: p + 1)
            p[n + 1] = 0x22
            return n + 2
        }
    }

    /// A string's UTF-8 bytes, from its contiguous storage when it has one (native and literal
    /// strings do); `utf8.count` bytes.
    @inline(__always)
    private static func write(_ text: String, to p: UnsafeMutablePointer<UInt8>) -> Int {
        if let n = text.utf8.withContiguousStorageIfAvailable({ source -> Int in
            if let base = source.baseAddress { p.update(from: base, count: source.count) }
            return source.count
        }) {
            return n
        }
        var n = 0
        for b in text.utf8 {
            p[n] = b
            n += 1
        }
        return n
    }

    @inline(__always)
    static func write(decimal value: UInt64, to p: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        var n = value
        var i = digits
        repeat {
            i -= 1
            p[i] = UInt8(truncatingIfNeeded: n % 10) &+ 0x30
            n /= 10
        } while n > 0
        return digits
    }
}
