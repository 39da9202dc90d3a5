import LaminarFormats
import LaminarReactor
import LaminarSQL

/// The JSON form of a stream definition (`PUT /streams/{name}` body, `GET /streams/{name}`).
///
/// Input fields, all optional: `key_field` ("key"), `time_field` ("ts"), `value_field`
/// ("value"; the one numeric field when `fields` is not given), `fields` (an object of
/// `"name":"f64"`, in batch order; not with `value_field`), `window` ("1s": a tumbling window of
/// that duration, a duration being "500ms", "10s", "5m" or integer milliseconds; or
/// `{"type":"tumble","size":D}`, `{"type":"hop","size":D,"slide":S}`,
/// `{"type":"session","gap":G}`; also `window_ms`), `group_by` ("key" or "all"),
/// `allowed_lateness` (0; also `allowed_lateness_ms`), `aggregates` (strings, or objects
/// `{"fn","field","q","accuracy","as"}`; default count, sum, min, max, avg of each field), `emit`
/// ("final", "changes" or `{"every":D}`), `late_data` ("drop" or "keep"), `idle_timeout`
/// ("10s"; also `idle_timeout_ms`), `retention` ("24h", how long result rows stay after their
/// window ends; also `retention_ms`). Unknown fields and bad values are refused with the field's
/// name. The output form (`append`) is accepted as input too.
///
/// Members of continuous queries (SQL_CONTRACT.md; a SQL stream's compiled form): `source` (a
/// named source: key, time and value fields are copied from it and may be omitted, or must equal
/// it; `allowed_lateness` defaults to its watermark delay, `idle_timeout` to its idle timeout),
/// `filter` (an expression over an event's fields and key), aggregate objects with `expr` (an
/// expression instead of `field`; then `as` is required), `select` (`[{"as":…,"expr":…}]`:
/// the result columns, over the aggregate columns, the key column, window_start and
/// window_end), `having`, `key_column`. Expressions are SQL text (`SQLExpressionParser`); `sql`
/// is output only.
enum StreamDefinitionJSON {
    static let windowDefaultMs: Int64 = 1000

