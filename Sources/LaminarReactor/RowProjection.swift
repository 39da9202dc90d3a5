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

    /// The rows seen last: the values of the columns and what they showed (the output values,
    /// `nil` when `having` hid them). Kept only when the programs read the columns alone, not
    /// the key nor the window: then equal columns show the same (the windows of a hop that an
    /// update changed alike, their `before` alike, give one evaluation).
    private var recent: [(values: [Double], shown: [Double]?)] = []
    /// Whether the programs read the columns only (then equal columns show the same).
    let memoize: Bool

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
        memoize = (programs ?? []).allSatisfy(\.readsSlotsOnly) && (having?.readsSlotsOnly ?? true)
    }

    /// What the aggregate columns `values` of `row` show: the output columns, or `nil` when
    /// `having` is not true for them.
    private func shown(_ values: [Double], _ row: WindowResult) -> [Double]? {
        shown(values, key: row.key, startMs: row.startMs, endMs: row.endMs)
    }

    /// `shown` for the window `startMs..<endMs` of `key` (read only when the programs read it).
    private func shown(_ values: [Double], key: @autoclosure () -> [UInt8]?, startMs: Int64, endMs: Int64) -> [Double]? {
        if memoize, let m = recent.first(where: { WindowOperator.same($0.values, values) }) { return m.shown }
        let out: [Double]? = values.withUnsafeBufferPointer { v in
            let input = RowInput(values: v, key: memoize ? nil : key(), startMs: startMs, endMs: endMs)
            if let having, !having.isTrue(input) { return nil }
            guard let outputs else { return values }
            return outputs.map { $0.number(input) ?? .nan }
        }
        if memoize {
            if recent.count == 2 { recent.removeFirst() }
            recent.append((values, out))
        }
        return out
    }

    /// Whether `apply` keeps the changelog row of an open window whose aggregate values go from
    /// `previous` (`nil`: an insert) to `values`: shown now and not shown before, or shown both
    /// times with other output columns. The window operator asks before it builds a row (a
    /// hop flush looks at every window holding a changed pane), so the rows `having` hides or
    /// whose output columns did not change are never made. `key` is called only when the
    /// programs read the key.
    func keeps(previous: [Double]?, _ values: [Double], key: () -> [UInt8]?, startMs: Int64, endMs: Int64) -> Bool {
        guard let isNow = shown(values, key: key(), startMs: startMs, endMs: endMs) else {
            return previous.map { shown($0, key: key(), startMs: startMs, endMs: endMs) != nil } ?? false
        }
        guard let previous, let was = shown(previous, key: key(), startMs: startMs, endMs: endMs) else { return true }
        return !WindowOperator.same(isNow, was)
    }

    /// The rows to emit for the operator's `rows`, in order.
    func apply(_ rows: [WindowResult]) -> [WindowResult] {
        defer { recent.removeAll(keepingCapacity: true) }
        var out: [WindowResult] = []
        out.reserveCapacity(rows.count)
        for row in rows {
            var r = row
            switch row.op {
            case nil, .insert:
                guard let v = shown(row.values, row) else { continue }
                r.values = v
            case .update:
                let was = row.before.flatMap { shown($0, row) }
                let isNow = shown(row.values, row)
                if let was, let isNow {
                    r.values = isNow
                    r.before = was
                    if !r.isFinal && WindowOperator.same(isNow, was) { continue }
                } else if was != nil {
                    r = WindowResult(key: row.key, startMs: row.startMs, endMs: row.endMs, values: [], op: .delete)
                } else if let isNow {
                    r.values = isNow
                    r.op = .insert
                    r.before = nil
                } else {
                    continue
                }
            case .delete:
                if let before = row.before, shown(before, row) == nil { continue }
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
