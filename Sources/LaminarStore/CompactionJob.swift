import CLinux
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The steps of a background compaction, in order, for `LogStoreOptions.compactionObserver`
/// (tests stop or kill the process at each one).
public enum CompactionStep: Sendable, Hashable, CaseIterable {
    /// Compaction thread: the live records as of the snapshot are in the new file, fsynced.
    case copiedLive
    /// Compaction thread: `index.hint.compact` (the new file's index as of the snapshot) is written.
    case wroteHint
    /// Compaction thread: one round of the records appended since the snapshot (as far as the
    /// owner had published) copied into the new file and fsynced.
    case syncedTail
    /// Owner: one slice of the records appended since the thread's last round was copied.
    case copiedTail
    /// Owner, at `fsync always`: the new file holds every record; the store switched to it
    /// (appends go there), still under its temporary name.
    case switchedFile
    /// The new file is fsynced and renamed over `data.lmnr` (at `fsync always` by the sync job
    /// after the switch, on the thread running it; otherwise by the owner, then the switch).
    case renamedData
    /// `index.hint.compact` is renamed over `index.hint` (before the directory fsync).
    case renamedHint
    /// The directory is fsynced; the compaction is complete.
    case finished
}

/// What a compaction thread hands the owner: the new file with the live records as of the
/// snapshot, and its index. The owner then copies the tail (records appended since the
/// snapshot) into it, slice by slice, and swaps it in. Owns `table` until the swap takes it.
final class CompactionOutput {
    let writer: DataFileWriter
    var table: KeyHashTable
    var ordered: OrderedKeyIndex
    var liveBytes: Int
    /// Whether `index.hint.compact` was written (a full disk may have prevented it: a hint is optional).
    let wroteHint: Bool
    /// Offset in the current data file up to which records are in the new file.
    var copiedTo: Int
    /// Bytes of records appended after the snapshot that the thread copied.
    let tailBytesCopied: Int
    /// The log's end at the owner's previous tail step: what a step appended is measured from it.
    var endAtLastStep = 0
    var ownsTable = true

    init(
        writer: DataFileWriter, table: KeyHashTable, ordered: OrderedKeyIndex, liveBytes: Int, wroteHint: Bool, copiedTo: Int,
        tailBytesCopied: Int
    ) {
        self.writer = writer
        self.table = table
        self.ordered = ordered
        self.liveBytes = liveBytes
        self.wroteHint = wroteHint
        self.copiedTo = copiedTo
        self.tailBytesCopied = tailBytesCopied
    }

    deinit { if ownsTable { table.deallocate() } }
}

/// A compaction thread: rebuilds the live set of the data file as it was at a snapshot offset
/// (replaying `[header, snapshotEnd)` into a private table: those bytes never change while the
/// store runs, as records are only appended), writes the live records in key order into
/// `data.lmnr.compact` (`DataFileWriter`), builds the new hash table and ordered index for them,
/// fsyncs the file and writes `index.hint.compact` for it.
///
/// It reads nothing the owner mutates: only the mapped bytes below `snapshotEnd` (through a raw
/// pointer; the owner keeps the mapping alive until it has joined the thread) and values copied
/// in at start. The owner starts it, polls `isFinished`, and takes the outcome with `join()`
/// (`pthread_join`: the happens-before edge for everything the thread wrote); `cancel()` makes it
/// stop at its next record or chunk.
final class CompactionJob: @unchecked Sendable {
    let snapshotEnd: Int
    let baseRevision: Revision
    private let source: UnsafeRawPointer
    private let hasher: KeyHasher
    private let directory: String?
    private let options: LogStoreOptions
    private let liveBytes: Int
    private let keyCount: Int
    /// Slots of the owner's hash table at the start: the new table gets at least as many.
    private let tableCapacity: Int
    private let cancelled = Atomic<Bool>(false)
    /// The log's end as the owner last published it (`publish`).
    private let published: Atomic<Int>
    /// Catch-up rounds before the thread hands the rest to the owner whatever is left.
    static let catchUpRoundsMax = 16
    private let finished = Atomic<Bool>(false)
    private var thread: pthread_t = 0
    private var joined = false
    /// Written by the thread before `finished`; read by the owner after the join.
    private var outcome: Result<CompactionOutput, any Error> = .failure(StoreError.closed)

