#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable byte region at a fixed address: either a file mapped shared (the persistent store's
/// data file) or anonymous memory (the in-memory store).
///
/// The region reserves `reservedBytes` of address space once (no memory, `PROT_NONE`) and maps
/// more of it as it grows, so `base` never moves: a pointer into the region stays valid until the
/// region is closed. Growth of a file uses `posix_fallocate`, so a full disk is a typed error at
/// growth time and never a SIGBUS on a later store into a hole.
///
/// Writes (`write(at:count:_:)`): a span of a page or more goes to a file with `pwrite`, a
/// smaller one is stored through the (shared, writable) mapping. The page cache is one, so
/// either is visible through the mapping at once. A page dirtied through the mapping costs, at
/// each `fdatasync`, a write-protect with a TLB shootdown on every core running the process and
/// a page fault on the next store into it: small records share that cost per page, while big
/// ones (event batches) paid it for every page they cover, a fifth of the server's CPU under
/// ingest at `--fsync always`; a `pwrite`, whose pages the mapping only reads, avoids it.
/// Anonymous memory is always written in place.
///
/// **Write-behind** (`startWriteBehind`: the store's data file at `fsync always`): from the page
/// holding the end of the data on, the same addresses are anonymous memory. Writes land there and
/// nowhere else, so the writer never touches a page of the file: no page fault, no page lock, no
/// wait for a writeback in flight (a store into a file page that a sync is writing back waits for
/// that page's lock: the reactor stalled for milliseconds in `ext4_page_mkwrite` under put load,
/// profiled). The bytes reach the file through a `SyncJob` (`takePendingWrites`): one `pwrite`
/// and the `fdatasync`, on the thread that syncs (the reactor's commit syncer), or in `sync()`.
/// Once a sync has made 1 MiB of whole tail pages durable, `writesDone` maps the file back over
/// them (one `mmap`: their bytes are the same in both, so a reader on another thread sees no
/// change), so the anonymous part stays small.
///
/// File errors (through `io`): a full disk at growth, or at a write that changed nothing, is a
/// recoverable `StoreError.io`; a failed sync, a torn write into a file in use or any other
/// write error is `StoreError.storageFailed` (see `StoreError.writeFailed`).
///
/// Owned by one thread (the store's writer); not thread-safe.
@usableFromInline
final class MappedRegion {
    /// Start of the region; stable for the region's life.
    @usableFromInline let base: UnsafeMutableRawPointer
    /// Bytes mapped and usable from `base`.
    private(set) var capacity: Int
    /// Bytes of address space reserved; `capacity` never exceeds it.
    let reservedBytes: Int
    /// The backing file, or -1 for anonymous memory; the region owns it and closes it.
    let fd: Int32
    let path: String
    /// The store's file operations.
    let io: any FileIO
    /// `pwriteBytesMin`, read once here: a static computed at run time is a `swift_once` call
    /// at every read, and `write(at:count:_:)` reads it per record.
    private let pwriteFrom = MappedRegion.pwriteBytesMin
    /// Whether a reader relies on the file (the data file; not compaction output before its
    /// rename): then even a torn write of a full disk is fail-stop.
    var inUse = true

    /// Write-behind (see the type's comment): `[tailStart, capacity)` is anonymous memory
    /// (`tailStart` a page boundary, or `Int.max` when off). `[0, fileEnd)` is in the file,
    /// `[fileEnd, jobEnd)` handed to a sync job in flight, `[jobEnd, writtenEnd)` only in memory.
    private(set) var tailStart = Int.max
    private(set) var fileEnd = 0
    private var jobEnd = 0
    private var writtenEnd = 0
    /// The file is mapped back over whole tail pages once this many bytes of them are durable.
    static let tailRemapBytes = 1 << 20

    /// Fault-ahead (see `PageFaultAhead`): the end of the ranges handed to it so far, and the end
    /// of an in-place write from which the next range is handed over (once per
    /// `faultAheadStepBytes` written, up to `faultAheadBytes` past the write).
    private var faultAheadEnd = 0
    private var faultAheadNextAt = 0
    static let faultAheadBytes = 4 << 20
    static let faultAheadStepBytes = 1 << 20

