#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The ordered index of live keys, for prefix and range scans: a two-level B-tree, i.e. a sorted
/// list of sorted leaves of at most `leafMax` entries.
///
/// An entry is a record offset plus the key's first 8 bytes as a big-endian integer, so most
/// comparisons never touch the region. The offset may name an older record of the same key (a put
/// of an existing key does not touch this index; the key bytes there are the same); callers
/// resolve the current record through the hash table. Compaction rebuilds the index.
///
/// Invariants: no leaf is empty; keys strictly increase across all leaves; `firstEntries[i]` is
/// `leaves[i][0]`; `count` is the number of entries.
struct OrderedKeyIndex {
    struct Entry {
        var prefix: UInt64
        var offset: UInt64
    }

    static let leafMax = 512

    private(set) var leaves: [[Entry]] = []
    private var firstEntries: [Entry] = []
    private(set) var count = 0

    /// A position: leaf and index within it. `leaf == leaves.count` is the end.
    struct Position: Equatable {
        var leaf: Int
        var index: Int
    }

    @inline(__always)
    static func prefix(of key: UnsafeRawBufferPointer) -> UInt64 {
        var v: UInt64 = 0
        let n = min(8, key.count)
        for i in 0..<n { v |= UInt64(key[i]) << (56 - 8 * i) }
        return v
    }

    /// Byte-wise three-way comparison of the entry's key with `key` (negative: entry is smaller).
    @inline(__always)
    static func compare(_ entry: Entry, _ key: UnsafeRawBufferPointer, keyPrefix: UInt64, base: UnsafeRawPointer) -> Int {
        if entry.prefix != keyPrefix { return entry.prefix < keyPrefix ? -1 : 1 }
        let stored = RecordFormat.key(base + Int(entry.offset))
        return compareBytes(stored, key)
    }

    @inline(__always)
    static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    /// The first position whose key is `>= key` (or `> key` with `strictlyAfter`).
    func lowerBound(_ key: UnsafeRawBufferPointer, strictlyAfter: Bool = false, base: UnsafeRawPointer) -> Position {
        let keyPrefix = OrderedKeyIndex.prefix(of: key)
        // `goesBefore(e)`: entry e precedes the position searched for.
        @inline(__always) func goesBefore(_ e: Entry) -> Bool {
            let c = OrderedKeyIndex.compare(e, key, keyPrefix: keyPrefix, base: base)
            return strictlyAfter ? c <= 0 : c < 0
        }
        // Last leaf whose first entry goes before the key.
        var lo = 0
        var hi = firstEntries.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if goesBefore(firstEntries[mid]) { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { return Position(leaf: 0, index: 0) }
        let leafIndex = lo - 1
        let leaf = leaves[leafIndex]
        var l = 1
        var h = leaf.count
        while l < h {
            let mid = (l + h) >> 1
            if goesBefore(leaf[mid]) { l = mid + 1 } else { h = mid }
        }
        if l == leaf.count { return Position(leaf: leafIndex + 1, index: 0) }
        return Position(leaf: leafIndex, index: l)
    }

    func entry(at position: Position) -> Entry? {
        guard position.leaf < leaves.count else { return nil }
        return leaves[position.leaf][position.index]
    }

    func position(after position: Position) -> Position {
        if position.index + 1 < leaves[position.leaf].count {
            return Position(leaf: position.leaf, index: position.index + 1)
        }
        return Position(leaf: position.leaf + 1, index: 0)
    }

    /// Inserts a key known to be absent, whose record is at `offset`.
    mutating func insert(_ key: UnsafeRawBufferPointer, offset: Int, base: UnsafeRawPointer) {
        let entry = Entry(prefix: OrderedKeyIndex.prefix(of: key), offset: UInt64(offset))
        count += 1
        if leaves.isEmpty {
            leaves.append([entry])
            firstEntries.append(entry)
            return
        }
        var position = lowerBound(key, base: base)
        if position.leaf == leaves.count {
            // After every key: append to the last leaf.
            position = Position(leaf: leaves.count - 1, index: leaves[leaves.count - 1].count)
        }
        leaves[position.leaf].insert(entry, at: position.index)
        if position.index == 0 { firstEntries[position.leaf] = entry }
        if leaves[position.leaf].count > OrderedKeyIndex.leafMax {
            let leaf = leaves[position.leaf]
            let half = leaf.count / 2
            leaves[position.leaf] = Array(leaf[..<half])
            leaves.insert(Array(leaf[half...]), at: position.leaf + 1)
            firstEntries.insert(leaf[half], at: position.leaf + 1)
        }
    }

    /// Removes `key`, which must be present.
    mutating func remove(_ key: UnsafeRawBufferPointer, base: UnsafeRawPointer) {
        let position = lowerBound(key, base: base)
        precondition(position.leaf < leaves.count, "ordered index: removing an absent key")
        count -= 1
        leaves[position.leaf].remove(at: position.index)
        if leaves[position.leaf].isEmpty {
            leaves.remove(at: position.leaf)
            firstEntries.remove(at: position.leaf)
        } else if position.index == 0 {
            firstEntries[position.leaf] = leaves[position.leaf][0]
        }
    }

    /// Replaces the content with `entries`, which must be in strictly increasing key order.
    mutating func load(sorted entries: [Entry]) {
        leaves.removeAll(keepingCapacity: true)
        firstEntries.removeAll(keepingCapacity: true)
        count = entries.count
        let fill = OrderedKeyIndex.leafMax * 3 / 4
        var start = 0
        while start < entries.count {
            let end = min(start + fill, entries.count)
            leaves.append(Array(entries[start..<end]))
            firstEntries.append(entries[start])
            start = end
        }
    }

    /// Every entry in key order.
    func forEach(_ body: (Entry) throws -> Void) rethrows {
        for leaf in leaves { for entry in leaf { try body(entry) } }
    }

    func checkInvariants(base: UnsafeRawPointer) {
        precondition(leaves.count == firstEntries.count, "ordered index: leaf directory out of step")
        var n = 0
        var previous: Entry?
        for (i, leaf) in leaves.enumerated() {
            precondition(!leaf.isEmpty && leaf.count <= OrderedKeyIndex.leafMax + 1, "ordered index: leaf size \(leaf.count)")
            precondition(leaf[0].offset == firstEntries[i].offset, "ordered index: stale first entry")
            for entry in leaf {
                let key = RecordFormat.key(base + Int(entry.offset))
                precondition(entry.prefix == OrderedKeyIndex.prefix(of: key), "ordered index: wrong prefix")
                if let previous {
                    let c = OrderedKeyIndex.compareBytes(RecordFormat.key(base + Int(previous.offset)), key)
                    precondition(c < 0, "ordered index: keys out of order")
                }
                previous = entry
                n += 1
            }
        }
        precondition(n == count, "ordered index: count \(count) but \(n) entries")
    }
}
