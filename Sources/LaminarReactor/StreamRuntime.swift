import LaminarFormats

/// A late event kept for `GET /streams/{name}/late` (`late_data: keep`): as it arrived.
public struct LateEvent: Sendable, Hashable {
    public var key: [UInt8]
    public var timestampMs: Int64
    /// The event's fields, in the definition's order.
    public var values: [Double]
}

/// A defined stream's live state (reactor thread only): its window operator, write-ahead
/// sequence numbers, idempotency memory, followers, idle timer, and its results on their way out
/// (rows of closed windows not yet emitted, the result sequence, the retained range).
///
/// Invariants: `oldestRetainedSeq <= storedResultEnd`; rows `oldestRetainedSeq..<storedResultEnd`
/// are in the stream's result slices, rows `storedResultEnd..<nextResultSeq` in `pendingSlices`
/// (slices the store refused, written by a later round); no checkpoint while built rows are
/// pending in the operator (closed windows may be) or rows in `pendingSlices` (`checkpointIfDue`).
final class StreamRuntime {
    let id: UInt64
    let definition: StreamDefinition
    let columns: WindowResult.Columns
    /// Per-event expressions (filter, aggregate inputs) and post-aggregate ones (select,
    /// having); `nil` when the definition has none, so such streams pay nothing for them.
    let stage: EventStage?
    let projection: RowProjection?
    var op: WindowOperator
    /// `emit: changes`: rows changed this round, to flush before the round commits.
    var flushPending = false
    /// The most recent late events (`late_data: keep`), oldest first, at most
    /// `ReactorLimits.lateEventsPerStreamMax`; rebuilt from the write-ahead log after a restart
    /// only for the entries after the checkpoint. `GET /streams/{name}/late` reads them.
    var lateEvents: [LateEvent] = []
    /// Sequence number of the next write-ahead entry.
    var nextSequence: UInt64 = 1
    /// First write-ahead entry not covered by the checkpoint (`nextSequence` when none).
    var firstUncheckpointed: UInt64 = 1
    /// A stream reading a named source: the next source entry it has not taken, and that
    /// number as of its last checkpoint (the source keeps its entries from there on). 0 else.
    var sourceNext: UInt64 = 0
    var checkpointSourceNext: UInt64 = 0
    /// When the last checkpoint was written (wall clock, ms), `nil` if none yet.
    var lastCheckpointAtMs: Int64?
    /// The checkpoint being written in parts (`CheckpointJob`), if any: one at a time.
    var checkpointJob: CheckpointJob?
    /// Generation of the last checkpoint written in parts (current or not), and the parts of the
    /// current one (0 when it is one value): the next checkpoint deletes them.
    var checkpointGeneration: UInt64 = 0
    var checkpointParts = 0
    var idempotency = IdempotencyMemory()
    var followers: [UInt64] = []
    var lastEventAtMs: Int64
    var idleTimerPending = false
    /// The sequence number the next emitted row gets (checkpointed; replay reassigns the same).
    var nextResultSeq: UInt64 = 1
    /// The stream's retained results (the reactor's `resultSets` entry for its name).
    var results: ResultSet
    /// The oldest row still retained (`nextResultSeq` when none).
    var oldestRetainedSeq: UInt64 {
        get { results.oldest }
        set { results.oldest = newValue }
    }
    /// Window end of the row at `oldestRetainedSeq` when known (retention looks at it first).
    var oldestRetainedEndMs: Int64?
    /// Rounds that emitted some of this stream's rows (stats: a big close takes several).
    var resultSlices: UInt64 = 0
    /// How fast a big close's rows leave (`Reactor.emitResultSlices`).
    var emitPace = EmitPace()
    /// Result slices the store refused (full disk), oldest first: the rows of one emit at most,
    /// since the stream emits nothing more while any waits (`PendingSlice`).
    var pendingSlices: [PendingSlice] = []
    /// `emittedWatermarkMs` as it was before the first pending slice's rows left the operator:
    /// followers' progress stays there until they are stored.
    var pendingWatermarkMs: Int64 = .min
    /// Result slice writes the store refused, retries included (stats).
    var resultWritesRefused: UInt64 = 0
    /// A retry of the pending slices is scheduled (`Reactor.scheduleResultRetry`).
    var retryTimerPending = false
    /// The `seq` before which every emitted row is stored: the first pending slice's, or
    /// `nextResultSeq` when none waits.
    var storedResultEnd: UInt64 { pendingSlices.first?.firstSeq ?? nextResultSeq }
    /// Listed in `Reactor.resultWork` (rows pending or retention maybe due).
    var inResultWork = false

