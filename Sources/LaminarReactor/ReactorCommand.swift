import Glibc
import LaminarFormats
import LaminarStore

/// One request to the reactor, with the caller's token echoed in its completion.
///
/// Layout (fields in this order): 72 bytes, the operation's 41 between the pointers and the kind
/// and key's length.
public struct ReactorCommand: @unchecked Sendable {
    /// Which of `Reactor.execute`'s paths runs the command, noted when it is built (a look at
    /// the enum's case from the reactor risked a copy of it).
    enum Kind: UInt8 { case get, put, other }

    public let token: UInt64
    /// Where a single-key command's key bytes and a put's value bytes lie, noted by the producer
    /// when it builds the command, for the reactor to prefetch a few commands ahead
    /// (`CommandPrefetch`) without touching the enum (a look into its payload copied it: a
    /// retain and a release of each array per look). Valid while the command lives: it holds the arrays.
    let keyBytes: UnsafeRawPointer?
    let valueBytes: UnsafeRawPointer?
    public let operation: ReactorOperation
    /// Before `keyCount`: in the byte after the operation's 41 (after it, the command took 80).
    let kind: Kind
    let keyCount: Int32

    public init(token: UInt64, _ operation: consuming ReactorOperation) {
        self.token = token
        (keyBytes, keyCount, valueBytes, kind) = Self.bytes(of: operation)
        self.operation = operation
    }

    /// Where `operation`'s key and value bytes lie, and its kind. A borrowing switch: its
    /// bindings are borrowed (a switch over a copy bound the arrays by copying the whole enum, an
    /// outlined copy and destroy of it per command, ~40 instructions and a retain/release of each
    /// array).
    @inline(__always)
    private static func bytes(of operation: borrowing ReactorOperation) -> (UnsafeRawPointer?, Int32, UnsafeRawPointer?, Kind) {
        switch operation {
        case .get(let key):
            return key.withUnsafeBytes { ($0.baseAddress, Int32(truncatingIfNeeded: $0.count), nil, .get) }
        case .delete(let key, _):
            return key.withUnsafeBytes { ($0.baseAddress, Int32(truncatingIfNeeded: $0.count), nil, .other) }
        case .put(let key, let value, _, _):
            let v = value.withUnsafeBytes { $0.baseAddress }
            return key.withUnsafeBytes { ($0.baseAddress, Int32(truncatingIfNeeded: $0.count), v, .put) }
        default:
            return (nil, 0, nil, .other)
        }
    }

    /// The key of a single-key command, nil for others (`keyBytes`).
    var key: UnsafeRawBufferPointer? {
        keyBytes.map { UnsafeRawBufferPointer(start: $0, count: Int(keyCount)) }
    }
}

/// What a command asks for.
///
/// Layout: a command is copied into the submission ring and out of it, so the enum is kept to
/// the size of its commonest cases (`put`: 41 bytes): every case whose
/// payload is larger is `indirect` (boxed once when built; those commands carry a whole
/// definition or an event batch, so one allocation is nothing beside their work). A 224-byte
/// command — the size a `StreamDefinition` inline gave every case — cost a `memcpy` and an
/// outlined copy per ring hop.
public enum ReactorOperation: Sendable {
    case get(key: [UInt8])
    /// `ttlMs`: the key expires that many milliseconds of processing time from now.
    case put(key: [UInt8], value: [UInt8], condition: WriteCondition, ttlMs: Int64?)
    case delete(key: [UInt8], condition: WriteCondition)
    case prefixScan(prefix: [UInt8], after: [UInt8]?, limit: Int)
    indirect case rangeScan(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int)
    /// All or nothing, one revision.
    case batch([StoreMutation])
    /// Creates or replaces (an unchanged definition is a no-op; a changed one resets its state).
    indirect case defineStream(StreamDefinition)
    case deleteStream(name: String)
    case streamStats(name: String)
    case listStreams
    /// `idempotencyKey`: a retried batch with a key seen recently counts once.
    indirect case appendEvents(stream: String, batch: EventBatch, idempotencyKey: UInt64?)
    /// Closed-window results of a stream (one key, or the keys that begin with `keyPrefix`, or
    /// all), in key then start order.
    indirect case queryResults(stream: String, key: [UInt8]?, after: [UInt8]?, limit: Int, keyPrefix: [UInt8]? = nil)
    /// The retained result rows after sequence number `after` (at most
    /// `ReactorLimits.resultPageRowsMax` looked at), of keys beginning with `keyPrefix`.
    /// Answered by `.retainedResults`; when the page reaches the newest row, the command's token
    /// also becomes a live follow (as `.follow`), with no row missed or repeated in between.
    indirect case resumeResults(stream: String, after: UInt64, keyPrefix: [UInt8])
    /// The late events a stream kept (`late_data: keep`), in arrival order.
    case lateEvents(stream: String)
    /// Subscribes to changes of keys under `prefix`; notifications carry this command's token.
    case watch(prefix: [UInt8])
    /// Subscribes to a stream's window results as windows close.
    case follow(stream: String)
    /// Ends the subscription started by the command with token `subscription`.
    case unsubscribe(subscription: UInt64)
    /// Size and durability counters of the store (for `/metrics`).
    case storeStats
    /// Creates a named source (an unchanged definition is a no-op; a changed one replaces it
    /// while no stream reads it, else `conflict`).
    indirect case defineSource(SourceDefinition)
    /// `conflict` while streams read it.
    case deleteSource(name: String)
    case sourceInfo(name: String)
    case listSources
    /// A batch posted to a source: one write-ahead entry, applied to every stream reading it.
    indirect case appendSourceEvents(source: String, batch: EventBatch, idempotencyKey: UInt64?)
    /// The sources and streams, for a SQL script to be compiled against (`.catalog`).
    case catalog
    /// Catalog changes of a SQL script, applied in order in one round: checked first (names,
    /// conflicts, definitions), so a refused script applies none (`.catalogApplied`).
    case applyCatalog([CatalogStep])
}

