import LaminarFormats

/// An aggregate function a stream computes per group and window.
public enum AggregateFunction: String, Sendable, Hashable, CaseIterable {
    case count, sum, min, max, avg, stddev, variance, first, last, p
    case countDistinct = "count_distinct"

    /// Whether the function reads a numeric field (`count` and `count_distinct` do not).
    public var readsField: Bool { self != .count && self != .countDistinct }
}

/// One aggregate column: a function, the field it reads (an index into the definition's
/// `fields`), the quantile and sketch accuracy of `p`, and an optional column name (`as`).
/// Invariants (`StreamDefinition.validate`): `field < fields.count`; for `p`, `0 < q < 1` and
/// `accuracy` in `QuantileSketch.accuracyRange`.
public struct Aggregate: Sendable, Hashable {
    public var function: AggregateFunction
    public var field: Int
    public var quantile: Double
    public var accuracy: Double
    public var alias: String?
    /// When set, the aggregate reads this expression of the event's fields (evaluated per event;
    /// an event for which it is null is skipped by this aggregate) instead of `field`; `alias`
    /// is then required.
    public var input: Expression?

    public init(_ function: AggregateFunction, field: Int = 0, quantile: Double = 0.5, accuracy: Double = QuantileSketch.defaultAccuracy, alias: String? = nil, input: Expression? = nil) {
        self.function = function
        self.field = field
        self.input = input
        self.quantile = quantile
        self.accuracy = accuracy
        self.alias = alias
    }

    public static let count = Aggregate(.count)
    public static let sum = Aggregate(.sum)
    public static let min = Aggregate(.min)
    public static let max = Aggregate(.max)
    public static let avg = Aggregate(.avg)
    /// Today's default set: count, sum, min, max, avg of the one field.
    public static let allCases: [Aggregate] = [.count, .sum, .min, .max, .avg]

    /// `p99` for 0.99, `p50` for 0.5, `p999` for 0.999, `p05` for 0.05: the decimal digits of
    /// `q` after the point, at least two.
    public static func percentileName(_ q: Double) -> String {
        var digits = String(q.description.drop { $0 != "." }.dropFirst())
        if q.description.contains("e") {  // tiny q: fixed notation without the exponent
            var x = q, out = ""
            for _ in 0..<17 where x > 0 { x *= 10; let d = Int(x); out.append(Character(String(d))); x -= Double(d) }
            digits = out
        }
        while digits.count < 2 { digits.append("0") }
        return "p" + digits
    }
}

/// The kind of window a stream aggregates over (durations in ms).
public enum WindowKind: Sendable, Hashable {
    /// `[k·size, (k+1)·size)`.
    case tumble(sizeMs: Int64)
    /// `[k·slide, k·slide + size)`, `size` a multiple of `slide`.
    case hop(sizeMs: Int64, slideMs: Int64)
    /// Per group: events closer than `gap` form one session `[first, last + gap)`.
    case session(gapMs: Int64)
}

/// One group per key, or one group over every key.
public enum GroupBy: String, Sendable, Hashable { case key, all }

/// When rows are emitted: once per window at its close, every reactor round for the windows that
/// changed (`changes`), or on a processing-time timer (`every`).
public enum EmitMode: Sendable, Hashable {
    case final
    case changes
    case every(ms: Int64)
}

/// What happens to late events: counted and dropped, or also kept for `/late`.
public enum LateData: String, Sendable, Hashable { case drop, keep }

/// What a stream is: its event fields, window, grouping, aggregates, emit mode, lateness and
/// idle timeout and result retention. Invariants (`validate`): a non-empty name without `/`;
/// 1...`EventBatch.fieldsMax`
/// distinct field names; positive window durations (a hop's size a multiple of its slide, at
/// most `StreamDefinition.hopWindowsPerEventMax` windows per event); `allowedLatenessMs >= 0`;
/// `idleTimeoutMs > 0`; `retentionMs > 0`; at least one aggregate, each valid, with distinct
/// column names.
public struct StreamDefinition: Sendable, Hashable {
    public var name: String
    public var keyField: String
    public var timeField: String
    /// The numeric fields of an event, in the order batches lay them out.
    public var fields: [String]
    /// Whether `fields` was declared (then columns are `fn_field`); else one field, `value_field`.
    public var fieldsDeclared: Bool
    public var window: WindowKind
    public var allowedLatenessMs: Int64
    public var aggregates: [Aggregate]
    public var idleTimeoutMs: Int64
    public var groupBy: GroupBy
    public var emit: EmitMode
    public var lateData: LateData

