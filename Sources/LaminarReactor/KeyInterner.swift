import CLinux
import LaminarStore

/// Maps key bytes to dense ids `0..<count` with a flat open-addressing table (no per-key object).
/// Keys are never removed (bounded by `ReactorLimits.streamKeysMax`).
///
/// Event keys come from clients, so the hash is the store's seeded one (`KeyHasher`) with a
/// random seed per interner: nobody can choose keys that all land in one probe run and turn
/// each event of the single writer into a scan of the table.
///
/// A slot is two words: a tag (the top 28 bits of the key's hash as a fingerprint, the key's
/// length up to 8 or 9 for longer, the id + 1) and a word of the key's bytes (`word`). A key of
/// at most 8 bytes is decided by its slot alone (its word holds all its bytes); a longer one's
/// bytes are compared in the arena once tag and word match. So the lookup of a short key reads
/// one 16-byte slot (a single cache line) and no other array. The per-event path hashes a key
/// once (`hash`), may `prefetch` its slot a few events ahead, then looks it up with that hash
/// (`intern(_:hash:limit:)`).
struct KeyInterner {
    /// Slot `i` is `slots[2i]` (the tag: `fingerprint | length code << 32 | (keyId + 1)`; 0 =
    /// empty) and `slots[2i + 1]` (the key's `word`).
    private var slots: [UInt64]
    /// Slots - 1.
    private var mask: Int
    private(set) var hashes: [UInt64] = []
    private var starts: [UInt32] = []
    private var arena: [UInt8] = []
    let hasher: KeyHasher
    var count: Int { hashes.count }
    /// Bytes of all keys together.
    var keyBytes: Int { arena.count }

    init(capacity: Int = 1024, seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        slots = Array(repeating: 0, count: 2 * c)
        mask = c - 1
        starts = [0]
        hasher = KeyHasher(seed: seed)
    }

    /// The interner as a checkpoint reads it (keys by id): its table left out, so that the live
    /// interner, adding a key next, does not copy it. Never looked up in.
    func withoutTable() -> KeyInterner {
        var c = self
        c.slots = []
        c.mask = -1
        return c
    }

    func key(_ id: Int) -> ArraySlice<UInt8> { arena[Int(starts[id])..<Int(starts[id + 1])] }

    /// Whether key `a` sorts before key `b`, byte by byte (a prefix first), with no copy.
    func precedes(_ a: Int, _ b: Int) -> Bool {
        let (sa, ea, sb, eb) = starts.withUnsafeBufferPointer { (Int($0[a]), Int($0[a + 1]), Int($0[b]), Int($0[b + 1])) }
        let n = min(ea - sa, eb - sb)
        let c = n == 0 ? 0 : arena.withUnsafeBytes { memcmp($0.baseAddress! + sa, $0.baseAddress! + sb, n) }
        return c != 0 ? c < 0 : ea - sa < eb - sb
    }

    @inline(__always)
    func hash(_ key: UnsafeRawBufferPointer) -> UInt64 { hasher.hash(key) }

