import CLinux
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a new data file record by record: compaction output (on the compaction thread, then
/// the tail on the owner's) and a restore (on the owner's). The file is `data.lmnr.compact` until
/// the owner renames it over the data file; for an in-memory store, fresh anonymous memory.
///
/// Records are laid out in a 1 MiB chunk and written a chunk at a time with one `pwrite` each (a
/// record larger than the chunk goes alone). The region is not `inUse` (nothing relies on it
/// before the rename), so a full disk, even a torn write, is a recoverable `StoreError.io`.
///
/// **Writeback pacing** (`writebackStepBytes`, the compaction thread's writes only): without it
/// the thread wrote a whole live set (~110 MB) into the page cache and then synced it at once, and
/// the disk, busy with that one flush for ~190 ms, made every commit of the store's log wait as
/// long (POST p99 under ingest). With it, each step written is handed to the disk at once
/// (`sync_file_range`) and the thread waits for the step before, so at most two steps are ever
/// dirty or in flight ahead of a commit's few pages. A hint only: errors are ignored (the final
/// `fdatasync` reports any).
///
/// Used by one thread at a time; handed over with a happens-before edge (a thread join).
final class DataFileWriter {
    let region: MappedRegion
    /// The temporary file, or nil in memory.
    let tempPath: String?
    let generation: UInt64
    /// End of the records appended so far (the chunk not yet written included).
    private(set) var end = RecordFormat.fileHeaderBytes
    /// One entry per record appended with `append`, in append order (key order for an ordered
    /// index when the records come in key order).
    private(set) var entries: [OrderedKeyIndex.Entry] = []

    private let chunk: UnsafeMutableRawPointer
    private var chunkStart = 0
    private var chunkUsed = 0

    /// Bytes laid out before each write.
    static let chunkBytes = 1 << 20

    /// Writeback pacing step (see the type's comment); 0: off (the owner's writes: it must never
    /// wait for the disk).
    var writebackStepBytes = 0
    /// Pacing: writeback was started for the file below `writebackStartedEnd`, and has ended below
    /// `writebackWaitedEnd` (0 and 0 without pacing).
    private(set) var writebackStartedEnd = 0
    private(set) var writebackWaitedEnd = 0
    /// The compaction thread's step: a few milliseconds of a disk's bandwidth.
    static let compactionWritebackStepBytes = 4 << 20

    /// Creates the file (or memory) with room for `recordBytes` of records and lays out its header.
    init(directory: String?, options: LogStoreOptions, recordBytes: Int, baseRevision: Revision, expectedRecords: Int) throws {
        let step = MappedRegion.growthBytesMin
        let fileBytes = (RecordFormat.fileHeaderBytes + recordBytes + step - 1) / step * step
        if let directory {
            let path = directory + "/" + LogStore.compactFileName
            let fd = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { throw StoreError.io(operation: "open", path: path, errno: errno) }
            let rc = options.fileIO.allocate(fd, offset: 0, length: fileBytes)
            if rc != 0 {
                Glibc.close(fd)
                FileSystem.removeIfPresent(path)
                throw StoreError.allocateFailed(path: path, errno: rc)
            }
            do {
                region = try MappedRegion(
                    fd: fd, path: path, fileBytes: fileBytes, reservedBytes: max(options.dataBytesMax, fileBytes), io: options.fileIO)
            } catch {
                FileSystem.removeIfPresent(path)
                throw error
            }
            region.inUse = false
            tempPath = path
        } else {
            region = try MappedRegion(fd: -1, path: "(memory)", fileBytes: fileBytes, reservedBytes: options.dataBytesMax)
            tempPath = nil
        }
        generation = UInt64.random(in: 1...UInt64.max)
        chunk = UnsafeMutableRawPointer.allocate(byteCount: DataFileWriter.chunkBytes, alignment: 16)
        RecordFormat.writeFileHeader(to: chunk, generation: generation, baseRevision: baseRevision)
        chunkUsed = RecordFormat.fileHeaderBytes
        entries.reserveCapacity(expectedRecords)
    }

    deinit { chunk.deallocate() }

    /// Appends one record (no flags: a put) and its ordered-index entry.
    func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, revision: Revision, expiresAtMs: Int64) throws {
        let size = RecordFormat.paddedSize(keyBytes: key.count, valueBytes: value.count)
        try region.ensureCapacity(end + size)
        entries.append(OrderedKeyIndex.Entry(prefix: OrderedKeyIndex.prefix(of: key), offset: UInt64(end)))
        if chunkUsed + size > DataFileWriter.chunkBytes { try writeChunk() }
        if size > DataFileWriter.chunkBytes {
            try region.write(at: end, count: size) {
                _ = RecordFormat.write(to: $0, key: key, value: value, revision: revision, expiresAtMs: expiresAtMs, flags: 0)
            }
            chunkStart = end + size
            paceWriteback()
        } else {
            chunkUsed += RecordFormat.write(to: chunk + chunkUsed, key: key, value: value, revision: revision, expiresAtMs: expiresAtMs, flags: 0)
        }
        end += size
    }

    /// Appends records copied as they are (the compaction tail: its batches and tombstones stay).
    func appendRaw(_ bytes: UnsafeRawBufferPointer) throws {
        try writeChunk()
        try region.ensureCapacity(end + bytes.count)
        try region.write(bytes, at: end)
        end += bytes.count
        chunkStart = end
        paceWriteback()
    }

    /// Appends one record copied as it is (the compaction tail's records it keeps), through the
    /// chunk: its bytes reach the region at the next `writeChunk`.
    func appendCopied(_ bytes: UnsafeRawBufferPointer) throws {
        try region.ensureCapacity(end + bytes.count)
        if chunkUsed + bytes.count > DataFileWriter.chunkBytes { try writeChunk() }
        if bytes.count > DataFileWriter.chunkBytes {
            try region.write(bytes, at: end)
            chunkStart = end + bytes.count
            paceWriteback()
        } else {
            (chunk + chunkUsed).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            chunkUsed += bytes.count
        }
        end += bytes.count
    }

    /// Writes the records laid out so far.
    func writeChunk() throws {
        try region.write(UnsafeRawBufferPointer(start: chunk, count: chunkUsed), at: chunkStart)
        chunkStart += chunkUsed
        chunkUsed = 0
        paceWriteback()
    }

    /// Once a step more is in the file: waits for the step started before it, then starts it.
    private func paceWriteback() {
        guard writebackStepBytes > 0, region.fd >= 0, chunkStart - writebackStartedEnd >= writebackStepBytes else { return }
        if writebackStartedEnd > writebackWaitedEnd {
            _ = CLinux_wait_writeback(region.fd, Int64(writebackWaitedEnd), Int64(writebackStartedEnd - writebackWaitedEnd))
            writebackWaitedEnd = writebackStartedEnd
        }
        _ = CLinux_start_writeback(region.fd, Int64(writebackStartedEnd), Int64(chunkStart - writebackStartedEnd))
        writebackStartedEnd = chunkStart
    }

    /// Removes the temporary file (the output is abandoned).
    func discard() {
        if let tempPath { FileSystem.removeIfPresent(tempPath) }
    }
}