    /// The named source the stream reads (its key, time and value fields copied from it), or
    /// `nil`: the stream owns an implicit source of its own name (`/streams/{name}/events`).
    public var source: String?
    /// Events for which this is not true are skipped (neither aggregated nor late).
    public var filter: Expression?
    /// The result columns, computed from the aggregate columns when a row is emitted; `nil`:
    /// one column per aggregate (`columnNames`). Aggregates then serve only as inputs.
    public var outputColumns: [OutputColumn]?
    /// Rows for which this (over the aggregate columns) is not true are not emitted.
    public var having: Expression?
    /// The member naming the key in result rows (`key`; a SQL stream uses its source's key field).
    public var keyColumn: String
    /// The SQL text the definition was compiled from, shown beside it; `nil` for JSON definitions.
    public var sql: String?

    /// Most windows one event of a hopping window belongs to (`size / slide`).
    public static let hopWindowsPerEventMax: Int64 = 100
    /// How long a result row stays retained (stored, and readable with `since`) after its window
    /// ends, in event time: it leaves once the watermark passes `window end + retentionMs`.
    public var retentionMs: Int64

    /// Result retention when a definition names none: one day.
    public static let retentionDefaultMs: Int64 = 86_400_000

    public init(
        name: String, keyField: String = "key", timeField: String = "ts", valueField: String = "value",
        windowSizeMs: Int64, allowedLatenessMs: Int64 = 0, aggregates: [Aggregate] = Aggregate.allCases,
        idleTimeoutMs: Int64 = 10_000, retentionMs: Int64 = StreamDefinition.retentionDefaultMs
    ) {
        self.name = name
        self.keyField = keyField
        self.timeField = timeField
        self.fields = [valueField]
        self.fieldsDeclared = false
        self.window = .tumble(sizeMs: windowSizeMs)
        self.allowedLatenessMs = allowedLatenessMs
        self.aggregates = aggregates
        self.idleTimeoutMs = idleTimeoutMs
        self.groupBy = .key
        self.emit = .final
        self.lateData = .drop
        self.retentionMs = retentionMs
        self.source = nil
        self.filter = nil
        self.outputColumns = nil
        self.having = nil
        self.keyColumn = "key"
        self.sql = nil
    }

    /// The one field of a stream without declared `fields` (the first field otherwise).
    public var valueField: String {
        get { fields[0] }
        set { fields[0] = newValue }
    }

    /// The tumbling size, the hop size or the session gap.
    public var windowSizeMs: Int64 {
        switch window {
        case .tumble(let s), .hop(let s, _), .session(let s): s
        }
    }

    /// The result column of each aggregate, in order: `as` if given; `count`, `count_distinct`;
    /// `pNN` for a percentile; else the function's name; `_field` appended when `fields` was
    /// declared (not to `as`, `count`, `count_distinct`).
    public var columnNames: [String] {
        aggregates.map { a in
            if let alias = a.alias { return alias }
            if !a.function.readsField { return a.function.rawValue }
            let base = a.function == .p ? Aggregate.percentileName(a.quantile) : a.function.rawValue
            return fieldsDeclared ? base + "_" + fields[a.field] : base
        }
    }