    init(id: UInt64, definition: StreamDefinition, nowMs: Int64) {
        self.id = id
        self.definition = definition
        self.columns = WindowResult.Columns(definition)
        do {
            stage = try EventStage(definition)
            projection = try RowProjection(definition)
        } catch {
            preconditionFailure("a definition is validated before it runs: \(error.detail)")
        }
        self.op = WindowOperator(definition: stage?.operatorDefinition ?? definition,
                                 nullable: stage?.nullable ?? [], nonNullCounts: stage?.nonNullCounts ?? [])
        self.lastEventAtMs = nowMs
        results = ResultSet(name: definition.name)
    }

    var stats: StreamStats {
        StreamStats(definition: definition, eventsAccepted: op.eventsAccepted, eventsLate: op.eventsLate,
            watermarkMs: op.watermarkMs, openWindows: op.openWindowCount, windowsClosed: op.windowsClosed, keys: op.keyCount,
            lastCheckpointAtMs: lastCheckpointAtMs, walEntries: entriesSinceCheckpoint,
            resultSeq: storedResultEnd - 1, oldestRetainedSeq: oldestRetainedSeq, rowsPending: rowsPending,
            resultSlices: resultSlices, resultWritesRefused: resultWritesRefused)
    }

    /// Rows queued in the operator, not yet emitted (closed windows' rows are built as they go).
    var rowsPending: Int { op.rowsQueued }

    /// Log entries recovery would replay: its own since the checkpoint, and its source's since
    /// the source point of the checkpoint (a stream reading a named source).
    var entriesSinceCheckpoint: UInt64 { nextSequence - firstUncheckpointed + (sourceNext - checkpointSourceNext) }

    /// The watermark up to which emitted results are complete: the operator's, or just before
    /// the end of the oldest closed window whose rows are still pending (a changelog's queue may
    /// begin with updates of open windows; progress ticks read this, once a second at most).
    var emittedWatermarkMs: Int64 {
        let mark = op.firstQueuedCloseEndMs.map { min(op.watermarkMs, $0 - 1) } ?? op.watermarkMs
        return pendingSlices.isEmpty ? mark : min(mark, pendingWatermarkMs)
    }

    /// Whether the oldest retained row may have to leave (retention or the retained-rows bound).
    func expiryDue(retainedMax: Int) -> Bool {
        expiryDue(seq: oldestRetainedSeq, endMs: oldestRetainedEndMs, retainedMax: retainedMax)
    }

    /// `expiryDue` were row `seq` (its window ending at `endMs`, nil if not known) the oldest.
    @inline(__always)
    func expiryDue(seq: UInt64, endMs: Int64?, retainedMax: Int) -> Bool {
        let stored = storedResultEnd
        guard seq < stored else { return false }
        if seq < results.leftBefore { return true }
        if stored - seq > UInt64(retainedMax) { return true }
        guard let end = endMs else { return true }  // unknown: look at it
        return op.watermarkMs != .min && end <= op.watermarkMs - definition.retentionMs
    }

    /// Keeps the late events of the batch just ingested (`op.lateIndices`, through the stage's
    /// map of the events it kept), dropping the oldest beyond `max`.
    func keepLate(_ batch: EventBatch, max: Int) {
        guard !op.lateIndices.isEmpty else { return }
        batch.withEvents { events in
            for j in op.lateIndices {
                let i = stage.map { $0.kept[j] } ?? j
                lateEvents.append(LateEvent(key: Array(events.key(i)), timestampMs: events.timestamp(i),
                    values: (0..<events.fieldCount).map { events.field(i, $0) }))
            }
        }
        if lateEvents.count > max { lateEvents.removeFirst(lateEvents.count - max) }
    }