    init(
        source: UnsafeRawPointer, snapshotEnd: Int, baseRevision: Revision, liveBytes: Int, keyCount: Int, tableCapacity: Int,
        hasher: KeyHasher, directory: String?, options: LogStoreOptions
    ) {
        self.source = source
        self.snapshotEnd = snapshotEnd
        self.baseRevision = baseRevision
        self.liveBytes = liveBytes
        self.keyCount = keyCount
        self.tableCapacity = tableCapacity
        self.hasher = hasher
        self.directory = directory
        self.options = options
        self.published = Atomic(snapshotEnd)
        let started = ServerThread.start(name: "laminar-compact", nice: 19) { [self] in
            outcome = Result { try run() }
            finished.store(true, ordering: .releasing)
        }
        guard let started else { preconditionFailure("pthread_create failed for a compaction") }
        thread = started
    }

    /// Whether the thread is done (then `join` does not wait).
    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Owner: the log now ends at `end` (after a commit); everything below is written and never
    /// changes.
    func publish(end: Int) { published.store(end, ordering: .releasing) }

    /// Asks the thread to stop early; `join` then returns a failure.
    func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Waits for the thread and returns what it made. Once only.
    func join() -> Result<CompactionOutput, any Error> {
        precondition(!joined)
        joined = true
        pthread_join(thread, nil)
        return outcome
    }

    private func checkCancelled() throws {
        if cancelled.load(ordering: .relaxed) { throw StoreError.closed }
    }

    /// A live record: its key's hash, first key bytes and offset in the source.
    private struct Live {
        var prefix: UInt64
        var hash: UInt64
        var offset: Int
    }

    private func run() throws -> CompactionOutput {
        let live = try liveRecords()
        let writer = try DataFileWriter(
            directory: directory, options: options, recordBytes: liveBytes, baseRevision: baseRevision, expectedRecords: live.count)
        var handedOver = false
        defer { if !handedOver { writer.discard() } }
        writer.writebackStepBytes = DataFileWriter.compactionWritebackStepBytes
        // As large as the owner's: a table sized to the live keys alone could have to grow at the
        // first new key after the switch, rehashing every key on the owner's thread.
        var table = KeyHashTable(minimumCapacity: max(live.count, tableCapacity * 3 / 4))
        var tableOwned = true
        defer { if tableOwned { table.deallocate() } }
        for (i, record) in live.enumerated() {
            if i & 0xFFF == 0 { try checkCancelled() }
            let p = source + record.offset
            table.insertNew(hash: record.hash, offset: writer.end)
            try writer.append(key: RecordFormat.key(p), value: RecordFormat.value(p), revision: RecordFormat.revision(p), expiresAtMs: RecordFormat.expiresAtMs(p))
        }
        try writer.writeChunk()
        var ordered = OrderedKeyIndex()
        ordered.load(sorted: writer.entries)
        let bulkBytes = writer.end - RecordFormat.fileHeaderBytes
        var wroteHint = false
        if let directory {
            try checkCancelled()
            try writer.region.sync()
            options.compactionObserver?(.copiedLive)
            wroteHint = try writeHint(directory: directory, writer: writer, live: live, bulkBytes: bulkBytes)
            if wroteHint { options.compactionObserver?(.wroteHint) }
        }
        var liveBytes = bulkBytes
        var copiedTo = snapshotEnd
        for _ in 0..<CompactionJob.catchUpRoundsMax {
            let end = published.load(ordering: .acquiring)
            if end == copiedTo { break }
            try checkCancelled()
            try copyLatest(from: copiedTo, to: end, into: writer, table: &table, ordered: &ordered, liveBytes: &liveBytes)
            copiedTo = end
            if directory != nil {
                try writer.region.sync()
                options.compactionObserver?(.syncedTail)
            }
            if published.load(ordering: .acquiring) - copiedTo <= options.compactionSliceBytes { break }
        }
        // The owner reads these pages from its first lookup on: map them all in now, here, so
        // that it takes no page fault on them.
        writer.region.prefault(bytes: writer.end)
        writer.writebackStepBytes = 0  // the owner's tail steps never wait for the disk
        handedOver = true
        tableOwned = false
        return CompactionOutput(
            writer: writer, table: table, ordered: ordered, liveBytes: liveBytes, wroteHint: wroteHint, copiedTo: copiedTo,
            tailBytesCopied: copiedTo - snapshotEnd)
    }

