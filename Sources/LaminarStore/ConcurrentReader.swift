#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLinux
import Synchronization

/// What a `ConcurrentReader.read` found: the key's current value and version (durable), its
/// absence (durable too), or `fallback`: the caller must ask the store's writer (the reactor)
/// as it would have without this reader.
public enum ConcurrentRead {
    case value(StoredValue, version: Revision)
    case notFound
    case fallback
}

/// Point reads of a `LogStore` from other threads (the HTTP I/O threads), concurrently with its
/// one writer, so that a GET of a durable key is answered on the thread that parsed it.
///
/// It answers only what the writer would answer at once, and the same way
/// (`LogStore.read(_:hash:durability:)`): a key whose current record has no expiry and, when the
/// store tracks durability (`requiresDurable`: `fsync always`), a revision at or below the
/// durable one; a key that is absent while its write slot is durable. Anything else is
/// `.fallback`: a key whose last write is not durable yet, one with a TTL, a store closed or
/// failed, a read that lost its race with the writer `attemptsMax` times.
///
/// Invariants, and why the reads are sound:
/// - **Seqlock.** `sequence` is odd while the writer changes the hash table's structure (a
///   growth or a step of one, a delete's backward shift, a batch), the write slots along with
///   them, or what is published here (table and region pointers, the hash seed, `enabled`): the
///   writer makes it odd before (`beginWrite`) and even after (`endWrite`): two plain stores on
///   x86-64. A read takes an even value, reads, and counts only if `sequence` still has that
///   value afterwards (else retries). A put that moves no slot (most of them) takes no section:
///   it fills an empty slot (hash, then offset) or repoints one, and notes the write's revision
///   in its write slot: single-word stores, each of which leaves the table valid, so a read sees
///   the key before or after the put, never anything else (an empty slot a probe passes is never
///   inside the probe run of a present key). Every word the writer changes and a reader loads is
///   accessed atomically (relaxed; a slot's offset with release/acquire, loaded before its hash),
///   so a torn read is detected and never undefined.
/// - **Records are immutable once a slot points at them**: the writer stores a slot's offset
///   with release after writing the record; a reader loads it with acquire, so the record's bytes
///   (key, revision, expiry, value) are visible and never change. A table and its region are
///   replaced together (compaction, restore): a table only ever points into its own region, so a
///   validated snapshot of both stays self-consistent while the reader probes it.
/// - **Lifetime.** A reader is inside a read section for the whole of a `read`: its word in
///   `readerWords` is odd meanwhile. Memory a reader may have loaded a pointer to (a hash table replaced
///   by a growth or a compaction, a region, the store's last table at its end) is freed only
///   after a grace period (`retire`): every reader that was inside a section when the writer
///   unpublished it has left it. The writer never waits: it frees at once when no reader is
///   inside, else a short-lived thread waits and frees. The value a read returns pins its region
///   (`StoredValue`, a retain made inside the section, while the region cannot be released).
/// - Readers never block the writer and never write anything it reads.
///
/// One per store (`LogStore.concurrentReader`); readers register a slot each (`register`), at
/// most `readersMax`, and use it from one thread at a time.
public final class ConcurrentReader: @unchecked Sendable {
    /// Registered readers at most (I/O threads, tests).
    public static let readersMax = 64
    /// Tries of a read that met the writer mid-change before it falls back.
    static let attemptsMax = 8
    /// Words per reader (one cache line each, so readers do not share lines).
    static let wordsPerReader = 8

    /// Whether a found key must be durable to be answered here (the reactor checks durability:
    /// `fsync always`). Otherwise everything applied is answered, as the reactor does.
    public let requiresDurable: Bool

    /// The words readers load, in memory of their own (not beside the object's reference count),
    /// cache-line aligned: line 0 the sequence and what it guards (read together), line 1 the
    /// durable revision (written once per sync).
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private static let sequenceWord = 0
    private static let slotsWord = 1
    private static let maskWord = 2
    private static let oldSlotsWord = 3
    private static let oldMaskWord = 4
    private static let baseWord = 5
    /// The `MappedRegion` of `base`, unretained (the store holds it; a retired one is held until
    /// its grace period is over).
    private static let regionWord = 6
    private static let hashSeedWord = 7
    /// 1 while reads are on (the store open and not failed).
    private static let enabledWord = 8
    /// The store's `durableRevision` (only grows; read outside the seqlock).
    private static let durableWord = 16
    private static let wordCount = 24

    @inline(__always) private var sequence: UnsafeMutablePointer<Atomic<UInt64>> { words + Self.sequenceWord }
    @inline(__always) private func load(_ word: Int) -> UInt64 { words[word].load(ordering: .relaxed) }
    @inline(__always) private func store(_ word: Int, _ value: UInt64) { words[word].store(value, ordering: .relaxed) }

    /// The store's durable revision as readers see it.
    var durableRevision: Revision {
        get { words[Self.durableWord].load(ordering: .acquiring) }
        set { words[Self.durableWord].store(newValue, ordering: .releasing) }
    }

