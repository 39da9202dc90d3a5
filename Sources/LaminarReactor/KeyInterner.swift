import LaminarStore

/// Maps key bytes to dense ids `0..<count` with a flat open-addressing table (no per-key object).
/// Keys are never removed (bounded by `ReactorLimits.streamKeysMax`).
///
/// Event keys come from clients, so the hash is the store's seeded one (`KeyHasher`) with a
/// random seed per interner: nobody can choose keys that all land in one probe run and turn
/// each event of the single writer into a scan of the table.
struct KeyInterner {
    private var slots: [UInt32]            // keyId + 1; 0 = empty
    private var mask: Int
    private(set) var hashes: [UInt64] = []
    private var starts: [UInt32] = []
    private var arena: [UInt8] = []
    let hasher: KeyHasher
    var count: Int { hashes.count }

    init(capacity: Int = 1024, seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        slots = Array(repeating: 0, count: c)
        mask = c - 1
        starts = [0]
        hasher = KeyHasher(seed: seed)
    }

    func key(_ id: Int) -> ArraySlice<UInt8> { arena[Int(starts[id])..<Int(starts[id + 1])] }

    /// The id of `key`, adding it if new; `nil` if adding would exceed `limit` keys.
    @inline(__always)
    mutating func intern(_ key: UnsafeRawBufferPointer, limit: Int) -> UInt32? {
        let h = hasher.hash(key)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s == 0 { break }
            let id = Int(s - 1)
            if hashes[id] == h && equals(id, key) { return UInt32(id) }
            i = (i + 1) & mask
        }
        guard count < limit else { return nil }
        let id = count
        hashes.append(h)
        arena.append(contentsOf: key.assumingMemoryBound(to: UInt8.self))
        starts.append(UInt32(arena.count))
        slots[i] = UInt32(id + 1)
        if count * 2 > slots.count { grow() }
        return UInt32(id)
    }

    @inline(__always)
    private func equals(_ id: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let s = Int(starts[id]), e = Int(starts[id + 1])
        guard e - s == key.count else { return false }
        return arena.withUnsafeBytes { a in
            key.count == 0 || memcmp(a.baseAddress! + s, key.baseAddress!, key.count) == 0
        }
    }

    private mutating func grow() {
        let c = slots.count * 2
        slots = Array(repeating: 0, count: c)
        mask = c - 1
        for id in 0..<count {
            var i = Int(truncatingIfNeeded: hashes[id]) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = UInt32(id + 1)
        }
    }
}

import Glibc