    /// A catch-up round's records are looked at in parts of about this many bytes (a part ends
    /// outside a batch): the memory of `copyLatest`'s last offsets is bounded by a part.
    static let catchUpPartBytes = 16 << 20
    /// A part where fewer than one record in this many is overwritten later in it is copied as it
    /// is (one write, no second pass): leaving out so few is not worth the copy record by record.
    static let fewOverwritesRatio = 16

    /// Copies the records of `[from, to)` of the source (whole records and batches: a published
    /// end) into the new file as they are and applies them to its index, but for a record that a
    /// later record of the same key in the same part overwrites, which is left out — unless it
    /// belongs to a batch (the records of a batch are kept together, so that recovery still sees
    /// it whole). Under sustained writes to a few keys most of the tail is such records: copied,
    /// the thread wrote (and fsynced) the whole write stream a second time and, on a busy machine,
    /// never caught up with the writer (callgrind and `perf` of `bench-reactor --only kv`: a
    /// compaction that never finished, a fifth of the process's CPU).
    ///
    /// Sound because a left-out record is garbage in the new file as well: the record that
    /// overwrites it (a put, or a tombstone) comes later in the same file, with a higher revision,
    /// so the store's state, its revision and every recovery of the new file are those the full
    /// copy gives. Keys are compared, not only hashes: a hash shared by two keys keeps the record.
    /// A part with few such records (`fewOverwritesRatio`) is copied whole, in one write.
    private func copyLatest(
        from: Int, to: Int, into writer: DataFileWriter, table: inout KeyHashTable, ordered: inout OrderedKeyIndex,
        liveBytes: inout Int
    ) throws {
        var last = LastOffsets()
        defer { last.deallocate() }
        var kept: [Int] = []
        var partStart = from
        while partStart < to {
            try checkCancelled()
            // The part: whole records from `partStart`, about `catchUpPartBytes`, ending outside a batch.
            var partEnd = partStart
            var records = 0
            var continues = false
            while partEnd < to && (partEnd - partStart < Self.catchUpPartBytes || continues) {
                let p = source + partEnd
                continues = RecordFormat.flags(p) & RecordFormat.flagBatchContinues != 0
                partEnd += RecordFormat.paddedSize(p)
                records += 1
            }
            // The last offset of each key hash in it.
            last.reset(records: records)
            var distinct = 0
            var at = partStart
            while at < partEnd {
                let p = source + at
                if last.note(hasher.hash(RecordFormat.key(p)), offset: at) { distinct += 1 }
                at += RecordFormat.paddedSize(p)
            }
            kept.removeAll(keepingCapacity: true)
            if (records - distinct) * Self.fewOverwritesRatio < records {
                // Few records to leave out (writes spread over many keys): the part as it is, in one write.
                try writer.appendRaw(UnsafeRawBufferPointer(start: source + partStart, count: partEnd - partStart))
                at = writer.end - (partEnd - partStart)
                while at < writer.end {
                    kept.append(at)
                    at += RecordFormat.paddedSize(writer.region.base + at)
                }
            } else {
                var inBatch = false
                at = partStart
                while at < partEnd {
                    let p = source + at
                    let size = RecordFormat.paddedSize(p)
                    let batchContinues = RecordFormat.flags(p) & RecordFormat.flagBatchContinues != 0
                    let batchMember = inBatch || batchContinues
                    inBatch = batchContinues
                    if batchMember || !overwrittenInPart(at, last: last) {
                        kept.append(writer.end)
                        try writer.appendCopied(UnsafeRawBufferPointer(start: p, count: size))
                    }
                    at += size
                }
            }
            try writer.writeChunk()
            for offset in kept {
                LogStore.applyRecord(
                    at: offset, base: writer.region.base, hasher: hasher, table: &table, ordered: &ordered, liveBytes: &liveBytes,
                    maintainOrder: true)
            }
            partStart = partEnd
        }
    }

    /// Whether a later record of the part holds the same key as the record at `offset`.
    private func overwrittenInPart(_ offset: Int, last: LastOffsets) -> Bool {
        let key = RecordFormat.key(source + offset)
        let later = last.offset(of: hasher.hash(key))
        guard later != offset else { return false }
        let laterKey = RecordFormat.key(source + later)
        return laterKey.count == key.count && memcmp(laterKey.baseAddress!, key.baseAddress!, key.count) == 0
    }

