import LaminarFormats

/// A defined stream's live state (reactor thread only): its window operator, write-ahead
/// sequence numbers, idempotency memory, followers and idle timer.
final class StreamRuntime {
    let id: UInt64
    let definition: StreamDefinition
    var op: TumblingWindowOperator
    /// Sequence number of the next write-ahead entry.
    var nextSequence: UInt64 = 1
    /// First write-ahead entry not covered by the checkpoint (`nextSequence` when none).
    var firstUncheckpointed: UInt64 = 1
    /// When the last checkpoint was written (wall clock, ms), `nil` if none yet.
    var lastCheckpointAtMs: Int64?
    var recentIdempotencyKeys: Set<UInt64> = []
    var idempotencyOrder: [UInt64] = []
    var followers: [UInt64] = []
    var lastEventAtMs: Int64
    var idleTimerPending = false

    init(id: UInt64, definition: StreamDefinition, nowMs: Int64) {
        self.id = id
        self.definition = definition
        self.op = TumblingWindowOperator(windowSizeMs: definition.windowSizeMs, allowedLatenessMs: definition.allowedLatenessMs)
        self.lastEventAtMs = nowMs
    }

    var stats: StreamStats {
        StreamStats(definition: definition, eventsAccepted: op.eventsAccepted, eventsLate: op.eventsLate,
            watermarkMs: op.watermarkMs, openWindows: op.openWindowCount, windowsClosed: op.windowsClosed, keys: op.keyCount,
            lastCheckpointAtMs: lastCheckpointAtMs, walEntries: nextSequence - firstUncheckpointed)
    }

    func remember(idempotencyKey: UInt64, max: Int) {
        guard recentIdempotencyKeys.insert(idempotencyKey).inserted else { return }
        idempotencyOrder.append(idempotencyKey)
        if idempotencyOrder.count > max {
            let drop = idempotencyOrder.count - max
            for k in idempotencyOrder[0..<drop] { recentIdempotencyKeys.remove(k) }
            idempotencyOrder.removeFirst(drop)
        }
    }

    /// Checkpoint value: version (2), when it was written (ms), the next sequence number,
    /// idempotency keys (oldest first), operator. Version 1 lacks the time.
    func encodeCheckpoint(atMs: Int64) -> [UInt8] {
        var w = ByteWriter()
        w.u8(2)
        w.u64(UInt64(bitPattern: atMs))
        w.u64(nextSequence)
        w.u32(UInt32(idempotencyOrder.count))
        for k in idempotencyOrder { w.u64(k) }
        op.encodeCheckpoint(into: &w)
        return w.bytes
    }

    func decodeCheckpoint(_ bytes: [UInt8], limits: ReactorLimits) throws {
        var r = ByteReader(bytes)
        let version = try r.u8()
        guard version == 1 || version == 2 else { throw ByteReader.DecodeError() }
        if version == 2 { lastCheckpointAtMs = Int64(bitPattern: try r.u64()) }
        nextSequence = try r.u64()
        firstUncheckpointed = nextSequence
        let n = Int(try r.u32())
        for _ in 0..<n { remember(idempotencyKey: try r.u64(), max: limits.idempotencyKeysPerStreamMax) }
        try op.decodeCheckpoint(from: &r, keysMax: limits.streamKeysMax)
        guard r.atEnd else { throw ByteReader.DecodeError() }
    }
}

/// A write-ahead entry: `[u8 kind][u8 has idempotency key][u64 key][payload]`; kind 1 = an
/// accepted event batch (payload: its bytes), kind 2 = an idle watermark advance (payload: i64).
enum WALEntry {
    case batch(EventBatch, idempotencyKey: UInt64?)
    case watermark(Int64)

    static let headerBytes = 10

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .batch(let batch, let key):
            w.bytes.reserveCapacity(WALEntry.headerBytes + batch.bytes.count)
            w.u8(1); w.u8(key == nil ? 0 : 1); w.u64(key ?? 0)
            w.bytes.append(contentsOf: batch.bytes)
        case .watermark(let ms):
            w.u8(2); w.u8(0); w.u64(0); w.i64(ms)
        }
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let kind = try r.u8()
        let hasKey = try r.u8()
        let key = try r.u64()
        switch kind {
        case 1:
            guard let batch = EventBatch(bytes: Array(bytes[WALEntry.headerBytes...])) else { throw ByteReader.DecodeError() }
            self = .batch(batch, idempotencyKey: hasKey == 1 ? key : nil)
        case 2:
            self = .watermark(try r.i64())
        default:
            throw ByteReader.DecodeError()
        }
    }
}
