import LaminarFormats
import LaminarStore

/// Every bound of the reactor, in one place, with its unit last in the name. Chosen at start-up;
/// nothing grows beyond them. `checkConsistency()` says whether they agree with each other.
/// The server derives the bounds a client can meet from `ServerLimits`; the rest keep these defaults.
public struct ReactorLimits: Sendable, Hashable {
    /// Slots of each producer's submission ring (a power of two).
    public var submissionRingCapacity: Int = 1024
    /// Slots of each producer's completion ring (a power of two).
    public var completionRingCapacity: Int = 2048
    /// Commands a producer may have submitted and not yet received the completion of. Normal
    /// completions always fit in the completion ring because this is at most its capacity minus
    /// `notificationSlotsPerProducer`.
    public var commandsInFlightMax: Int = 1024
    /// Completion-ring slots reserved for subscription notifications (and their final errors).
    public var notificationSlotsPerProducer: Int = 1024
    /// Notifications a subscription may have queued in the reactor, beyond the ring, before it is
    /// ended as a slow subscriber. Above the changes of the largest atomic batch (10 000
    /// operations), which arrive at once, so one batch never cuts a watcher that keeps up (a
    /// follower gets one notification per slice of closed-window rows, whatever their keys).
    public var subscriptionBacklogMax: Int = 16_384
    /// Live subscriptions per producer.
    public var subscriptionsPerProducerMax: Int = 256
    /// Commands the reactor takes from one ring in one round (fairness between producers).
    public var commandsPerRoundMax: Int = 256
    /// Events one ring's commands bring to a round, after which the ring waits for the next
    /// round (the command that passes it is taken whole). A round's work follows its events
    /// (their rows keep pace: `Reactor.emitResultSlices`), so this keeps rounds to a few
    /// milliseconds and acknowledgements flowing: a round of 128 batches of 1000 events over
    /// a million keys took 190 ms, and every batch in it waited for all of it. Not in a round
    /// in which an `emit: changes` stream took events (its rows are per round, not per event).
    public var eventsPerRoundMax: Int = 16_384
    /// Entries one scan may return.
    public var scanEntriesMax: Int = 10_000
    /// Events in one batch.
    public var batchEventsMax: Int = 1 << 20
    /// Longest event key in bytes (the decoders refuse longer ones; bounds `walEntryBytesMax`).
    public var eventKeyBytesMax: Int = 1024
    /// Longest value a client may write (KV put and atomic batch): `valueTooLarge` beyond. The
    /// store's own bound must be larger: it also holds write-ahead entries (`walEntryBytesMax`).
    public var valueBytesMax: Int = 16 << 20
    /// Distinct keys one stream tracks (interned key ids never exceed this).
    public var streamKeysMax: Int = 1 << 22
    /// Streams defined at once.
    public var streamsMax: Int = 1024
    /// Idempotency keys remembered per stream (most recent ones).
    public var idempotencyKeysPerStreamMax: Int = 4096
    /// Write-ahead entries per stream after which the reactor writes a checkpoint.
    public var walEntriesPerCheckpointMax: Int = 256
    /// A stream with many keys or open groups checkpoints after one logged entry per this many
    /// of them when that is more than `walEntriesPerCheckpointMax` (`Reactor.checkpointEntries`).
    public var checkpointGroupsPerEntry: Int = 256
    /// A due checkpoint of a tumbling stream whose open pane holds more groups than this waits
    /// for the next close, up to twice its entries (`Reactor.checkpointIfDue`): the snapshot
    /// copies the open pane on the reactor, and just after a close it holds few groups (the
    /// closed window goes into the checkpoint as it is, shared, never written again).
    public var checkpointOpenGroupsCopyMax: Int = 65_536
    /// A checkpoint bigger than this (estimated bytes) is not written in the round that takes it:
    /// its state is encoded on a thread of its own and stored in parts, one per round
    /// (`CheckpointJob`), so no round of the reactor spends time that grows with the state.
    /// Below it (about a millisecond of encoding) it is written at once.
    public var checkpointInlineBytesMax: Int = 256 << 10
    /// Bytes of one part of a checkpoint stored in parts (one store value per round).
    public var checkpointPartBytes: Int = 512 << 10
    /// Late events kept per stream with `late_data: keep` (the most recent ones).
    public var lateEventsPerStreamMax: Int = 10_000
    /// Longest stream name in bytes.
    public var streamNameBytesMax: Int = 128
    /// Interval of the store's `interval` fsync policy timer, in milliseconds.
    public var fsyncIntervalMs: Int64 = 100
    /// Rows of closed windows the reactor stores and sends in one slice, and in one round, all
    /// streams together, or as many as the events the round ingested (`Reactor.emitResultSlices`): a
    /// window with more rows is emitted in slices over several rounds, so commands (event
    /// batches) never wait for a whole window's rows.
    public var resultRowsPerRoundMax: Int = 8192
    /// Expired result rows one round removes (retention), all streams together, or as many as
    /// the events the round ingested.
    public var resultExpiriesPerRoundMax: Int = 8192
    /// How soon a stream writes again a result slice the store refused (full disk), in
    /// milliseconds; its rows wait meanwhile (`StreamRuntime.pendingSlices`). New rows of the
    /// stream bring the retry forward.
    public var resultRetryIntervalMs: Int64 = 100
    /// Result rows a stream retains (stored and readable with `since`); beyond it the oldest leave
    /// whatever their retention.
    public var resultsRetainedPerStreamMax: Int = 1_000_000
    /// Retained rows one resume page reads (`since`): the reactor's work per page is bounded.
    public var resultPageRowsMax: Int = 1024
    /// A follower gets a progress notification (watermark, last seq) this often, in milliseconds;
    /// the HTTP layer sends it on when nothing else went out meanwhile. 0: never.
    public var followProgressIntervalMs: Int64 = 1000
    /// Debug: the reactor writes a line on stderr for each round longer than this, in
    /// milliseconds, naming what it did and when it ended (`RoundTiming`), and its commit syncer
    /// one for each sync longer than this; 0: never. The server takes it from the environment
    /// variable `LAMINAR_DEBUG_SLOW_ROUND_MS`.
    public var slowRoundLogMs: Int = 0
    /// The time slice the reactor thread and its commit syncer ask the scheduler for
    /// (`CLinux_set_sched_slice_ns`), in nanoseconds; 0 keeps the kernel's default.
    public var threadSliceNs: UInt64 = 0

