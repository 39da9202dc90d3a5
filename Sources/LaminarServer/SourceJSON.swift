import LaminarFormats
import LaminarReactor

/// The JSON form of a named source (`PUT /sources/{name}` body, `GET /sources/{name}`).
///
/// Input members: `key_field` (required), `time_field` (required), `fields` (required: an
/// object of `"name":"f64"` in batch order), `watermark_delay` ("0s"; also
/// `watermark_delay_ms`), `idle_timeout` ("10s"; also `idle_timeout_ms`). Unknown members and
/// bad values are refused naming the member. Output: those members (durations in ms, the `_ms`
/// forms), `name` and `streams` (the streams reading it), which input ignores.
enum SourceJSON {
    static func parse(name: String, body: [UInt8], limits: ReactorLimits) -> Result<SourceDefinition, HTTPFailure> {
        let value: JSONValue
        do { value = try JSONReader.parse(body) } catch {
            return .failure(invalid("the body is not JSON: \(error)"))
        }
        guard case .object(let members) = value else { return .failure(invalid("the body must be a JSON object")) }
        var definition = SourceDefinition(name: name, keyField: "", timeField: "", fields: [])
        for (member, v) in members {
            switch member {
            case "name":
                guard case .string(let s) = v, s == name else { return .failure(invalid("name: must match the name in the path (\(name))")) }
            case "key_field", "time_field":
                guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= 256 else {
                    return .failure(invalid("\(member): must be a non-empty string of at most 256 bytes"))
                }
                if member == "key_field" { definition.keyField = s } else { definition.timeField = s }
            case "fields":
                guard case .object(let items) = v, !items.isEmpty, items.count <= EventBatch.fieldsMax else {
                    return .failure(invalid("fields: must be an object of 1 to \(EventBatch.fieldsMax) fields such as {\"price\":\"f64\"}"))
                }
                for (field, type) in items {
                    guard case .string("f64") = type else { return .failure(invalid("fields: \(field): the type must be \"f64\"")) }
                    guard !field.isEmpty, field.utf8.count <= 256 else {
                        return .failure(invalid("fields: names must be non-empty strings of at most 256 bytes"))
                    }
                }
                definition.fields = items.map(\.0)
            case "watermark_delay", "watermark_delay_ms":
                guard let ms = StreamDefinitionJSON.milliseconds(v) else { return .failure(invalid("\(member): must be a duration such as \"5s\" or milliseconds, >= 0")) }
                definition.watermarkDelayMs = ms
            case "idle_timeout", "idle_timeout_ms":
                guard let ms = StreamDefinitionJSON.milliseconds(v), ms > 0 else {
                    return .failure(invalid("\(member): must be a positive duration such as \"10s\" or milliseconds"))
                }
                definition.idleTimeoutMs = ms
            case "streams":
                continue  // output only
            default:
                return .failure(invalid("\(member): unknown member"))
            }
        }
        if definition.keyField.isEmpty { return .failure(invalid("key_field: required")) }
        if definition.timeField.isEmpty { return .failure(invalid("time_field: required")) }
        if definition.fields.isEmpty { return .failure(invalid("fields: required")) }
        if let problem = definition.validate(limits: limits) { return .failure(invalid(problem)) }
        return .success(definition)
    }

    private static func invalid(_ detail: String) -> HTTPFailure { HTTPFailure(400, "invalid_source", detail) }

    /// `{"name":…,"key_field":…,"time_field":…,"fields":{…},"watermark_delay_ms":N,"idle_timeout_ms":N,"streams":[…]}`
    static func append(_ info: SourceInfo, to out: inout [UInt8]) {
        let d = info.definition
        out.append(contentsOf: #"{"name":"#.utf8)
        JSONWriter.appendString(d.name, to: &out)
        out.append(contentsOf: #","key_field":"#.utf8)
        JSONWriter.appendString(d.keyField, to: &out)
        out.append(contentsOf: #","time_field":"#.utf8)
        JSONWriter.appendString(d.timeField, to: &out)
        out.append(contentsOf: #","fields":"#.utf8)
        StreamDefinitionJSON.appendFieldTypes(d.fields, to: &out)
        out.append(contentsOf: #","watermark_delay_ms":"#.utf8)
        JSONWriter.appendInteger(d.watermarkDelayMs, to: &out)
        out.append(contentsOf: #","idle_timeout_ms":"#.utf8)
        JSONWriter.appendInteger(d.idleTimeoutMs, to: &out)
        out.append(contentsOf: #","streams":"#.utf8)
        JSONWriter.appendArray(info.streams, to: &out, JSONWriter.appendString)
        out.append(0x7D)
    }
}