    static func parse(
        name: String, body: [UInt8], limits: ReactorLimits, source findSource: (String) -> SourceDefinition? = { _ in nil }
    ) -> Result<StreamDefinition, HTTPFailure> {
        var definition = StreamDefinition(name: name, windowSizeMs: windowDefaultMs)
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return .success(definition)  // an empty body: every default
        }
        let value: JSONValue
        do { value = try JSONReader.parse(body) } catch {
            return .failure(.invalidStream("the body is not JSON: \(error)"))
        }
        guard case .object(let members) = value else { return .failure(.invalidStream("the body must be a JSON object")) }
        var aggregateItems: [JSONValue]?
        var valueFieldGiven = false
        var given: Set<String> = []
        var windowGiven: WindowKind?, windowMsGiven: WindowKind?
        do throws(HTTPFailure) {
            for (field, member) in members {
                given.insert(field)
                switch field {
                case "name":
                    guard case .string(let s) = member, s == name else {
                        throw .invalidStream("name: must match the name in the path (\(name))")
                    }
                case "key_field", "time_field", "value_field":
                    guard case .string(let s) = member, !s.isEmpty, s.utf8.count <= 256 else {
                        throw .invalidStream("\(field): must be a non-empty string of at most 256 bytes")
                    }
                    if field == "key_field" { definition.keyField = s }
                    if field == "time_field" { definition.timeField = s }
                    if field == "value_field" { definition.fields = [s]; valueFieldGiven = true }
                case "fields":
                    guard case .object(let items) = member, !items.isEmpty, items.count <= EventBatch.fieldsMax else {
                        throw .invalidStream("fields: must be an object of 1 to \(EventBatch.fieldsMax) fields such as {\"price\":\"f64\"}")
                    }
                    for (fieldName, type) in items {
                        guard case .string("f64") = type else { throw .invalidStream("fields: \(fieldName): the type must be \"f64\"") }
                        guard !fieldName.isEmpty, fieldName.utf8.count <= 256 else {
                            throw .invalidStream("fields: names must be non-empty strings of at most 256 bytes")
                        }
                    }
                    definition.fields = items.map(\.0)
                    definition.fieldsDeclared = true
                case "window", "window_ms":
                    // The output form has both: `window` the object, `window_ms` its size or gap.
                    if field == "window" { windowGiven = try window(member, field: field) } else { windowMsGiven = try window(member, field: field) }
                case "allowed_lateness", "allowed_lateness_ms":
                    guard let ms = milliseconds(member), ms >= 0 else {
                        throw .invalidStream("\(field): must be a duration such as \"2s\" or milliseconds, >= 0")
                    }
                    definition.allowedLatenessMs = ms
                case "idle_timeout", "idle_timeout_ms":
                    guard let ms = milliseconds(member), ms > 0 else {
                        throw .invalidStream("\(field): must be a positive duration such as \"10s\" or milliseconds")
                    }
                    definition.idleTimeoutMs = ms
                case "retention", "retention_ms":
                    guard let ms = milliseconds(member), ms > 0 else {
                        throw .invalidStream("\(field): must be a positive duration such as \"24h\" or milliseconds")
                    }
                    definition.retentionMs = ms
                case "aggregates":
                    guard case .array(let items) = member, !items.isEmpty, items.count <= 64 else {
                        throw .invalidStream("aggregates: must be a non-empty array of at most 64 aggregates")
                    }
                    aggregateItems = items
                case "group_by":
                    guard case .string(let s) = member, let g = GroupBy(rawValue: s) else {
                        throw .invalidStream("group_by: must be \"key\" or \"all\"")
                    }
                    definition.groupBy = g
                case "emit":
                    definition.emit = try emit(member)
                case "late_data":
                    guard case .string(let s) = member, let l = LateData(rawValue: s) else {
                        throw .invalidStream("late_data: must be \"drop\" or \"keep\"")
                    }
                    definition.lateData = l
                case "columns", "sql":
                    continue  // output only (derived from the aggregates; the SQL text a stream was compiled from)
                case "source":
                    guard case .string(let s) = member, let source = findSource(s) else {
                        throw .invalidStream("source: must name an existing source")
                    }
                    definition.source = source.name
                case "filter", "having":
                    let e = try expression(member, field)
                    if field == "filter" { definition.filter = e } else { definition.having = e }
                case "select":
                    definition.outputColumns = try outputColumns(member)
                case "key_column":
                    guard case .string(let s) = member, !s.isEmpty, s.utf8.count <= 256 else {
                        throw .invalidStream("key_column: must be a non-empty string of at most 256 bytes")
                    }
                    definition.keyColumn = s
                default:
                    throw .invalidStream("\(field): unknown field")
                }
            }
            if valueFieldGiven && definition.fieldsDeclared { throw .invalidStream("value_field: not with fields") }
            if let w = windowGiven ?? windowMsGiven { definition.window = w }
            if let w = windowGiven, let ms = windowMsGiven, ms != .tumble(sizeMs: definition.windowSizeMs) && ms != w {
                throw .invalidStream("window_ms: must be the window's size (or gap) when both are given")
            }
            if let name = definition.source, let source = findSource(name) {
                try adopt(source, into: &definition, given: given)
            }
            if let aggregateItems {
                definition.aggregates = try aggregateItems.enumerated().map { (i, item) throws(HTTPFailure) in
                    try aggregate(item, index: i, definition: definition)
                }
            } else if definition.fieldsDeclared {
                definition.aggregates = [.count] + definition.fields.indices.flatMap { f in
                    [AggregateFunction.sum, .min, .max, .avg].map { Aggregate($0, field: f) }
                }
            }
        } catch {
            return .failure(error)
        }
        if let problem = definition.validate(limits: limits) { return .failure(.invalidStream(problem)) }
        return .success(definition)
    }

    private static func duration(_ value: JSONValue?, _ what: String) throws(HTTPFailure) -> Int64 {
        guard let value, let ms = milliseconds(value), ms > 0 else {
            throw .invalidStream("window: \(what) must be a positive duration such as \"1s\" or milliseconds")
        }
        return ms
    }

    private static func window(_ member: JSONValue, field: String) throws(HTTPFailure) -> WindowKind {
        guard case .object(let items) = member else {
            guard let ms = milliseconds(member), ms > 0 else {
                throw .invalidStream("\(field): must be a positive duration such as \"1s\" or milliseconds, or a window object")
            }
            return .tumble(sizeMs: ms)
        }
        var type: String?, size: JSONValue?, slide: JSONValue?, gap: JSONValue?
        for (name, v) in items {
            switch name {
            case "type":
                guard case .string(let t) = v else { throw .invalidStream("window: type must be \"tumble\", \"hop\" or \"session\"") }
                type = t
            case "size", "size_ms": size = v
            case "slide", "slide_ms": slide = v
            case "gap", "gap_ms": gap = v
            default: throw .invalidStream("window: \(name): unknown field")
            }
        }
        switch type {
        case "tumble":
            guard slide == nil, gap == nil else { throw .invalidStream("window: a tumbling window has only a size") }
            return .tumble(sizeMs: try duration(size, "size"))
        case "hop":
            guard gap == nil else { throw .invalidStream("window: a hopping window has a size and a slide, no gap") }
            return .hop(sizeMs: try duration(size, "size"), slideMs: try duration(slide, "slide"))
        case "session":
            guard size == nil, slide == nil else { throw .invalidStream("window: a session window has only a gap") }
            return .session(gapMs: try duration(gap, "gap"))
        default:
            throw .invalidStream("window: type must be \"tumble\", \"hop\" or \"session\"")
        }
    }

    private static func emit(_ member: JSONValue) throws(HTTPFailure) -> EmitMode {
        switch member {
        case .string("final"): return .final
        case .string("changes"): return .changes
        case .object(let items) where items.count == 1 && (items[0].0 == "every" || items[0].0 == "every_ms"):
            guard let ms = milliseconds(items[0].1), ms > 0 else { throw .invalidStream("emit: every must be a positive duration such as \"1s\"") }
            return .every(ms: ms)
        default:
            throw .invalidStream("emit: must be \"final\", \"changes\" or {\"every\":\"1s\"}")
        }
    }

    private static func aggregate(_ item: JSONValue, index i: Int, definition: StreamDefinition) throws(HTTPFailure) -> Aggregate {
        let names = AggregateFunction.allCases.map(\.rawValue).joined(separator: ", ")
        if case .string(let s) = item {
            guard let f = AggregateFunction(rawValue: s), f != .p else {
                throw .invalidStream("aggregates[\(i)]: fn must be one of \(names) (p as an object with q)")
            }
            if f.readsField && definition.fieldsDeclared && definition.fields.count > 1 {
                throw .invalidStream("aggregates[\(i)]: \(s) needs a field ({\"fn\":\"\(s)\",\"field\":…}): the stream declares fields")
            }
            return Aggregate(f)
        }
        guard case .object(let members) = item else { throw .invalidStream("aggregates[\(i)]: must be a string or an object with fn") }
        var function: AggregateFunction?, field = 0, q: Double?, accuracy = QuantileSketch.defaultAccuracy, alias: String?
        var fieldGiven = false
        var input: Expression?
        for (name, v) in members {
            switch name {
            case "fn":
                guard case .string(let s) = v, let f = AggregateFunction(rawValue: s) else {
                    throw .invalidStream("aggregates[\(i)]: fn must be one of \(names)")
                }
                function = f
            case "field":
                guard case .string(let s) = v, let at = definition.fields.firstIndex(of: s) else {
                    throw .invalidStream("aggregates[\(i)]: field must be one of the stream's fields (\(definition.fields.joined(separator: ", ")))")
                }
                field = at
                fieldGiven = true
            case "expr":
                input = try expression(v, "aggregates[\(i)]: expr")
            case "q":
                guard case .number(let x) = v, x > 0, x < 1 else { throw .invalidStream("aggregates[\(i)]: q must be a number in (0,1)") }
                q = x
            case "accuracy":
                guard case .number(let x) = v, QuantileSketch.accuracyRange.contains(x) else {
                    throw .invalidStream("aggregates[\(i)]: accuracy must be a number in \(QuantileSketch.accuracyRange.lowerBound)...\(QuantileSketch.accuracyRange.upperBound)")
                }
                accuracy = x
            case "as":
                guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= 256 else {
                    throw .invalidStream("aggregates[\(i)]: as must be a non-empty string of at most 256 bytes")
                }
                alias = s
            default:
                throw .invalidStream("aggregates[\(i)]: \(name): unknown field")
            }
        }
        guard let function else { throw .invalidStream("aggregates[\(i)]: fn is missing") }
        if input != nil {
            if fieldGiven { throw .invalidStream("aggregates[\(i)]: field or expr, not both") }
            if function == .countDistinct { throw .invalidStream("aggregates[\(i)]: count_distinct takes no expr") }
            if alias == nil { throw .invalidStream("aggregates[\(i)]: as is required with expr") }
        }
        if !function.readsField && fieldGiven { throw .invalidStream("aggregates[\(i)]: \(function.rawValue) takes no field") }
        if function.readsField && !fieldGiven && input == nil && definition.fieldsDeclared && definition.fields.count > 1 {
            throw .invalidStream("aggregates[\(i)]: field is missing (the stream declares fields)")
        }
        if function == .p && q == nil { throw .invalidStream("aggregates[\(i)]: p needs q in (0,1)") }
        if function != .p && (q != nil || accuracy != QuantileSketch.defaultAccuracy) {
            throw .invalidStream("aggregates[\(i)]: q and accuracy belong to p")
        }
        return Aggregate(function, field: field, quantile: q ?? 0.5, accuracy: accuracy, alias: alias, input: input)
    }

    /// An expression member: SQL text. A bad one names the member, and the line and column
    /// within its text.
    private static func expression(_ member: JSONValue, _ field: String) throws(HTTPFailure) -> Expression {
        guard case .string(let text) = member, text.utf8.count <= 65_536 else {
            throw .invalidStream("\(field): must be an expression in SQL, such as \"volume > 0\"")
        }
        do {
            return try SQLExpressionParser.parse(text)
        } catch {
            throw .invalidStream("\(field): line \(error.line), column \(error.column): \(error.detail)")
        }
    }

    /// `select`: `[{"as":"vwap","expr":"_a0 / _a1"}, …]`, 1 to 64 distinct names.
    private static func outputColumns(_ member: JSONValue) throws(HTTPFailure) -> [OutputColumn] {
        guard case .array(let items) = member, !items.isEmpty, items.count <= 64 else {
            throw .invalidStream("select: must be an array of 1 to 64 objects {\"as\":name,\"expr\":expression}")
        }
        var out: [OutputColumn] = []
        for (i, item) in items.enumerated() {
            guard case .object(let members) = item else { throw .invalidStream("select[\(i)]: must be an object {\"as\":name,\"expr\":expression}") }
            var name: String?, e: Expression?
            for (key, v) in members {
                switch key {
                case "as":
                    guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= 256 else {
                        throw .invalidStream("select[\(i)]: as must be a non-empty string of at most 256 bytes")
                    }
                    name = s
                case "expr":
                    e = try expression(v, "select[\(i)]: expr")
                default:
                    throw .invalidStream("select[\(i)]: \(key): unknown field")
                }
            }
            guard let name, let e else { throw .invalidStream("select[\(i)]: as and expr are required") }
            if out.contains(where: { $0.name == name }) { throw .invalidStream("select[\(i)]: column \"\(name)\" given twice") }
            out.append(OutputColumn(name: name, expression: e))
        }
        return out
    }

    /// A stream reading `source` takes its key, time and value fields (given ones must equal
    /// them), and by default its watermark delay as allowed lateness and its idle timeout.
    private static func adopt(_ source: SourceDefinition, into d: inout StreamDefinition, given: Set<String>) throws(HTTPFailure) {
        if given.contains("key_field") && d.keyField != source.keyField {
            throw .invalidStream("key_field: must be the source's (\(source.keyField)) or omitted")
        }
        if given.contains("time_field") && d.timeField != source.timeField {
            throw .invalidStream("time_field: must be the source's (\(source.timeField)) or omitted")
        }
        if (given.contains("fields") || given.contains("value_field")) && d.fields != source.fields {
            throw .invalidStream("fields: must be the source's (\(source.fields.joined(separator: ", "))) or omitted")
        }
        d.keyField = source.keyField
        d.timeField = source.timeField
        d.fields = source.fields
        d.fieldsDeclared = true
        if !given.contains("allowed_lateness") && !given.contains("allowed_lateness_ms") { d.allowedLatenessMs = source.watermarkDelayMs }
        if !given.contains("idle_timeout") && !given.contains("idle_timeout_ms") { d.idleTimeoutMs = source.idleTimeoutMs }
    }

    /// A duration member: whole non-negative milliseconds, or a duration string (`"5s"`, `"0"`).
    static func milliseconds(_ value: JSONValue) -> Int64? {
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

    /// `{"price":"f64",…}`: the numeric fields of a stream or source, by name (all are f64).
    static func appendFieldTypes(_ fields: [String], to out: inout [UInt8]) {
        out.append(0x7B)
        for (i, f) in fields.enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONWriter.appendString(f, to: &out)
            out.append(contentsOf: #":"f64""#.utf8)
        }
        out.append(0x7D)
    }

    /// `{"name":…,"key_field":…,"time_field":…,` then `"value_field":…` or `"fields":{…}`,
    /// `"window":{"type":…,"size_ms"|"gap_ms":…[,"slide_ms":…]},"window_ms":…` (size or gap),
    /// `"group_by":…,"allowed_lateness_ms":…,"aggregates":[…],"columns":[…],"emit":…,
    /// "late_data":…,"idle_timeout_ms":…,"retention_ms":…}`. An aggregate is written as a string when it is a
    /// plain function of the one value (or of no field), else as an object. No closing brace when `open`, so
    /// stats can follow.
    static func append(_ d: StreamDefinition, to out: inout [UInt8], open: Bool = false) {
        out.append(contentsOf: #"{"name":"#.utf8); JSONWriter.appendString(d.name, to: &out)
        if let source = d.source { out.append(contentsOf: #","source":"#.utf8); JSONWriter.appendString(source, to: &out) }
        out.append(contentsOf: #","key_field":"#.utf8); JSONWriter.appendString(d.keyField, to: &out)
        out.append(contentsOf: #","time_field":"#.utf8); JSONWriter.appendString(d.timeField, to: &out)
        if d.fieldsDeclared {
            out.append(contentsOf: #","fields":"#.utf8)
            appendFieldTypes(d.fields, to: &out)
        } else {
            out.append(contentsOf: #","value_field":"#.utf8); JSONWriter.appendString(d.valueField, to: &out)
        }
        out.append(contentsOf: #","window":"#.utf8)
        switch d.window {
        case .tumble(let size):
            out.append(contentsOf: #"{"type":"tumble","size_ms":"#.utf8); JSONWriter.appendInteger(size, to: &out)
        case .hop(let size, let slide):
            out.append(contentsOf: #"{"type":"hop","size_ms":"#.utf8); JSONWriter.appendInteger(size, to: &out)
            out.append(contentsOf: #","slide_ms":"#.utf8); JSONWriter.appendInteger(slide, to: &out)
        case .session(let gap):
            out.append(contentsOf: #"{"type":"session","gap_ms":"#.utf8); JSONWriter.appendInteger(gap, to: &out)
        }
        out.append(contentsOf: #"},"window_ms":"#.utf8); JSONWriter.appendInteger(d.windowSizeMs, to: &out)
        out.append(contentsOf: #","group_by":"#.utf8); JSONWriter.appendString(d.groupBy.rawValue, to: &out)
        out.append(contentsOf: #","allowed_lateness_ms":"#.utf8); JSONWriter.appendInteger(d.allowedLatenessMs, to: &out)
        if let filter = d.filter { out.append(contentsOf: #","filter":"#.utf8); JSONWriter.appendString(filter.description, to: &out) }
        out.append(contentsOf: #","aggregates":"#.utf8)
        JSONWriter.appendArray(d.aggregates, to: &out) { a, out in
            if a.alias == nil && (!a.function.readsField || (!d.fieldsDeclared && a.function != .p)) {
                JSONWriter.appendString(a.function.rawValue, to: &out)
                return
            }
            out.append(contentsOf: #"{"fn":"#.utf8); JSONWriter.appendString(a.function.rawValue, to: &out)
            if let input = a.input {
                out.append(contentsOf: #","expr":"#.utf8); JSONWriter.appendString(input.description, to: &out)
            } else if a.function.readsField {
                out.append(contentsOf: #","field":"#.utf8); JSONWriter.appendString(d.fields[a.field], to: &out)
            }
            if a.function == .p {
                out.append(contentsOf: #","q":"#.utf8); JSONWriter.appendNumber(a.quantile, to: &out)
                out.append(contentsOf: #","accuracy":"#.utf8); JSONWriter.appendNumber(a.accuracy, to: &out)
            }
            if let alias = a.alias { out.append(contentsOf: #","as":"#.utf8); JSONWriter.appendString(alias, to: &out) }
            out.append(0x7D)
        }
        if let columns = d.outputColumns {
            out.append(contentsOf: #","select":"#.utf8)
            JSONWriter.appendArray(columns, to: &out) { c, out in
                out.append(contentsOf: #"{"as":"#.utf8); JSONWriter.appendString(c.name, to: &out)
                out.append(contentsOf: #","expr":"#.utf8); JSONWriter.appendString(c.expression.description, to: &out)
                out.append(0x7D)
            }
        }
        if let having = d.having { out.append(contentsOf: #","having":"#.utf8); JSONWriter.appendString(having.description, to: &out) }
        out.append(contentsOf: #","columns":"#.utf8)
        JSONWriter.appendArray(d.outputColumns?.map(\.name) ?? d.columnNames, to: &out, JSONWriter.appendString)
        if d.keyColumn != "key" { out.append(contentsOf: #","key_column":"#.utf8); JSONWriter.appendString(d.keyColumn, to: &out) }
        out.append(contentsOf: #","emit":"#.utf8)
        switch d.emit {
        case .final: out.append(contentsOf: #""final""#.utf8)
        case .changes: out.append(contentsOf: #""changes""#.utf8)
        case .every(let ms): out.append(contentsOf: #"{"every_ms":"#.utf8); JSONWriter.appendInteger(ms, to: &out); out.append(0x7D)
        }
        out.append(contentsOf: #","late_data":"#.utf8); JSONWriter.appendString(d.lateData.rawValue, to: &out)
        out.append(contentsOf: #","idle_timeout_ms":"#.utf8); JSONWriter.appendInteger(d.idleTimeoutMs, to: &out)
        out.append(contentsOf: #","retention_ms":"#.utf8); JSONWriter.appendInteger(d.retentionMs, to: &out)
        if let sql = d.sql { out.append(contentsOf: #","sql":"#.utf8); JSONWriter.appendString(sql, to: &out) }
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
        out.append(contentsOf: #","result_writes_refused":"#.utf8); JSONWriter.appendInteger(s.resultWritesRefused, to: &out)
        out.append(contentsOf: "}}".utf8)
    }
}

extension HTTPFailure {
    static func invalidStream(_ detail: String) -> HTTPFailure { HTTPFailure(400, "invalid_stream", detail) }
}
