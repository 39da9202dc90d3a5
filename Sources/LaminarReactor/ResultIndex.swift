import CLinux
import Glibc
import LaminarStore

/// The current row of each window among a stream's retained results, in memory: event key →
/// its windows (start and the `seq` of the window's current row) ascending by start, and the
/// keys in byte order for ordered reads (`GET …/results`). The rows themselves are in the store
/// (`ResultSlice`); this is rebuilt from them when the reactor starts.
///
/// Keys get dense ids through a flat open-addressing table (a slot holds the top 32 bits of the
/// key's seeded hash and its id; linear probing, removal by backward shift): no per-lookup
/// allocation, and lookups take the key's bytes in place (`UnsafeRawBufferPointer`), so the
/// reactor can pass a row's key straight from a slice or the operator's key table. The seed is
/// random per index: clients choose the keys. Everything a lookup reads of a key — its hash,
/// length, first 16 bytes, its windows — is one record (`Entry`), so a key of up to 16 bytes and
/// its first two windows are found with two cache misses (slot, record). Rows of a closed
/// window straight from the operator (`set(key:group:…)`) skip the hash and the slot: the index
/// remembers the id of each operator group's key (`idOfGroup`, checked against the key), and
/// the caller, knowing the next groups, `prefetch`es that id and then its record.
///
/// Cost per emitted row: that lookup and an append (a key's windows mostly come in start
/// order); only a key new to the index also goes into the ordered key set (`SortedKeys`). A key
/// whose last window leaves stays, with no windows, until `purge` finds it still empty, and
/// empty ever since, once more than `max(emptiedKeep, rowCount)` keys were emptied after it: a
/// key that comes back within a window or two (the common case: one row per key and window)
/// costs no removal and reinsertion, even when it empties again and again (each emptying is
/// listed with a ticket, and only the key's latest listing may drop it: older ones dropped keys
/// that had come back, and with 1M keys in 1 s windows removing and reinserting them in the
/// ordered set took ~5 % of the reactor),
/// and reads skip at most that many empty keys.
///
/// Rows that leave (retention) leave the index lazily: a window whose current row is older than
/// `retainedFrom` (the stream's oldest retained row) is stale, and every read skips it as if it
/// were gone; `set` drops the leading stale windows of the key it touches, and `sweep` walks the
/// keys a bounded number at a time dropping the rest (from the front of each list: a stale
/// window behind a live one goes after it). So expiry costs no lookup per row (it was one
/// hash lookup, two cache misses, and a list removal per row: about as much as emitting it).
/// A window with `seq` 0 (a row stored before result numbering) is never stale.
///
/// Invariants: each list strictly ascends by start; `keys` holds exactly the live keys, each
/// with its id; every live key with an empty list is in `emptied` from `emptiedHead` on, at the
/// position its `emptiedTicket` names;
/// `rowCount` is the number of windows over all keys, stale ones included; the table holds each
/// live id once.
struct ResultIndex {
    struct Window {
        var startMs: Int64
        var seq: UInt64
    }

    /// A key's windows, ascending by start: the first two inline in the key's record, so that
    /// setting or removing a row of a key with one or two retained windows (the usual: a key has
    /// a row in the window closing now and maybe in the one before) touches no other memory; the
    /// rest in `more`. Invariant: `more` is empty unless both inline windows are used.
    struct Windows: RandomAccessCollection {
        private var w0 = Window(startMs: 0, seq: 0)
        private var w1 = Window(startMs: 0, seq: 0)
        private var inline = 0
        private var more: [Window] = []

        init(_ first: Window) { append(first) }

        /// The first window's `seq`, 0 when there is none (read in place, no copy of the list).
        var firstSeq: UInt64 { inline == 0 ? 0 : w0.seq }

        var startIndex: Int { 0 }
        var endIndex: Int { inline + more.count }
        var count: Int { inline + more.count }
        var isEmpty: Bool { inline == 0 }

        subscript(i: Int) -> Window {
            get {
                precondition(i >= 0 && i < count, "ResultIndex.Windows: index")
                return i == 0 ? w0 : i == 1 ? w1 : more[i - 2]
            }
            set {
                precondition(i >= 0 && i < count, "ResultIndex.Windows: index")
                if i == 0 { w0 = newValue } else if i == 1 { w1 = newValue } else { more[i - 2] = newValue }
            }
        }

        mutating func append(_ w: Window) {
            switch inline {
            case 0: w0 = w; inline = 1
            case 1: w1 = w; inline = 2
            default: more.append(w)
            }
        }

