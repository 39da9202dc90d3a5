#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLinux
import Logging

/// How a `LogStore` behaves; every bound with its unit and default.
public struct LogStoreOptions: Sendable {
    public var limits: StoreLimits = .default
    public var fsync: FsyncPolicy = .always
    /// With `.interval`, `commit()` fsyncs when the last fsync is this old.
    public var fsyncIntervalMs: Int = 100
    /// `commit()` compacts when garbage / data bytes reaches this ratio...
    public var compactionGarbageRatio: Double = 0.5
    /// ...and the data is at least this large.
    public var compactionBytesMin: Int = 64 << 20
    /// At most this many bytes of records appended during a compaction are copied into the new
    /// file per `commit()` / `endSync` (at least one record), so no step stalls the writer long;
    /// the compaction thread copies the rest until no more than this is left.
    public var compactionSliceBytes: Int = 256 << 10
    /// Called at each step of a background compaction, on the thread making it (tests).
    public var compactionObserver: (@Sendable (CompactionStep) -> Void)?
    /// Address space reserved for the data: the largest the data file may grow.
    public var dataBytesMax: Int = 64 << 30
    public var logger: Logger = Logger(label: "laminar.store")
    /// The system calls on the store's files (tests inject faults here).
    public var fileIO: any FileIO = SystemFileIO.shared

    public init() {}
}

/// Counters a store keeps for metrics.
public struct LogStoreStats: Sendable, Hashable {
    public var fsyncCount: UInt64 = 0
    public var fsyncNanosTotal: UInt64 = 0
    /// Compactions completed (the new file swapped in).
    public var compactions: UInt64 = 0
    /// Compactions started (a compaction thread launched).
    public var compactionsStarted: UInt64 = 0
    /// Bytes of records appended during compactions and brought into the new file (by the
    /// compaction thread's catch-up rounds, which leave out records overwritten later in the
    /// same part, or the writer's slices).
    public var compactionTailBytes: UInt64 = 0
    /// Bytes of a torn or damaged tail cut off when the store was opened.
    public var recoveryTruncatedBytes: Int = 0
    /// Whether the index came from the hint file when the store was opened.
    public var recoveryUsedHint = false
    /// Records replayed from the log when the store was opened.
    public var recoveryRecordsReplayed = 0
}

/// The state store engine: an append-only log of records in a `MappedRegion`, a hash table for
/// point lookups and an ordered index for scans, both pointing into the region.
///
/// Two backings, one engine:
/// - `LogStore.inMemory()`: anonymous memory, nothing durable (tests, `--memory`);
/// - `LogStore.open(directory:)`: a memory-mapped data file that is also the write-ahead log,
///   recovered on open (CRC-checked records, torn tail truncated), with a hint file for fast
///   reopening and compaction on a thread of its own, swapped in by atomic rename
///   (`LogStore+Compaction`).
///
/// Fail-stop: the first `StoreError.storageFailed` (a failed sync, rename or truncation, a torn
/// or failed write that may have lost data) is kept in `failure`; from then on every write,
/// commit, checkpoint, compaction and close throws it, so nothing more is acknowledged. Reads go
/// on from memory. Reopening (a restart) recovers what was durable.
///
/// Not thread-safe, by design: one writer thread owns it; nothing in it takes a lock. The data
/// directory is locked against other processes (`flock` on `LOCK`).
public final class LogStore: StateStore {
    public let limits: StoreLimits
    public internal(set) var revision: Revision = 0
    public var count: Int {
        assert(checkOwnerThread())
        return table.count
    }
    public var sizeBytes: Int { logicalEnd }
    /// Bytes of the records that hold live keys (the rest of `sizeBytes` is garbage).
    public internal(set) var liveBytes: Int = 0
    public internal(set) var stats = LogStoreStats()
    public let options: LogStoreOptions
    /// The data directory, or `nil` for an in-memory store.
    public let directory: String?

