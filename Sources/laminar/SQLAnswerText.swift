import LaminarFormats

/// How `laminar sql` prints the server's answers: one block per statement line of `POST /sql`,
/// tables for `SHOW`, a member/value table for `EXPLAIN`, `line L, column C: detail` for errors.
enum SQLAnswerText {
    /// The text of one NDJSON answer line.
    static func statement(_ value: JSONValue) -> String {
        guard case .object(let members) = value else { return compact(value) }
        let m = Dictionary(members, uniquingKeysWith: { a, _ in a })
        let name = m["name"].map(cell) ?? ""
        switch m["statement"].map(cell) ?? "" {
        case "create_source": return "CREATE SOURCE \(name)"
        case "create_stream": return "CREATE STREAM \(name)"
        case "drop_source", "drop_stream":
            let what = m["statement"].map(cell) == "drop_source" ? "SOURCE" : "STREAM"
            return m["dropped"] == .bool(false) ? "DROP \(what) \(name): it did not exist" : "DROP \(what) \(name)"
        case "show_sources":
            guard case .array(let rows)? = m["sources"] else { return compact(value) }
            return table(rows, preferred: ["name", "key_field", "time_field", "fields", "watermark_delay_ms", "idle_timeout_ms", "streams"])
        case "show_streams":
            guard case .array(let rows)? = m["streams"] else { return compact(value) }
            return table(rows, preferred: ["name", "source", "window", "group_by", "emit", "columns"])
        case "explain":
            guard case .object(let definition)? = m["definition"] else { return compact(value) }
            return table(definition.map { JSONValue.object([("member", .string($0.0)), ("value", .string(cell($0.1)))]) },
                         preferred: ["member", "value"])
        default:
            return compact(value)
        }
    }

    /// `line L, column C: detail` (the SQL error form) or `error: detail`.
    static func error(_ body: [UInt8], status: Int, script: String?) -> String {
        guard case .object(let members)? = try? JSONReader.parse(body) else {
            return "error: HTTP \(status): \(String(decoding: body, as: UTF8.self))"
        }
        let m = Dictionary(members, uniquingKeysWith: { a, _ in a })
        let detail = m["detail"].map(cell) ?? ""
        guard case .number(let line)? = m["line"], case .number(let column)? = m["column"] else {
            return "error: \(m["error"].map(cell) ?? "HTTP \(status)"): \(detail)"
        }
        var text = "line \(Int(line)), column \(Int(column)): \(detail)"
        // The line of the script and a caret under the column.
        if let script, line >= 1 {
            let lines = script.split(separator: "\n", omittingEmptySubsequences: false)
            if Int(line) <= lines.count {
                let source = lines[Int(line) - 1].replacing("\t", with: " ")
                text += "\n  " + source + "\n  " + String(repeating: " ", count: max(0, Int(column) - 1)) + "^"
            }
        }
        return text
    }

    /// A table: the preferred columns present in some row (all columns when none is), padded.
    static func table(_ rows: [JSONValue], preferred: [String]) -> String {
        if rows.isEmpty { return "(none)" }
        var keys: [String] = []
        for case .object(let members) in rows {
            for (k, _) in members where !keys.contains(k) { keys.append(k) }
        }
        var columns = preferred.filter(keys.contains)
        if columns.isEmpty { columns = keys }
        var cells: [[String]] = [columns]
        for case .object(let members) in rows {
            let m = Dictionary(members, uniquingKeysWith: { a, _ in a })
            cells.append(columns.map { m[$0].map(cell) ?? "" })
        }
        let widths = columns.indices.map { i in cells.map { $0[i].count }.max() ?? 0 }
        var lines: [String] = []
        for (n, row) in cells.enumerated() {
            lines.append(zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ").trailingSpacesRemoved)
            if n == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        return lines.joined(separator: "\n")
    }

    /// A value as a table cell: strings as they are, integers without a fraction, arrays joined
    /// with ", ", `{"a":"f64",…}` as its names, other objects as `k=v` pairs.
    static func cell(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return s.replacing("\n", with: " ")
        case .number: return compact(v)
        case .array(let items): return items.map(cell).joined(separator: ", ")
        case .object(let members):
            if !members.isEmpty && members.allSatisfy({ $0.1 == .string("f64") }) { return members.map(\.0).joined(separator: ", ") }
            return members.map { "\($0.0)=\(cell($0.1))" }.joined(separator: " ")
        }
    }

    static func compact(_ v: JSONValue) -> String {
        switch v {
        case .number(let n):
            var out: [UInt8] = []
            JSONWriter.appendNumber(n, to: &out)
            return String(decoding: out, as: UTF8.self)
        case .string(let s):
            var out: [UInt8] = []
            JSONWriter.appendString(s, to: &out)
            return String(decoding: out, as: UTF8.self)
        case .array(let items): return "[" + items.map(compact).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { compact(.string($0.0)) + ":" + compact($0.1) }.joined(separator: ",") + "}"
        default: return cell(v)
        }
    }
}

extension String {
    fileprivate var trailingSpacesRemoved: String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
