/// A value read from the store that another thread may read later without a copy: the bytes stay
/// where the store wrote them, in the data file's mapping, and the value holds that mapping
/// (`MappedRegion`) alive. A compaction that replaces the data file hands the old mapping to
/// `Retirement`, which lets go of it; the mapping is unmapped when the last value pinning it is
/// gone (on whichever thread drops it), so the bytes stay readable until sent.
///
/// Why reading from another thread is sound: a record is immutable once appended (the log never
/// writes over a record; space comes back only through a compaction, into a new file), and the
/// value reaches the other thread through a ring whose release/acquire orders the write before
/// the read. A value that is not in a mapping (a copy, e.g. of an entry with an expiry) is held
/// in memory of its own (`CopiedBytes`), pinned the same way.
///
/// One reference count operation per value made, copied and dropped (no allocation for a mapped
/// value): a copy is one `swift_retain` of `owner` (it was an enum of a mapping or an array,
/// whose outlined copy switched over both: ~80 instructions per copy, several copies per GET on
/// its way to the socket).
public struct StoredValue: @unchecked Sendable {
    /// What keeps `start..<start+count` alive: the `MappedRegion` the bytes lie in, or the
    /// `CopiedBytes` holding a copy.
    public let owner: AnyObject
    @usableFromInline let start: UnsafeRawPointer
    public let count: Int

    @inline(__always)
    init(region: MappedRegion, bytes: UnsafeRawBufferPointer) {
        precondition(bytes.isEmpty || (bytes.baseAddress! >= UnsafeRawPointer(region.base)
            && bytes.baseAddress! + bytes.count <= UnsafeRawPointer(region.base) + region.capacity), "a value outside its region")
        owner = region
        start = bytes.baseAddress ?? UnsafeRawPointer(region.base)
        count = bytes.count
    }

    /// A value in `region` read on another thread than the store's writer
    /// (`ConcurrentReader`): no bounds check against `region.capacity`, which the writer may be
    /// changing (the record was found through the region's own table).
    @inline(__always)
    init(pinning region: MappedRegion, bytes: UnsafeRawBufferPointer) {
        owner = region
        start = bytes.baseAddress ?? UnsafeRawPointer(region.base)
        count = bytes.count
    }

    public init(_ bytes: [UInt8]) {
        let copy = CopiedBytes(bytes)
        owner = copy
        start = UnsafeRawPointer(copy.start)
        count = bytes.count
    }

    /// The bytes, valid inside `body` (and as long as this value lives).
    /// `_fixLifetime`, not `withExtendedLifetime`: the latter stayed an unspecialised generic call
    /// in the caller's module (~26 instructions per use, callgrind).
    @inlinable @inline(__always)
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        defer { _fixLifetime(owner) }
        return try body(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The bytes copied into an array.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// A value's bytes copied out of the store (`StoredValue.init(_:)`), in memory of their own.
final class CopiedBytes {
    let start: UnsafeMutableRawPointer

    init(_ bytes: [UInt8]) {
        start = .allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { start.copyMemory(from: base, byteCount: $0.count) } }
    }

    deinit { start.deallocate() }
}
