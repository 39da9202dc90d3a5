/// A value read from the store that another thread may read later without a copy: the bytes stay
/// where the store wrote them, in the data file's mapping, and the value holds that mapping
/// (`MappedRegion`) alive. A compaction that replaces the data file hands the old mapping to
/// `Retirement`, which lets go of it; the mapping is unmapped when the last value pinning it is
/// gone (on whichever thread drops it), so the bytes stay readable until sent.
///
/// Why reading from another thread is sound: a record is immutable once appended (the log never
/// writes over a record; space comes back only through a compaction, into a new file), and the
/// value reaches the other thread through a ring whose release/acquire orders the write before
/// the read. A value that is not in a mapping (a copy, e.g. of an entry with an expiry) is an array.
///
/// One reference count operation on the mapping per value made and per value dropped: no
/// allocation.
public struct StoredValue: @unchecked Sendable {
    private enum Storage {
        case mapped(MappedRegion, UnsafeRawPointer)
        case copied([UInt8])
    }

    private let storage: Storage
    public let count: Int

    init(region: MappedRegion, bytes: UnsafeRawBufferPointer) {
        precondition(bytes.isEmpty || (bytes.baseAddress! >= UnsafeRawPointer(region.base)
            && bytes.baseAddress! + bytes.count <= UnsafeRawPointer(region.base) + region.capacity), "a value outside its region")
        storage = .mapped(region, bytes.baseAddress ?? UnsafeRawPointer(region.base))
        count = bytes.count
    }

    public init(_ bytes: [UInt8]) {
        storage = .copied(bytes)
        count = bytes.count
    }

    /// The bytes, valid inside `body` (and as long as this value lives).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .mapped(_, let start): try body(UnsafeRawBufferPointer(start: start, count: count))
        case .copied(let array): try array.withUnsafeBytes(body)
        }
    }

    /// The bytes copied into an array.
    public var bytes: [UInt8] {
        switch storage {
        case .mapped(_, let start): Array(UnsafeRawBufferPointer(start: start, count: count))
        case .copied(let array): array
        }
    }

    /// What keeps the bytes alive, for a holder that keeps a raw pointer to them.
    public var owner: AnyObject? {
        switch storage {
        case .mapped(let region, _): region
        case .copied: nil
        }
    }
}
