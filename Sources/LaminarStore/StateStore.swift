#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A store-wide revision: it grows by one with every mutation (or atomic batch) and never goes
/// back, across restarts and compactions. A key's version is the revision of its last write, as in
/// etcd. `0` never names a write.
public typealias Revision = UInt64

/// The condition a write must meet to be applied (compare-and-swap).
public enum WriteCondition: Sendable, Hashable {
    /// Apply unconditionally.
    case always
    /// Apply only if the key exists with exactly this version (`If-Match`).
    case ifVersion(Revision)
    /// Apply only if the key does not exist (`If-None-Match: *`). A deleted key does not exist.
    case absent
}

/// One live key with its value and version, as scans and snapshots return it.
public struct StoreEntry: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]
    public var version: Revision
    /// Wall-clock expiry in milliseconds since the epoch, or `nil` for none. The store keeps it;
    /// expiring the key is the owner's job (the reactor's timers).
    public var expiresAtMs: Int64?

    public init(key: [UInt8], value: [UInt8], version: Revision, expiresAtMs: Int64? = nil) {
        self.key = key
        self.value = value
        self.version = version
        self.expiresAtMs = expiresAtMs
    }
}

/// A live entry as a scan visits it: the key and value are the store's bytes in place, valid only
/// during the visit.
public struct StoreEntryView {
    public var key: UnsafeRawBufferPointer
    public var value: UnsafeRawBufferPointer
    public var version: Revision
    /// Wall-clock expiry in milliseconds since the epoch; 0 for none.
    public var expiresAtMs: Int64
}

/// One operation of an atomic batch (`apply(_:)`).
public enum StoreMutation: Sendable, Hashable {
    case put(key: [UInt8], value: [UInt8], condition: WriteCondition = .always, expiresAtMs: Int64? = nil)
    case delete(key: [UInt8], condition: WriteCondition = .always)

    public var key: [UInt8] {
        switch self {
        case .put(let key, _, _, _), .delete(let key, _): return key
        }
    }

    /// Which mutations of a batch write a record, taken in order: every put, and a delete of a
    /// key present at that point — before the batch (`exists`), or put earlier in it and not
    /// deleted since. A delete of an absent key changes nothing: no record, no watch line.
    public static func writes(of batch: [StoreMutation], exists: ([UInt8]) -> Bool) -> [Bool] {
        var presentAfter: [[UInt8]: Bool] = [:]  // keys the batch touched so far
        return batch.map { mutation in
            switch mutation {
            case .put(let key, _, _, _):
                presentAfter[key] = true
                return true
            case .delete(let key, _):
                defer { presentAfter[key] = false }
                return presentAfter[key] ?? exists(key)
            }
        }
    }
}

/// A point-in-time copy of every live entry, in key order, and the revision it was taken at.
public struct StoreSnapshot: Sendable, Hashable {
    public var revision: Revision
    public var entries: [StoreEntry]

    public init(revision: Revision, entries: [StoreEntry]) {
        self.revision = revision
        self.entries = entries
    }
}

/// When the persistent store makes appended records durable (Redis's `appendfsync`).
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// `commit()` fsyncs before returning: the caller acknowledges a batch only after it
    /// (group commit: one fsync for everything appended since the last one).
    case always
    /// `commit()` fsyncs when the last fsync is `fsyncIntervalMs` old or older.
    case interval
    /// Never fsync on `commit()`; the OS writes back when it likes. `flush()` still syncs.
    case never
}

/// Size bounds the store enforces; violations are `StoreError`s, never truncation. The server
/// sets the value bound to the record format's ceiling (its own records, a logged event batch
/// or a checkpoint, may be large); the client's value bound is enforced above the store.
public struct StoreLimits: Sendable, Hashable {
    /// Longest key in bytes (keys are never empty).
    public var keyBytesMax: Int
    /// Longest value in bytes.
    public var valueBytesMax: Int

    public static let `default` = StoreLimits(keyBytesMax: 4096, valueBytesMax: 16 << 20)

    /// Hard ceilings of the record format (u16 key length, u32 value length).
    public static let formatKeyBytesMax = Int(UInt16.max)
    public static let formatValueBytesMax = Int(Int32.max)

    public init(keyBytesMax: Int, valueBytesMax: Int) {
        precondition(keyBytesMax > 0 && keyBytesMax <= StoreLimits.formatKeyBytesMax)
        precondition(valueBytesMax >= 0 && valueBytesMax <= StoreLimits.formatValueBytesMax)
        self.keyBytesMax = keyBytesMax
        self.valueBytesMax = valueBytesMax
    }
}