/// A named source and the streams that read it.
public struct SourceInfo: Sendable, Hashable {
    public var definition: SourceDefinition
    /// Names of the streams reading it, sorted.
    public var streams: [String]

    public init(definition: SourceDefinition, streams: [String]) {
        self.definition = definition
        self.streams = streams
    }
}

/// One statement of a SQL script, compiled (LaminarSQL) and checked against the catalog: what
/// `POST /sql` applies (in order, all or none, in one store batch) or answers.
public enum CatalogStep: Sendable, Hashable {
    case createSource(SourceDefinition)
    /// The definition carries its SQL text in `sql`. Refused (`conflict`) when a stream of that
    /// name exists.
    case createStream(StreamDefinition)
    /// `ifExists` and absent: nothing to do, answered as such.
    case dropSource(name: String, ifExists: Bool)
    case dropStream(name: String, ifExists: Bool)
    case showSources
    case showStreams
    /// The compiled definition, answered (`.done`) without creating anything.
    case explain(StreamDefinition)
}

/// What one `CatalogStep` did.
public enum CatalogStepResult: Sendable, Hashable {
    case done
    /// A drop: whether there was something to drop.
    case dropped(Bool)
    case sources([SourceInfo])
    case streams([StreamStats])
}

/// The store as `/metrics` shows it, read on the reactor thread.
public struct StoreStatsSnapshot: Sendable, Hashable {
    public var keys: Int
    public var bytes: Int
    /// Fraction of `bytes` held by overwritten or deleted records (0 for the in-memory store).
    public var garbageRatio: Double
    public var fsyncCount: UInt64
    public var fsyncNanosTotal: UInt64
    public var compactions: UInt64
    public var streams: Int
    public var subscriptions: Int
    /// The store revision (grows with every mutation).
    public var revision: UInt64
    /// One entry per stream, in name order (the number of streams is bounded by the limits).
    public var perStream: [StreamMetrics]
}

/// The figures of one stream that `/metrics` exports.
public struct StreamMetrics: Sendable, Hashable {
    public var name: String
    public var eventsAccepted: UInt64
    public var eventsLate: UInt64
    /// `Int64.min` until the stream has seen an event.
    public var watermarkMs: Int64
    public var openWindows: Int
}

/// A command's outcome, or a subscription's notification, for the token.
public struct ReactorCompletion: Sendable {
    public var token: UInt64
    public var result: ReactorResult
    public init(token: UInt64, _ result: ReactorResult) {
        self.token = token
        self.result = result
    }
}

/// A retained result row as stored: its sequence number and JSON line (no newline).
public struct RetainedRow: Sendable, Hashable {
    public var seq: UInt64
    public var json: [UInt8]
}

/// A key change seen by a watch.
public struct KeyChange: Sendable, Hashable {
    public var key: [UInt8]
    /// `nil` for a delete (or an expiry).
    public var value: [UInt8]?
    public var revision: Revision
}

/// Counters and state of a stream.
public struct StreamStats: Sendable, Hashable {
    public var definition: StreamDefinition
    public var eventsAccepted: UInt64
    public var eventsLate: UInt64
    public var watermarkMs: Int64
    public var openWindows: Int
    public var windowsClosed: UInt64
    public var keys: Int
    /// When the stream's state was last checkpointed (wall clock, ms); `nil` if never.
    public var lastCheckpointAtMs: Int64?
    /// Write-ahead entries (batches, idle advances) logged since that checkpoint: what recovery replays.
    public var walEntries: UInt64
    /// The sequence number of the last emitted result row (0: none yet).
    public var resultSeq: UInt64
    /// The oldest result row still retained (`resultSeq + 1` when none is).
    public var oldestRetainedSeq: UInt64
    /// Rows of closed windows not yet emitted (a big close is emitted in slices).
    public var rowsPending: Int
    /// Rounds that emitted rows of this stream.
    public var resultSlices: UInt64
    /// Result slice writes the store refused (full disk); their rows wait and are written later.
    public var resultWritesRefused: UInt64 = 0
}