    /// `nil` if valid, else why not (naming the field at fault).
    public func validate(limits: ReactorLimits) -> String? {
        let maxMs = ReactorLimits.eventTimeAbsMaxMs
        if name.isEmpty || name.utf8.count > limits.streamNameBytesMax { return "name must be 1...\(limits.streamNameBytesMax) bytes" }
        if name.utf8.contains(UInt8(ascii: "/")) { return "name must not contain '/'" }
        if fields.isEmpty || fields.count > EventBatch.fieldsMax { return "fields: 1 to \(EventBatch.fieldsMax) fields" }
        if Set(fields).count != fields.count { return "fields: a field is named twice" }
        if fields.contains(where: { $0.isEmpty || $0 == keyField || $0 == timeField }) {
            return "fields: names must be non-empty and differ from key_field and time_field"
        }
        switch window {
        case .tumble(let size):
            if size <= 0 || size > maxMs { return "window: size must be a positive duration" }
        case .hop(let size, let slide):
            if size <= 0 || size > maxMs { return "window: size must be a positive duration" }
            if slide <= 0 || slide > maxMs { return "window: slide must be a positive duration" }
            if size % slide != 0 { return "window: slide must divide size" }
            if size / slide > StreamDefinition.hopWindowsPerEventMax {
                return "window: size / slide must be at most \(StreamDefinition.hopWindowsPerEventMax) (windows per event)"
            }
        case .session(let gap):
            if gap <= 0 || gap > maxMs { return "window: gap must be a positive duration" }
        }
        if allowedLatenessMs < 0 || allowedLatenessMs > maxMs { return "allowed_lateness must be >= 0" }
        if idleTimeoutMs <= 0 { return "idle_timeout must be positive" }
        if case .every(let ms) = emit, ms <= 0 || ms > maxMs { return "emit: every must be a positive duration" }
        if aggregates.isEmpty { return "aggregates: at least one aggregate" }
        for (i, a) in aggregates.enumerated() {
            if a.field < 0 || a.field >= fields.count { return "aggregates[\(i)]: field out of range" }
            if a.function == .p {
                if !(a.quantile > 0 && a.quantile < 1) { return "aggregates[\(i)]: q must be in (0,1)" }
                if !QuantileSketch.accuracyRange.contains(a.accuracy) {
                    return "aggregates[\(i)]: accuracy must be in \(QuantileSketch.accuracyRange.lowerBound)...\(QuantileSketch.accuracyRange.upperBound)"
                }
            }
            if let alias = a.alias, alias.isEmpty || alias.utf8.count > 256 { return "aggregates[\(i)]: as must be 1 to 256 bytes" }
        }
        if keyColumn.isEmpty || keyColumn.utf8.count > 256 { return "key_column must be 1 to 256 bytes" }
        if ["window_start", "window_end", "seq", "op", "before", "final"].contains(keyColumn) { return "key_column: \"\(keyColumn)\" is reserved" }
        for (i, a) in aggregates.enumerated() where a.input != nil && a.alias == nil {
            return "aggregates[\(i)]: an aggregate over an expression needs as"
        }
        let names = columnNames
        for (i, n) in names.enumerated() {
            if [keyColumn, keyColumn + "_base64", "window_start", "window_end", "seq", "op", "before", "final"].contains(n) {
                return "aggregates[\(i)]: column name \"\(n)\" is reserved"
            }
            if names[..<i].contains(n) { return "aggregates[\(i)]: column \"\(n)\" given twice" }
        }
        if retentionMs <= 0 || retentionMs > maxMs { return "retention must be a positive duration" }
        do {
            _ = try EventStage(self)
            _ = try RowProjection(self)
        } catch {
            return error.detail
        }
        return nil
    }

    // MARK: - Stored form

