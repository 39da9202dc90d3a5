import LaminarFormats
import LaminarStore

/// How scan and watch lines carry keys and values.
public enum ValueEncoding: String, Sendable {
    /// JSON strings; a key or value that is not valid UTF-8 is sent as `key_base64` /
    /// `value_base64` instead, so nothing is lost.
    case utf8
    /// Always `key_base64` and `value_base64` (`?encoding=base64`).
    case base64
}

/// NDJSON lines of the key-value endpoint: scan results, watch events, batch results.
public enum KVLines {
    /// `{"key":…,"value":…,"version":n}\n`
    public static func appendEntry(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, version: Revision, encoding: ValueEncoding, to out: inout [UInt8]) {
        out.append(0x7B)
        appendField("key", key, encoding: encoding, to: &out)
        out.append(0x2C)
        appendField("value", value, encoding: encoding, to: &out)
        out.append(0x2C)
        JSONWriter.appendName("version", to: &out)
        JSONWriter.appendInteger(version, to: &out)
        out.append(contentsOf: [0x7D, 0x0A])
    }


    /// `"name":"…"` or `"name_base64":"…"` (`JSONWriter.appendBytesField`).
    public static func appendField(_ name: StaticString, _ bytes: UnsafeRawBufferPointer, encoding: ValueEncoding, to out: inout [UInt8]) {
        JSONWriter.appendBytesField(name, bytes, base64: encoding == .base64, to: &out)
    }
}