    /// The store's per-hash write revisions (`LogStore.writeSlots`); owned here, so that it lives
    /// as long as any reader.
    let writeSlots: UnsafeMutablePointer<Revision>
    private let readerWords: UnsafeMutablePointer<Atomic<UInt64>>
    private let readersRegistered = Atomic<Int>(0)

    #if DEBUG
    /// Tests: called by a read between its probe and the check that nothing changed meanwhile.
    var afterProbe: (() -> Void)?
    #endif

    /// Hash tables whose growth finished during the current write section (`KeyHashTable`'s
    /// migration), to retire at its end. Writer only.
    var tablesToRetire: [(slots: UnsafeMutablePointer<KeyHashTable.Slot>, capacity: Int)] = []

    init(requiresDurable: Bool, writeSlotCount: Int) {
        self.requiresDurable = requiresDurable
        writeSlots = .allocate(capacity: writeSlotCount)
        writeSlots.initialize(repeating: 0, count: writeSlotCount)
        words = Self.allocateWords(Self.wordCount)
        readerWords = Self.allocateWords(Self.readersMax * Self.wordsPerReader)
    }

    deinit {
        writeSlots.deallocate()
        words.deinitialize(count: Self.wordCount)
        UnsafeMutableRawPointer(words).deallocate()
        readerWords.deinitialize(count: Self.readersMax * Self.wordsPerReader)
        UnsafeMutableRawPointer(readerWords).deallocate()
    }

