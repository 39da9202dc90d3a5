import LaminarFormats
import LaminarReactor

/// The JSON form of a stream definition (`PUT /streams/{name}` body, `GET /streams/{name}`).
///
/// Input fields, all optional: `key_field` ("key"), `time_field` ("ts"), `value_field` ("value"),
/// `window` ("1s"; a duration such as "500ms", "10s", "5m", or integer milliseconds; also
/// `window_ms`), `allowed_lateness` (0; also `allowed_lateness_ms`), `aggregates`
/// (["count","sum","min","max","avg"]), `idle_timeout` ("10s"; also `idle_timeout_ms`),
/// `retention` ("24h", how long result rows stay after their window ends; also `retention_ms`).
/// Unknown fields and bad values are refused with the field's name.
enum StreamDefinitionJSON {
    static let windowDefaultMs: Int64 = 1000

    static func parse(name: String, body: [UInt8], limits: ReactorLimits) -> Result<StreamDefinition, HTTPFailure> {
        var definition = StreamDefinition(name: name, windowSizeMs: windowDefaultMs)
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return .success(definition)  // an empty body: every default
        }
        let value: JSONValue
        do { value = try JSONReader.parse(body) } catch {
            return .failure(.invalidStream("the body is not JSON: \(error)"))
        }
        guard case .object(let members) = value else { return .failure(.invalidStream("the body must be a JSON object")) }
        for (field, member) in members {
            switch field {
            case "name":
                guard case .string(let s) = member, s == name else {
                    return .failure(.invalidStream("name: must match the name in the path (\(name))"))
                }
            case "key_field", "time_field", "value_field":
                guard case .string(let s) = member, !s.isEmpty, s.utf8.count <= 256 else {
                    return .failure(.invalidStream("\(field): must be a non-empty string of at most 256 bytes"))
                }
                if field == "key_field" { definition.keyField = s }
                if field == "time_field" { definition.timeField = s }
                if field == "value_field" { definition.valueField = s }
            case "window", "window_ms":
                guard let ms = milliseconds(member), ms > 0 else {
                    return .failure(.invalidStream("\(field): must be a positive duration such as \"1s\" or milliseconds"))
                }
                definition.windowSizeMs = ms
            case "allowed_lateness", "allowed_lateness_ms":
                guard let ms = milliseconds(member), ms >= 0 else {
                    return .failure(.invalidStream("\(field): must be a duration such as \"2s\" or milliseconds, >= 0"))
                }
                definition.allowedLatenessMs = ms
            case "idle_timeout", "idle_timeout_ms":
                guard let ms = milliseconds(member), ms > 0 else {
                    return .failure(.invalidStream("\(field): must be a positive duration such as \"10s\" or milliseconds"))
                }
                definition.idleTimeoutMs = ms
            case "retention", "retention_ms":
                guard let ms = milliseconds(member), ms > 0 else {
                    return .failure(.invalidStream("\(field): must be a positive duration such as \"24h\" or milliseconds"))
                }
                definition.retentionMs = ms
            case "aggregates":
                guard case .array(let items) = member, !items.isEmpty else {
                    return .failure(.invalidStream("aggregates: must be a non-empty array of count, sum, min, max, avg"))
                }
                var aggregates: [Aggregate] = []
                for item in items {
                    guard case .string(let s) = item, let a = Aggregate(rawValue: s) else {
                        return .failure(.invalidStream("aggregates: each must be one of count, sum, min, max, avg"))
                    }
                    if !aggregates.contains(a) { aggregates.append(a) }
                }
                definition.aggregates = aggregates
            default:
                return .failure(.invalidStream("\(field): unknown field"))
            }
        }
        if let problem = definition.validate(limits: limits) { return .failure(.invalidStream(problem)) }
        return .success(definition)
    }

    private static func milliseconds(_ value: JSONValue) -> Int64? {
        switch value {
        case .number(let n):
            guard n == n.rounded(), n >= 0, n <= Double(ReactorLimits.eventTimeAbsMaxMs) else { return nil }
            return Int64(n)
        case .string(let s):
            if s == "0" || s == "0s" || s == "0ms" { return 0 }
            return DurationText.milliseconds(s)
        default:
            return nil
        }
    }

    /// `{"name":…,"key_field":…,"time_field":…,"value_field":…,"window_ms":…,
    /// "allowed_lateness_ms":…,"aggregates":[…],"idle_timeout_ms":…,"retention_ms":…}` (no closing brace when
    /// `open`, so stats can follow).
    static func append(_ d: StreamDefinition, to out: inout [UInt8], open: Bool = false) {
        out.append(contentsOf: #"{"name":"#.utf8); JSONWriter.appendString(d.name, to: &out)
        out.append(contentsOf: #","key_field":"#.utf8); JSONWriter.appendString(d.keyField, to: &out)
        out.append(contentsOf: #","time_field":"#.utf8); JSONWriter.appendString(d.timeField, to: &out)
        out.append(contentsOf: #","value_field":"#.utf8); JSONWriter.appendString(d.valueField, to: &out)
        out.append(contentsOf: #","window_ms":"#.utf8); JSONWriter.appendInteger(d.windowSizeMs, to: &out)
        out.append(contentsOf: #","allowed_lateness_ms":"#.utf8); JSONWriter.appendInteger(d.allowedLatenessMs, to: &out)
        out.append(contentsOf: #","aggregates":["#.utf8)
        for (i, a) in d.aggregates.enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONWriter.appendString(a.rawValue, to: &out)
        }
        out.append(contentsOf: #"],"idle_timeout_ms":"#.utf8); JSONWriter.appendInteger(d.idleTimeoutMs, to: &out)
        out.append(contentsOf: #","retention_ms":"#.utf8); JSONWriter.appendInteger(d.retentionMs, to: &out)
        if !open { out.append(0x7D) }
    }

    /// The definition followed by `"stats":{…}`.
    static func appendStats(_ s: StreamStats, to out: inout [UInt8]) {
        append(s.definition, to: &out, open: true)
        out.append(contentsOf: #","stats":{"events":"#.utf8); JSONWriter.appendInteger(s.eventsAccepted, to: &out)
        out.append(contentsOf: #","late_events":"#.utf8); JSONWriter.appendInteger(s.eventsLate, to: &out)
        out.append(contentsOf: #","watermark":"#.utf8)
        if s.watermarkMs == .min { out.append(contentsOf: "null".utf8) } else { JSONWriter.appendInteger(s.watermarkMs, to: &out) }
        out.append(contentsOf: #","open_windows":"#.utf8); JSONWriter.appendInteger(s.openWindows, to: &out)
        out.append(contentsOf: #","windows_closed":"#.utf8); JSONWriter.appendInteger(s.windowsClosed, to: &out)
        out.append(contentsOf: #","keys":"#.utf8); JSONWriter.appendInteger(s.keys, to: &out)
        out.append(contentsOf: #","last_checkpoint":"#.utf8)
        if let at = s.lastCheckpointAtMs { JSONWriter.appendInteger(at, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","wal_entries":"#.utf8); JSONWriter.appendInteger(s.walEntries, to: &out)
        out.append(contentsOf: #","result_seq":"#.utf8); JSONWriter.appendInteger(s.resultSeq, to: &out)
        out.append(contentsOf: #","oldest_seq":"#.utf8); JSONWriter.appendInteger(s.oldestRetainedSeq, to: &out)
        out.append(contentsOf: #","rows_pending":"#.utf8); JSONWriter.appendInteger(s.rowsPending, to: &out)
        out.append(contentsOf: #","result_slices":"#.utf8); JSONWriter.appendInteger(s.resultSlices, to: &out)
        out.append(contentsOf: "}}".utf8)
    }
}

extension HTTPFailure {
    static func invalidStream(_ detail: String) -> HTTPFailure { HTTPFailure(400, "invalid_stream", detail) }
}