    /// Starts loading the slot where the lookup of a key of hash `h` begins.
    @inline(__always)
    func prefetch(_ h: UInt64) {
        slots.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + 2 &* (Int(truncatingIfNeeded: h) & mask)) }
    }

    /// Whether the lookup of a key of `length` bytes reads the arena (the key is longer than a
    /// slot's word): only such keys need `prefetchKey`.
    @inline(__always)
    static func readsArena(length: Int) -> Bool { length > 8 }

    /// The later stages of that lookahead for keys that `readsArena`, for tables too big for
    /// the caches: once the slot has arrived (`bytes: false`), the key's offset; once that has
    /// (`bytes: true`), its bytes. Both look at the first slot of the probe only.
    @inline(__always)
    func prefetchKey(_ h: UInt64, bytes: Bool) {
        let e = slots.withUnsafeBufferPointer { $0[2 &* (Int(truncatingIfNeeded: h) & mask)] }
        guard e != 0 else { return }
        let id = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) &- 1
        starts.withUnsafeBufferPointer { st in
            guard bytes else { CLinux_prefetch(st.baseAddress! + id); return }
            let at = Int(st[id])
            arena.withUnsafeBytes { CLinux_prefetch($0.baseAddress! + at) }
        }
    }

    /// For a caller walking ids in an order the caches do not follow (a closed window's groups,
    /// `WindowOperator.takeClosedRows`): starts loading key `id`'s offset (`bytes: false`), or,
    /// once that has arrived (call again a few ids later), its first bytes (`bytes: true`).
    @inline(__always)
    func prefetchKey(id: Int, bytes: Bool) {
        starts.withUnsafeBufferPointer { st in
            guard bytes else { CLinux_prefetch(st.baseAddress! + id); return }
            let at = Int(st[id])
            arena.withUnsafeBytes { if let a = $0.baseAddress { CLinux_prefetch(a + at) } }
        }
    }

    /// The id of `key`, adding it if new; `nil` if adding would exceed `limit` keys.
    mutating func intern(_ key: UnsafeRawBufferPointer, limit: Int) -> UInt32? {
        intern(key, hash: hasher.hash(key), limit: limit)
    }

    /// A key's length code in its slot's tag: the length up to 8, 9 for longer keys.
    @inline(__always)
    private static func lengthCode(_ n: Int) -> UInt64 { UInt64(truncatingIfNeeded: Swift.min(n, 9)) << 32 }

    /// The word of a key in its slot: for at most 8 bytes a function of its bytes that differs
    /// for any two keys of the same length (so tag and word decide), for longer keys its first
    /// 8 bytes (a filter before the arena). Reads only the key's bytes.
    @inline(__always)
    static func word(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let n = key.count
        guard n > 0 else { return 0 }
        let p = key.baseAddress!
        if n >= 8 { return p.loadUnaligned(as: UInt64.self) }
        if n >= 4 {
            return UInt64(p.loadUnaligned(as: UInt32.self)) | UInt64(p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)) << 32
        }
        return UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: n >> 1, as: UInt8.self)) << 8
            | UInt64(p.load(fromByteOffset: n &- 1, as: UInt8.self)) << 16
    }

    /// `intern(_:limit:)` with the key's hash (`hash(key)`) already made.
    @inline(__always)
    mutating func intern(_ key: UnsafeRawBufferPointer, hash h: UInt64, limit: Int) -> UInt32? {
        let want = h & 0xFFFF_FFF0_0000_0000 | KeyInterner.lengthCode(key.count)
        let w = KeyInterner.word(key), short = !KeyInterner.readsArena(length: key.count)
        var i = Int(truncatingIfNeeded: h) & mask
        let found: Int = slots.withUnsafeBufferPointer { s in
            while true {
                let e = s[2 &* i]
                if e == 0 { return -1 }
                if e & 0xFFFF_FFFF_0000_0000 == want && s[2 &* i &+ 1] == w {
                    let id = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) &- 1
                    if short || equals(id, key) { return id }
                }
                i = (i &+ 1) & mask
            }
        }
        if found >= 0 { return UInt32(truncatingIfNeeded: found) }
        return add(key, hash: h, tag: want, word: w, at: i, limit: limit)
    }

    /// Adds `key` (not interned; its lookup ended at the free slot `i`), unless that would
    /// exceed `limit` keys. Out of line: the lookup of a known key, the usual, stays small.
    @inline(never)
    private mutating func add(_ key: UnsafeRawBufferPointer, hash h: UInt64, tag: UInt64, word w: UInt64, at i: Int, limit: Int) -> UInt32? {
        guard count < limit else { return nil }
        let id = count
        hashes.append(h)
        arena.append(contentsOf: key.assumingMemoryBound(to: UInt8.self))
        starts.append(UInt32(arena.count))
        slots[2 * i] = tag | UInt64(id + 1)
        slots[2 * i + 1] = w
        if count * 2 > mask + 1 { grow() }
        return UInt32(id)
    }

    /// Whether key `id` is `key`: short keys (the usual) by two overlapping word loads each.
    @inline(__always)
    private func equals(_ id: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let (s, e) = starts.withUnsafeBufferPointer { (Int($0[id]), Int($0[id &+ 1])) }
        let n = key.count
        guard e &- s == n else { return false }
        guard n > 0 else { return true }
        return arena.withUnsafeBytes { a in
            let p = UnsafeRawPointer(a.baseAddress! + s), q = key.baseAddress!
            if n >= 8 {
                if n > 16 { return memcmp(p, q, n) == 0 }
                return p.loadUnaligned(as: UInt64.self) == q.loadUnaligned(as: UInt64.self)
                    && p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self) == q.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            }
            if n >= 4 {
                return p.loadUnaligned(as: UInt32.self) == q.loadUnaligned(as: UInt32.self)
                    && p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self) == q.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
            }
            return memcmp(p, q, n) == 0
        }
    }

    private mutating func grow() {
        let c = 2 * (mask + 1)
        var t = [UInt64](repeating: 0, count: 2 * c)
        mask = c - 1
        let m = mask
        t.withUnsafeMutableBufferPointer { t in
            arena.withUnsafeBytes { a in
                for id in 0..<count {
                    let h = hashes[id], from = Int(starts[id]), to = Int(starts[id + 1])
                    let key = UnsafeRawBufferPointer(rebasing: a[from..<to])
                    var i = Int(truncatingIfNeeded: h) & m
                    while t[2 * i] != 0 { i = (i + 1) & m }
                    t[2 * i] = h & 0xFFFF_FFF0_0000_0000 | KeyInterner.lengthCode(key.count) | UInt64(id + 1)
                    t[2 * i + 1] = KeyInterner.word(key)
                }
            }
        }
        slots = t
    }
}

import Glibc