    public static let `default` = ReactorLimits()

    public init() {}

    /// The largest write-ahead entry an accepted batch makes: `batchEventsMax` events whose keys
    /// all take `eventKeyBytesMax` bytes. A batch is logged as one store value, so the store's
    /// value bound must hold this (one record: atomic and crash-safe without reassembly).
    public var walEntryBytesMax: Int {
        WALEntry.headerBytes + EventBatch.encodedBytes(events: batchEventsMax, keyBytes: batchEventsMax * eventKeyBytesMax)
    }

    /// `nil` if the limits agree; otherwise what is wrong.
    public func checkConsistency() -> String? {
        func isPowerOfTwo(_ n: Int) -> Bool { n > 0 && n & (n - 1) == 0 }
        if !isPowerOfTwo(submissionRingCapacity) { return "submissionRingCapacity must be a power of two" }
        if !isPowerOfTwo(completionRingCapacity) { return "completionRingCapacity must be a power of two" }
        if commandsInFlightMax < 1 { return "commandsInFlightMax must be positive" }
        if commandsInFlightMax > submissionRingCapacity { return "commandsInFlightMax exceeds the submission ring" }
        if notificationSlotsPerProducer < 1 { return "notificationSlotsPerProducer must be positive" }
        if commandsInFlightMax + notificationSlotsPerProducer > completionRingCapacity {
            return "commandsInFlightMax + notificationSlotsPerProducer exceed the completion ring"
        }
        if commandsPerRoundMax < 1 { return "commandsPerRoundMax must be positive" }
        if eventsPerRoundMax < 1 { return "eventsPerRoundMax must be positive" }
        if scanEntriesMax < 1 || batchEventsMax < 1 || streamKeysMax < 1 || streamsMax < 1 { return "limits must be positive" }
        if streamKeysMax > Int(UInt32.max) { return "streamKeysMax must fit key ids in 32 bits" }
        if eventKeyBytesMax < 1 || valueBytesMax < 0 { return "eventKeyBytesMax must be positive, valueBytesMax not negative" }
        // An event batch counts its key bytes in 32 bits.
        if batchEventsMax > Int(UInt32.max) / eventKeyBytesMax {
            return "batchEventsMax × eventKeyBytesMax must fit in 32 bits"
        }
        if walEntryBytesMax > StoreLimits.formatValueBytesMax { return "walEntryBytesMax exceeds the largest value a store record holds" }
        if valueBytesMax > StoreLimits.formatValueBytesMax { return "valueBytesMax exceeds the largest value a store record holds" }
        if walEntriesPerCheckpointMax < 1 { return "walEntriesPerCheckpointMax must be positive" }
        if checkpointGroupsPerEntry < 1 { return "checkpointGroupsPerEntry must be positive" }
        if checkpointOpenGroupsCopyMax < 0 { return "checkpointOpenGroupsCopyMax must not be negative" }
        if checkpointInlineBytesMax < 0 { return "checkpointInlineBytesMax must not be negative" }
        if checkpointPartBytes < 1 { return "checkpointPartBytes must be positive" }
        if fsyncIntervalMs < 1 { return "fsyncIntervalMs must be positive" }
        if resultRowsPerRoundMax < 1 || resultExpiriesPerRoundMax < 1 || resultsRetainedPerStreamMax < 1 || resultPageRowsMax < 1
            || resultRetryIntervalMs < 1 {
            return "result limits must be positive"
        }
        if followProgressIntervalMs < 0 { return "followProgressIntervalMs must be >= 0" }
        return nil
    }
}