    /// Version 3: the members of version 2 (`retentionMs` last), then each aggregate's optional
    /// `input`, `source`, `filter`, `outputColumns`, `having`, `keyColumn` and `sql` (optional
    /// values behind a `u8` 0/1; expressions as `Expression.encode` writes them). Versions 2 and
    /// 1 (earlier releases) are read too; version 1 is a tumbling window over one value with
    /// aggregates from count, sum, min, max, avg, and the default retention.
    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(3)
        w.string(name); w.string(keyField); w.string(timeField)
        w.u8(fieldsDeclared ? 1 : 0)
        w.u32(UInt32(fields.count))
        for f in fields { w.string(f) }
        switch window {
        case .tumble(let s): w.u8(1); w.i64(s); w.i64(0)
        case .hop(let s, let slide): w.u8(2); w.i64(s); w.i64(slide)
        case .session(let g): w.u8(3); w.i64(g); w.i64(0)
        }
        w.i64(allowedLatenessMs); w.i64(idleTimeoutMs)
        w.u8(groupBy == .key ? 0 : 1)
        switch emit {
        case .final: w.u8(0); w.i64(0)
        case .changes: w.u8(1); w.i64(0)
        case .every(let ms): w.u8(2); w.i64(ms)
        }
        w.u8(lateData == .drop ? 0 : 1)
        w.u32(UInt32(aggregates.count))
        for a in aggregates {
            w.string(a.function.rawValue); w.u32(UInt32(a.field)); w.f64(a.quantile); w.f64(a.accuracy)
            w.u8(a.alias == nil ? 0 : 1); w.string(a.alias ?? "")
        }
        w.i64(retentionMs)
        for a in aggregates { Expression.encodeOptional(a.input, into: &w) }
        w.u8(source == nil ? 0 : 1); w.string(source ?? "")
        Expression.encodeOptional(filter, into: &w)
        w.u8(outputColumns == nil ? 0 : 1)
        w.u32(UInt32(outputColumns?.count ?? 0))
        for c in outputColumns ?? [] { w.string(c.name); c.expression.encode(into: &w) }
        Expression.encodeOptional(having, into: &w)
        w.string(keyColumn)
        w.u8(sql == nil ? 0 : 1); w.string(sql ?? "")
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let version = try r.u8()
        switch version {
        case 1:
            let name = try r.string(), keyField = try r.string(), timeField = try r.string(), valueField = try r.string()
            let size = try r.i64(), lateness = try r.i64(), idle = try r.i64()
            let aggregates = try r.string().split(separator: ",").map {
                guard let f = AggregateFunction(rawValue: String($0)), Aggregate.allCases.contains(Aggregate(f)) else { throw ByteReader.DecodeError() }
                return Aggregate(f)
            }
            self.init(name: name, keyField: keyField, timeField: timeField, valueField: valueField, windowSizeMs: size,
                allowedLatenessMs: lateness, aggregates: aggregates, idleTimeoutMs: idle)
        case 2, 3:
            let name = try r.string(), keyField = try r.string(), timeField = try r.string()
            self.init(name: name, keyField: keyField, timeField: timeField, windowSizeMs: 1)
            fieldsDeclared = try r.u8() == 1
            let nf = Int(try r.u32())
            guard nf >= 1 && nf <= EventBatch.fieldsMax else { throw ByteReader.DecodeError() }
            fields = try (0..<nf).map { _ in try r.string() }
            let kind = try r.u8(), a = try r.i64(), b = try r.i64()
            switch kind {
            case 1: window = .tumble(sizeMs: a)
            case 2: window = .hop(sizeMs: a, slideMs: b)
            case 3: window = .session(gapMs: a)
            default: throw ByteReader.DecodeError()
            }
            allowedLatenessMs = try r.i64(); idleTimeoutMs = try r.i64()
            groupBy = try r.u8() == 0 ? .key : .all
            let emitKind = try r.u8(), every = try r.i64()
            switch emitKind {
            case 0: emit = .final
            case 1: emit = .changes
            case 2: emit = .every(ms: every)
            default: throw ByteReader.DecodeError()
            }
            lateData = try r.u8() == 0 ? .drop : .keep
            let na = Int(try r.u32())
            aggregates = try (0..<na).map { _ in
                guard let f = AggregateFunction(rawValue: try r.string()) else { throw ByteReader.DecodeError() }
                let field = Int(try r.u32()), q = try r.f64(), accuracy = try r.f64()
                let hasAlias = try r.u8() == 1, alias = try r.string()
                return Aggregate(f, field: field, quantile: q, accuracy: accuracy, alias: hasAlias ? alias : nil)
            }
            retentionMs = try r.i64()
            if version == 3 {
                for i in aggregates.indices { aggregates[i].input = try Expression.decodeOptional(from: &r) }
                let hasSource = try r.u8() == 1, sourceName = try r.string()
                source = hasSource ? sourceName : nil
                filter = try Expression.decodeOptional(from: &r)
                let hasOutputs = try r.u8() == 1, n = Int(try r.u32())
                guard n <= r.bytes.count - r.at else { throw ByteReader.DecodeError() }
                let outputs = try (0..<n).map { _ in OutputColumn(name: try r.string(), expression: try Expression.decode(from: &r)) }
                outputColumns = hasOutputs ? outputs : nil
                having = try Expression.decodeOptional(from: &r)
                keyColumn = try r.string()
                let hasSQL = try r.u8() == 1, text = try r.string()
                sql = hasSQL ? text : nil
            }
        default:
            throw ByteReader.DecodeError()
        }
        guard r.atEnd else { throw ByteReader.DecodeError() }
    }
}

extension ReactorLimits {
    /// Event times must lie in `-eventTimeAbsMaxMs...eventTimeAbsMaxMs` so window ends and
    /// watermarks never overflow; the decoders refuse times beyond it (one bound, defined there).
    public static let eventTimeAbsMaxMs: Int64 = EventDecodeLimits.eventTimeAbsMaxMs
}