/// Why a store operation failed. Nothing is changed by an operation that throws, except that a
/// `storageFailed` error leaves the store refusing every later write (fail-stop).
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case emptyKey
    case keyTooLarge(bytes: Int, max: Int)
    case valueTooLarge(bytes: Int, max: Int)
    /// A write condition did not hold; `current` is the key's version (`nil`: the key is absent).
    case conditionFailed(key: [UInt8], current: Revision?)
    /// A system call on the data directory failed (`errno`) without putting anything
    /// acknowledged at risk: ENOSPC or EDQUOT from an allocation or from a write that changed
    /// no byte of a file in use, the data file's size limit (EFBIG), or a failure to open the
    /// store. The store stays writable; the same write may succeed once space is freed.
    case io(operation: String, path: String, errno: Int32)
    /// A sync, rename, truncation or write of the store's files failed in a way that may have
    /// lost data (a failed `fdatasync`/`fsync` may have dropped the dirty pages it was writing:
    /// a later successful sync proves nothing). The store is now failed for good: it refuses
    /// every write with this same error until it is reopened, and reopening recovers exactly
    /// what was durable. Reads go on from memory.
    case storageFailed(operation: String, path: String, errno: Int32)
    /// The directory holds something this version cannot read (bad magic or format version).
    case unreadable(path: String, reason: String)
    /// Another process holds the data directory's lock.
    case locked(path: String)
    /// The store was closed.
    case closed
    /// The revision is already the largest there is (only a damaged or forged data file whose
    /// records still pass their CRC gets there): writes are refused instead of overflowing.
    case revisionsExhausted

    public var description: String {
        switch self {
        case .emptyKey: return "empty key"
        case .keyTooLarge(let n, let max): return "key of \(n) bytes exceeds the limit of \(max) bytes"
        case .valueTooLarge(let n, let max): return "value of \(n) bytes exceeds the limit of \(max) bytes"
        case .conditionFailed(_, let current):
            return "condition failed: current version is \(current.map(String.init) ?? "absent")"
        case .io(let op, let path, let e): return "\(op) \(path) failed: \(Self.describe(errno: e))"
        case .storageFailed(let op, let path, let e):
            return "\(op) \(path) failed: \(Self.describe(errno: e)); the store refuses writes until it is restarted"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .locked(let path): return "\(path) is locked by another process"
        case .closed: return "store is closed"
        case .revisionsExhausted: return "no revision left: the store revision is already \(Revision.max)"
        }
    }

    /// `errno 5 (Input/output error)`.
    static func describe(errno e: Int32) -> String {
        "errno \(e) (\(String(cString: strerror(e))))"
    }

    /// Whether `errno` says the disk (or the user's quota) is full.
    public static func isOutOfSpace(_ errno: Int32) -> Bool { errno == ENOSPC || errno == EDQUOT }

    /// The error for a failed write (`pwrite`/`write`) of `written` bytes out of more: a full
    /// disk that changed nothing a reader relies on is recoverable (`io`); anything else, or a
    /// torn write into a file in use, is fail-stop. `fileInUse` is false for a file nothing
    /// refers to yet (a temporary hint file, compaction output before its rename), which is
    /// discarded on failure.
    static func writeFailed(_ operation: String, path: String, errno e: Int32, written: Int, fileInUse: Bool) -> StoreError {
        if isOutOfSpace(e) && (written == 0 || !fileInUse) { return .io(operation: operation, path: path, errno: e) }
        return .storageFailed(operation: operation, path: path, errno: e)
    }

    /// The error for a failed `posix_fallocate`: out of space (or past the largest file the file
    /// system allows) is recoverable, since nothing was written; anything else is fail-stop.
    static func allocateFailed(path: String, errno e: Int32) -> StoreError {
        if isOutOfSpace(e) || e == EFBIG { return .io(operation: "posix_fallocate", path: path, errno: e) }
        return .storageFailed(operation: "posix_fallocate", path: path, errno: e)
    }
}

/// The interface of both stores (in-memory and persistent): byte keys and values, a store-wide
/// revision, ordered scans.
///
/// Not thread-safe, by design: exactly one thread (the reactor) owns a store and calls it; nothing in
/// a store takes a lock. Keys order byte-wise (memcmp order, shorter first on a common prefix).
public protocol StateStore: AnyObject {
    var limits: StoreLimits { get }
    /// The revision of the last mutation (0 for a store never written).
    var revision: Revision { get }
    /// Number of live keys.
    var count: Int { get }
    /// Bytes the store occupies (the data file's logical length, or the arena's).
    var sizeBytes: Int { get }

