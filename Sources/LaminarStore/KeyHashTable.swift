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
/// **Growth is incremental**, so that no insert takes time that grows with the table: a full
/// table becomes the `old` one, a table twice its size (mapped lazily: zero pages, no `memset`
/// of the whole) the current one, and every `findOrReserve` / `insertNew` first moves the next
/// `migrationSlotsPerStep` slots of the old table into the current one. Until the old table is
/// empty (after `capacity / 2 / migrationSlotsPerStep` steps, long before the current one can
/// fill: that takes `capacity * 3 / 8` inserts) a key is in exactly one of the two; lookups try
/// the current table, then the old. A slot of the old table whose key moved (or was removed)
/// keeps its hash with offset `movedMarker`, so the probe runs of the keys still there stay
/// unbroken; nothing is shifted in the old table. Slot indices handed out (`find`,
/// `findOrReserve`) are `0..<capacity` for the current table, `capacity...` for the old one;
/// one is valid until the next call that mutates the table.
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
    /// The key count at which the next insert starts a growth: 3/4 of the capacity.
    private var growAt: Int
    /// Keys in both tables.
    private(set) var count: Int = 0

    /// The table being emptied into `slots`, or nil; `oldMask + 1` slots.
    @usableFromInline private(set) var oldSlots: UnsafeMutablePointer<Slot>?
    @usableFromInline private(set) var oldMask: Int = 0
    /// The next slot of the old table to move.
    private var migrated = 0

    /// The `ConcurrentReader` (unretained; it outlives the table) whose readers may probe this
    /// table: an old table emptied by a growth goes to its `tablesToRetire` instead of being
    /// freed. Nil for a table no other thread reads.
    var retiresTo: UnsafeRawPointer?

    /// Old-table slots moved per step (per `findOrReserve` / `insertNew`).
    static let migrationSlotsPerStep = 8
    /// The offset of an old-table slot whose key is no longer there.
    @usableFromInline static let movedMarker = UInt64.max

    var capacity: Int { mask + 1 }
    /// Whether an incremental growth is in progress (tests).
    var isMigrating: Bool { oldSlots != nil }

    init(minimumCapacity: Int = 16) {
        var capacity = 16
        while capacity * 3 / 4 < minimumCapacity { capacity <<= 1 }
        slots = KeyHashTable.allocateSlots(capacity)
        mask = capacity - 1
        growAt = capacity / 4 * 3
    }

    func deallocate() {
        KeyHashTable.freeSlots(slots, capacity)
        if let oldSlots { KeyHashTable.freeSlots(oldSlots, oldMask + 1) }
    }

    static let hugePageBytes = 2 << 20

    /// Zeroed slot memory. From 2 MiB up: an anonymous mapping aligned to and advised for
    /// transparent huge pages (the table of a million keys is 32 MiB; with 4 KiB pages nearly
    /// every probe also misses the TLB), whose zero pages the kernel maps in on first touch, so
    /// a growth does not clear the whole new table at once; below, cache-line aligned heap
    /// memory, cleared. Freed with `freeSlots`.
    static func allocateSlots(_ capacity: Int) -> UnsafeMutablePointer<Slot> {
        let bytes = capacity * MemoryLayout<Slot>.stride
        guard bytes >= hugePageBytes else {
            var memory: UnsafeMutableRawPointer?
            precondition(posix_memalign(&memory, 64, bytes) == 0, "hash table: out of memory")
            let slots = memory!.bindMemory(to: Slot.self, capacity: capacity)
            slots.initialize(repeating: Slot(hash: 0, offset: 0), count: capacity)
            return slots
        }
        // Over-map by a huge page, then unmap the unaligned head and tail.
        let mapped = mmap(nil, bytes + hugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(mapped != nil && mapped != MAP_FAILED, "hash table: out of memory")
        let start = (Int(bitPattern: mapped!) + hugePageBytes - 1) / hugePageBytes * hugePageBytes
        let head = start - Int(bitPattern: mapped!)
        if head > 0 { munmap(mapped, head) }
        let tail = hugePageBytes - head
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + bytes), tail) }
        let memory = UnsafeMutableRawPointer(bitPattern: start)!
        _ = madvise(memory, bytes, MADV_HUGEPAGE)  // advice only: fine if refused
        return memory.bindMemory(to: Slot.self, capacity: capacity)
    }

    static func freeSlots(_ slots: UnsafeMutablePointer<Slot>, _ capacity: Int) {
        let bytes = capacity * MemoryLayout<Slot>.stride
        if bytes >= hugePageBytes { munmap(slots, bytes) } else { free(slots) }
    }

    /// `freeSlots` off the caller's thread for a mapped table (a `munmap` takes time that grows
    /// with its size: not on the writer's path); small tables are freed at once. Nothing may
    /// touch `slots` afterwards.
    static func freeSlotsInBackground(_ slots: UnsafeMutablePointer<Slot>, _ capacity: Int) {
        guard capacity * MemoryLayout<Slot>.stride >= hugePageBytes else { return freeSlots(slots, capacity) }
        let address = UInt(bitPattern: slots)
        let started = ServerThread.start(name: "laminar-retire", nice: 19, detached: true) {
            freeSlots(UnsafeMutablePointer(bitPattern: address)!, capacity)
        }
        if started == nil { freeSlots(slots, capacity) }
    }

    // MARK: - Slot words another thread may read (`ConcurrentReader`)

    /// Stores a whole slot: the hash, then the offset with release (a reader that loads the
    /// offset with acquire sees the record it names, written before).
    @inline(__always)
    static func store(_ slot: UnsafeMutablePointer<Slot>, _ value: Slot) {
        let words = UnsafeMutableRawPointer(slot).assumingMemoryBound(to: UInt64.self)
        CLinux_store_relaxed(words, value.hash)
        CLinux_store_release(words + 1, value.offset)
    }

    @inline(__always)
    static func storeOffset(_ slot: UnsafeMutablePointer<Slot>, _ offset: UInt64) {
        CLinux_store_release(UnsafeMutableRawPointer(slot).assumingMemoryBound(to: UInt64.self) + 1, offset)
    }

    @inline(__always)
    static func loadOffset(_ slot: UnsafeMutablePointer<Slot>) -> UInt64 {
        CLinux_load_acquire(UnsafeRawPointer(slot).assumingMemoryBound(to: UInt64.self) + 1)
    }

    @inline(__always)
    static func loadHash(_ slot: UnsafeMutablePointer<Slot>) -> UInt64 {
        CLinux_load_relaxed(UnsafeRawPointer(slot).assumingMemoryBound(to: UInt64.self))
    }

    /// The slot index holding `key`, or `nil`.
    @inlinable @inline(__always)
    func find(hash: UInt64, key: UnsafeRawBufferPointer, base: UnsafeRawPointer) -> Int? {
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[i]
            if slot.offset == 0 {
                guard let old = oldSlots else { return nil }
                return KeyHashTable.findOld(old, mask: oldMask, indexBase: mask &+ 1, hash: hash, key: key, base: base)
            }
            if slot.hash == hash && KeyHashTable.keyEquals(base + Int(slot.offset), key) { return i }
            i = (i &+ 1) & mask
        }
    }

    /// `find` in the old table `old` (`mask + 1` slots): its slot index plus `indexBase`, or nil.
    /// Static and out of line, on the parts of the table it needs: the inlined `find` then keeps
    /// the table in registers (a method call on the whole struct had it copied to the stack on
    /// every lookup, ~17 instructions).
    @usableFromInline @inline(never)
    static func findOld(
        _ old: UnsafeMutablePointer<Slot>, mask: Int, indexBase: Int, hash: UInt64, key: UnsafeRawBufferPointer, base: UnsafeRawPointer
    ) -> Int? {
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = old[i]
            if slot.offset == 0 { return nil }
            if slot.hash == hash && slot.offset != KeyHashTable.movedMarker
                && KeyHashTable.keyEquals(base + Int(slot.offset), key) { return indexBase + i }
            i = (i &+ 1) & mask
        }
    }

    /// The record offset of the first slot holding `hash` among the first `probesMax` slots of its
    /// probe run, or 0: where a lookup of a key with that hash will most likely read (a prefetch
    /// hint; the key is not compared; the current table only). The home slot alone was another
    /// key's in about 4 lookups in 10 at a load of 0.6.
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

    /// The address of the home slot of `hash` (current table), for a prefetch (a scan starts
    /// the slot reads of later keys before it probes for them).
    @inline(__always)
    func slotAddress(hash: UInt64) -> UnsafeRawPointer {
        UnsafeRawPointer(slots + (Int(truncatingIfNeeded: hash) & mask))
    }

    /// The slot index of `key` and whether it was there; if not, the slot returned is empty
    /// and the caller must fill it with `fill(_:offset:hash:)` before anything else changes the table.
    @inline(__always)
    mutating func findOrReserve(hash: UInt64, key: UnsafeRawBufferPointer, base: UnsafeRawPointer) -> (index: Int, found: Bool) {
        if oldSlots != nil { migrateStep() }
        if count >= growAt { grow() }
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[i]
            if slot.offset == 0 { break }
            if slot.hash == hash && KeyHashTable.keyEquals(base + Int(slot.offset), key) { return (i, true) }
            i = (i &+ 1) & mask
        }
        if let old = oldSlots, let j = KeyHashTable.findOld(old, mask: oldMask, indexBase: capacity, hash: hash, key: key, base: base) {
            return (j, true)
        }
        return (i, false)
    }

    /// Whether the next `findOrReserve` or `insertNew` may move slots (a step of a growth, or the
    /// start of one); otherwise it at most fills an empty slot.
    @inline(__always)
    var mayRestructure: Bool { oldSlots != nil || count >= growAt }

    /// Fills a slot returned empty by `findOrReserve`.
    @inline(__always)
    mutating func fill(_ index: Int, offset: Int, hash: UInt64) {
        precondition(index <= mask && slots[index].offset == 0 && offset > 0)
        KeyHashTable.store(slots + index, Slot(hash: hash, offset: UInt64(offset)))
        count += 1
    }

    /// Points an occupied slot at a newer record of the same key.
    @inline(__always)
    func update(_ index: Int, offset: Int) {
        KeyHashTable.storeOffset(index <= mask ? slots + index : oldSlots! + (index - capacity), UInt64(offset))
    }

    @inlinable @inline(__always)
    func offset(at index: Int) -> Int {
        index <= mask ? Int(slots[index].offset) : Int(oldSlots.unsafelyUnwrapped[index &- (mask &+ 1)].offset)
    }

    /// Empties slot `index`: in the current table by shifting later members of its probe run
    /// back (no tombstones), in the old one by marking it moved.
    mutating func remove(at index: Int) {
        count -= 1
        if index > mask {
            KeyHashTable.storeOffset(oldSlots! + (index - capacity), KeyHashTable.movedMarker)
            return
        }
        var hole = index
        var i = (index + 1) & mask
        while slots[i].offset != 0 {
            let home = Int(truncatingIfNeeded: slots[i].hash) & mask
            // Move slot i into the hole if its home is not within (hole, i] cyclically.
            let distanceToHome = (i - home) & mask
            let distanceToHole = (i - hole) & mask
            if distanceToHome >= distanceToHole {
                KeyHashTable.store(slots + hole, slots[i])
                hole = i
            }
            i = (i + 1) & mask
        }
        KeyHashTable.store(slots + hole, Slot(hash: 0, offset: 0))
    }

    /// Inserts a key known to be absent (bulk loads).
    mutating func insertNew(hash: UInt64, offset: Int) {
        if oldSlots != nil { migrateStep() }
        if count >= growAt { grow() }
        placeInCurrent(Slot(hash: hash, offset: UInt64(offset)))
        count += 1
    }

    /// Calls `body` with the hash and record offset of every key (both tables).
    func forEachSlot(_ body: (_ hash: UInt64, _ offset: Int) -> Void) {
        for i in 0..<capacity where slots[i].offset != 0 { body(slots[i].hash, Int(slots[i].offset)) }
        guard let old = oldSlots else { return }
        for i in 0...oldMask where old[i].offset != 0 && old[i].offset != KeyHashTable.movedMarker {
            body(old[i].hash, Int(old[i].offset))
        }
    }

    private mutating func placeInCurrent(_ slot: Slot) {
        var i = Int(truncatingIfNeeded: slot.hash) & mask
        while slots[i].offset != 0 { i = (i + 1) & mask }
        KeyHashTable.store(slots + i, slot)
    }

    /// Starts an incremental growth: the table becomes the old one, a table twice as large the
    /// current one (O(1) but for the mapping).
    private mutating func grow() {
        // Never with a migration in progress (it ends long before); were it so, finish it first.
        while oldSlots != nil { migrateStep() }
        oldSlots = slots
        oldMask = mask
        migrated = 0
        let newCapacity = capacity * 2
        slots = KeyHashTable.allocateSlots(newCapacity)
        mask = newCapacity - 1
        growAt = newCapacity / 4 * 3
    }

    /// Moves the next `migrationSlotsPerStep` slots of the old table; frees it when done.
    private mutating func migrateStep() {
        let old = oldSlots!
        let end = min(migrated + KeyHashTable.migrationSlotsPerStep, oldMask + 1)
        for j in migrated..<end {
            let slot = old[j]
            if slot.offset != 0 && slot.offset != KeyHashTable.movedMarker {
                placeInCurrent(slot)
                KeyHashTable.storeOffset(old + j, KeyHashTable.movedMarker)
            }
        }
        migrated = end
        if migrated > oldMask {
            if let reader = retiresTo {
                // Readers may still probe it: freed after their grace period, once the section ends.
                Unmanaged<ConcurrentReader>.fromOpaque(reader).takeUnretainedValue().tablesToRetire.append((old, oldMask + 1))
            } else {
                KeyHashTable.freeSlotsInBackground(old, oldMask + 1)
            }
            oldSlots = nil
            oldMask = 0
        }
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

    /// Checks the table's structure: the count, and that every key is reachable from its home
    /// slot (in the old table too, while one is being emptied).
    func checkInvariants() {
        var n = 0
        for i in 0..<capacity where slots[i].offset != 0 {
            n += 1
            precondition(slots[i].offset != KeyHashTable.movedMarker, "hash table: moved marker in the current table")
            // Every slot between home and i must be occupied (linear probing reachability).
            var j = Int(truncatingIfNeeded: slots[i].hash) & mask
            while j != i {
                precondition(slots[j].offset != 0, "hash table: broken probe run at \(j)")
                j = (j + 1) & mask
            }
        }
        if let old = oldSlots {
            for i in 0...oldMask where old[i].offset != 0 {
                if old[i].offset != KeyHashTable.movedMarker {
                    precondition(i >= migrated, "hash table: a key left behind in the old table")
                    n += 1
                }
                var j = Int(truncatingIfNeeded: old[i].hash) & oldMask
                while j != i {
                    precondition(old[j].offset != 0, "hash table: broken probe run in the old table at \(j)")
                    j = (j + 1) & oldMask
                }
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
import CLinux