    /// The last offset of each key hash of a part (`copyLatest`): open addressing over the hash
    /// (already mixed), at most half full, memory kept from part to part (a `Dictionary` spent
    /// most of the catch-up's time hashing the hash again, perf).
    private struct LastOffsets {
        private var slots: UnsafeMutablePointer<(hash: UInt64, offset: Int)>? = nil
        private var capacity = 0
        private var mask = 0

        /// Empties it, with room for `records` hashes.
        mutating func reset(records: Int) {
            var needed = 16
            while needed < 2 * records { needed <<= 1 }
            if needed > capacity {
                slots?.deallocate()
                slots = .allocate(capacity: needed)
                capacity = needed
            }
            mask = needed - 1
            slots!.initialize(repeating: (0, 0), count: needed)
        }

        /// Notes a record of `hash` at `offset` (after every earlier one of the part); returns
        /// whether the hash is new in the part.
        mutating func note(_ hash: UInt64, offset: Int) -> Bool {
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots![i].offset != 0 && slots![i].hash != hash { i = (i + 1) & mask }
            let new = slots![i].offset == 0
            slots![i] = (hash, offset)
            return new
        }

        /// The offset of the last record of `hash` (one was noted).
        func offset(of hash: UInt64) -> Int {
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots![i].hash != hash || slots![i].offset == 0 { i = (i + 1) & mask }
            return slots![i].offset
        }

        func deallocate() { slots?.deallocate() }
    }

    /// The live records below `snapshotEnd`, in key order: the log replayed into a private table.
    private func liveRecords() throws -> [Live] {
        var table = KeyHashTable(minimumCapacity: keyCount)
        defer { table.deallocate() }
        var offset = RecordFormat.fileHeaderBytes
        var n = 0
        while offset < snapshotEnd {
            n += 1
            if n & 0xFFF == 0 { try checkCancelled() }
            let p = source + offset
            // The CRC is checked on every read path that trusts the disk.
            guard case .record(let size) = RecordFormat.scan(p, available: snapshotEnd - offset, valueBytesMax: StoreLimits.formatValueBytesMax) else {
                throw StoreError.unreadable(path: LogStore.dataFileName, reason: "damaged record at \(offset) during compaction")
            }
            let key = RecordFormat.key(p)
            let hash = hasher.hash(key)
            if RecordFormat.flags(p) & RecordFormat.flagTombstone != 0 {
                if let slot = table.find(hash: hash, key: key, base: source) { table.remove(at: slot) }
            } else {
                let (slot, found) = table.findOrReserve(hash: hash, key: key, base: source)
                if found { table.update(slot, offset: offset) } else { table.fill(slot, offset: offset, hash: hash) }
            }
            offset += size
        }
        var live: [Live] = []
        live.reserveCapacity(table.count)
        table.forEachSlot { hash, o in
            live.append(Live(prefix: OrderedKeyIndex.prefix(of: RecordFormat.key(source + o)), hash: hash, offset: o))
        }
        let base = source
        live.sort { a, b in
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            return OrderedKeyIndex.compareBytes(RecordFormat.key(base + a.offset), RecordFormat.key(base + b.offset)) < 0
        }
        return live
    }

    /// Writes `index.hint.compact`: the new file's index as of the snapshot. Returns false when a
    /// full disk prevented it (a hint is optional); a failed sync or rename throws (fail-stop).
    private func writeHint(directory: String, writer: DataFileWriter, live: [Live], bulkBytes: Int) throws -> Bool {
        var bytes = [UInt8]()
        bytes.reserveCapacity(HintFile.headerBytes + live.count * HintFile.entryBytes + 4)
        HintFile.appendHeader(
            to: &bytes, generation: writer.generation, coveredLength: writer.end, revision: baseRevision,
            hashSeed: hasher.seed, count: live.count, liveBytes: bulkBytes)
        for (record, entry) in zip(live, writer.entries) {
            HintFile.append(entry.offset, to: &bytes)
            HintFile.append(record.hash, to: &bytes)
            HintFile.append(entry.prefix, to: &bytes)
        }
        HintFile.appendCRC(to: &bytes)
        do {
            try FileSystem.writeAtomically(directory: directory, name: LogStore.compactHintFileName, bytes: bytes, io: options.fileIO)
            return true
        } catch StoreError.io(let operation, let path, let e) {
            options.logger.warning(
                "could not write the hint file of the compacted data file",
                metadata: ["operation": "\(operation)", "path": "\(path)", "errno": "\(e)"])
            return false
        }
    }
}