    /// The value, version and expiry of `key`, copied out; `nil` if absent.
    func get(_ key: [UInt8]) -> StoreEntry?
    /// Calls `body` with the value bytes in place (no copy) and the version; `nil` if absent.
    /// The buffer is valid only inside `body`, which must not mutate the store.
    func withValue<R>(_ key: [UInt8], _ body: (UnsafeRawBufferPointer, Revision) throws -> R) rethrows -> R?
    /// The value of `key` where it lies (no copy), pinned for a reader on another thread
    /// (`StoredValue`), and its version; `nil` if absent.
    func storedValue(_ key: [UInt8]) -> (value: StoredValue, version: Revision)?
    /// A read of one key to answer: `storedValue(key)` and, with `durability`, `isDurable(key)`
    /// from one hash of it, `hash`, which must be `lookupHash(key)` (a caller that prefetched
    /// the key's lookup has it; `read(_:durability:)` hashes). Without `durability`, `durable` is
    /// false and the per-key write revisions are not looked at (a cache miss per read in a store
    /// larger than the cache: a reader that does not wait for syncs skips it).
    func read(_ key: [UInt8], hash: UInt64, durability: Bool) -> (found: (value: StoredValue, version: Revision)?, durable: Bool)
    /// The version of `key`, or `nil` if absent.
    func version(of key: [UInt8]) -> Revision?
    func contains(_ key: [UInt8]) -> Bool

    /// Writes `value` under `key` if `condition` holds; returns the key's new version.
    @discardableResult
    func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?) throws -> Revision
    /// The same, for a caller that has `hash == lookupHash(key)` already.
    @discardableResult
    func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?, hash: UInt64) throws -> Revision
    /// Removes `key` if `condition` holds; returns the delete's revision, or `nil` (and changes
    /// nothing) if the key was absent and the condition allowed that.
    @discardableResult
    func delete(_ key: [UInt8], condition: WriteCondition) throws -> Revision?
    /// Applies every mutation or none: conditions are all checked first against the state before
    /// the batch. All mutations share one new revision, which is returned (the current revision if
    /// the batch changes nothing). Mutations apply in order (later ones of the same key win; a
    /// delete of a key absent at its point writes nothing: `StoreMutation.writes(of:exists:)`).
    @discardableResult
    func apply(_ batch: [StoreMutation]) throws -> Revision

    /// Calls `body` with each live entry whose key starts with `prefix`, in key order, strictly
    /// after `after` if given, at most `limit`; returns how many. The entry's key and value are
    /// the store's bytes in place, valid only inside `body`, which must not mutate the store.
    @discardableResult
    func visitPrefix(_ prefix: [UInt8], after: [UInt8]?, limit: Int, _ body: (StoreEntryView) -> Void) -> Int
    /// The same for the live entries with `start <= key < end` (`end == nil`: unbounded).
    @discardableResult
    func visitRange(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int, _ body: (StoreEntryView) -> Void) -> Int

    /// Every live entry, in key order, with the current revision.
    func snapshot() -> StoreSnapshot
    /// Replaces the whole content with `snapshot`'s entries (keeping their versions) as one
    /// atomic step; the store revision becomes `max(revision, snapshot.revision)`.
    func restore(_ snapshot: StoreSnapshot) throws

    /// When writes become durable (`commit`), and the file operations that make them so.
    var fsyncPolicy: FsyncPolicy { get }
    var fileIO: any FileIO { get }
    /// Set once the store failed (fail-stop): nothing written since the last successful sync
    /// may be acknowledged, and every later write is refused.
    var failure: StoreError? { get }
    /// Whether every write to `key` so far is durable (false means "maybe not"). O(1).
    func isDurable(_ key: UnsafeRawBufferPointer) -> Bool
    /// The hash function of lookups (`lookupHash`), for a caller that hashes many keys in line.
    var lookupHasher: KeyHasher { get }
    /// Starts the memory reads reads or writes of keys will make, for a caller that knows its next
    /// keys, so that their cache misses overlap (two keys' steps in one call): for the key of
    /// hash `slotOf`, the hash table slot its probe starts at (and what a write updates by the
    /// hash alone); for the key of hash `recordOf`, whose slot should be in cache by now, it
    /// reads the slot's probe run and starts the read of the record of the slot holding that
    /// hash. Prefetches only: any hash is safe, and nothing read is trusted later.
    func prefetchLookup(slotOf: UInt64?, recordOf: UInt64?)
    /// The garbage share of the data (bytes of overwritten and deleted records over all bytes).
    var garbageRatio: Double { get }
    /// Counters for metrics.
    var stats: LogStoreStats { get }

    /// Ends a writer's batch: makes it durable according to the fsync policy (group commit).
    func commit() throws
    /// Pipelined commit, first half on the writer's thread: the job (a write and an `fdatasync`,
    /// for any thread) that makes every write so far durable, or nil when nothing needs syncing.
    func beginSync() -> SyncJob?
    /// Whether a sync job is due even though nothing was written since the last one (a
    /// compaction's new file waiting for the job that publishes it): then call `beginSync`.
    var syncDue: Bool { get }
    /// Second half, once that job returned (`errno` 0 on success, else the errno of `operation`,
    /// the call that failed).
    func endSync(nanoseconds: UInt64, errno: Int32, operation: String) throws
    /// Makes everything written so far durable now, whatever the policy.
    func flush() throws
    /// Hands the store to another thread: debug builds assert that one thread at a time uses a
    /// store (the first caller after this one owns it).
    func releaseOwnership()
}

