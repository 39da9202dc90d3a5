/// An input of continuous queries: the shape of its events and its watermark. Events are posted
/// once to a source and every stream reading it sees them (one WAL record per batch).
///
/// A stream defined in JSON without `source` owns an implicit source of its own name, made of
/// its own key, time and value fields. A stream reading a named source copies the source's
/// `keyField`, `timeField` and `fields` into its definition, and its `allowedLatenessMs` is the
/// source's `watermarkDelayMs` plus the stream's own allowed lateness.
///
/// Invariants (checked by the engine when a source is created): a name valid as a stream name;
/// 1...`EventBatch.fieldsMax` distinct non-empty field names, none equal to `keyField` or
/// `timeField`; `watermarkDelayMs >= 0`; `idleTimeoutMs > 0`.
public struct SourceDefinition: Sendable, Hashable {
    public var name: String
    public var keyField: String
    public var timeField: String
    /// The numeric (f64) fields of an event, in the order binary batches lay them out.
    public var fields: [String]
    /// The watermark trails the maximum event time by this much (SQL `WATERMARK FOR ts AS ts - INTERVAL …`).
    public var watermarkDelayMs: Int64
    /// Idle time after which the watermark advances with the wall clock.
    public var idleTimeoutMs: Int64

    public init(name: String, keyField: String, timeField: String, fields: [String], watermarkDelayMs: Int64 = 0, idleTimeoutMs: Int64 = 10_000) {
        self.name = name
        self.keyField = keyField
        self.timeField = timeField
        self.fields = fields
        self.watermarkDelayMs = watermarkDelayMs
        self.idleTimeoutMs = idleTimeoutMs
    }
}
