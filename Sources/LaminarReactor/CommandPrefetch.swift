import CLinux
import LaminarStore

/// Command lookahead for `Reactor.runRound`: a KV command's cache misses are started a few
/// commands before it runs, so they overlap instead of following one another. Measured with
/// `perf` on `bench-reactor --only kv` (10K keys): the reactor's time went to three misses per
/// command, each waiting for the one before — the key's bytes (last written on the producer's
/// core), the hash table slot, the record the slot names.
///
/// Three steps, each once the step before has had time to land: `bytesAhead` commands ahead,
/// the key's and a put's value's bytes; `slotAhead` ahead, the key is hashed and its table slot
/// (and its write-revision slot) fetched; `recordAhead` ahead, the slot's probe run (in cache
/// now) is read and the record of the slot holding the key's hash fetched
/// (`StateStore.prefetchLookup`).
/// Prefetches only: nothing read here is trusted, a wrong guess costs a wasted line. The
/// command's `keyBytes`/`valueBytes` are read, never its enum (a look into the enum's payload
/// copied it: a retain and a release per array).
enum CommandPrefetch {
    static let bytesAhead = 8
    static let slotAhead = 4
    static let recordAhead = 2

    /// Hashes kept from the slot step for the record step (`hashes` has `hashSlots` entries).
    static let hashSlots = 8

    /// Where a Swift array's reference count lies before its elements (its buffer object: type,
    /// reference count, count, capacity, elements). The reactor releases a command's key and
    /// value arrays, last retained on the producer's core: a release waited for that line to
    /// come over (perf: `swift_release` 5.5% of the reactor's samples in bench-reactor's KV
    /// case), so the bytes step fetches it for writing too. A hint only: were the layout
    /// different, a line would be fetched for nothing.
    static let arrayRefCountOffset = 8
    static let arrayElementsOffset = 32

    /// Called with the `i`-th command of a pop in hand (before it runs). `hashes`: scratch of
    /// `hashSlots` entries the caller keeps for the whole pop (an entry not written by the slot
    /// step, at a pop's start, only makes a wasted prefetch); `hasher`: the store's
    /// `lookupHasher`.
    @inline(__always)
    static func ahead(
        _ ring: SPSCRing<ReactorCommand>, max: Int, popped i: Int, store: any StateStore, hasher: KeyHasher,
        hashes: UnsafeMutablePointer<UInt64>
    ) {
        if let c = ring.peekDuringPop(max: max, popped: i, ahead: bytesAhead) {
            if let k = c[0].keyBytes {
                CLinux_prefetch(k)
                CLinux_prefetch_write(k - arrayElementsOffset + arrayRefCountOffset)
            }
            if let v = c[0].valueBytes {
                // A value up to 3 lines (the benchmark's 100 bytes); longer ones take their misses.
                CLinux_prefetch(v)
                CLinux_prefetch(v + 64)
                CLinux_prefetch(v + 128)
                CLinux_prefetch_write(v - arrayElementsOffset + arrayRefCountOffset)
            }
        }
        var slotOf: UInt64?
        if let c = ring.peekDuringPop(max: max, popped: i, ahead: slotAhead), let k = c[0].key {
            let h = hasher.hash(k)
            hashes[(i &+ slotAhead) & (hashSlots - 1)] = h
            slotOf = h
        }
        var recordOf: UInt64?
        if let c = ring.peekDuringPop(max: max, popped: i, ahead: recordAhead), c[0].keyBytes != nil {
            recordOf = hashes[(i &+ recordAhead) & (hashSlots - 1)]
        }
        if slotOf != nil || recordOf != nil { store.prefetchLookup(slotOf: slotOf, recordOf: recordOf) }
    }

    /// The `i`-th command's key hash for `Reactor.execute` (0 for a command without a key), after
    /// `ahead` for it: the slot step's, `slotAhead` commands before (every command of a pop from
    /// `slotAhead` on went through that step), else hashed now. The store then need not hash
    /// the key again.
    @inline(__always)
    static func keyHash(
        of command: borrowing ReactorCommand, popped i: Int, hasher: KeyHasher, hashes: UnsafeMutablePointer<UInt64>
    ) -> UInt64 {
        guard let k = command.key else { return 0 }
        return i >= slotAhead ? hashes[i & (hashSlots - 1)] : hasher.hash(k)
    }
}
