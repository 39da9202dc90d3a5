import LaminarFormats

/// An aggregate a stream computes per key and window.
public enum Aggregate: String, Sendable, Hashable, CaseIterable {
    case count, sum, min, max, avg
}

/// What a stream is: its event fields, its tumbling window and lateness, its aggregates, idle
/// timeout and result retention. Invariants (`validate`): a non-empty name without `/`,
/// `windowSizeMs > 0`, `allowedLatenessMs >= 0`, `idleTimeoutMs > 0`, `retentionMs > 0`, at
/// least one aggregate.
public struct StreamDefinition: Sendable, Hashable {
    public var name: String
    public var keyField: String
    public var timeField: String
    public var valueField: String
    public var windowSizeMs: Int64
    public var allowedLatenessMs: Int64
    public var aggregates: [Aggregate]
    public var idleTimeoutMs: Int64
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
        self.valueField = valueField
        self.windowSizeMs = windowSizeMs
        self.allowedLatenessMs = allowedLatenessMs
        self.aggregates = aggregates
        self.idleTimeoutMs = idleTimeoutMs
        self.retentionMs = retentionMs
    }

    /// `nil` if valid, else why not.
    public func validate(limits: ReactorLimits) -> String? {
        if name.isEmpty || name.utf8.count > limits.streamNameBytesMax { return "name must be 1...\(limits.streamNameBytesMax) bytes" }
        if name.utf8.contains(UInt8(ascii: "/")) { return "name must not contain '/'" }
        if windowSizeMs <= 0 || windowSizeMs > ReactorLimits.eventTimeAbsMaxMs { return "windowSizeMs must be positive" }
        if allowedLatenessMs < 0 || allowedLatenessMs > ReactorLimits.eventTimeAbsMaxMs { return "allowedLatenessMs must be >= 0" }
        if idleTimeoutMs <= 0 { return "idleTimeoutMs must be positive" }
        if aggregates.isEmpty { return "at least one aggregate" }
        if retentionMs <= 0 || retentionMs > ReactorLimits.eventTimeAbsMaxMs { return "retention must be positive" }
        return nil
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(2)
        w.string(name); w.string(keyField); w.string(timeField); w.string(valueField)
        w.i64(windowSizeMs); w.i64(allowedLatenessMs); w.i64(idleTimeoutMs)
        w.string(aggregates.map(\.rawValue).joined(separator: ","))
        w.i64(retentionMs)
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let version = try r.u8()
        guard version == 1 || version == 2 else { throw ByteReader.DecodeError() }
        name = try r.string(); keyField = try r.string(); timeField = try r.string(); valueField = try r.string()
        windowSizeMs = try r.i64(); allowedLatenessMs = try r.i64(); idleTimeoutMs = try r.i64()
        aggregates = try r.string().split(separator: ",").map { guard let a = Aggregate(rawValue: String($0)) else { throw ByteReader.DecodeError() }; return a }
        retentionMs = version >= 2 ? try r.i64() : StreamDefinition.retentionDefaultMs
    }
}

extension ReactorLimits {
    /// Event times must lie in `-eventTimeAbsMaxMs...eventTimeAbsMaxMs` so window ends and
    /// watermarks never overflow; the decoders refuse times beyond it (one bound, defined there).
    public static let eventTimeAbsMaxMs: Int64 = EventDecodeLimits.eventTimeAbsMaxMs
}