    /// Where `write(at:count:_:)` lays bytes out before one `pwrite` (files only); reused.
    private var staging: UnsafeMutableRawPointer?
    private var stagingBytes = 0

    static let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// A staging buffer larger than this (a big value) is freed after its write.
    static let stagingBytesKept = 1 << 20
    /// Writes of at least this many bytes to a file use `pwrite` instead of the mapping.
    static let pwriteBytesMin = pageBytes
    /// Growth step bounds: double, but by at least 1 MiB and at most 1 GiB at a time.
    static let growthBytesMin = 1 << 20
    static let growthBytesMax = 1 << 30

    /// Maps `fd` (whose size is `fileBytes`, a multiple of the page size) or, with `fd == -1`,
    /// `fileBytes` of zeroed anonymous memory. Takes ownership of `fd`, even when it throws.
    init(fd: Int32, path: String, fileBytes: Int, reservedBytes: Int, io: any FileIO = SystemFileIO.shared) throws {
        precondition(fileBytes % MappedRegion.pageBytes == 0 && fileBytes <= reservedBytes)
        let reservation = mmap(nil, reservedBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let reservation, reservation != MAP_FAILED else {
            if fd >= 0 { close(fd) }
            throw StoreError.io(operation: "mmap(reserve)", path: path, errno: errno)
        }
        self.base = reservation
        self.reservedBytes = reservedBytes
        self.fd = fd
        self.path = path
        self.io = io
        self.capacity = 0
        // Fully initialized from here: on a throw, deinit unmaps and closes `fd`.
        try mapRange(from: 0, to: fileBytes)
        self.capacity = fileBytes
    }

    deinit {
        munmap(base, reservedBytes)
        if fd >= 0 { close(fd) }
        staging?.deallocate()
    }

    /// Lays out `count` bytes at `offset` (inside `capacity`) with `fill`, which gets a pointer
    /// to `count` writable bytes: in place, or staged and written with one `pwrite` when the
    /// region is a file and `count` is at least `pwriteBytesMin`.
    func write(at offset: Int, count: Int, _ fill: (UnsafeMutableRawPointer) -> Void) throws {
        precondition(offset >= 0 && count >= 0 && offset + count <= capacity, "write outside the region")
        if offset >= tailStart {
            precondition(offset >= jobEnd, "a write-behind tail only appends")
            fill(base + offset)
            writtenEnd = max(writtenEnd, offset + count)
            faultAhead(after: offset + count)
            return
        }
        precondition(tailStart == Int.max, "a write-behind tail only appends")
        guard fd >= 0, count >= pwriteFrom else {
            fill(base + offset)
            faultAhead(after: offset + count)
            return
        }
        if count > stagingBytes {
            staging?.deallocate()
            staging = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
            stagingBytes = count
        }
        fill(staging!)
        defer {
            if stagingBytes > MappedRegion.stagingBytesKept {
                staging!.deallocate()
                staging = nil
                stagingBytes = 0
            }
        }
        try write(UnsafeRawBufferPointer(start: staging!, count: count), at: offset)
    }

    /// Copies `bytes` to `offset` (inside `capacity`): `pwrite` for a file, a copy for memory.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        precondition(offset >= 0 && offset + bytes.count <= capacity, "write outside the region")
        guard bytes.count > 0 else { return }
        if offset >= tailStart {
            precondition(offset >= jobEnd, "a write-behind tail only appends")
            (base + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            writtenEnd = max(writtenEnd, offset + bytes.count)
            faultAhead(after: offset + bytes.count)
            return
        }
        precondition(tailStart == Int.max, "a write-behind tail only appends")
        guard fd >= 0 else {
            (base + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            faultAhead(after: offset + bytes.count)
            return
        }
        let (written, e) = io.pwrite(fd, bytes, at: offset)
        if e != 0 { throw StoreError.writeFailed("pwrite", path: path, errno: e, written: written, fileInUse: inUse) }
    }

    /// After an in-place write ending at `end`: once per `faultAheadStepBytes`, hands the pages
    /// from the last range handed over (or `end`) to `faultAheadBytes` past `end` (inside the
    /// capacity) to `PageFaultAhead`, so the next writes find them mapped in.
    @inline(__always)
    private func faultAhead(after end: Int) {
        if end > faultAheadNextAt { requestFaultAhead(after: end) }
    }

    private func requestFaultAhead(after end: Int) {
        let page = MappedRegion.pageBytes
        let from = max(faultAheadEnd, (end + page - 1) / page * page)
        let to = min(capacity, end / page * page + MappedRegion.faultAheadBytes)
        if to > from {
            PageFaultAhead.shared.request(self, from: from, to: to)
            faultAheadEnd = to
        }
        faultAheadNextAt = end + MappedRegion.faultAheadStepBytes
    }

    /// Makes at least `bytes` usable, growing the file (or memory) geometrically. The check is
    /// inlined (every put makes it; a call cost ~17 instructions a put), the growth is not.
    @inline(__always)
    func ensureCapacity(_ bytes: Int) throws {
        if bytes > capacity { try grow(toHold: bytes) }
    }

    private func grow(toHold bytes: Int) throws {
        if bytes > reservedBytes {
            throw StoreError.io(operation: "grow beyond the \(reservedBytes)-byte data file limit", path: path, errno: EFBIG)
        }
        let step = min(max(capacity, MappedRegion.growthBytesMin), MappedRegion.growthBytesMax)
        var target = max(bytes, capacity + step)
        target = (target + MappedRegion.growthBytesMin - 1) / MappedRegion.growthBytesMin * MappedRegion.growthBytesMin
        target = min(target, reservedBytes)
        if fd >= 0 {
            // Under write-behind too: the file has room for the tail before a sync job writes it.
            let rc = io.allocate(fd, offset: capacity, length: target - capacity)
            if rc != 0 { throw StoreError.allocateFailed(path: path, errno: rc) }
        }
        if target > tailStart {
            try mapAnonymous(from: capacity, to: target)
        } else {
            try mapRange(from: capacity, to: target)
        }
        capacity = target
    }

    /// Maps in the pages of `[0, bytes)` (`MADV_POPULATE_READ`), so that reading them later takes
    /// no page fault. 4 MiB per call: each holds the process's memory-map lock, which the
    /// writer's own `mmap`s wait for. Advice only: ignored where the kernel lacks it.
    func prefault(bytes: Int) {
        let n = min(capacity, (bytes + MappedRegion.pageBytes - 1) / MappedRegion.pageBytes * MappedRegion.pageBytes)
        var at = 0
        while at < n {
            let step = min(MappedRegion.prefaultStepBytes, n - at)
            if madvise(base + at, step, MappedRegion.populateRead) != 0 { return }
            at += step
        }
    }

    static let prefaultStepBytes = 4 << 20

    /// `MADV_POPULATE_READ` (Linux 5.14).
    static let populateRead: Int32 = 22

    /// Shrinks the backing file to `bytes` and grows it back to the current capacity, so that
    /// everything from `bytes` on reads as zeros (used to wipe a discarded torn tail).
    func zeroTail(from bytes: Int) throws {
        precondition(bytes <= capacity && tailStart == Int.max)
        if fd < 0 {
            memset(base + bytes, 0, capacity - bytes)
            return
        }
        // Zero the partial page by hand, drop whole pages by punching them out of the file.
        let pageStart = (bytes + MappedRegion.pageBytes - 1) / MappedRegion.pageBytes * MappedRegion.pageBytes
        let partial = min(pageStart, capacity) - bytes
        // In place, not through `write`: no fault-ahead into pages about to be cut.
        memset(base + bytes, 0, partial)
        if pageStart < capacity {
            // A file cut short but not grown back would SIGBUS on the next store into its tail:
            // both steps failing are fail-stop.
            let t = io.truncate(fd, length: pageStart)
            if t != 0 { throw StoreError.storageFailed(operation: "ftruncate", path: path, errno: t) }
            let rc = io.allocate(fd, offset: pageStart, length: capacity - pageStart)
            if rc != 0 { throw StoreError.storageFailed(operation: "posix_fallocate", path: path, errno: rc) }
        }
    }

    /// Writes dirty pages of the file to disk (`fdatasync`), after the write-behind tail's bytes
    /// not yet in the file; a no-op for anonymous memory. A failure is always fail-stop: the
    /// kernel may have dropped the pages it could not write. Not while a sync job is in flight.
    func sync() throws {
        guard fd >= 0 else { return }
        let job = takePendingWrites()
        let (e, operation) = job.run(io: io)
        if e != 0 { throw StoreError.storageFailed(operation: operation, path: path, errno: e) }
        try writesDone()
    }

    // MARK: - Write-behind

    /// Makes the pages from the one holding `end` on anonymous memory (see the type's comment),
    /// that page keeping its bytes. Every byte written so far must be in the file and durable
    /// (`end` is the end of the data; nothing is written beyond it), and no other thread may be
    /// reading the region (a store being opened, or compaction output not yet swapped in).
    /// Files only; once. A failure is fail-stop (the file is in use, its pages may be unmapped).
    func startWriteBehind(end: Int) throws {
        precondition(fd >= 0 && tailStart == Int.max && end <= capacity)
        let start = end / MappedRegion.pageBytes * MappedRegion.pageBytes
        if start < capacity {
            let partial = end - start
            let saved = [UInt8](UnsafeRawBufferPointer(start: base + start, count: partial))
            do { try mapAnonymous(from: start, to: capacity) } catch let StoreError.io(operation, path, errno) {
                throw StoreError.storageFailed(operation: operation, path: path, errno: errno)
            }
            saved.withUnsafeBytes { (base + start).copyMemory(from: $0.baseAddress!, byteCount: partial) }
        }
        fileEnd = end
        jobEnd = end
        writtenEnd = end
        tailStart = start
    }

    /// The job that makes everything written so far durable: the tail's bytes not yet in the
    /// file (none without write-behind), then `fdatasync`. Until `writesDone` (after the job
    /// succeeded) those bytes must not change and no remapping happens, so the job may run on
    /// another thread; writes go on after them.
    func takePendingWrites() -> SyncJob {
        precondition(fd >= 0)
        guard tailStart != Int.max else { return SyncJob(fd: fd) }
        precondition(jobEnd == fileEnd, "one sync job at a time")
        jobEnd = writtenEnd
        return SyncJob(fd: fd, bytes: UnsafeRawBufferPointer(start: base + fileEnd, count: jobEnd - fileEnd), offset: fileEnd)
    }

    /// After the job of `takePendingWrites` succeeded: its bytes are in the file, durable; once
    /// 1 MiB of whole tail pages is, maps the file back over them. A failure to map is
    /// fail-stop (the old pages may be gone).
    func writesDone() throws {
        guard tailStart != Int.max else { return }
        fileEnd = jobEnd
        let wholePagesEnd = fileEnd / MappedRegion.pageBytes * MappedRegion.pageBytes
        if wholePagesEnd - tailStart >= MappedRegion.tailRemapBytes {
            do { try mapRange(from: tailStart, to: wholePagesEnd) } catch let StoreError.io(operation, path, errno) {
                throw StoreError.storageFailed(operation: operation, path: path, errno: errno)
            }
            tailStart = wholePagesEnd
        }
    }

    private func mapAnonymous(from start: Int, to end: Int) throws {
        guard end > start else { return }
        let p = mmap(base + start, end - start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        if p == nil || p == MAP_FAILED {
            throw StoreError.io(operation: "mmap(anonymous)", path: path, errno: errno)
        }
    }

    private func mapRange(from start: Int, to end: Int) throws {
        guard end > start else { return }
        let address = base + start
        if fd >= 0 {
            let p = mmap(address, end - start, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off_t(start))
            if p == nil || p == MAP_FAILED {
                throw StoreError.io(operation: "mmap", path: path, errno: errno)
            }
        } else {
            let p = mmap(address, end - start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
            if p == nil || p == MAP_FAILED {
                throw StoreError.io(operation: "mmap(anonymous)", path: path, errno: errno)
            }
        }
    }
}
