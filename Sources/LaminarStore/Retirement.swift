#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Frees what a compaction replaced — the old data file's mapping and descriptor, the old hash
/// table and ordered index — on a short-lived thread of its own, so the swap stays O(1) on the writer: closing the
/// last descriptor of an unlinked file drops its cached pages and frees its blocks, and unmapping
/// a large mapping takes time in proportion to what was mapped.
///
/// The owner hands them over and never touches them again (the indexes point into the new
/// region); `pthread_create` orders its last use before the release. Values read before the swap
/// and not yet sent (`StoredValue`) hold the old region too: it is unmapped when the last of
/// them lets go.
final class Retirement: @unchecked Sendable {
    private var region: MappedRegion?
    private let table: KeyHashTable
    private var ordered: OrderedKeyIndex?

    private init(region: consuming MappedRegion, table: KeyHashTable, ordered: consuming OrderedKeyIndex) {
        self.region = region
        self.table = table
        self.ordered = ordered
    }

    /// Releases `region` and `ordered` and deallocates `table` on a detached thread (on this one
    /// if no thread can be started).
    static func release(_ region: consuming MappedRegion, _ table: KeyHashTable, _ ordered: consuming OrderedKeyIndex) {
        let retired = Unmanaged.passRetained(Retirement(region: region, table: table, ordered: ordered))
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let rc = pthread_create(&thread, &attributes, { arg in
            Unmanaged<Retirement>.fromOpaque(arg!).takeRetainedValue().free()
            return nil
        }, retired.toOpaque())
        if rc != 0 { retired.takeRetainedValue().free() }
    }

    private func free() {
        region = nil
        ordered = nil
        table.deallocate()
    }
}
