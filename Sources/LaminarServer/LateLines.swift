import ExtrasBase64
import LaminarFormats
import LaminarReactor

/// The NDJSON form of a kept late event (`GET /streams/{name}/late`): the event as it arrived,
/// under the stream's field names, so it can be posted again as it is:
/// `{"<key_field>":"u1","<time_field>":1000,"<field>":1.5,…}` (each of the definition's `fields`). A key that is not valid UTF-8
/// (from a binary batch) comes as `"<key_field>_base64":"…"`.
enum LateLines {
    static func append(_ event: LateEvent, definition: StreamDefinition, to out: inout [UInt8]) {
        out.append(0x7B)
        let utf8 = event.key.withUnsafeBytes { UTF8Validation.isValid($0) }
        JSONWriter.appendString(utf8 ? definition.keyField : definition.keyField + "_base64", to: &out)
        out.append(0x3A)
        if utf8 {
            JSONWriter.appendString(event.key, to: &out)
        } else {
            out.append(0x22)
            out.append(contentsOf: Base64.encodeToBytes(bytes: event.key))
            out.append(0x22)
        }
        out.append(0x2C)
        JSONWriter.appendString(definition.timeField, to: &out)
        out.append(0x3A)
        JSONWriter.appendInteger(event.timestampMs, to: &out)
        for (name, value) in zip(definition.fields, event.values) {
            out.append(0x2C)
            JSONWriter.appendString(name, to: &out)
            out.append(0x3A)
            JSONWriter.appendNumber(value, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
    }
}
