/// One page of scan results in two allocations, however many entries: every key and value back
/// to back in `bytes`, and one `Item` per entry giving their lengths, version and expiry. It is
/// what a scan hands across threads (the reactor to an HTTP loop); readers walk it in place
/// (`forEach`) or take `Entry` values that are slices of `bytes` (no copy).
///
/// Invariant: the items' keys and values tile `bytes` in order (key, value, key, value, …).
public struct ScanPage: Sendable, RandomAccessCollection {
    /// Where an entry lies in `bytes`.
    public struct Item: Sendable {
        public var start: Int
        public var keyBytes: Int
        public var valueBytes: Int
        public var version: Revision
        /// 0: none.
        public var expiresAtMs: Int64
    }

    /// One entry: slices of the page's bytes.
    public struct Entry: Sendable {
        public var key: ArraySlice<UInt8>
        public var value: ArraySlice<UInt8>
        public var version: Revision
        public var expiresAtMs: Int64?
    }

    public private(set) var bytes: [UInt8] = []
    public private(set) var items: [Item] = []

    public init() {}

    /// An empty page for a scan of at most `limit` entries: it reserves room for `limit` (at most
    /// 1024) entries and 16 KiB of keys and values, so that filling it reallocates rarely.
    public init(limit: Int) {
        items.reserveCapacity(Swift.min(Swift.max(limit, 0), 1024))
        bytes.reserveCapacity(16 << 10)
    }

    /// Appends an entry, copying its key and value.
    @inline(__always)
    public mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, version: Revision, expiresAtMs: Int64) {
        items.append(Item(start: bytes.count, keyBytes: key.count, valueBytes: value.count, version: version, expiresAtMs: expiresAtMs))
        bytes.append(contentsOf: key)
        bytes.append(contentsOf: value)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { items.count }

    public subscript(i: Int) -> Entry {
        let item = items[i]
        let keyEnd = item.start + item.keyBytes
        return Entry(
            key: bytes[item.start..<keyEnd], value: bytes[keyEnd..<(keyEnd + item.valueBytes)],
            version: item.version, expiresAtMs: item.expiresAtMs == 0 ? nil : item.expiresAtMs)
    }

    /// Calls `body` with each entry's key and value in place, and its version, in order.
    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Revision) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { all in
            for item in items {
                let key = UnsafeRawBufferPointer(rebasing: all[item.start..<(item.start + item.keyBytes)])
                let valueStart = item.start + item.keyBytes
                try body(key, UnsafeRawBufferPointer(rebasing: all[valueStart..<(valueStart + item.valueBytes)]), item.version)
            }
        }
    }

    /// The last entry's key (a next page starts after it), or nil for an empty page.
    public var lastKey: [UInt8]? {
        guard let item = items.last else { return nil }
        return Array(bytes[item.start..<(item.start + item.keyBytes)])
    }

    /// The entries copied out, each with arrays of its own.
    public var storeEntries: [StoreEntry] {
        map { StoreEntry(key: Array($0.key), value: Array($0.value), version: $0.version, expiresAtMs: $0.expiresAtMs) }
    }
}