/// The reply to an event batch.
public struct EventsAck: Sendable, Hashable {
    public var accepted: Int
    public var late: Int
    public var watermarkMs: Int64
    /// The batch was a retry of one already counted (idempotency key); nothing was added.
    public var duplicate: Bool

    public init(accepted: Int, late: Int, watermarkMs: Int64, duplicate: Bool) {
        self.accepted = accepted
        self.late = late
        self.watermarkMs = watermarkMs
        self.duplicate = duplicate
    }
}

/// Results. Notifications (`isNotification`) use completion-ring slots reserved for them and do
/// not count against the producer's commands in flight.
///
/// Layout: as with `ReactorOperation`, the cases with payloads larger than a value's
/// (`StoredValue` and its version, 32 bytes) are `indirect`, so a completion stays 48 bytes.
public enum ReactorResult: Sendable {
    /// A value as the store holds it (`StoredValue`: no copy; pinned while held).
    case value(StoredValue, version: Revision)
    case written(version: Revision)
    case deleted(version: Revision)
    case entries(ScanPage)
    case batchApplied(revision: Revision)
    case ok
    indirect case streamStats(StreamStats)
    case streams([String])
    case eventsAccepted(EventsAck)
    indirect case storeStats(StoreStatsSnapshot)
    /// The subscription is live; notifications follow with the same token.
    case subscribed
    /// A page of retained rows (their seq and stored JSON, seq first), the last sequence number
    /// looked at, and whether the follow is now live (`resumeResults`).
    case retainedResults(rows: [RetainedRow], lastSeq: UInt64, live: Bool)
    case lateEvents([LateEvent])
    indirect case source(SourceInfo)
    case sources([SourceInfo])
    case catalog(sources: [SourceInfo], streams: [StreamStats])
    case catalogApplied([CatalogStepResult])
    case failure(ReactorError)
    // Notifications:
    case change(KeyChange)
    /// The results of the windows one command (or timer) closed, oldest window first: one
    /// notification per follower however many keys the windows had (the array is shared).
    case windowsClosed([WindowResult])
    /// A follower's periodic progress: results are complete up to this watermark and sequence.
    case progress(watermarkMs: Int64, seq: UInt64)
    /// The subscription ended (slow subscriber, stream deleted, reactor stopping); no more follow.
    case subscriptionEnded(ReactorError)

    public var isNotification: Bool {
        switch self {
        case .change, .windowsClosed, .progress, .subscriptionEnded: return true
        default: return false
        }
    }
}

/// Why a command failed; a value, never a crash.
public enum ReactorError: Error, Sendable, Hashable {
    case notFound
    /// `current`: the key's version, `nil` if absent.
    case conditionFailed(current: Revision?)
    case emptyKey
    case keyTooLarge(bytes: Int, max: Int)
    case valueTooLarge(bytes: Int, max: Int)
    /// The key is under a prefix the reactor reserves (`ReservedKeys`).
    case reservedKey
    case unknownStream(String)
    case invalidStream(String)
    case unknownSource(String)
    case invalidSource(String)
    /// The request contradicts the catalog: a name taken, a source streams read, events posted
    /// to a stream that reads a named source. The detail says which.
    case conflict(String)
    case tooManyStreams
    case invalidEvents(String)
    case batchTooLarge(events: Int, max: Int)
    /// The batch's write-ahead entry would pass the store's value bound (`ReactorLimits.walEntryBytesMax`).
    case batchBytesTooLarge(bytes: Int, max: Int)
    case tooManyKeys
    case tooManySubscriptions
    case unknownSubscription
    case slowSubscriber
    case streamDeleted
    /// `since` is older than the oldest retained row (`oldestSeq`).
    case resultsGone(oldestSeq: UInt64)
    /// `since` is beyond the newest row (`lastSeq`).
    case sinceAhead(lastSeq: UInt64)
    case stopping
    /// The disk is full (or the data file at its size limit): this write was not applied; the
    /// store stays writable.
    case insufficientStorage(String)
    /// The store failed (fail-stop, `StoreError.storageFailed`): nothing more is acknowledged
    /// until a restart. The detail names the operation, the path and the errno.
    case storageFailed(String)
    /// Any other store error.
    case store(String)

    init(_ e: StoreError) {
        switch e {
        case .emptyKey: self = .emptyKey
        case .keyTooLarge(let b, let m): self = .keyTooLarge(bytes: b, max: m)
        case .valueTooLarge(let b, let m): self = .valueTooLarge(bytes: b, max: m)
        case .conditionFailed(_, let current): self = .conditionFailed(current: current)
        case .storageFailed: self = .storageFailed(e.description)
        case .io(_, _, let errno) where StoreError.isOutOfSpace(errno) || errno == EFBIG:
            self = .insufficientStorage(e.description)
        default: self = .store(e.description)
        }
    }

    /// A store error as a reactor error (anything else thrown is `.store`).
    init(_ error: any Error) {
        if let e = error as? StoreError { self.init(e) } else { self = .store("\(error)") }
    }
}
