import CLinux
import LaminarStore

/// Maps key bytes to dense ids `0..<count` with a flat open-addressing table (no per-key object).
/// Keys are never removed (bounded by `ReactorLimits.streamKeysMax`).
///
/// Event keys come from clients, so the hash is the store's seeded one (`KeyHasher`) with a
/// random seed per interner: nobody can choose keys that all land in one probe run and turn
/// each event of the single writer into a scan of the table.
///
/// A slot holds the key's id and the top 32 bits of its hash (a fingerprint): a probe compares
/// key bytes only when the fingerprint matches, and touches no other array before that. The
/// per-event path hashes a key once (`hash`), may `prefetch` its slot a few events ahead, then
/// looks it up with that hash (`intern(_:hash:limit:)`).
struct KeyInterner {
    /// `fingerprint << 32 | (keyId + 1)`; 0 = empty.
    private var slots: [UInt64]
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
        slots = Array(repeating: 0, count: c)
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
        slots.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + (Int(truncatingIfNeeded: h) & mask)) }
    }

    /// The later stages of that lookahead, for tables too big for the caches: once the slot has
    /// arrived (`bytes: false`), the key's offset; once that has (`bytes: true`), its bytes.
    /// Both look at the first slot of the probe only.
    @inline(__always)
    func prefetchKey(_ h: UInt64, bytes: Bool) {
        let e = slots.withUnsafeBufferPointer { $0[Int(truncatingIfNeeded: h) & mask] }
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

    /// `intern(_:limit:)` with the key's hash (`hash(key)`) already made.
    @inline(__always)
    mutating func intern(_ key: UnsafeRawBufferPointer, hash h: UInt64, limit: Int) -> UInt32? {
        let fingerprint = h & 0xFFFF_FFFF_0000_0000
        var i = Int(truncatingIfNeeded: h) & mask
        let found: Int = slots.withUnsafeBufferPointer { s in
            while true {
                let e = s[i]
                if e == 0 { return -1 }
                if e & 0xFFFF_FFFF_0000_0000 == fingerprint {
                    let id = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) &- 1
                    if equals(id, key) { return id }
                }
                i = (i &+ 1) & mask
            }
        }
        if found >= 0 { return UInt32(truncatingIfNeeded: found) }
        guard count < limit else { return nil }
        let id = count
        hashes.append(h)
        arena.append(contentsOf: key.assumingMemoryBound(to: UInt8.self))
        starts.append(UInt32(arena.count))
        slots[i] = fingerprint | UInt64(id + 1)
        if count * 2 > slots.count { grow() }
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
        let c = slots.count * 2
        slots = Array(repeating: 0, count: c)
        mask = c - 1
        for id in 0..<count {
            let h = hashes[id]
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = h & 0xFFFF_FFFF_0000_0000 | UInt64(id + 1)
        }
    }
}

import Glibc