    @usableFromInline var region: MappedRegion
    @usableFromInline var table: KeyHashTable
    var ordered = OrderedKeyIndex()
    @usableFromInline var hasher: KeyHasher
    /// End of the last record; new records go here.
    var logicalEnd: Int
    /// The data file's generation (from its header).
    var generation: UInt64
    var dirty = false
    /// When the last fsync ended (monotonic); nil before the first, so the first `.interval`
    /// commit syncs however long the machine has been up.
    var lastSyncNs: UInt64? = nil
    var lockFD: Int32 = -1
    var closed = false
    /// The storage failure that stopped writes, or nil while the store is healthy.
    public internal(set) var failure: StoreError?
    /// The log's length as of the last successful sync (or open): what a crash now keeps. (While
    /// a compaction's new file waits for its publication, the old file's: a crash keeps that one.)
    public internal(set) var durableEnd = 0
    /// The log's length when the sync in flight (`beginSync`) started.
    var syncingEnd = 0
    /// The revision of the last write a successful sync (or the open) covers: every write at or
    /// below it survives a crash.
    public internal(set) var durableRevision: Revision = 0 {
        didSet { concurrent.durableRevision = durableRevision }
    }
    /// The store's revision when the sync in flight (`beginSync`) started.
    var syncingRevision: Revision = 0
    /// Whether the sync in flight publishes a compaction's new file (`CompactionPublication`).
    var syncingPublication = false
    /// Per-key write revisions, folded: slot `writeSlot(hash)` holds the highest revision of any
    /// write to a key hashing there (put, delete, batch, restore, recovery alike, since all of
    /// them go through `append` or `applyRecord`). Fixed size, no allocation per write; keys that
    /// share a slot only make `isDurable` answer false more often, never true wrongly.
    /// (Owned by `concurrent`, whose readers read it too.)
    let writeSlots: UnsafeMutablePointer<Revision>
    static let writeSlotBits = 14
    /// Reads of this store from other threads (`ConcurrentReader`): every change that moves or
    /// removes hash table slots, or replaces the table or the region, is made in one of its write
    /// sections (`beginWrite` … `endWriteSection`); a put that moves no slot needs none (`append`).
    let concurrent: ConcurrentReader
    /// The table pointers last published to `concurrent` (a growth changes them).
    var publishedSlots: UnsafeMutableRawPointer?
    var publishedOldSlots: UnsafeMutableRawPointer?
    /// The one thread that uses the store (debug builds assert it): the first caller, until
    /// `releaseOwnership()` hands the store on.
    var ownerThread: pthread_t = 0
    var logger: Logger { options.logger }
    /// The compaction in progress, if any (`LogStore+Compaction`).
    var compaction: CompactionState?
    /// After a failed compaction, the next one waits until the log reaches this length.
    var compactionRetryEnd = 0

    init(
        options: LogStoreOptions, directory: String?, region: MappedRegion, table: KeyHashTable,
        hasher: KeyHasher, generation: UInt64, logicalEnd: Int
    ) {
        self.options = options
        self.limits = options.limits
        self.directory = directory
        self.region = region
        self.table = table
        self.hasher = hasher
        self.generation = generation
        self.logicalEnd = logicalEnd
        self.durableEnd = logicalEnd
        let concurrent = ConcurrentReader(requiresDurable: options.fsync == .always, writeSlotCount: 1 << Self.writeSlotBits)
        self.concurrent = concurrent
        self.writeSlots = concurrent.writeSlots
        self.table.retiresTo = UnsafeRawPointer(Unmanaged.passUnretained(concurrent).toOpaque())
        concurrent.beginWrite()
        publishTable()
        concurrent.setEnabled(true)
        concurrent.endWrite()
    }