    /// Checkpoint value: version (6), when it was written (ms), the next sequence number, the
    /// next result sequence number, idempotency keys (oldest first), operator
    /// (`WindowOperator.encodeCheckpoint`, ending with the closed windows queued); version 7, for
    /// a stream reading a named source, the same followed by `sourceNext` (u64). Versions 3 and
    /// 4 (earlier releases) are 6 and 7 without queued windows; 1 and 2 lack the result
    /// sequence and hold a tumbling operator of their own form; 1 lacks the time. Taken with no
    /// built rows pending (`WindowOperator.checkpointable`) and no slice waiting to be stored, so
    /// the operator's state, its queued windows and `nextResultSeq` describe the same moment
    /// (`CheckpointSnapshot.encode` writes it; a big one is stored in parts under a version 5
    /// head, `CheckpointJob`).
    func checkpointSnapshot(atMs: Int64) -> CheckpointSnapshot {
        precondition(pendingSlices.isEmpty, "a checkpoint never passes rows not stored")
        return CheckpointSnapshot(atMs: atMs, nextSequence: nextSequence, nextResultSeq: nextResultSeq,
                                  idempotencyKeys: idempotency.oldestFirst, op: op.checkpointCopy(),
                                  sourceNext: definition.source == nil ? nil : sourceNext)
    }

    func decodeCheckpoint(_ bytes: [UInt8], limits: ReactorLimits) throws {
        var r = ByteReader(bytes)
        let version = try r.u8()
        let hasSource = version == 4 || version == 7
        guard (1...4).contains(version) || version == 6 || version == 7, hasSource == (definition.source != nil) else {
            throw ByteReader.DecodeError()
        }
        if version >= 2 { lastCheckpointAtMs = Int64(bitPattern: try r.u64()) }
        nextSequence = try r.u64()
        if version >= 3 { nextResultSeq = try r.u64() }
        firstUncheckpointed = nextSequence
        let n = Int(try r.u32())
        for _ in 0..<n { idempotency.remember(try r.u64(), max: limits.idempotencyKeysPerStreamMax) }
        if version >= 3 {
            try op.decodeCheckpoint(from: &r, keysMax: limits.streamKeysMax, queuedWindows: version >= 6)
            if hasSource {
                sourceNext = try r.u64()
                checkpointSourceNext = sourceNext
            }
        } else {
            guard case .tumble = definition.window else { throw ByteReader.DecodeError() }
            try op.decodeLegacyCheckpoint(from: &r, keysMax: limits.streamKeysMax)
        }
        guard r.atEnd else { throw ByteReader.DecodeError() }
    }
}

/// A write-ahead entry: `[u8 kind][u8 has idempotency key][u64 key][payload]`; kind 1 = an
/// accepted event batch (payload: its bytes), kind 2 = an idle watermark advance (payload: i64),
/// kind 3 = a changelog flush (`emit: changes` round end, `every` tick; no payload), so replay
/// emits the same rows at the same points. For a stream reading a named source, kinds 2 and 3
/// carry in the key field (`tag`) the stream's `sourceNext` when they were logged: replay
/// applies the source's entries up to it first (0 otherwise).
enum WALEntry {
    case batch(EventBatch, idempotencyKey: UInt64?)
    case watermark(Int64)
    case flush

    static let headerBytes = 10

    func encoded(tag: UInt64 = 0) -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .batch(let batch, let key):
            w.bytes.reserveCapacity(WALEntry.headerBytes + batch.bytes.count)
            w.u8(1); w.u8(key == nil ? 0 : 1); w.u64(key ?? 0)
            w.bytes.append(contentsOf: batch.bytes)
        case .watermark(let ms):
            w.u8(2); w.u8(0); w.u64(tag); w.i64(ms)
        case .flush:
            w.u8(3); w.u8(0); w.u64(tag)
        }
        return w.bytes
    }

    /// The key field of an entry (a watermark's or flush's tag).
    static func tag(of bytes: [UInt8]) throws -> UInt64 {
        var r = ByteReader(bytes, at: 2)
        return try r.u64()
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
        case 3:
            self = .flush
        default:
            throw ByteReader.DecodeError()
        }
    }
}
