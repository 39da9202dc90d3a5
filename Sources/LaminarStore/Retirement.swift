import CLinux
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Frees what a compaction replaced — the old data file's mapping and descriptor, the old hash
/// table and ordered index — on a short-lived thread of its own at the lowest CPU priority, so
/// the swap stays O(1) on the writer, and in bounded steps, so that it stalls nobody else either:
/// - unmapping a large mapping zaps its page tables under the process's memory-map lock, which
///   the writer's own `mmap`s then wait for: the pages are dropped a few MiB at a time first
///   (`MADV_DONTNEED`), so the final `munmap` has nothing left to zap;
/// - closing the last descriptor of an unlinked file frees all its blocks in one journal
///   transaction (with the `discard` mount option, trimming them before it commits), which held
///   every `fdatasync` of the data file for 100–200 ms (measured, 160 MB file): the file
///   (unlinked by the rename that published the compaction) is cut from its end a few MiB per
///   step instead, each step its own small transaction, before it is closed.
///
/// The owner hands them over and never touches them again (the indexes point into the new
/// region); `pthread_create` orders its last use before the release. Values read before the swap
/// and not yet sent (`StoredValue`) hold the old region too: the mapping is dropped only once the
/// thread holds the last reference (it waits up to `pinWaitMs` for them; after that it lets go
/// and the last value's release unmaps it at once).
final class Retirement: @unchecked Sendable {
    private var region: MappedRegion?
    private let table: KeyHashTable
    private var ordered: OrderedKeyIndex?
    /// Readers (`ConcurrentReader`) that may still hold the table or the region.
    private let grace: GracePeriod

    /// Bytes dropped from the mapping, or cut from the file, per step.
    static let stepBytes = 4 << 20
    /// Pause between two steps of cutting the file (lets the journal commit in between).
    static let truncatePauseMicros: UInt32 = 2000
    static let pinWaitMs = 60_000

    private init(region: consuming MappedRegion, table: KeyHashTable, ordered: consuming OrderedKeyIndex, grace: GracePeriod) {
        self.grace = grace
        self.region = region
        self.table = table
        self.ordered = ordered
    }

    /// Releases `region` and `ordered` and deallocates `table` on a detached thread (on this one
    /// if no thread can be started). The region's file, if any, is unlinked (renamed over): it is
    /// cut to nothing gradually before it is closed.
    /// Nothing is touched before `grace` is over (the readers that were inside a read section
    /// when the owner unpublished them have left it).
    static func release(_ region: consuming MappedRegion, _ table: KeyHashTable, _ ordered: consuming OrderedKeyIndex, after grace: GracePeriod) {
        let retired = Retirement(region: region, table: table, ordered: ordered, grace: grace)
        if ServerThread.start(name: "laminar-retire", nice: 19, detached: true, retired.free) == nil { retired.free() }
    }

    private func free() {
        grace.wait()
        dropPages(of: UnsafeMutableRawPointer(table.slots), bytes: table.capacity * MemoryLayout<KeyHashTable.Slot>.stride)
        table.deallocate()
        ordered = nil
        if waitForLastReference(), let region = region {
            dropPages(of: region.base, bytes: region.capacity)
            if region.fd >= 0 { Self.cutGradually(region.fd) }
        }
        region = nil
    }

    /// Whether this thread holds the only reference to the region (values pinning it gone),
    /// waiting for that up to `pinWaitMs`.
    private func waitForLastReference() -> Bool {
        for _ in 0..<Self.pinWaitMs {
            if isKnownUniquelyReferenced(&region) {
                // Pairs with the releasing decrement of the last other reference: its reads of
                // the mapping happen before what follows.
                atomicMemoryFence(ordering: .acquiring)
                return true
            }
            usleep(1000)
        }
        return false
    }

    /// Drops the pages of `[start, start + bytes)` (page-aligned inside) a step at a time.
    private func dropPages(of start: UnsafeMutableRawPointer, bytes: Int) {
        let page = MappedRegion.pageBytes
        var at = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + bytes) / page * page
        while at < end {
            let n = min(Self.stepBytes, end - at)
            _ = madvise(UnsafeMutableRawPointer(bitPattern: at), n, MADV_DONTNEED)
            at += n
        }
    }

    /// Cuts the (unlinked) file `fd` from its end, `stepBytes` per step. Errors are ignored: the
    /// close frees whatever is left.
    static func cutGradually(_ fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        var size = Int(st.st_size)
        while size > 0 {
            size = max(0, size - stepBytes)
            if ftruncate(fd, off_t(size)) != 0 { return }
            usleep(truncatePauseMicros)
        }
    }
}
