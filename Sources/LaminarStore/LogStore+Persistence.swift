#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CCRC32C
import Logging

/// Opening, recovery, hint files, compaction and restore: everything that rewrites or re-reads
/// the data directory. Layout of a data directory:
/// - `data.lmnr`: the data file (`RecordFormat`), also the write-ahead log;
/// - `index.hint`: the index as of a checkpoint (`HintFile`), valid for one data file generation;
/// - `LOCK`: held with `flock` while a process has the store open;
/// - `*.tmp`, `data.lmnr.compact`, `index.hint.compact`: files being written (a compaction's new
///   data file and its hint before their renames), removed when found at open.
extension LogStore {
    static let dataFileName = "data.lmnr"
    static let hintFileName = "index.hint"
    static let lockFileName = "LOCK"
    static let compactFileName = "data.lmnr.compact"
    static let compactHintFileName = "index.hint.compact"

    /// Opens (creating if needed) the store in `directory` and recovers it: reads the hint file if
    /// it matches the data file, replays the records after it, verifying each CRC, and truncates a
    /// torn or damaged tail (logged as a warning; nothing before the damage is dropped).
    public static func open(directory: String, options: LogStoreOptions = LogStoreOptions()) throws -> LogStore {
        try FileSystem.makeDirectories(directory)
        let lockFD = try FileSystem.lockDirectory(directory, lockFileName: lockFileName)
        var handedOver = false
        defer { if !handedOver { Glibc.close(lockFD) } }
        for leftover in [compactFileName, compactHintFileName, compactHintFileName + ".tmp", hintFileName + ".tmp"] {
            FileSystem.removeIfPresent(directory + "/" + leftover)
        }

        let path = directory + "/" + dataFileName
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw StoreError.io(operation: "open", path: path, errno: errno) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            Glibc.close(fd)
            throw StoreError.io(operation: "fstat", path: path, errno: e)
        }
        var fileBytes = Int(st.st_size)
        let isNew = fileBytes < RecordFormat.fileHeaderBytes
        let wanted = isNew ? MappedRegion.growthBytesMin : (fileBytes + MappedRegion.pageBytes - 1) / MappedRegion.pageBytes * MappedRegion.pageBytes
        if wanted != fileBytes {
            let rc = options.fileIO.allocate(fd, offset: 0, length: wanted)
            if rc != 0 {
                Glibc.close(fd)
                throw StoreError.allocateFailed(path: path, errno: rc)
            }
            fileBytes = wanted
        }
        let region = try MappedRegion(
            fd: fd, path: path, fileBytes: fileBytes, reservedBytes: max(options.dataBytesMax, fileBytes), io: options.fileIO)
        // A header of zeros: the file was created but never got its header (a crash right after
        // creation). No record can follow an unwritten header, so start it afresh.
        if isNew || (0..<RecordFormat.fileHeaderBytes).allSatisfy({ region.base.load(fromByteOffset: $0, as: UInt8.self) == 0 }) {
            let generation = UInt64.random(in: 1...UInt64.max)
            try region.write(at: 0, count: RecordFormat.fileHeaderBytes) {
                RecordFormat.writeFileHeader(to: $0, generation: generation, baseRevision: 0)
            }
            try region.sync()
            try FileSystem.syncDirectory(directory, io: options.fileIO)
        }
        let header: (generation: UInt64, baseRevision: Revision)
        switch RecordFormat.readFileHeader(region.base) {
        case .success(let h): header = h
        case .failure(let e): throw StoreError.unreadable(path: path, reason: e.reason)
        }
        let store = LogStore(
            options: options, directory: directory, region: region, table: KeyHashTable(),
            hasher: KeyHasher(seed: UInt64.random(in: 0...UInt64.max)), generation: header.generation,
            logicalEnd: RecordFormat.fileHeaderBytes)
        store.lockFD = lockFD
        handedOver = true
        try store.recover(baseRevision: header.baseRevision)
        if store.usesWriteBehind(region) { try region.startWriteBehind(end: store.logicalEnd) }
        // The table as recovery left it, published (and what its growths emptied, freed).
        store.concurrent.beginWrite()
        store.endWriteSection()
        return store
    }

    private func recover(baseRevision: Revision) throws {
        revision = baseRevision
        var offset = RecordFormat.fileHeaderBytes
        if let covered = loadHint() {
            offset = covered
            stats.recoveryUsedHint = true
        }
        let bulk = !stats.recoveryUsedHint
        var pending: [Int] = []
        var damage: String?
        scanning: while true {
            let p = record(at: offset)
            switch RecordFormat.scan(p, available: region.capacity - offset, valueBytesMax: StoreLimits.formatValueBytesMax) {
            case .record(let size):
                pending.append(offset)
                if RecordFormat.flags(p) & RecordFormat.flagBatchContinues == 0 {
                    for o in pending {
                        revision = max(revision, RecordFormat.revision(record(at: o)))
                        applyRecord(at: o, maintainOrder: !bulk)
                    }
                    stats.recoveryRecordsReplayed += pending.count
                    pending.removeAll(keepingCapacity: true)
                }
                offset += size
            case .end:
                // The log ends at a zero header only if everything after it is zero too: pages of
                // the last writes can reach the disk out of order, so a crash can leave a lost
                // (zero) record with later records behind it, which a write that happens to end
                // there would bring back. Such bytes are a damaged tail like any other.
                if let garbage = firstNonZeroByte(from: offset) {
                    damage = "non-zero bytes at offset \(garbage) after the end of the log"
                }
                break scanning
            case .damaged(let reason):
                damage = reason
                break scanning
            }
        }
        if let first = pending.first {
            damage = damage.map { "\($0), after an incomplete batch" } ?? "incomplete batch"
            offset = first
        }
        logicalEnd = offset
        if let damage {
            let lastNonZero = lastNonZeroByte(from: offset)
            stats.recoveryTruncatedBytes = lastNonZero - offset
            logger.warning(
                "data file tail truncated",
                metadata: [
                    "path": "\(region.path)", "offset": "\(offset)", "reason": "\(damage)",
                    "bytes_dropped": "\(stats.recoveryTruncatedBytes)",
                ])
            try region.zeroTail(from: offset)
            try region.sync()
        }
        durableEnd = logicalEnd
        durableRevision = revision
        if bulk { rebuildOrderedIndexFromTable() }
        logger.info(
            "store opened",
            metadata: [
                "path": "\(region.path)", "keys": "\(count)", "revision": "\(revision)",
                "hint": "\(stats.recoveryUsedHint)", "replayed": "\(stats.recoveryRecordsReplayed)",
            ])
    }

    /// One past the last non-zero byte at or after `offset` (or `offset` if all are zero).
    private func lastNonZeroByte(from offset: Int) -> Int {
        var end = region.capacity
        // Whole zero pages first (memcmp), then byte by byte.
        while end - offset >= Self.zeroPage.count,
              Self.zeroPage.withUnsafeBytes({ memcmp(region.base + end - $0.count, $0.baseAddress!, $0.count) }) == 0 {
            end -= Self.zeroPage.count
        }
        while end > offset && region.base.load(fromByteOffset: end - 1, as: UInt8.self) == 0 { end -= 1 }
        return end
    }

    /// The first non-zero byte at or after `offset`, or nil when the rest of the file is zero.
    /// Reads the preallocated tail once per open (memcmp against a zero page).
    private func firstNonZeroByte(from offset: Int) -> Int? {
        var at = offset
        while at < region.capacity {
            let n = min(Self.zeroPage.count, region.capacity - at)
            if Self.zeroPage.withUnsafeBytes({ memcmp(region.base + at, $0.baseAddress!, n) }) != 0 {
                for i in at..<(at + n) where region.base.load(fromByteOffset: i, as: UInt8.self) != 0 { return i }
            }
            at += n
        }
        return nil
    }

    private static let zeroPage = [UInt8](repeating: 0, count: 1 << 16)

    /// Builds the ordered index from the hash table by sorting (bulk recovery).
    private func rebuildOrderedIndexFromTable() {
        var entries: [OrderedKeyIndex.Entry] = []
        entries.reserveCapacity(table.count)
        table.forEachSlot { _, offset in
            entries.append(OrderedKeyIndex.Entry(prefix: OrderedKeyIndex.prefix(of: RecordFormat.key(record(at: offset))), offset: UInt64(offset)))
        }
        let base = UnsafeRawPointer(region.base)
        entries.sort { a, b in
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            return OrderedKeyIndex.compareBytes(RecordFormat.key(base + Int(a.offset)), RecordFormat.key(base + Int(b.offset))) < 0
        }
        ordered.load(sorted: entries)
    }

    // MARK: - Hint file

    /// Writes the index as of now to the hint file (after making the data durable), so the next
    /// open replays only what comes after. No-op for an in-memory store.
    public func checkpoint() throws {
        assert(checkOwnerThread())
        guard let directory else { return }
        try checkWritable()
        dirty = true  // a hint must never cover data that is not on disk
        try flush()
        var bytes = [UInt8]()
        bytes.reserveCapacity(HintFile.headerBytes + count * HintFile.entryBytes + 4)
        HintFile.appendHeader(
            to: &bytes, generation: generation, coveredLength: logicalEnd, revision: revision,
            hashSeed: hasher.seed, count: count, liveBytes: liveBytes)
        ordered.forEach { entry in
            let key = RecordFormat.key(record(at: Int(entry.offset)))
            let hash = hasher.hash(key)
            guard let slot = table.find(hash: hash, key: key, base: region.base) else {
                preconditionFailure("ordered key missing from the hash table")
            }
            HintFile.append(UInt64(table.offset(at: slot)), to: &bytes)
            HintFile.append(hash, to: &bytes)
            HintFile.append(entry.prefix, to: &bytes)
        }
        HintFile.appendCRC(to: &bytes)
        do {
            try FileSystem.writeAtomically(directory: directory, name: LogStore.hintFileName, bytes: bytes, io: options.fileIO)
        } catch {
            throw noteFailure(error)
        }
    }

    /// Loads the hint file if it is intact and belongs to this data file; returns the log offset
    /// it covers. Leaves the store untouched and returns `nil` otherwise.
    private func loadHint() -> Int? {
        guard let directory, let bytes = FileSystem.readFile(directory + "/" + LogStore.hintFileName) else { return nil }
        guard let hint = HintFile.parse(bytes), hint.generation == generation,
            hint.coveredLength >= RecordFormat.fileHeaderBytes, hint.coveredLength <= region.capacity
        else {
            logger.info("hint file ignored (damaged or from another data file); replaying the whole log")
            return nil
        }
        // Check every offset before changing anything.
        for i in 0..<hint.count {
            let offset = hint.entry(i, bytes).offset
            if offset < RecordFormat.fileHeaderBytes || offset >= hint.coveredLength { return nil }
        }
        // At open: no reader has the store yet.
        let empty = table
        hasher = KeyHasher(seed: hint.hashSeed)
        adopt(table: KeyHashTable(minimumCapacity: hint.count), region: region)
        empty.deallocate()
        var entries: [OrderedKeyIndex.Entry] = []
        entries.reserveCapacity(hint.count)
        for i in 0..<hint.count {
            let e = hint.entry(i, bytes)
            table.insertNew(hash: e.hash, offset: e.offset)
            entries.append(OrderedKeyIndex.Entry(prefix: e.prefix, offset: UInt64(e.offset)))
        }
        ordered.load(sorted: entries)
        revision = max(revision, hint.revision)
        liveBytes = hint.liveBytes
        return hint.coveredLength
    }

    // MARK: - Restore

    /// Replaces the whole content with `snapshot` (a compaction in progress is abandoned): a new
    /// data file written and swapped in synchronously (write, fsync, rename, directory fsync).
    public func restore(_ snapshot: StoreSnapshot) throws {
        assert(checkOwnerThread())
        try checkWritable()
        for entry in snapshot.entries { try validate(key: entry.key, valueBytes: entry.value.count) }
        // Key order, one entry per key (the last wins).
        var byKey: [[UInt8]: StoreEntry] = [:]
        for entry in snapshot.entries { byKey[entry.key] = entry }
        let entries = byKey.values.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let newRevision = entries.reduce(max(revision, snapshot.revision)) { max($0, $1.version) }
        let recordBytes = entries.reduce(0) { $0 + RecordFormat.paddedSize(keyBytes: $1.key.count, valueBytes: $1.value.count) }
        // A compaction's file not yet published is the store's file: publish it before a new
        // `data.lmnr.compact` is written.
        do { try finishPendingPublication() } catch { throw noteFailure(error) }
        abandonCompaction(removeFiles: true)
        try rewrite(baseRevision: newRevision, recordBytes: recordBytes) { emit in
            for e in entries {
                try e.key.withUnsafeBytes { k in
                    try e.value.withUnsafeBytes { v in try emit(k, v, e.version, storedExpiry(e.expiresAtMs)) }
                }
            }
        }
        revision = newRevision
    }

    typealias EmitRecord = (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Revision, Int64) throws -> Void

    /// Writes a new data file (or memory) holding the records `produce` emits, in key order, and
    /// makes it the store's (fsync, rename, directory fsync, hint). `recordBytes` is their total
    /// padded size. A storage failure puts the store in the failed state.
    private func rewrite(baseRevision: Revision, recordBytes: Int, produce: (EmitRecord) throws -> Void) throws {
        do { try rewriteUnchecked(baseRevision: baseRevision, recordBytes: recordBytes, produce: produce) } catch { throw noteFailure(error) }
    }

    private func rewriteUnchecked(baseRevision: Revision, recordBytes: Int, produce: (EmitRecord) throws -> Void) throws {
        let writer = try DataFileWriter(
            directory: directory, options: options, recordBytes: recordBytes, baseRevision: baseRevision, expectedRecords: count)
        var committed = false
        defer { if !committed { writer.discard() } }
        try produce { key, value, revision, expiry in
            try writer.append(key: key, value: value, revision: revision, expiresAtMs: expiry)
        }
        try writer.writeChunk()
        if let directory, let tempPath = writer.tempPath {
            try writer.region.sync()
            let e = options.fileIO.rename(tempPath, directory + "/" + LogStore.dataFileName)
            if e != 0 { throw StoreError.storageFailed(operation: "rename", path: tempPath, errno: e) }
        }
        committed = true
        writer.region.inUse = true
        if usesWriteBehind(writer.region) { try writer.region.startWriteBehind(end: writer.end) }
        // The new file is the data file now: switch the indexes over to it.
        var newTable = KeyHashTable(minimumCapacity: writer.entries.count)
        for entry in writer.entries {
            newTable.insertNew(
                hash: hasher.hash(RecordFormat.key(writer.region.base + Int(entry.offset))), offset: Int(entry.offset))
        }
        let (oldTable, oldRegion) = (table, region)
        adopt(table: newTable, region: writer.region)
        concurrent.retire(background: true) {
            oldTable.deallocate()
            withExtendedLifetime(oldRegion) {}
        }
        generation = writer.generation
        logicalEnd = writer.end
        liveBytes = writer.end - RecordFormat.fileHeaderBytes
        revision = max(revision, baseRevision)
        dirty = false
        durableEnd = writer.end
        durableRevision = revision
        ordered.load(sorted: writer.entries)
        if let directory {
            // Until this returns the rename may not be durable: a crash could bring back the old
            // file, without the writes made to the new one. A failure is fail-stop.
            try FileSystem.syncDirectory(directory, io: options.fileIO)
            do { try checkpoint() } catch {
                if self.failure == nil {
                    logger.warning("could not write the hint file after restore", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    // MARK: - Closing

    /// Drops the store as a crash would: no flush, no hint, the lock released. What was written
    /// through the mapping stays in the page cache, as it does when a process is killed (tests).
    func abandon() {
        abandonCompaction(removeFiles: false)
        closed = true
        if lockFD >= 0 {
            Glibc.close(lockFD)
            lockFD = -1
        }
    }

    /// Makes everything durable, writes the hint file and releases the directory lock. Later
    /// writes throw `StoreError.closed`. The lock is released even when the checkpoint fails
    /// (a full disk, or the store's `failure`, which it throws): the next open recovers from the
    /// log.
    public func close() throws {
        assert(checkOwnerThread())
        if closed { return }
        concurrent.beginWrite()
        concurrent.setEnabled(false)
        concurrent.endWrite()
        abandonCompaction(removeFiles: true)
        defer {
            closed = true
            if lockFD >= 0 {
                Glibc.close(lockFD)
                lockFD = -1
            }
        }
        if directory != nil { try checkpoint() }
    }
}

/// The hint file: the index as of a checkpoint, so reopening skips the log it covers.
/// Little-endian:
/// ```
///  0  8  magic "LMNRHINT"     8  4  version (1)    12  4  zero
/// 16  8  data file generation  24  8  covered length of the log
/// 32  8  revision              40  8  hash seed
/// 48  8  key count             56  8  live bytes
/// 64     count × (record offset u64, key hash u64, key prefix u64), in key order
/// end 4  CRC-32C of everything before
/// ```
enum HintFile {
    static let magic: [UInt8] = Array("LMNRHINT".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 64
    static let entryBytes = 24

    struct Parsed {
        var generation: UInt64
        var coveredLength: Int
        var revision: Revision
        var hashSeed: UInt64
        var count: Int
        var liveBytes: Int

        func entry(_ i: Int, _ bytes: [UInt8]) -> (offset: Int, hash: UInt64, prefix: UInt64) {
            let at = HintFile.headerBytes + i * HintFile.entryBytes
            return (Int(HintFile.load(bytes, at)), HintFile.load(bytes, at + 8), HintFile.load(bytes, at + 16))
        }
    }

    static func appendHeader(
        to bytes: inout [UInt8], generation: UInt64, coveredLength: Int, revision: Revision, hashSeed: UInt64,
        count: Int, liveBytes: Int
    ) {
        bytes.append(contentsOf: magic)
        bytes.append(contentsOf: withUnsafeBytes(of: version.littleEndian, Array.init))
        bytes.append(contentsOf: [0, 0, 0, 0])
        for v in [generation, UInt64(coveredLength), revision, hashSeed, UInt64(count), UInt64(liveBytes)] {
            append(v, to: &bytes)
        }
    }

    @inline(__always)
    static func append(_ v: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func appendCRC(to bytes: inout [UInt8]) {
        let crc = bytes.withUnsafeBytes { laminar_crc32c(0, $0.baseAddress, $0.count) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func load(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    }

    static func parse(_ bytes: [UInt8]) -> Parsed? {
        guard bytes.count >= headerBytes + 4, Array(bytes[0..<8]) == magic else { return nil }
        let stored = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self)) }
        let actual = bytes.withUnsafeBytes { laminar_crc32c(0, $0.baseAddress, $0.count - 4) }
        guard stored == actual else { return nil }
        let v = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        guard v == version else { return nil }
        let count = load(bytes, 48)
        guard count <= UInt64(Int.max / entryBytes), headerBytes + Int(count) * entryBytes + 4 == bytes.count else { return nil }
        return Parsed(
            generation: load(bytes, 16), coveredLength: Int(clamping: load(bytes, 24)), revision: load(bytes, 32),
            hashSeed: load(bytes, 40), count: Int(count), liveBytes: Int(clamping: load(bytes, 56)))
    }
}