    deinit {
        abandonCompaction(removeFiles: false)
        // A publication that never completed (the store failed, or was dropped without a close)
        // still holds the old file's table: its region and ordered index go with it by ARC.
        concurrent.beginWrite()
        concurrent.setEnabled(false)
        concurrent.endWrite()
        // Readers inside a section may hold the table or the region: both go after them.
        var tables = [table]
        if case .publishing(let pending) = compaction { tables.append(pending.oldTable) }
        let region = self.region
        let emptied = concurrent.tablesToRetire
        concurrent.retire(background: false) {
            for t in tables { t.deallocate() }
            for (slots, capacity) in emptied { KeyHashTable.freeSlots(slots, capacity) }
            withExtendedLifetime(region) {}
        }
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    /// An empty store in anonymous memory.
    public static func inMemory(options: LogStoreOptions = LogStoreOptions()) throws -> LogStore {
        let region = try MappedRegion(fd: -1, path: "(memory)", fileBytes: MappedRegion.growthBytesMin, reservedBytes: options.dataBytesMax)
        let generation = UInt64.random(in: 1...UInt64.max)
        try region.write(at: 0, count: RecordFormat.fileHeaderBytes) {
            RecordFormat.writeFileHeader(to: $0, generation: generation, baseRevision: 0)
        }
        return LogStore(
            options: options, directory: nil, region: region, table: KeyHashTable(),
            hasher: KeyHasher(seed: UInt64.random(in: 0...UInt64.max)), generation: generation,
            logicalEnd: RecordFormat.fileHeaderBytes)
    }

    public var fsyncPolicy: FsyncPolicy { options.fsync }
    public var fileIO: any FileIO { options.fileIO }

    /// The garbage share of the data: bytes of overwritten and deleted records over all bytes.
    public var garbageRatio: Double {
        let data = logicalEnd - RecordFormat.fileHeaderBytes
        return data == 0 ? 0 : Double(data - liveBytes) / Double(data)
    }

    // MARK: - Reads

    /// The offset of `key`'s current record, or `nil`.
    @inline(__always)
    func locate(_ key: UnsafeRawBufferPointer) -> Int? {
        assert(checkOwnerThread())
        let hash = hasher.hash(key)
        guard let slot = table.find(hash: hash, key: key, base: region.base) else { return nil }
        return table.offset(at: slot)
    }

    @inline(__always)
    func record(at offset: Int) -> UnsafeRawPointer { UnsafeRawPointer(region.base + offset) }

    public func withValue<R>(_ key: [UInt8], _ body: (UnsafeRawBufferPointer, Revision) throws -> R) rethrows -> R? {
        guard let offset = key.withUnsafeBytes({ locate($0) }) else { return nil }
        let p = record(at: offset)
        return try body(RecordFormat.value(p), RecordFormat.revision(p))
    }

    public func storedValue(_ key: [UInt8]) -> (value: StoredValue, version: Revision)? {
        guard let offset = key.withUnsafeBytes({ locate($0) }) else { return nil }
        let p = record(at: offset)
        return (StoredValue(region: region, bytes: RecordFormat.value(p)), RecordFormat.revision(p))
    }

    public func read(_ key: [UInt8], hash: UInt64, durability: Bool) -> (found: (value: StoredValue, version: Revision)?, durable: Bool) {
        assert(checkOwnerThread())
        // Only the probe in the closure, which returns a word (the closure is not always inlined:
        // a whole result returned through memory cost ~10 instructions a read).
        let offset = key.withUnsafeBytes { k -> Int in
            assert(hash == hasher.hash(k), "read: a hash not of this key")
            guard let slot = table.find(hash: hash, key: k, base: region.base) else { return 0 }
            return table.offset(at: slot)
        }
        guard offset != 0 else { return (nil, durability && writeSlots[Self.writeSlot(hash)] <= durableRevision) }
        // A present key's current record is its last write (a later put would be the current
        // record, a later delete would have removed it): durable exactly when that record's
        // revision is, whatever other keys sharing its write slot do.
        let p = record(at: offset)
        let version = RecordFormat.revision(p)
        return ((StoredValue(region: region, bytes: RecordFormat.value(p)), version), durability && version <= durableRevision)
    }

    /// Zero-copy lookup by a key already in memory. Inlinable, so that `body` is specialized and
    /// inlined in the caller (a generic call through value witnesses cost more than the probe);
    /// the lookup itself is one plain call.
    @inlinable @inline(__always)
    public func withValue<R>(
        rawKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, Revision) throws -> R
    ) rethrows -> R? {
        assert(checkOwnerThread())
        let base = region.base
        guard let slot = table.find(hash: hasher.hash(key), key: key, base: base) else { return nil }
        let p = UnsafeRawPointer(base + table.offset(at: slot))
        return try body(RecordFormat.value(p), RecordFormat.revision(p))
    }

    /// Whether every write to `key` so far is durable (covered by a successful sync or present
    /// at open), so that answering a read of it now can never show a value a crash would take
    /// back. False means "maybe not": another key sharing its slot may have been written since.
    /// O(1): one hash, one load.
    @inline(__always)
    public func isDurable(_ key: UnsafeRawBufferPointer) -> Bool {
        assert(checkOwnerThread())
        return writeSlots[Self.writeSlot(hasher.hash(key))] <= durableRevision
    }

    public var lookupHasher: KeyHasher { hasher }

    public func prefetchLookup(slotOf: UInt64?, recordOf: UInt64?) {
        if let hash = slotOf {
            CLinux_prefetch(table.slotAddress(hash: hash))
            CLinux_prefetch(writeSlots + Self.writeSlot(hash))  // `noteWrite` of a put, `read(durability:)`
        }
        if let hash = recordOf {
            let offset = table.probableOffset(hash: hash)
            if offset != 0 { CLinux_prefetch(region.base + offset) }
        }
    }

    /// Ends a write section begun with `concurrent.beginWrite()`: publishes the table again if a
    /// growth replaced or emptied one (then retires the emptied one after the readers' grace).
    @inline(__always)
    func endWriteSection() {
        if _slowPath(UnsafeMutableRawPointer(table.slots) != publishedSlots
            || table.oldSlots.map { UnsafeMutableRawPointer($0) } != publishedOldSlots) {
            publishTable()
            concurrent.endWrite()
            concurrent.retireTables()
        } else {
            concurrent.endWrite()
        }
    }

    /// Publishes `table`, `region` and the hash seed to the concurrent readers (in a section).
    func publishTable() {
        concurrent.publish(table: table, region: region, hasher: hasher)
        publishedSlots = UnsafeMutableRawPointer(table.slots)
        publishedOldSlots = table.oldSlots.map { UnsafeMutableRawPointer($0) }
    }

