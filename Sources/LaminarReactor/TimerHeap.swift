/// A min-heap of processing-time timers, owned by the reactor thread. Ties fire in scheduling
/// order. Cancelling is lazy: a fired timer's owner checks that it is still wanted.
struct TimerHeap<Payload> {
    struct Entry {
        var deadlineMs: Int64
        var sequence: UInt64
        var payload: Payload
        func precedes(_ other: Entry) -> Bool {
            deadlineMs != other.deadlineMs ? deadlineMs < other.deadlineMs : sequence < other.sequence
        }
    }

    private(set) var entries: [Entry] = []
    private var nextSequence: UInt64 = 0

    var count: Int { entries.count }
    var nextDeadlineMs: Int64? { entries.first?.deadlineMs }

    mutating func schedule(atMs deadline: Int64, _ payload: Payload) {
        entries.append(Entry(deadlineMs: deadline, sequence: nextSequence, payload: payload))
        nextSequence += 1
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard entries[i].precedes(entries[parent]) else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest timer if it is due at `nowMs`.
    mutating func popDue(nowMs: Int64) -> Payload? {
        guard let first = entries.first, first.deadlineMs <= nowMs else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < entries.count && entries[l].precedes(entries[m]) { m = l }
                if r < entries.count && entries[r].precedes(entries[m]) { m = r }
                if m == i { break }
                entries.swapAt(i, m)
                i = m
            }
        }
        return first.payload
    }

    func checkInvariants() {
        for i in 1..<max(entries.count, 1) where i < entries.count {
            precondition(!entries[i].precedes(entries[(i - 1) / 2]), "heap order broken at \(i)")
        }
    }
}