        mutating func insert(_ w: Window, at p: Int) {
            let n = count
            precondition(p >= 0 && p <= n, "ResultIndex.Windows: insert position")
            guard p < n else { append(w); return }
            let last = self[n - 1]
            var i = n - 1
            while i > p { self[i] = self[i - 1]; i -= 1 }
            self[p] = w
            append(last)
        }

        /// Drops the first windows while their row is older than `from` (`seq` 0 stays); returns
        /// how many. Only from the front, as retention goes (by `seq`, which mostly follows the
        /// start): a stale window behind a live one is skipped by reads and goes when those
        /// before it have (a look at every window per call made a key with thousands of them
        /// cost thousands per row).
        @inline(__always)
        mutating func removeStale(before from: UInt64) -> Int {
            var n = 0
            while !isEmpty, case let s = self[0].seq, s != 0 && s < from {
                remove(at: 0)
                n += 1
            }
            return n
        }

        @discardableResult
        mutating func remove(at p: Int) -> Window {
            let removed = self[p]
            for i in p..<(count - 1) { self[i] = self[i + 1] }
            if !more.isEmpty { more.removeLast() } else { inline -= 1 }
            return removed
        }
    }

    /// Per id: what a lookup reads first (the key's first 16 bytes, big-endian, zero-padded, and
    /// its length, -1 when the id is free), then its windows (72 bytes together:
    /// `prefetch(group:entry:)` loads them), then the key and its hash.
    struct Entry {
        var head0: UInt64
        var head1: UInt64
        var length: Int
        var windows: Windows
        var key: [UInt8]
        var hash: UInt64
        /// The ticket of the key's latest listing in `emptied` (-1: never listed).
        var emptiedTicket = -1

        @inline(__always)
        static func heads(_ key: UnsafeRawBufferPointer) -> (UInt64, UInt64) { SortedKeys.prefix16(key) }
    }

    /// `fingerprint << 32 | (id + 1)`; 0 = empty.
    private var slots: [UInt64] = Array(repeating: 0, count: 64)
    private var mask = 63
    let hasher = KeyHasher(seed: UInt64.random(in: 0...UInt64.max))
    private var entries: [Entry] = []
    private var freeIds: [UInt32] = []
    private(set) var keyCount = 0
    private(set) var keys = SortedKeys()
    private(set) var rowCount = 0
    /// Ids whose list became empty, oldest first (an id may be listed again after reuse:
    /// `purge` checks that it is still live and empty).
    private var emptied: [UInt32] = []
    private var emptiedHead = 0
    /// The ticket of `emptied[0]`: tickets count every listing ever made.
    private var emptiedBase = 0
    static let emptiedKeep = 65_536
    /// Windows whose current row is before this (and not 0) are stale: their row left.
    var retainedFrom: UInt64 = 0
    /// The next id `sweep` looks at.
    private var sweepAt = 0
    /// By the operator's group id (`set(key:group:…)`): the id here its key had when a row of it
    /// last came + 1, 0 unknown. Only a hint, checked against the key each time: a key dropped
    /// (its id then reused for another), or another operator whose groups are other keys (the
    /// stream defined again under the name, a restart), leaves it stale.
    private var idOfGroup: [UInt32] = []

    @inline(__always)
    func isLive(_ w: Window) -> Bool { w.seq == 0 || w.seq >= retainedFrom }

    // MARK: - Key table