    /// `count` zeroed atomic words on cache-line boundaries.
    private static func allocateWords(_ count: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: 64)
        let words = raw.bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for i in 0..<count { (words + i).initialize(to: Atomic(0)) }
        return words
    }

    // MARK: - Readers

    /// A reader's slot: use it from one thread at a time, while something else holds the
    /// reader (the server's runtime, a test): the handle does not retain it, so that a read
    /// touches no reference count shared with other threads.
    public struct Handle: @unchecked Sendable {
        public unowned(unsafe) let reader: ConcurrentReader
        let index: Int
    }

    /// A slot for one more reader thread, or nil when `readersMax` are taken.
    public func register() -> Handle? {
        let index = readersRegistered.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
        guard index < Self.readersMax else { return nil }
        return Handle(reader: self, index: index)
    }

    @inline(__always)
    fileprivate func word(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { readerWords + index &* Self.wordsPerReader }

    /// The current value and version of `key`, its durable absence, or `.fallback`.
    public func read(_ key: UnsafeRawBufferPointer, _ handle: Handle) -> ConcurrentRead {
        let w = word(handle.index)
        let entered = w.pointee.load(ordering: .relaxed) &+ 1
        w.pointee.store(entered, ordering: .relaxed)
        // Pairs with the writer's fence in `gracePeriod`: either it sees this reader inside, or
        // this reader sees what the writer unpublished before it.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        defer { w.pointee.store(entered &+ 1, ordering: .releasing) }
        for _ in 0..<Self.attemptsMax {
            let s1 = sequence.pointee.load(ordering: .acquiring)
            if s1 & 1 != 0 {
                CLinux_cpu_relax()
                continue
            }
            guard load(Self.enabledWord) != 0 else { return .fallback }
            let slots = UnsafeMutablePointer<KeyHashTable.Slot>(bitPattern: UInt(load(Self.slotsWord)))
            let mask = Int(truncatingIfNeeded: load(Self.maskWord))
            let old = UnsafeMutablePointer<KeyHashTable.Slot>(bitPattern: UInt(load(Self.oldSlotsWord)))
            let oldMask = Int(truncatingIfNeeded: load(Self.oldMaskWord))
            let base = UnsafeRawPointer(bitPattern: UInt(load(Self.baseWord)))
            let region = UInt(load(Self.regionWord))
            let seed = load(Self.hashSeedWord)
            // The snapshot must be whole before any pointer in it is followed.
            atomicMemoryFence(ordering: .acquiring)
            guard sequence.pointee.load(ordering: .relaxed) == s1, let slots, let base, region != 0 else { continue }
            let hash = KeyHasher(seed: seed).hash(key)
            var offset = Self.probe(slots, mask: mask, hash: hash, key: key, base: base)
            if offset == 0, let old { offset = Self.probe(old, mask: oldMask, hash: hash, key: key, base: base) }
            if offset == UInt64.max { continue }  // a probe run that never ended: torn
            let writeSlot = CLinux_load_relaxed(writeSlots + LogStore.writeSlot(hash))
            #if DEBUG
            afterProbe?()
            #endif
            atomicMemoryFence(ordering: .acquiring)
            guard sequence.pointee.load(ordering: .relaxed) == s1 else { continue }
            let durable = durableRevision
            if offset == 0 {
                if requiresDurable && writeSlot > durable { return .fallback }
                return .notFound
            }
            let p = base + Int(offset)
            let version = RecordFormat.revision(p)
            guard RecordFormat.expiresAtMs(p) == 0, !requiresDurable || version <= durable else { return .fallback }
            // Retained inside the section: the region is released only after it ends.
            let owner = Unmanaged<MappedRegion>.fromOpaque(UnsafeRawPointer(bitPattern: region)!).takeUnretainedValue()
            return .value(StoredValue(pinning: owner, bytes: RecordFormat.value(p)), version: version)
        }
        return .fallback
    }

    /// The offset of `key`'s record in one table (`mask + 1` slots) as it is now, 0 if absent,
    /// `UInt64.max` if the probe ran through the whole table (only in a torn view).
    @inline(__always)
    private static func probe(
        _ slots: UnsafeMutablePointer<KeyHashTable.Slot>, mask: Int, hash: UInt64, key: UnsafeRawBufferPointer, base: UnsafeRawPointer
    ) -> UInt64 {
        var i = Int(truncatingIfNeeded: hash) & mask
        var left = mask
        while true {
            let offset = KeyHashTable.loadOffset(slots + i)
            if offset == 0 { return 0 }
            // A moved slot of a table that became the old one while this reader held it.
            if offset != KeyHashTable.movedMarker && KeyHashTable.loadHash(slots + i) == hash
                && KeyHashTable.keyEquals(base + Int(offset), key) { return offset }
            if left == 0 { return UInt64.max }
            left &-= 1
            i = (i &+ 1) & mask
        }
    }

    // MARK: - Writer

    /// Starts a write section (the store's writer only): readers retry until `endWrite`.
    @inline(__always)
    func beginWrite() {
        sequence.pointee.store(sequence.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
    }

    @inline(__always)
    func endWrite() {
        sequence.pointee.store(sequence.pointee.load(ordering: .relaxed) &+ 1, ordering: .releasing)
    }

    /// Publishes the table and region readers probe (inside a write section).
    func publish(table: KeyHashTable, region: MappedRegion, hasher: KeyHasher) {
        store(Self.slotsWord, UInt64(UInt(bitPattern: table.slots)))
        store(Self.maskWord, UInt64(table.mask))
        store(Self.oldSlotsWord, UInt64(UInt(bitPattern: table.oldSlots)))
        store(Self.oldMaskWord, UInt64(table.oldMask))
        store(Self.baseWord, UInt64(UInt(bitPattern: region.base)))
        store(Self.regionWord, UInt64(UInt(bitPattern: Unmanaged.passUnretained(region).toOpaque())))
        store(Self.hashSeedWord, hasher.seed)
    }

    /// Turns the reads on or off (inside a write section).
    func setEnabled(_ on: Bool) { store(Self.enabledWord, on ? 1 : 0) }

    /// The readers inside a read section now, with the value of their word, after everything the
    /// writer unpublished before the call (writer only; no allocation when none is).
    func gracePeriod() -> GracePeriod {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let n = min(readersRegistered.load(ordering: .sequentiallyConsistent), Self.readersMax)
        var inside: [(index: Int, value: UInt64)] = []
        for i in 0..<n {
            let v = word(i).pointee.load(ordering: .acquiring)
            if v & 1 != 0 { inside.append((i, v)) }
        }
        return GracePeriod(reader: self, inside: inside)
    }

    /// Runs `free` once no reader can still hold what the writer unpublished so far: at once on
    /// this thread when no reader is inside a section and `background` is false; else on a
    /// short-lived thread at the lowest priority, after the readers inside have left.
    func retire(background: Bool, _ free: @escaping () -> Void) {
        let grace = gracePeriod()
        if grace.isOver && !background { return free() }
        let started = ServerThread.start(name: "laminar-retire", nice: 19, detached: true) {
            grace.wait()
            free()
        }
        if started == nil {
            grace.wait()
            free()
        }
    }

    /// Retires the tables `tablesToRetire` collected (after `endWrite`).
    func retireTables() {
        let tables = tablesToRetire
        tablesToRetire.removeAll()
        for (slots, capacity) in tables {
            let address = UInt(bitPattern: slots)
            let big = capacity * MemoryLayout<KeyHashTable.Slot>.stride >= KeyHashTable.hugePageBytes
            retire(background: big) { KeyHashTable.freeSlots(UnsafeMutablePointer(bitPattern: address)!, capacity) }
        }
    }
}

/// The readers that were inside a read section when the writer started it
/// (`ConcurrentReader.gracePeriod`); it is over once each has left that section.
struct GracePeriod: @unchecked Sendable {
    let reader: ConcurrentReader
    let inside: [(index: Int, value: UInt64)]

    var isOver: Bool { inside.isEmpty }

    /// Waits until every reader inside has left its section (any thread but the writer's).
    func wait() {
        for (index, value) in inside {
            while reader.word(index).pointee.load(ordering: .acquiring) == value { usleep(20) }
        }
    }
}
