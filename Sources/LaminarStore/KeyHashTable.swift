/// A seeded 64-bit hash of byte strings in the style of wyhash: two 64×64→128-bit multiplies
/// per 16 bytes. The seed is random per store, so clients cannot choose keys that collide
/// (hash flooding); it is kept in the hint file so a reopened store reuses its hashes. The
/// reactor's key interner uses it too, with a seed of its own.
public struct KeyHasher: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    @usableFromInline static let k0: UInt64 = 0xa076_1d64_78bd_642f
    @usableFromInline static let k1: UInt64 = 0xe703_7ed1_a0b4_28db
    @usableFromInline static let k2: UInt64 = 0x8ebc_6af0_9c88_c6e3

    @inlinable @inline(__always)
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.high ^ r.low
    }

    @inlinable @inline(__always)
    public func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let n = bytes.count
        guard let p = bytes.baseAddress, n > 0 else { return KeyHasher.mix(seed ^ KeyHasher.k0, KeyHasher.k1) }
        var state = seed ^ KeyHasher.k0
        var a: UInt64
        var b: UInt64
        if n <= 16 {
            if n >= 8 {
                a = p.loadUnaligned(as: UInt64.self)
                b = p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            } else if n >= 4 {
                a = UInt64(p.loadUnaligned(as: UInt32.self)) << 32 | UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
                b = 0
            } else {
                a = UInt64(p.load(as: UInt8.self)) << 16 | UInt64(p.load(fromByteOffset: n >> 1, as: UInt8.self)) << 8
                    | UInt64(p.load(fromByteOffset: n - 1, as: UInt8.self))
                b = 0
            }
        } else {
            var i = 0
            while n - i > 16 {
                state = KeyHasher.mix(
                    p.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ KeyHasher.k1,
                    p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self) ^ state)
                i += 16
            }
            a = p.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self)
            b = p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        return KeyHasher.mix(KeyHasher.k1 ^ UInt64(n), KeyHasher.mix(a ^ KeyHasher.k1, b ^ state ^ KeyHasher.k2))
    }
}

/// The point-lookup index: an open-addressing hash table (linear probing, backward-shift
/// deletion, no tombstones) from a key to the offset of its current record in the region.
///
/// A slot holds the key's full 64-bit hash and the record offset; the key itself is compared in
/// place in the region, so the table never copies a key. Offset 0 marks an empty slot (offset 0
/// is the file header, never a record). The load factor stays at or below 3/4.
///
/// Memory is owned manually: the owner calls `deallocate()` exactly once.
@usableFromInline
struct KeyHashTable {
    @usableFromInline
    struct Slot {
        @usableFromInline var hash: UInt64
        @usableFromInline var offset: UInt64
    }

    @usableFromInline private(set) var slots: UnsafeMutablePointer<Slot>
    @usableFromInline private(set) var mask: Int
    private(set) var count: Int = 0

    var capacity: Int { mask + 1 }

    init(minimumCapacity: Int = 16) {
        var capacity = 16
        while capacity * 3 / 4 < minimumCapacity { capacity <<= 1 }
        slots = KeyHashTable.allocateSlots(capacity)
        slots.initialize(repeating: Slot(hash: 0, offset: 0), count: capacity)
        mask = capacity - 1
    }

    func deallocate() {
        free(slots)
    }

    static let hugePageBytes = 2 << 20

    /// Slot memory: from 2 MiB up, aligned to and advised for transparent huge pages (the table
    /// of a million keys is 32 MiB; with 4 KiB pages nearly every probe also misses the TLB),
    /// else cache-line aligned. Freed with `free`.
    static func allocateSlots(_ capacity: Int) -> UnsafeMutablePointer<Slot> {
        let bytes = capacity * MemoryLayout<Slot>.stride
        let huge = bytes >= hugePageBytes
        var memory: UnsafeMutableRawPointer?
        precondition(posix_memalign(&memory, huge ? hugePageBytes : 64, bytes) == 0, "hash table: out of memory")
        if huge { _ = madvise(memory, bytes, MADV_HUGEPAGE) }  // advice only: fine if refused
        return memory!.bindMemory(to: Slot.self, capacity: capacity)
    }

