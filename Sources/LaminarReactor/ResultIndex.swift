import Glibc

/// The current row of each window among a stream's retained results, in memory: event key →
/// its windows (start and the `seq` of the window's current row) ascending by start, and the
/// keys in byte order for ordered reads (`GET …/results`). The rows themselves are in the store
/// (`ResultSlice`); this is rebuilt from them when the reactor starts.
///
/// Cost per emitted row: one hash lookup and an append (a key's windows mostly come in start
/// order); only a key new to the index also goes into the ordered key set (`SortedKeys`). A key
/// whose last window leaves stays, with no windows, until `purge` finds it still empty once more
/// than `max(emptiedKeep, rowCount)` keys were emptied after it: a key that comes back within a
/// window or two (the common case: one row per key and window) costs no removal and reinsertion,
/// and reads skip at most that many empty keys.
///
/// Invariants: each list strictly ascends by start; `keys` holds exactly the keys of `windows`;
/// every key with an empty list is in `emptied` from `emptiedHead` on; `rowCount` is the number
/// of windows over all keys.
struct ResultIndex {
    struct Window {
        var startMs: Int64
        var seq: UInt64
    }

    /// An event key hashed as one run of bytes (`[UInt8]` itself feeds the hasher a byte at a time).
    struct Key: Hashable {
        let bytes: [UInt8]
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    private(set) var windows: [Key: [Window]] = [:]
    private(set) var keys = SortedKeys()
    private(set) var rowCount = 0
    private var emptied: [[UInt8]] = []
    private var emptiedHead = 0
    static let emptiedKeep = 65_536

    /// Makes `seq` the current row of window (`key`, `startMs`); returns the row it replaced.
    @discardableResult
    mutating func set(key: [UInt8], startMs: Int64, seq: UInt64) -> UInt64? {
        guard let i = windows.index(forKey: Key(bytes: key)) else {
            windows[Key(bytes: key)] = [Window(startMs: startMs, seq: seq)]
            keys.insert(key)
            rowCount += 1
            return nil
        }
        var p = windows.values[i].count
        while p > 0 && windows.values[i][p - 1].startMs > startMs { p -= 1 }
        if p > 0 && windows.values[i][p - 1].startMs == startMs {
            defer { windows.values[i][p - 1].seq = seq }
            return windows.values[i][p - 1].seq
        }
        windows.values[i].insert(Window(startMs: startMs, seq: seq), at: p)
        rowCount += 1
        return nil
    }

    /// Removes window (`key`, `startMs`) if its current row is `seq` (any row when `seq` is nil);
    /// returns the row removed.
    @discardableResult
    mutating func remove(key: [UInt8], startMs: Int64, ifSeq seq: UInt64?) -> UInt64? {
        guard let i = windows.index(forKey: Key(bytes: key)) else { return nil }
        guard let p = windows.values[i].firstIndex(where: { $0.startMs == startMs }) else { return nil }
        let removed = windows.values[i][p].seq
        if let seq, removed != seq { return nil }
        rowCount -= 1
        windows.values[i].remove(at: p)
        if windows.values[i].isEmpty { emptied.append(key) }
        return removed
    }

    /// Removes up to `max` keys emptied long enough ago that are still empty (see the type).
    mutating func purge(max: Int) {
        var n = 0
        while n < max, emptied.count - emptiedHead > Swift.max(Self.emptiedKeep, rowCount) {
            let key = emptied[emptiedHead]
            emptiedHead += 1
            n += 1
            if let i = windows.index(forKey: Key(bytes: key)), windows.values[i].isEmpty {
                windows.remove(at: i)
                keys.remove(key)
            }
        }
        if emptiedHead > 4096 && emptiedHead * 2 > emptied.count {
            emptied.removeFirst(emptiedHead)
            emptiedHead = 0
        }
    }

    /// The `seq` of window (`key`, `startMs`)'s current row.
    func seq(key: [UInt8], startMs: Int64) -> UInt64? {
        windows[Key(bytes: key)]?.first { $0.startMs == startMs }?.seq
    }

    /// Calls `body` with up to `limit` windows in order (key bytes, then start): only `key` when
    /// `exact`, else the keys beginning with `key`; strictly after `after` (a key and start).
    /// Returns how many it visited.
    func visit(key: [UInt8], exact: Bool, after: (key: [UInt8], startMs: Int64)?, limit: Int,
               _ body: ([UInt8], Window) -> Void) -> Int {
        guard limit > 0 else { return 0 }
        var from = key
        if let after, SortedKeys.compare(after.key, key) > 0 { from = after.key }
        var n = 0
        var position = keys.lowerBound(from)
        while let k = keys.key(at: position) {
            if exact ? k != key : !k.starts(with: key) { break }
            for w in windows[Key(bytes: k)]! {
                if let after, k == after.key, w.startMs <= after.startMs { continue }
                body(k, w)
                n += 1
                if n == limit { return n }
            }
            position = keys.position(after: position)
        }
        return n
    }
}

/// A set of byte strings in byte order (a key before every longer key it begins): a sorted list
/// of sorted leaves of at most `leafMax` keys, so an insert or removal moves at most a leaf and
/// the leaf directory, never the whole set. Each entry carries its key's first 16 bytes as two
/// big-endian integers, so that a search compares integers in contiguous memory and reads a
/// key's bytes (another allocation) only when those are equal.
///
/// Invariants: no leaf is empty; keys strictly increase across leaves; `firstKeys[i]` is
/// `leaves[i][0]`.
struct SortedKeys {
    struct Entry {
        var hi: UInt64
        var lo: UInt64
        var key: [UInt8]

