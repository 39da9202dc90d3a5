/// The most recent idempotency keys of a stream or source, at most `max`, oldest forgotten first
/// (a ring: remembering a key is O(1) however many are kept). Checkpoints write `oldestFirst`
/// and recovery remembers the keys again in that order.
///
/// Invariants: `keys` holds exactly the elements of `ring`; until the ring is full `head` is 0
/// and the ring grows at its end; once full, `head` is the oldest key, overwritten next.
struct IdempotencyMemory {
    private var keys: Set<UInt64> = []
    private var ring: [UInt64] = []
    private var head = 0

    func contains(_ k: UInt64) -> Bool { keys.contains(k) }

    var count: Int { ring.count }

    var oldestFirst: [UInt64] { Array(ring[head...]) + Array(ring[..<head]) }

    mutating func remember(_ k: UInt64, max: Int) {
        precondition(max > 0, "a memory keeps at least one key")
        guard keys.insert(k).inserted else { return }
        if ring.count > max {  // the bound shrank: keep the newest
            let all = oldestFirst
            for old in all.dropLast(max) { keys.remove(old) }
            ring = Array(all.suffix(max))
            head = 0
        }
        if ring.count < max {
            precondition(head == 0, "the ring grows only until it is full")
            ring.append(k)
        } else {
            keys.remove(ring[head])
            ring[head] = k
            head = (head + 1) % max
        }
    }
}