    /// Makes `newTable` over `newRegion` the store's indexes as the readers see them (one write
    /// section); the caller retires the old ones (`concurrent.retire`, `Retirement`).
    func adopt(table newTable: KeyHashTable, region newRegion: MappedRegion) {
        concurrent.beginWrite()
        table = newTable
        table.retiresTo = UnsafeRawPointer(Unmanaged.passUnretained(concurrent).toOpaque())
        region = newRegion
        publishTable()
        concurrent.endWrite()
    }

    /// Reads of this store from other threads (the I/O threads' GETs); see `ConcurrentReader`.
    public var concurrentReader: ConcurrentReader { concurrent }

    @inline(__always)
    static func writeSlot(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash >> UInt64(64 - writeSlotBits)) }

    /// Records a write of revision `rev` to the key with `hash` (for `isDurable`).
    @inline(__always)
    func noteWrite(hash: UInt64, revision rev: Revision) {
        let slot = Self.writeSlot(hash)
        if writeSlots[slot] < rev { CLinux_store_relaxed(writeSlots + slot, rev) }
    }

    public func get(_ key: [UInt8]) -> StoreEntry? {
        guard let offset = key.withUnsafeBytes({ locate($0) }) else { return nil }
        return entry(at: offset)
    }

    public func version(of key: [UInt8]) -> Revision? {
        guard let offset = key.withUnsafeBytes({ locate($0) }) else { return nil }
        return RecordFormat.revision(record(at: offset))
    }

    public func contains(_ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { locate($0) } != nil
    }

    /// Copies the record at `offset` out as an entry.
    func entry(at offset: Int) -> StoreEntry {
        let p = record(at: offset)
        let expiry = RecordFormat.expiresAtMs(p)
        return StoreEntry(
            key: Array(RecordFormat.key(p)), value: Array(RecordFormat.value(p)),
            version: RecordFormat.revision(p), expiresAtMs: expiry == 0 ? nil : expiry)
    }

    // MARK: - Writes

    @discardableResult
    public func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?) throws -> Revision {
        assert(checkOwnerThread())
        try validate(key: key, valueBytes: value.count)
        try checkWritable()
        do { return try append(key, value, condition: condition, expiresAtMs: expiresAtMs, hash: nil) } catch { throw noteFailure(error) }
    }

    @discardableResult
    public func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?, hash: UInt64) throws -> Revision {
        assert(checkOwnerThread())
        try validate(key: key, valueBytes: value.count)
        try checkWritable()
        do { return try append(key, value, condition: condition, expiresAtMs: expiresAtMs, hash: hash) } catch { throw noteFailure(error) }
    }

    /// `hash`: the key's, if the caller has it.
    @inline(__always)
    private func append(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?, hash given: UInt64?) throws -> Revision {
        // The region as a guaranteed reference: calls on `self.region` and a fill closure
        // reading `self` each retained and released it (three pairs per put), a strong local
        // still one pair (~42 instructions a put, callgrind). The store holds the region for the
        // whole call (nothing here replaces it).
        try Unmanaged.passUnretained(self.region)._withUnsafeGuaranteedRef { region in
            try append(key, value, condition: condition, expiresAtMs: expiresAtMs, hash: given, region: region)
        }
    }

    @inline(__always)
    private func append(
        _ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?, hash given: UInt64?, region: MappedRegion
    ) throws -> Revision {
        return try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                let hash = given ?? hasher.hash(k)
                assert(hash == hasher.hash(k), "put: a hash not of this key")
                // Readers need a write section only around a change that moves or removes slots
                // (a growth, a step of one): filling an empty slot or repointing one is a single
                // store, which they see whole either way.
                let restructures = table.mayRestructure
                if restructures { concurrent.beginWrite() }
                defer { if restructures { endWriteSection() } }
                let (slot, found) = table.findOrReserve(hash: hash, key: k, base: region.base)
                let current = found ? RecordFormat.revision(record(at: table.offset(at: slot))) : nil
                try check(condition, current: current, key: key)
                let size = RecordFormat.paddedSize(keyBytes: k.count, valueBytes: v.count)
                try region.ensureCapacity(logicalEnd + size)
                if revision == Revision.max { throw StoreError.revisionsExhausted }
                let offset = logicalEnd
                let expiry = storedExpiry(expiresAtMs)
                let newRevision = revision + 1
                try region.write(at: offset, count: size) { p in
                    _ = RecordFormat.write(to: p, key: k, value: v, revision: newRevision, expiresAtMs: expiry, flags: 0)
                }
                revision = newRevision
                logicalEnd += size
                dirty = true
                noteWrite(hash: hash, revision: revision)
                if found {
                    liveBytes -= RecordFormat.paddedSize(record(at: table.offset(at: slot)))
                    table.update(slot, offset: offset)
                } else {
                    table.fill(slot, offset: offset, hash: hash)
                    ordered.insert(k, offset: offset, base: region.base)
                }
                liveBytes += size
                return revision
            }
        }
    }

    @discardableResult
    public func delete(_ key: [UInt8], condition: WriteCondition) throws -> Revision? {
        assert(checkOwnerThread())
        try validate(key: key)
        try checkWritable()
        do { return try appendTombstone(key, condition: condition) } catch { throw noteFailure(error) }
    }

    private func appendTombstone(_ key: [UInt8], condition: WriteCondition) throws -> Revision? {
        try key.withUnsafeBytes { k in
            let current = locate(k).map { RecordFormat.revision(record(at: $0)) }
            try check(condition, current: current, key: key)
            guard current != nil else { return nil }
            let size = RecordFormat.paddedSize(keyBytes: k.count, valueBytes: 0)
            try region.ensureCapacity(logicalEnd + size)
            if revision == Revision.max { throw StoreError.revisionsExhausted }
            let offset = logicalEnd
            try region.write(at: offset, count: size) { p in
                _ = RecordFormat.write(
                    to: p, key: k, value: UnsafeRawBufferPointer(start: nil, count: 0),
                    revision: revision + 1, expiresAtMs: 0, flags: RecordFormat.flagTombstone)
            }
            revision += 1
            logicalEnd += size
            dirty = true
            concurrent.beginWrite()
            applyRecord(at: offset, maintainOrder: true)
            endWriteSection()
            return revision
        }
    }

    @discardableResult
    public func apply(_ batch: [StoreMutation]) throws -> Revision {
        assert(checkOwnerThread())
        try checkWritable()
        do { return try appendBatch(batch) } catch { throw noteFailure(error) }
    }

    private func appendBatch(_ batch: [StoreMutation]) throws -> Revision {
        // Validate everything and check every condition against the state before the batch.
        var bytes = 0
        for mutation in batch {
            switch mutation {
            case .put(let key, let value, let condition, _):
                try validate(key: key, valueBytes: value.count)
                try check(condition, current: version(of: key), key: key)
            case .delete(let key, let condition):
                try validate(key: key)
                try check(condition, current: version(of: key), key: key)
            }
        }
        var effective: [StoreMutation] = []
        effective.reserveCapacity(batch.count)
        for (mutation, writes) in zip(batch, StoreMutation.writes(of: batch, exists: { contains($0) })) where writes {
            effective.append(mutation)
            switch mutation {
            case .put(let key, let value, _, _): bytes += RecordFormat.paddedSize(keyBytes: key.count, valueBytes: value.count)
            case .delete(let key, _): bytes += RecordFormat.paddedSize(keyBytes: key.count, valueBytes: 0)
            }
        }
        if effective.isEmpty { return revision }
        try region.ensureCapacity(logicalEnd + bytes)
        // One revision for the whole batch; every record but the last says "batch continues",
        // so recovery applies the batch whole or not at all. The records go in one write.
        if revision == Revision.max { throw StoreError.revisionsExhausted }
        let batchRevision = revision + 1
        try region.write(at: logicalEnd, count: bytes) { p in
            var at = 0
            for (i, mutation) in effective.enumerated() {
                let continues = i + 1 < effective.count ? RecordFormat.flagBatchContinues : 0
                switch mutation {
                case .put(let key, let value, _, let expiry):
                    at += Self.writeRecord(to: p + at, key: key, value: value, revision: batchRevision, expiresAtMs: storedExpiry(expiry), flags: continues)
                case .delete(let key, _):
                    at += Self.writeRecord(to: p + at, key: key, value: [], revision: batchRevision, expiresAtMs: 0, flags: continues | RecordFormat.flagTombstone)
                }
            }
            precondition(at == bytes)
        }
        revision = batchRevision
        // One section for the whole batch: a reader sees all of it or none.
        concurrent.beginWrite()
        for _ in effective {
            let offset = logicalEnd
            logicalEnd += RecordFormat.paddedSize(record(at: offset))
            applyRecord(at: offset, maintainOrder: true)
        }
        endWriteSection()
        dirty = true
        return revision
    }

    /// Lays out one record at `p`; returns its size.
    static func writeRecord(to p: UnsafeMutableRawPointer, key: [UInt8], value: [UInt8], revision: Revision, expiresAtMs: Int64, flags: UInt8) -> Int {
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                RecordFormat.write(to: p, key: k, value: v, revision: revision, expiresAtMs: expiresAtMs, flags: flags)
            }
        }
    }

    /// Brings the indexes up to date with the record at `offset` (a put or a tombstone).
    /// `maintainOrder: false` skips the ordered index (bulk recovery builds it at the end).
    func applyRecord(at offset: Int, maintainOrder: Bool) {
        let p = record(at: offset)
        noteWrite(hash: hasher.hash(RecordFormat.key(p)), revision: RecordFormat.revision(p))
        Self.applyRecord(
            at: offset, base: region.base, hasher: hasher, table: &table, ordered: &ordered, liveBytes: &liveBytes,
            maintainOrder: maintainOrder)
    }

    /// The same for any set of indexes over `base` (the new file of a compaction too).
    @inline(__always)
    static func applyRecord(
        at offset: Int, base: UnsafeMutableRawPointer, hasher: KeyHasher, table: inout KeyHashTable,
        ordered: inout OrderedKeyIndex, liveBytes: inout Int, maintainOrder: Bool
    ) {
        let p = UnsafeRawPointer(base + offset)
        let key = RecordFormat.key(p)
        let hash = hasher.hash(key)
        if RecordFormat.flags(p) & RecordFormat.flagTombstone != 0 {
            guard let slot = table.find(hash: hash, key: key, base: base) else { return }
            liveBytes -= RecordFormat.paddedSize(base + table.offset(at: slot))
            table.remove(at: slot)
            if maintainOrder { ordered.remove(key, base: base) }
        } else {
            let (slot, found) = table.findOrReserve(hash: hash, key: key, base: base)
            if found {
                liveBytes -= RecordFormat.paddedSize(base + table.offset(at: slot))
                table.update(slot, offset: offset)
            } else {
                table.fill(slot, offset: offset, hash: hash)
                if maintainOrder { ordered.insert(key, offset: offset, base: base) }
            }
            liveBytes += RecordFormat.paddedSize(p)
        }
    }

    @inline(__always)
    func check(_ condition: WriteCondition, current: Revision?, key: [UInt8]) throws {
        switch condition {
        case .always: return
        case .ifVersion(let expected): if current != expected { throw StoreError.conditionFailed(key: key, current: current) }
        case .absent: if current != nil { throw StoreError.conditionFailed(key: key, current: current) }
        }
    }

    /// The on-disk expiry: 0 means none, so a real expiry of 0 is stored as -1 (long past).
    @inline(__always)
    func storedExpiry(_ expiresAtMs: Int64?) -> Int64 {
        guard let expiresAtMs else { return 0 }
        return expiresAtMs == 0 ? -1 : expiresAtMs
    }

    // MARK: - Scans

    @discardableResult
    public func visitPrefix(_ prefix: [UInt8], after: [UInt8]?, limit: Int, _ body: (StoreEntryView) -> Void) -> Int {
        assert(checkOwnerThread())
        return prefix.withUnsafeBytes { prefixBytes in
            let position: OrderedKeyIndex.Position
            if let after, !after.lexicographicallyPrecedes(prefix) {
                position = after.withUnsafeBytes { ordered.lowerBound($0, strictlyAfter: true, base: region.base) }
            } else {
                position = ordered.lowerBound(prefixBytes, base: region.base)
            }
            return visit(from: position, limit: limit, body) { key in
                key.count >= prefixBytes.count
                    && (prefixBytes.isEmpty || memcmp(key.baseAddress!, prefixBytes.baseAddress!, prefixBytes.count) == 0)
            }
        }
    }

    @discardableResult
    public func visitRange(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int, _ body: (StoreEntryView) -> Void) -> Int {
        assert(checkOwnerThread())
        let position: OrderedKeyIndex.Position
        if let after, !after.lexicographicallyPrecedes(start) {
            position = after.withUnsafeBytes { ordered.lowerBound($0, strictlyAfter: true, base: region.base) }
        } else {
            position = start.withUnsafeBytes { ordered.lowerBound($0, base: region.base) }
        }
        guard let end else { return visit(from: position, limit: limit, body) { _ in true } }
        return end.withUnsafeBytes { endBytes in
            visit(from: position, limit: limit, body) { OrderedKeyIndex.compareBytes($0, endBytes) < 0 }
        }
    }

    /// How far ahead of the entry it hands over a scan starts the memory reads of later entries
    /// (see `visit`): the record an ordered entry names `scanRecordAhead` entries ahead, the
    /// table slot and the rest of the record `scanSlotAhead` ahead. A power of two bounds both.
    static let scanRecordAhead = 16
    static let scanSlotAhead = 8
    /// Lines of a record prefetched for its value (longer values stream in as they are read).
    static let scanValueLinesMax = 8

    /// Visits entries from `position` on while `inRange(key)` holds, at most `limit`; returns how
    /// many. The ordered index may name an older record of a key, so each key is resolved through
    /// the hash table. That is three random reads per key in a large store (the record the
    /// ordered entry names, for its key; the table slot; the current record, for the value), so
    /// the scan runs as a pipeline of prefetches: `scanRecordAhead` entries ahead it starts the
    /// read of the named record; `scanSlotAhead` ahead (the record is in cache by then) it checks
    /// the key's range, hashes it and starts the reads of its table slot and of the rest of the
    /// record (which is the current one unless the key was overwritten); the entry in hand then
    /// finds everything in cache. Prefetches do not hold up the processor as loads do, so the
    /// misses of many keys are in flight together. No allocation.
    private func visit(
        from position: OrderedKeyIndex.Position, limit: Int, _ body: (StoreEntryView) -> Void,
        while inRange: (UnsafeRawBufferPointer) -> Bool
    ) -> Int {
        let ring = Self.scanRecordAhead
        precondition(ring & (ring - 1) == 0 && Self.scanSlotAhead < ring)
        var position = position
        let base = region.base
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * ring) { scratch in
            let offsets = scratch.baseAddress!
            let hashes = offsets + ring
            // Entries [emitted, checked) are in range, hashed and prefetched; [checked, taken)
            // only taken from the ordered index, their records prefetched.
            var taken = 0
            var checked = 0
            var emitted = 0
            var exhausted = false
            while true {
                while !exhausted && taken < limit && taken < emitted + ring, let entry = ordered.entry(at: position) {
                    offsets[taken & (ring - 1)] = entry.offset
                    let p = base + Int(entry.offset)
                    CLinux_prefetch(p)
                    CLinux_prefetch(p + RecordFormat.headerBytes + 15)  // a key of up to 16 bytes
                    position = ordered.position(after: position)
                    taken += 1
                }
                if taken < limit && taken < emitted + ring { exhausted = true }
                while checked < taken && checked < emitted + Self.scanSlotAhead {
                    let p = base + Int(offsets[checked & (ring - 1)])
                    let key = RecordFormat.key(p)
                    guard inRange(key) else {
                        taken = checked
                        exhausted = true
                        break
                    }
                    let hash = hasher.hash(key)
                    hashes[checked & (ring - 1)] = hash
                    CLinux_prefetch(table.slotAddress(hash: hash))
                    let lines = min((RecordFormat.paddedSize(p) + 63) >> 6, Self.scanValueLinesMax)
                    var line = 1
                    while line < lines {
                        CLinux_prefetch(p + (line << 6))
                        line += 1
                    }
                    checked += 1
                }
                if emitted == checked { return emitted }
                let i = emitted & (ring - 1)
                let named = UnsafeRawPointer(base + Int(offsets[i]))
                guard let slot = table.find(hash: hashes[i], key: RecordFormat.key(named), base: base) else {
                    preconditionFailure("ordered index names a key the hash table lacks")
                }
                let p = record(at: table.offset(at: slot))
                body(StoreEntryView(
                    key: RecordFormat.key(p), value: RecordFormat.value(p), version: RecordFormat.revision(p),
                    expiresAtMs: RecordFormat.expiresAtMs(p)))
                emitted += 1
            }
        }
    }

    public func snapshot() -> StoreSnapshot {
        assert(checkOwnerThread())
        var entries: [StoreEntry] = []
        entries.reserveCapacity(count)
        ordered.forEach { entry in
            guard let current = locate(RecordFormat.key(record(at: Int(entry.offset)))) else { return }
            entries.append(self.entry(at: current))
        }
        return StoreSnapshot(revision: revision, entries: entries)
    }

    // MARK: - Fail-stop

    /// Throws if the store takes no writes: closed, or failed.
    @inline(__always)
    func checkWritable() throws {
        if closed { throw StoreError.closed }
        if let failure { throw failure }
    }

    /// Passes `error` on; a `storageFailed` one (the first) puts the store in the failed state
    /// and is logged.
    func noteFailure(_ error: any Error) -> any Error {
        guard case .storageFailed = error as? StoreError, failure == nil else { return error }
        let e = error as! StoreError
        failure = e
        // Reads go on, from the reactor only (as before there was a concurrent reader).
        concurrent.beginWrite()
        concurrent.setEnabled(false)
        concurrent.endWrite()
        logger.error(
            "storage failed: the store refuses every write until it is restarted",
            metadata: [
                "error": "\(e)", "durable_bytes": "\(durableEnd)", "log_bytes": "\(logicalEnd)",
                "revision": "\(revision)",
            ])
        return e
    }

    // MARK: - Durability

    public func commit() throws {
        assert(checkOwnerThread())
        try checkWritable()
        guard dirty else { return }
        switch options.fsync {
        case .always: try flush()
        case .interval:
            if let last = lastSyncNs, monotonicNanos() &- last < UInt64(options.fsyncIntervalMs) * 1_000_000 { break }
            try flush()
        case .never: break
        }
        stepCompaction()
    }

    public func flush() throws {
        assert(checkOwnerThread())
        try checkWritable()
        guard dirty else { return }
        let start = monotonicNanos()
        let covered = logicalEnd
        if region.fd >= 0 {
            var job = region.takePendingWrites()
            job.publication = publicationDue
            let (e, operation) = job.run(io: options.fileIO)
            if e != 0 {
                if job.publication != nil { notePublicationFailed(operation: operation, end: covered) }
                throw noteFailure(StoreError.storageFailed(operation: operation, path: region.path, errno: e))
            }
            do { try region.writesDone() } catch { throw noteFailure(error) }
            if job.publication != nil { finishPublication() }
        }
        let end = monotonicNanos()
        dirty = false
        durableEnd = covered
        durableRevision = revision
        lastSyncNs = end
        if region.fd >= 0 {
            stats.fsyncCount += 1
            stats.fsyncNanosTotal += end - start
        }
    }

    // MARK: - Pipelined commit (a syncer thread makes one batch of writes durable while the owner
    // goes on writing the next; see `Reactor`)

    /// First half, on the owner's thread: the job (`SyncJob`: the write-behind tail's bytes not
    /// yet in the data file, then its `fdatasync`) that makes every write so far durable, or nil
    /// when nothing needs syncing (no write since the last sync, fsync policy other than
    /// `always`, or in memory). Until `endSync`, the owner must not compact, flush or close the
    /// store; writes go on as usual.
    /// Once the store has failed, it returns nil: nothing is synced or acknowledged any more.
    public func beginSync() -> SyncJob? {
        assert(checkOwnerThread())
        guard !closed, failure == nil, dirty, options.fsync == .always, region.fd >= 0 else { return nil }
        dirty = false
        syncingEnd = logicalEnd
        syncingRevision = revision
        var job = region.takePendingWrites()
        job.publication = publicationDue
        syncingPublication = job.publication != nil
        return job
    }

    /// A sync job carrying a compaction's publication failed at `operation`: past its
    /// `fdatasync` (a rename, the directory fsync), the new file up to `end` is durable and may
    /// be `data.lmnr` after a crash, so that is what a crash keeps (`durableEnd`).
    private func notePublicationFailed(operation: String, end: Int) {
        if operation != "pwrite" && operation != "fdatasync" { durableEnd = end }
    }

    /// Whether a sync job is due even without a write since the last one: a compaction's new
    /// file waits for the job that publishes it (`LogStore+Compaction`).
    public var syncDue: Bool { publicationDue != nil && failure == nil && !closed }

    /// Second half, on the owner's thread, once `beginSync`'s job ran (`errno` 0 on success;
    /// `operation` the call that failed): counts it, then takes a bounded step of compaction
    /// (`stepCompaction`; nothing is in flight now). A failed job is fail-stop
    /// (`StoreError.storageFailed`, thrown now and by every later write): after a failed
    /// writeback the kernel may have marked the pages clean or dropped them, so syncing again
    /// would prove nothing.
    public func endSync(nanoseconds: UInt64, errno error: Int32, operation: String) throws {
        assert(checkOwnerThread())
        lastSyncNs = monotonicNanos()
        stats.fsyncCount += 1
        stats.fsyncNanosTotal += nanoseconds
        if error != 0 {
            if syncingPublication { notePublicationFailed(operation: operation, end: syncingEnd) }
            throw noteFailure(StoreError.storageFailed(operation: operation, path: region.path, errno: error))
        }
        do { try region.writesDone() } catch { throw noteFailure(error) }
        durableEnd = syncingPublication ? syncingEnd : max(durableEnd, syncingEnd)
        durableRevision = max(durableRevision, syncingRevision)
        if syncingPublication {
            syncingPublication = false
            finishPublication()
        }
        stepCompaction()
    }

    /// Whether `region` takes its appends in a write-behind tail (`MappedRegion`): the data file
    /// at `fsync always`, where a sync is writing the file back nearly all the time. Under the
    /// other policies (no sync in flight while the writer appends) appends go through the mapping.
    func usesWriteBehind(_ region: MappedRegion) -> Bool { region.fd >= 0 && options.fsync == .always }

    /// Checks that the hash table, the ordered index and the live-byte count agree (tests).
    public func checkInvariants() {
        table.checkInvariants()
        ordered.checkInvariants(base: region.base)
        precondition(ordered.count == table.count, "ordered index has \(ordered.count) keys, hash table \(table.count)")
        var live = 0
        ordered.forEach { entry in
            let key = RecordFormat.key(record(at: Int(entry.offset)))
            guard let current = locate(key) else { preconditionFailure("ordered key missing from the hash table") }
            let p = record(at: current)
            precondition(RecordFormat.flags(p) & RecordFormat.flagTombstone == 0, "index points at a tombstone")
            precondition(RecordFormat.revision(p) <= revision, "record revision above the store revision")
            live += RecordFormat.paddedSize(p)
        }
        precondition(live == liveBytes, "live bytes \(liveBytes) but records add up to \(live)")
        precondition(logicalEnd <= region.capacity)
    }
}

@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