        init(_ key: [UInt8]) {
            self.key = key
            var h: UInt64 = 0, l: UInt64 = 0
            let n = Swift.min(16, key.count)
            for i in 0..<n {
                if i < 8 { h |= UInt64(key[i]) << (56 - 8 * i) } else { l |= UInt64(key[i]) << (56 - 8 * (i - 8)) }
            }
            hi = h
            lo = l
        }

        /// Three-way comparison with `other` (negative: self is smaller).
        @inline(__always)
        func compare(_ other: Entry) -> Int {
            if hi != other.hi { return hi < other.hi ? -1 : 1 }
            if lo != other.lo { return lo < other.lo ? -1 : 1 }
            return SortedKeys.compare(key, other.key)
        }
    }

    static let leafMax = 256
    private var leaves: [[Entry]] = []
    private var firstKeys: [Entry] = []
    private(set) var count = 0

    struct Position {
        var leaf: Int
        var index: Int
    }

    static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        let n = Swift.min(a.count, b.count)
        if n > 0 {
            let c = a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, n) } }
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    /// The first position whose key is `>= key`.
    func lowerBound(_ key: [UInt8]) -> Position { lowerBound(Entry(key)) }

    private func lowerBound(_ e: Entry) -> Position {
        var lo = 0, hi = firstKeys.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if firstKeys[mid].compare(e) < 0 { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { return Position(leaf: 0, index: 0) }
        let leaf = lo - 1
        let found: Int = leaves[leaf].withUnsafeBufferPointer { b in
            var l = 1, h = b.count
            while l < h {
                let mid = (l + h) >> 1
                if b[mid].compare(e) < 0 { l = mid + 1 } else { h = mid }
            }
            return l
        }
        return found == leaves[leaf].count ? Position(leaf: leaf + 1, index: 0) : Position(leaf: leaf, index: found)
    }

    func key(at p: Position) -> [UInt8]? { p.leaf < leaves.count ? leaves[p.leaf][p.index].key : nil }

    func position(after p: Position) -> Position {
        p.index + 1 < leaves[p.leaf].count ? Position(leaf: p.leaf, index: p.index + 1) : Position(leaf: p.leaf + 1, index: 0)
    }

    /// Inserts a key known to be absent.
    mutating func insert(_ key: [UInt8]) {
        let e = Entry(key)
        count += 1
        if leaves.isEmpty {
            leaves.append([e])
            firstKeys.append(e)
            return
        }
        var p = lowerBound(e)
        if p.leaf == leaves.count { p = Position(leaf: leaves.count - 1, index: leaves[leaves.count - 1].count) }
        leaves[p.leaf].insert(e, at: p.index)
        if p.index == 0 { firstKeys[p.leaf] = e }
        if leaves[p.leaf].count > Self.leafMax {
            let half = leaves[p.leaf].count / 2
            let upper = Array(leaves[p.leaf][half...])
            leaves[p.leaf].removeSubrange(half...)
            leaves.insert(upper, at: p.leaf + 1)
            firstKeys.insert(upper[0], at: p.leaf + 1)
        }
    }

    /// Removes a key known to be present.
    mutating func remove(_ key: [UInt8]) {
        let p = lowerBound(Entry(key))
        precondition(p.leaf < leaves.count && leaves[p.leaf][p.index].key == key, "SortedKeys: removing an absent key")
        count -= 1
        leaves[p.leaf].remove(at: p.index)
        if leaves[p.leaf].isEmpty {
            leaves.remove(at: p.leaf)
            firstKeys.remove(at: p.leaf)
        } else if p.index == 0 {
            firstKeys[p.leaf] = leaves[p.leaf][0]
        }
    }

    func checkInvariants() {
        precondition(leaves.count == firstKeys.count, "SortedKeys: directory out of step")
        var n = 0
        var previous: Entry?
        for (i, leaf) in leaves.enumerated() {
            precondition(!leaf.isEmpty && leaf.count <= Self.leafMax && leaf[0].key == firstKeys[i].key, "SortedKeys: bad leaf")
            for e in leaf {
                precondition(Entry(e.key).hi == e.hi && Entry(e.key).lo == e.lo, "SortedKeys: stale prefix")
                if let previous { precondition(previous.compare(e) < 0 && Self.compare(previous.key, e.key) < 0, "SortedKeys: out of order") }
                previous = e
                n += 1
            }
        }
        precondition(n == count, "SortedKeys: count")
    }
}
