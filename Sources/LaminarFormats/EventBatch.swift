/// A batch of decoded events in columns, ready for the reactor in one ring slot: keys are
/// concatenated in `keyBytes` (event i's key is `keyBytes[keyStart(i)..<keyEnds[i]]`), times and
/// values are parallel arrays. Invariant: all columns have `count` entries and `keyEnds` is
/// non-decreasing and ends at `keyBytes.count`.
public struct EventBatch: Sendable, Hashable {
    public var keyBytes: [UInt8] = []
    public var keyEnds: [UInt32] = []
    /// Event time in ms since the epoch; `EventBatch.arrivalTime` when the event had none (the
    /// reactor stamps it with the arrival time).
    public var timestampsMs: [Int64] = []
    public var values: [Double] = []

    /// Marks an event without a time of its own.
    public static let arrivalTime = Int64.min

    public init() {}

    public var count: Int { timestampsMs.count }

    @inline(__always)
    public func keyStart(_ i: Int) -> Int { i == 0 ? 0 : Int(keyEnds[i - 1]) }

    public func key(_ i: Int) -> ArraySlice<UInt8> { keyBytes[keyStart(i)..<Int(keyEnds[i])] }

    public mutating func append(key: UnsafeRawBufferPointer, timestampMs: Int64, value: Double) {
        keyBytes.append(contentsOf: key)
        keyEnds.append(UInt32(keyBytes.count))
        timestampsMs.append(timestampMs)
        values.append(value)
    }

    public mutating func append(key: [UInt8], timestampMs: Int64, value: Double) {
        key.withUnsafeBytes { append(key: $0, timestampMs: timestampMs, value: value) }
    }

    public mutating func removeAll() {
        keyBytes.removeAll(keepingCapacity: true)
        keyEnds.removeAll(keepingCapacity: true)
        timestampsMs.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }
}

/// Why an event batch was rejected: the 1-based line (NDJSON) or event index (binary), and why.
/// The whole batch is rejected; nothing of it is applied.
public struct EventDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}

/// Limits an event decoder enforces.
public struct EventDecodeLimits: Sendable, Hashable {
    /// Longest key in bytes.
    public var keyBytesMax = 1024
    /// Longest NDJSON line in bytes (without the newline).
    public var lineBytesMax = 64 << 10
    /// Most events in one batch.
    public var eventsMax = 1_000_000

    public init() {}
}