extension StateStore {
    /// The hash a lookup of `key` uses (for `prefetchLookup`, `read(_:hash:durability:)` and
    /// `put(_:_:condition:expiresAtMs:hash:)`).
    @inlinable
    public func lookupHash(_ key: UnsafeRawBufferPointer) -> UInt64 { lookupHasher.hash(key) }

    /// `read(_:hash:durability:)`, hashing `key`.
    public func read(_ key: [UInt8], durability: Bool) -> (found: (value: StoredValue, version: Revision)?, durable: Bool) {
        read(key, hash: key.withUnsafeBytes { lookupHash($0) }, durability: durability)
    }

    /// `endSync` of a job whose failure, if any, was its `fdatasync`.
    public func endSync(nanoseconds: UInt64, errno: Int32) throws {
        try endSync(nanoseconds: nanoseconds, errno: errno, operation: "fdatasync")
    }

    /// Live entries whose key starts with `prefix`, in key order, strictly after `after` if given,
    /// at most `limit`, copied into one page.
    public func prefixPage(_ prefix: [UInt8], after: [UInt8]?, limit: Int) -> ScanPage {
        var page = ScanPage(limit: limit)
        visitPrefix(prefix, after: after, limit: limit) { page.append(key: $0.key, value: $0.value, version: $0.version, expiresAtMs: $0.expiresAtMs) }
        return page
    }

    /// Live entries with `start <= key < end` (`end == nil`: unbounded), in key order, strictly
    /// after `after` if given, at most `limit`, copied into one page.
    public func rangePage(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int) -> ScanPage {
        var page = ScanPage(limit: limit)
        visitRange(start: start, end: end, after: after, limit: limit) { page.append(key: $0.key, value: $0.value, version: $0.version, expiresAtMs: $0.expiresAtMs) }
        return page
    }

    /// `prefixPage` as separate entries (two arrays each: for code off the hot path).
    public func prefixScan(_ prefix: [UInt8], after: [UInt8]?, limit: Int) -> [StoreEntry] {
        prefixPage(prefix, after: after, limit: limit).storeEntries
    }

    /// `rangePage` as separate entries (two arrays each: for code off the hot path).
    public func rangeScan(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int) -> [StoreEntry] {
        rangePage(start: start, end: end, after: after, limit: limit).storeEntries
    }

    @discardableResult
    public func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition = .always) throws -> Revision {
        try put(key, value, condition: condition, expiresAtMs: nil)
    }

    @discardableResult
    public func delete(_ key: [UInt8]) throws -> Revision? {
        try delete(key, condition: .always)
    }

    /// Checks a key and value against `limits`.
    func validate(key: [UInt8], valueBytes: Int? = nil) throws {
        if key.isEmpty { throw StoreError.emptyKey }
        if key.count > limits.keyBytesMax { throw StoreError.keyTooLarge(bytes: key.count, max: limits.keyBytesMax) }
        if let valueBytes, valueBytes > limits.valueBytesMax {
            throw StoreError.valueTooLarge(bytes: valueBytes, max: limits.valueBytesMax)
        }
    }
}