    /// The id of `key` (hash `h`) and its table slot, or the empty slot where it would go.
    @inline(__always)
    private func find(_ key: UnsafeRawBufferPointer, hash h: UInt64) -> (slot: Int, id: Int?) {
        let fingerprint = h & 0xFFFF_FFFF_0000_0000
        let (h0, h1) = Entry.heads(key)
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { s in
            entries.withUnsafeBufferPointer { m in
                while true {
                    let e = s[i]
                    if e == 0 { return (i, nil) }
                    if e & 0xFFFF_FFFF_0000_0000 == fingerprint {
                        let id = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) &- 1
                        if m[id].length == key.count && m[id].head0 == h0 && m[id].head1 == h1
                            && (key.count <= 16 || m[id].key.withUnsafeBytes { memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0 }) {
                            return (i, id)
                        }
                    }
                    i = (i &+ 1) & mask
                }
            }
        }
    }

    @inline(__always)
    private func id(of key: UnsafeRawBufferPointer) -> Int? { find(key, hash: hasher.hash(key)).id }

    /// Adds `key` (absent; `slot` from `find`) with one window; returns its id.
    private mutating func add(_ key: [UInt8], hash h: UInt64, slot: Int, window: Window) -> Int {
        let (h0, h1) = key.withUnsafeBytes { Entry.heads($0) }
        let id: Int
        if let free = freeIds.popLast() {
            id = Int(free)
            entries[id].hash = h
            entries[id].head0 = h0
            entries[id].head1 = h1
            entries[id].length = key.count
            entries[id].key = key
            entries[id].emptiedTicket = -1
            entries[id].windows.append(window)
        } else {
            id = entries.count
            entries.append(Entry(head0: h0, head1: h1, length: key.count, windows: Windows(window), key: key, hash: h))
        }
        slots[slot] = h & 0xFFFF_FFFF_0000_0000 | UInt64(id + 1)
        keyCount += 1
        keys.insert(key, id: UInt32(id))
        if keyCount * 2 > slots.count { grow() }
        return id
    }

    /// Removes key `id` (live, no windows) from the table, the ordered set and the ids in use.
    private mutating func drop(_ id: Int) {
        let key = entries[id].key
        var i = key.withUnsafeBytes { find($0, hash: entries[id].hash).slot }
        // Backward-shift deletion: later entries of the probe run move up so lookups need no
        // tombstones.
        var j = i
        while true {
            j = (j + 1) & mask
            let e = slots[j]
            if e == 0 { break }
            let home = Int(truncatingIfNeeded: entries[Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1].hash) & mask
            // The entry at j may move to i unless its home lies cyclically in (i, j].
            let stays = i <= j ? (home > i && home <= j) : (home > i || home <= j)
            if !stays {
                slots[i] = e
                i = j
            }
        }
        slots[i] = 0
        keys.remove(key)
        entries[id].key = []
        entries[id].length = -1
        keyCount -= 1
        freeIds.append(UInt32(id))
    }

    private mutating func grow() {
        let c = slots.count * 2
        slots = Array(repeating: 0, count: c)
        mask = c - 1
        for id in entries.indices where entries[id].length >= 0 {
            let h = entries[id].hash
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = h & 0xFFFF_FFFF_0000_0000 | UInt64(id + 1)
        }
    }

    // MARK: - Windows

    /// Makes `seq` the current row of window (`key`, `startMs`); returns the row it replaced.
    @discardableResult
    mutating func set(key: [UInt8], startMs: Int64, seq: UInt64) -> UInt64? {
        key.withUnsafeBytes { set(key: $0, startMs: startMs, seq: seq, owned: key) }
    }

    /// `set` with the key's bytes in place; `owned`, if given, is the same key as an array (kept
    /// without a copy when the key is new).
    @discardableResult
    mutating func set(key: UnsafeRawBufferPointer, startMs: Int64, seq: UInt64, owned: [UInt8]? = nil) -> UInt64? {
        setLookingUp(key: key, startMs: startMs, seq: seq, owned: owned).replaced
    }

    /// `set` through the hash table (adding the key if new); also returns the key's id.
    private mutating func setLookingUp(key: UnsafeRawBufferPointer, startMs: Int64, seq: UInt64, owned: [UInt8]?) -> (id: Int, replaced: UInt64?) {
        let h = hasher.hash(key)
        let (slot, found) = find(key, hash: h)
        guard let i = found else {
            let id = add(owned ?? Array(key.bindMemory(to: UInt8.self)), hash: h, slot: slot, window: Window(startMs: startMs, seq: seq))
            rowCount += 1
            return (id, nil)
        }
        return (i, setWindow(i, startMs: startMs, seq: seq))
    }

    /// `set` for a row of a closed window straight from the operator (`emitClosedRows`),
    /// `group` its key's id in the operator's key table: through `idOfGroup` the key's id here
    /// is found with no hash and no table probe, after the key is compared with that id's
    /// (length, first 16 bytes, then the rest when longer): a remembered id that no longer
    /// holds the key costs the hash lookup, and the group then remembers the right one.
    @discardableResult
    mutating func set(key: UnsafeRawBufferPointer, group: UInt32, startMs: Int64, seq: UInt64) -> UInt64? {
        let g = Int(group)
        if g < idOfGroup.count, case let hinted = Int(idOfGroup[g]), hinted != 0, holds(hinted &- 1, key) {
            return setWindow(hinted &- 1, startMs: startMs, seq: seq)
        }
        let (id, replaced) = setLookingUp(key: key, startMs: startMs, seq: seq, owned: nil)
        if g >= idOfGroup.count {
            idOfGroup.append(contentsOf: repeatElement(0, count: Swift.max(g + 1, 2 * idOfGroup.count) - idOfGroup.count))
        }
        idOfGroup[g] = UInt32(id + 1)
        return replaced
    }

    /// Starts loading what `set(key:group:…)` reads for `group`: its remembered id, and once
    /// that has arrived (call again a few rows later with `entry: true`), that id's record.
    /// Mutating only so that a caller holding the index `inout` in a closure calls it in place
    /// (a non-mutating call there copies the whole index first, retaining each of its arrays).
    @inline(__always)
    mutating func prefetch(group: UInt32, entry: Bool) {
        let g = Int(group)
        idOfGroup.withUnsafeBufferPointer { m in
            guard g < m.count else { return }
            guard entry else { CLinux_prefetch(m.baseAddress! + g); return }
            let id = Int(m[g])
            guard id != 0 else { return }
            entries.withUnsafeBufferPointer { e in
                guard id &- 1 < e.count else { return }
                // What a set reads: the key head, length and windows with their `more` (the
                // record's first 72 bytes, two lines at most: 8-byte aligned).
                let p = UnsafeRawPointer(e.baseAddress! + (id &- 1))
                CLinux_prefetch(p)
                CLinux_prefetch(p + 71)
            }
        }
    }

    /// Whether live id `id` is `key` (a free id has length -1: never).
    @inline(__always)
    private func holds(_ id: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let (h0, h1) = Entry.heads(key)
        return entries.withUnsafeBufferPointer { m in
            guard id < m.count, m[id].length == key.count, m[id].head0 == h0, m[id].head1 == h1 else { return false }
            return key.count <= 16 || m[id].key.withUnsafeBytes { memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0 }
        }
    }

    /// Makes `seq` the current row of window `startMs` of live id `i`; returns the row it replaced.
    @inline(__always)
    private mutating func setWindow(_ i: Int, startMs: Int64, seq: UInt64) -> UInt64? {
        if let first = entries[i].windows.first, first.seq != 0 && first.seq < retainedFrom {
            rowCount -= entries[i].windows.removeStale(before: retainedFrom)
        }
        var p = entries[i].windows.count
        while p > 0 && entries[i].windows[p - 1].startMs > startMs { p -= 1 }
        if p > 0 && entries[i].windows[p - 1].startMs == startMs {
            defer { entries[i].windows[p - 1].seq = seq }
            return entries[i].windows[p - 1].seq
        }
        if p == entries[i].windows.count {
            entries[i].windows.append(Window(startMs: startMs, seq: seq))
        } else {
            entries[i].windows.insert(Window(startMs: startMs, seq: seq), at: p)
        }
        rowCount += 1
        return nil
    }

    /// Removes window (`key`, `startMs`) if its current row is `seq` (any row when `seq` is nil);
    /// returns the row removed.
    @discardableResult
    mutating func remove(key: [UInt8], startMs: Int64, ifSeq seq: UInt64?) -> UInt64? {
        key.withUnsafeBytes { remove(key: $0, startMs: startMs, ifSeq: seq) }
    }

    @discardableResult
    mutating func remove(key: UnsafeRawBufferPointer, startMs: Int64, ifSeq seq: UInt64?) -> UInt64? {
        guard let i = id(of: key) else { return nil }
        guard let p = entries[i].windows.firstIndex(where: { $0.startMs == startMs }) else { return nil }
        let removed = entries[i].windows[p].seq
        if let seq, removed != seq { return nil }
        rowCount -= 1
        entries[i].windows.remove(at: p)
        if entries[i].windows.isEmpty { Self.listEmptied(i, &entries[i], in: &emptied, base: emptiedBase) }
        return removed
    }

    /// Lists live key `id` (record `entry`), whose last window just left, for `purge`: its
    /// ticket is the listing's position among all ever made (`emptiedBase` that of `emptied[0]`).
    @inline(__always)
    private static func listEmptied(_ id: Int, _ entry: inout Entry, in emptied: inout [UInt32], base emptiedBase: Int) {
        entry.emptiedTicket = emptiedBase + emptied.count
        emptied.append(UInt32(id))
    }

    /// Removes up to `max` keys emptied long enough ago that are still empty (see the type;
    /// `keep` is `emptiedKeep` but in tests).
    mutating func purge(max: Int, keep: Int = Self.emptiedKeep) {
        var n = 0
        while n < max, emptied.count - emptiedHead > Swift.max(keep, rowCount) {
            let id = Int(emptied[emptiedHead])
            let ticket = emptiedBase + emptiedHead
            emptiedHead += 1
            n += 1
            if entries[id].length >= 0 && entries[id].windows.isEmpty && entries[id].emptiedTicket == ticket { drop(id) }
        }
        if emptiedHead > 4096 && emptiedHead * 2 > emptied.count {
            emptied.removeFirst(emptiedHead)
            emptiedBase += emptiedHead
            emptiedHead = 0
        }
    }

    /// Drops the stale windows of the next `max` ids (round robin over all of them): the keys
    /// no row comes to any more lose theirs within one turn, and a key left with none is
    /// listed for `purge`. The caller sweeps in proportion to the rows that left, so stale
    /// windows never outnumber the ids by much.
    mutating func sweep(max: Int) {
        let count = entries.count
        let n = Swift.min(max, count)
        let from = retainedFrom
        var at = sweepAt
        var dropped = 0
        entries.withUnsafeMutableBufferPointer { e in
            for _ in 0..<n {
                if at >= count { at = 0 }
                let id = at
                at += 1
                // (A free id has no windows: firstSeq 0.)
                let first = e[id].windows.firstSeq
                guard first != 0 && first < from else { continue }
                dropped += e[id].windows.removeStale(before: from)
                if e[id].windows.isEmpty { Self.listEmptied(id, &e[id], in: &emptied, base: emptiedBase) }
            }
        }
        sweepAt = at
        rowCount -= dropped
    }

    /// The `seq` of window (`key`, `startMs`)'s current row.
    func seq(key: [UInt8], startMs: Int64) -> UInt64? {
        key.withUnsafeBytes { seq(key: $0, startMs: startMs) }
    }

    func seq(key: UnsafeRawBufferPointer, startMs: Int64) -> UInt64? {
        guard let i = id(of: key), let w = entries[i].windows.first(where: { $0.startMs == startMs }), isLive(w) else { return nil }
        return w.seq
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
        while let (k, id) = keys.entry(at: position) {
            if exact ? k != key : !k.starts(with: key) { break }
            for w in entries[Int(id)].windows where isLive(w) {
                if let after, k == after.key, w.startMs <= after.startMs { continue }
                body(k, w)
                n += 1
                if n == limit { return n }
            }
            position = keys.position(after: position)
        }
        return n
    }

    /// Checks the table against the ordered set and the ids (tests).
    func checkInvariants() {
        keys.checkInvariants()
        precondition(keys.count == keyCount, "ResultIndex: ordered set and table disagree")
        var n = 0, rows = 0
        for id in entries.indices where entries[id].length >= 0 {
            n += 1
            rows += entries[id].windows.count
            precondition(entries[id].length == entries[id].key.count, "ResultIndex: length")
            precondition(entries[id].key.withUnsafeBytes { self.id(of: $0) } == id, "ResultIndex: key not found under its id")
            for k in entries[id].windows.indices.dropFirst() { precondition(entries[id].windows[k - 1].startMs < entries[id].windows[k].startMs, "ResultIndex: order") }
            if entries[id].windows.isEmpty {
                let t = entries[id].emptiedTicket - emptiedBase
                precondition(t >= emptiedHead && t < emptied.count && emptied[t] == UInt32(id), "ResultIndex: an empty key's latest listing")
            }
        }
        precondition(n == keyCount && rows == rowCount, "ResultIndex: counts")
        precondition(slots.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } == keyCount, "ResultIndex: table count")
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
        /// The key's id in the `ResultIndex` (0 for a search probe).
        var id: UInt32

        init(_ key: [UInt8], id: UInt32 = 0) {
            self.key = key
            self.id = id
            (hi, lo) = key.withUnsafeBytes { SortedKeys.prefix16($0) }
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

    /// A key's first 16 bytes as two big-endian integers, zero-padded: two loads (the byte loop
    /// cost ~80 instructions per lookup), through a zeroed 16-byte buffer for a shorter key.
    @inline(__always)
    static func prefix16(_ key: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        guard let base = key.baseAddress else { return (0, 0) }
        if key.count >= 16 {
            return (UInt64(bigEndian: base.loadUnaligned(as: UInt64.self)),
                    UInt64(bigEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        var pad: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &pad) { $0.baseAddress!.copyMemory(from: base, byteCount: key.count) }
        return (UInt64(bigEndian: pad.0), UInt64(bigEndian: pad.1))
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

    /// The key at `p` and its id, `nil` past the end.
    func entry(at p: Position) -> (key: [UInt8], id: UInt32)? {
        guard p.leaf < leaves.count else { return nil }
        let e = leaves[p.leaf][p.index]
        return (e.key, e.id)
    }

    func position(after p: Position) -> Position {
        p.index + 1 < leaves[p.leaf].count ? Position(leaf: p.leaf, index: p.index + 1) : Position(leaf: p.leaf + 1, index: 0)
    }

    /// Inserts a key known to be absent.
    mutating func insert(_ key: [UInt8], id: UInt32 = 0) {
        let e = Entry(key, id: id)
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
