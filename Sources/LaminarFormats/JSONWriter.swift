import ExtrasBase64

/// Appends JSON text to a byte buffer without building a tree: the NDJSON responses (scan lines,
/// window results, errors) are written with it straight into the response body.
public enum JSONWriter {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `bytes`, which must be valid UTF-8, as a JSON string with quotes.
    public static func appendString(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(0x22)
        var runStart = 0
        for i in 0..<bytes.count {
            let c = bytes[i]
            if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
            if i > runStart { out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])) }
            runStart = i + 1
            switch c {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            default: out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            }
        }
        if bytes.count > runStart { out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart...])) }
        out.append(0x22)
    }

    public static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendString(UnsafeRawBufferPointer($0), to: &out) }
    }

    public static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        bytes.withUnsafeBytes { appendString($0, to: &out) }
    }

    /// Appends `"name":"…"` when `bytes` is valid UTF-8 and `base64` is false, otherwise
    /// `"name_base64":"…"` (standard alphabet, padded): the lossless form of keys and values that
    /// are bytes (KV scans, watches and batch results; window results and follow lines).
    public static func appendBytesField(_ name: StaticString, _ bytes: UnsafeRawBufferPointer, base64: Bool = false, to out: inout [UInt8]) {
        if !base64 && UTF8Validation.isValid(bytes) {
            appendName(name, to: &out)
            appendString(bytes, to: &out)
        } else {
            out.append(0x22)
            out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: "_base64\":\"".utf8)
            out.append(contentsOf: Base64.encodeToBytes(bytes: bytes))
            out.append(0x22)
        }
    }

    /// `appendBytesField` with a name chosen at run time (a stream's key column; written as a
    /// JSON string, `_base64` appended for bytes that are not UTF-8).
    public static func appendBytesField(name: String, _ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        if UTF8Validation.isValid(bytes) {
            appendString(name, to: &out)
            out.append(0x3A)
            appendString(bytes, to: &out)
        } else {
            appendString(name + "_base64", to: &out)
            out.append(0x3A)
            out.append(0x22)
            out.append(contentsOf: Base64.encodeToBytes(bytes: bytes))
            out.append(0x22)
        }
    }

    /// Appends `"name":` (the name is plain ASCII chosen by the caller).
    public static func appendName(_ name: StaticString, to out: inout [UInt8]) {
        out.append(0x22)
        out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        out.append(contentsOf: [0x22, 0x3A])
    }

    public static func appendInteger<T: BinaryInteger>(_ v: T, to out: inout [UInt8]) {
        out.append(contentsOf: String(v).utf8)
    }

    /// Appends a finite number in the shortest form that reads back exactly; integral values
    /// without a fraction. Non-finite values (never produced by the aggregates) become `null`.
    public static func appendNumber(_ v: Double, to out: inout [UInt8]) {
        guard v.isFinite else {
            out.append(contentsOf: "null".utf8)
            return
        }
        if v == v.rounded() && abs(v) < 1e15 {
            out.append(contentsOf: String(Int64(v)).utf8)
        } else {
            out.append(contentsOf: v.description.utf8)
        }
    }

    /// `[e0,e1,…]`: each element written by `element`, commas between.
    @inline(__always)
    public static func appendArray<C: Collection>(_ items: C, to out: inout [UInt8], _ element: (C.Element, inout [UInt8]) -> Void) {
        out.append(0x5B)
        var first = true
        for item in items {
            if !first { out.append(0x2C) }
            first = false
            element(item, &out)
        }
        out.append(0x5D)
    }

    /// The error body of every endpoint: `{"error":"...","detail":"..."}`.
    public static func errorBody(_ error: String, detail: String) -> [UInt8] {
        var out: [UInt8] = []
        out.append(0x7B)
        appendName("error", to: &out)
        appendString(error, to: &out)
        out.append(0x2C)
        appendName("detail", to: &out)
        appendString(detail, to: &out)
        out.append(contentsOf: [0x7D, 0x0A])
        return out
    }
}
