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
/// File errors (through `io`): a full disk at growth, or at a write that changed nothing, is a
/// recoverable `StoreError.io`; a failed sync, a torn write into a file in use or any other
/// write error is `StoreError.storageFailed` (see `StoreError.writeFailed`).
///
/// Owned by one thread (the store's writer); not thread-safe.
final class MappedRegion {
    /// Start of the region; stable for the region's life.
    let base: UnsafeMutableRawPointer
    /// Bytes mapped and usable from `base`.
    private(set) var capacity: Int
    /// Bytes of address space reserved; `capacity` never exceeds it.
    let reservedBytes: Int
    /// The backing file, or -1 for anonymous memory; the region owns it and closes it.
    let fd: Int32
    let path: String
    /// The store's file operations.
    let io: any FileIO
    /// Whether a reader relies on the file (the data file; not compaction output before its
    /// rename): then even a torn write of a full disk is fail-stop.
    var inUse = true

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
        guard fd >= 0, count >= MappedRegion.pwriteBytesMin else {
            fill(base + offset)
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
        guard fd >= 0 else {
            (base + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return
        }
        let (written, e) = io.pwrite(fd, bytes, at: offset)
        if e != 0 { throw StoreError.writeFailed("pwrite", path: path, errno: e, written: written, fileInUse: inUse) }
    }

    /// Makes at least `bytes` usable, growing the file (or memory) geometrically.
    func ensureCapacity(_ bytes: Int) throws {
        if bytes <= capacity { return }
        if bytes > reservedBytes {
            throw StoreError.io(operation: "grow beyond the \(reservedBytes)-byte data file limit", path: path, errno: EFBIG)
        }
        let step = min(max(capacity, MappedRegion.growthBytesMin), MappedRegion.growthBytesMax)
        var target = max(bytes, capacity + step)
        target = (target + MappedRegion.growthBytesMin - 1) / MappedRegion.growthBytesMin * MappedRegion.growthBytesMin
        target = min(target, reservedBytes)
        if fd >= 0 {
            let rc = io.allocate(fd, offset: capacity, length: target - capacity)
            if rc != 0 { throw StoreError.allocateFailed(path: path, errno: rc) }
        }
        try mapRange(from: capacity, to: target)
        capacity = target
    }

    /// Shrinks the backing file to `bytes` and grows it back to the current capacity, so that
    /// everything from `bytes` on reads as zeros (used to wipe a discarded torn tail).
    func zeroTail(from bytes: Int) throws {
        precondition(bytes <= capacity)
        if fd < 0 {
            memset(base + bytes, 0, capacity - bytes)
            return
        }
        // Zero the partial page by hand, drop whole pages by punching them out of the file.
        let pageStart = (bytes + MappedRegion.pageBytes - 1) / MappedRegion.pageBytes * MappedRegion.pageBytes
        let partial = min(pageStart, capacity) - bytes
        try write(at: bytes, count: partial) { memset($0, 0, partial) }
        if pageStart < capacity {
            // A file cut short but not grown back would SIGBUS on the next store into its tail:
            // both steps failing are fail-stop.
            let t = io.truncate(fd, length: pageStart)
            if t != 0 { throw StoreError.storageFailed(operation: "ftruncate", path: path, errno: t) }
            let rc = io.allocate(fd, offset: pageStart, length: capacity - pageStart)
            if rc != 0 { throw StoreError.storageFailed(operation: "posix_fallocate", path: path, errno: rc) }
        }
    }

    /// Writes dirty pages of the file to disk (`fdatasync`); a no-op for anonymous memory. A
    /// failure is always fail-stop: the kernel may have dropped the pages it could not write.
    func sync() throws {
        guard fd >= 0 else { return }
        let e = io.fdatasync(fd)
        if e != 0 { throw StoreError.storageFailed(operation: "fdatasync", path: path, errno: e) }
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