    /// The slot index holding `key`, or `nil`.
    @inlinable @inline(__always)
    func find(hash: UInt64, key: UnsafeRawBufferPointer, base: UnsafeRawPointer) -> Int? {
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[i]
            if slot.offset == 0 { return nil }
            if slot.hash == hash && KeyHashTable.keyEquals(base + Int(slot.offset), key) { return i }
            i = (i &+ 1) & mask
        }
    }

    /// The record offset of the first slot holding `hash` among the first `probesMax` slots of its
    /// probe run, or 0: where a lookup of a key with that hash will most likely read (a prefetch
    /// hint; the key is not compared). The home slot alone was another key's in about 4 lookups
    /// in 10 at a load of 0.6.
    @inline(__always)
    func probableOffset(hash: UInt64, probesMax: Int = 4) -> Int {
        var i = Int(truncatingIfNeeded: hash) & mask
        for _ in 0..<probesMax {
            let slot = slots[i]
            if slot.offset == 0 || slot.hash == hash { return Int(slot.offset) }
            i = (i &+ 1) & mask
        }
        return 0
    }

    /// The address of the home slot of `hash`, for a prefetch (a scan starts the slot reads of
    /// later keys before it probes for them).
    @inline(__always)
    func slotAddress(hash: UInt64) -> UnsafeRawPointer {
        UnsafeRawPointer(slots + (Int(truncatingIfNeeded: hash) & mask))
    }

    /// The slot index of `key` and whether it was there; if not, the slot returned is empty
    /// and the caller must fill it with `set(_:offset:hash:)` before anything else changes the table.
    @inline(__always)
    mutating func findOrReserve(hash: UInt64, key: UnsafeRawBufferPointer, base: UnsafeRawPointer) -> (index: Int, found: Bool) {
        if (count + 1) * 4 > capacity * 3 { grow() }
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[i]
            if slot.offset == 0 { return (i, false) }
            if slot.hash == hash && KeyHashTable.keyEquals(base + Int(slot.offset), key) { return (i, true) }
            i = (i &+ 1) & mask
        }
    }

    /// Fills a slot returned empty by `findOrReserve`.
    @inline(__always)
    mutating func fill(_ index: Int, offset: Int, hash: UInt64) {
        precondition(slots[index].offset == 0 && offset > 0)
        slots[index] = Slot(hash: hash, offset: UInt64(offset))
        count += 1
    }

    /// Points an occupied slot at a newer record of the same key.
    @inline(__always)
    func update(_ index: Int, offset: Int) {
        slots[index].offset = UInt64(offset)
    }

    @inlinable @inline(__always)
    func offset(at index: Int) -> Int { Int(slots[index].offset) }

    /// Empties slot `index`, shifting later members of its probe run back (no tombstones).
    mutating func remove(at index: Int) {
        var hole = index
        var i = (index + 1) & mask
        while slots[i].offset != 0 {
            let home = Int(truncatingIfNeeded: slots[i].hash) & mask
            // Move slot i into the hole if its home is not within (hole, i] cyclically.
            let distanceToHome = (i - home) & mask
            let distanceToHole = (i - hole) & mask
            if distanceToHome >= distanceToHole {
                slots[hole] = slots[i]
                hole = i
            }
            i = (i + 1) & mask
        }
        slots[hole] = Slot(hash: 0, offset: 0)
        count -= 1
    }

    /// Inserts a key known to be absent (bulk loads).
    mutating func insertNew(hash: UInt64, offset: Int) {
        if (count + 1) * 4 > capacity * 3 { grow() }
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i].offset != 0 { i = (i + 1) & mask }
        slots[i] = Slot(hash: hash, offset: UInt64(offset))
        count += 1
    }

    private mutating func grow() {
        let oldSlots = slots
        let oldCapacity = capacity
        let newCapacity = oldCapacity * 2
        slots = KeyHashTable.allocateSlots(newCapacity)
        slots.initialize(repeating: Slot(hash: 0, offset: 0), count: newCapacity)
        mask = newCapacity - 1
        for j in 0..<oldCapacity where oldSlots[j].offset != 0 {
            var i = Int(truncatingIfNeeded: oldSlots[j].hash) & mask
            while slots[i].offset != 0 { i = (i + 1) & mask }
            slots[i] = oldSlots[j]
        }
        free(oldSlots)
    }

    /// Whether the record at `record` holds `key`. Keys of 8 to 16 bytes are compared as two
    /// (overlapping) words in line, without a call.
    @inlinable @inline(__always)
    static func keyEquals(_ record: UnsafeRawPointer, _ key: UnsafeRawBufferPointer) -> Bool {
        let n = key.count
        guard RecordFormat.keyLength(record) == n else { return false }
        let stored = record + RecordFormat.headerBytes
        let k = key.baseAddress!
        if n >= 8 && n <= 16 {
            let head = stored.loadUnaligned(as: UInt64.self) ^ k.loadUnaligned(as: UInt64.self)
            let tail = stored.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
                ^ k.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            return head | tail == 0
        }
        return memcmp(stored, k, n) == 0
    }

    /// Checks the table's structure: the count, and that every key is reachable from its home slot.
    func checkInvariants() {
        var n = 0
        for i in 0..<capacity where slots[i].offset != 0 {
            n += 1
            // Every slot between home and i must be occupied (linear probing reachability).
            var j = Int(truncatingIfNeeded: slots[i].hash) & mask
            while j != i {
                precondition(slots[j].offset != 0, "hash table: broken probe run at \(j)")
                j = (j + 1) & mask
            }
        }
        precondition(n == count, "hash table: count \(count) but \(n) occupied slots")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
