import Glibc

/// The current row of each window among a stream's retained results, in memory: event key →
/// its windows (start and the `seq` of the window's current row) ascending by start, and the
/// keys in byte order for ordered reads (`GET …/results`). The rows themselves are in the store
/// (`ResultSlice`); this is rebuilt from them when the reactor starts.
///
/// Cost per emitted row: one hash lookup and an append (a key's windows mostly come in start
/// order); only a key new to the index also goes into the ordered key set (`SortedKeys`).
///
/// Invariants: no key maps to an empty list; each list strictly ascends by start; `keys` holds
/// exactly the keys of `windows`; `rowCount` is the number of windows over all keys.
struct ResultIndex {
    struct Window {
        var startMs: Int64
        var seq: UInt64
    }

    private(set) var windows: [[UInt8]: [Window]] = [:]
    private(set) var keys = SortedKeys()
    private(set) var rowCount = 0

    /// Makes `seq` the current row of window (`key`, `startMs`); returns the row it replaced.
    @discardableResult
    mutating func set(key: [UInt8], startMs: Int64, seq: UInt64) -> UInt64? {
        guard let i = windows.index(forKey: key) else {
            windows[key] = [Window(startMs: startMs, seq: seq)]
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
        guard let i = windows.index(forKey: key) else { return nil }
        guard let p = windows.values[i].firstIndex(where: { $0.startMs == startMs }) else { return nil }
        let removed = windows.values[i][p].seq
        if let seq, removed != seq { return nil }
        defer { rowCount -= 1 }
        if windows.values[i].count == 1 {
            windows.remove(at: i)
            keys.remove(key)
        } else {
            windows.values[i].remove(at: p)
        }
        return removed
    }

    /// The `seq` of window (`key`, `startMs`)'s current row.
    func seq(key: [UInt8], startMs: Int64) -> UInt64? {
        windows[key]?.first { $0.startMs == startMs }?.seq
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
            for w in windows[k]! {
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
/// the leaf directory, never the whole set.
///
/// Invariants: no leaf is empty; keys strictly increase across leaves; `firstKeys[i]` is
/// `leaves[i][0]`.
struct SortedKeys {
    static let leafMax = 256
    private var leaves: [[[UInt8]]] = []
    private var firstKeys: [[UInt8]] = []
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
    func lowerBound(_ key: [UInt8]) -> Position {
        var lo = 0, hi = firstKeys.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if Self.compare(firstKeys[mid], key) < 0 { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { return Position(leaf: 0, index: 0) }
        let leaf = lo - 1
        var l = 1, h = leaves[leaf].count
        while l < h {
            let mid = (l + h) >> 1
            if Self.compare(leaves[leaf][mid], key) < 0 { l = mid + 1 } else { h = mid }
        }
        return l == leaves[leaf].count ? Position(leaf: leaf + 1, index: 0) : Position(leaf: leaf, index: l)
    }

    func key(at p: Position) -> [UInt8]? { p.leaf < leaves.count ? leaves[p.leaf][p.index] : nil }

    func position(after p: Position) -> Position {
        p.index + 1 < leaves[p.leaf].count ? Position(leaf: p.leaf, index: p.index + 1) : Position(leaf: p.leaf + 1, index: 0)
    }

    /// Inserts a key known to be absent.
    mutating func insert(_ key: [UInt8]) {
        count += 1
        if leaves.isEmpty {
            leaves.append([key])
            firstKeys.append(key)
            return
        }
        var p = lowerBound(key)
        if p.leaf == leaves.count { p = Position(leaf: leaves.count - 1, index: leaves[leaves.count - 1].count) }
        leaves[p.leaf].insert(key, at: p.index)
        if p.index == 0 { firstKeys[p.leaf] = key }
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
        let p = lowerBound(key)
        precondition(p.leaf < leaves.count && leaves[p.leaf][p.index] == key, "SortedKeys: removing an absent key")
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
        var previous: [UInt8]?
        for (i, leaf) in leaves.enumerated() {
            precondition(!leaf.isEmpty && leaf.count <= Self.leafMax && leaf[0] == firstKeys[i], "SortedKeys: bad leaf")
            for k in leaf {
                if let previous { precondition(Self.compare(previous, k) < 0, "SortedKeys: out of order") }
                previous = k
                n += 1
            }
        }
        precondition(n == count, "SortedKeys: count")
    }
}
