/// The post-aggregate expressions of a definition — its output columns (`select`) and `having` —
/// applied to the rows the window operator produced, before they are numbered and stored.
///
/// The operator's rows carry the aggregate columns; each becomes a row of the output columns
/// (computed from them, the key, `window_start` and `window_end`) if `having` holds for it. For a
/// changelog, visibility is recomputed from the aggregate values of the row and of its `before`
/// (the values last emitted for that window), so the rows shown stay a consistent changelog:
/// an update whose window stops satisfying `having` becomes a `delete`, one that starts
/// satisfying it an `insert`, and rows of windows never shown are dropped.
///
/// Reactor thread only (the programs' stacks are reused).
final class RowProjection {
    let outputs: [ExpressionProgram]?
    let having: ExpressionProgram?

    /// `nil` when the definition has neither; throws naming the member at fault.
    init?(_ d: StreamDefinition) throws(ExpressionError) {
        guard d.outputColumns != nil || d.having != nil else { return nil }
        let scope = ExpressionScope.row(d)
        var programs: [ExpressionProgram]? = nil
        if let columns = d.outputColumns {
            if columns.isEmpty { throw ExpressionError("select: at least one column") }
            var names = Set<String>()
            programs = []
            for (i, c) in columns.enumerated() {
                if c.name.isEmpty || c.name.utf8.count > 256 { throw ExpressionError("select[\(i)]: as must be 1 to 256 bytes") }
                if ["seq", "op", "before", "final", "window_start", "window_end", d.keyColumn, d.keyColumn + "_base64"].contains(c.name) {
                    throw ExpressionError("select[\(i)]: column name \"\(c.name)\" is reserved")
                }
                if !names.insert(c.name).inserted { throw ExpressionError("select[\(i)]: column \"\(c.name)\" given twice") }
                do {
                    programs!.append(try ExpressionProgram(c.expression, scope: scope, boolean: false))
                } catch {
                    throw ExpressionError("select[\(i)] (\(c.name)): " + error.detail)
                }
            }
        }
        outputs = programs
        do {
            having = try d.having.map { e throws(ExpressionError) in
                try ExpressionProgram(e, scope: ExpressionScope.row(d, outputs: d.outputColumns ?? []), boolean: true)
            }
        } catch {
            throw ExpressionError("having: " + error.detail)
        }
    }

    private func visible(_ values: [Double], _ row: WindowResult) -> Bool {
        guard let having else { return true }
        return values.withUnsafeBufferPointer { having.isTrue(RowInput(values: $0, key: row.key, startMs: row.startMs, endMs: row.endMs)) }
    }

    private func project(_ values: [Double], _ row: WindowResult) -> [Double] {
        guard let outputs else { return values }
        return values.withUnsafeBufferPointer { v in
            let input = RowInput(values: v, key: row.key, startMs: row.startMs, endMs: row.endMs)
            return outputs.map { $0.number(input) ?? .nan }
        }
    }

    /// The rows to emit for the operator's `rows`, in order.
    func apply(_ rows: [WindowResult]) -> [WindowResult] {
        var out: [WindowResult] = []
        out.reserveCapacity(rows.count)
        for row in rows {
            var r = row
            switch row.op {
            case nil:
                guard visible(row.values, row) else { continue }
                r.values = project(row.values, row)
            case .insert:
                guard visible(row.values, row) else { continue }
                r.values = project(row.values, row)
            case .update:
                let was = row.before.map { visible($0, row) } ?? false
                let isNow = visible(row.values, row)
                if was && isNow {
                    r.values = project(row.values, row)
                    r.before = project(row.before!, row)
                    if !r.isFinal && WindowOperator.same(r.values, r.before!) { continue }
                } else if was {
                    r = WindowResult(key: row.key, startMs: row.startMs, endMs: row.endMs, values: [], op: .delete)
                } else if isNow {
                    r.values = project(row.values, row)
                    r.op = .insert
                    r.before = nil
                } else {
                    continue
                }
            case .delete:
                if let before = row.before, !visible(before, row) { continue }
                r.before = nil
            }
            out.append(r)
        }
        return out
    }
}

/// A result row as a post-aggregate expression reads it: the aggregate columns (NaN is null),
/// the key, the window.
struct RowInput: ExpressionInput {
    let values: UnsafeBufferPointer<Double>
    let key: [UInt8]?
    let startMs: Int64
    let endMs: Int64

    @inline(__always) func number(_ slot: Int) -> Double { values[slot] }
    @inline(__always) func withKey<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? { key.map { $0.withUnsafeBytes(body) } }
    var time: Double { Double(startMs) }
    var windowEnd: Double { Double(endMs) }
}
