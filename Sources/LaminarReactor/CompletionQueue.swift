/// Completions the reactor made for one producer that wait to be pushed into its completion
/// ring (`ReactorProducer.outbox`, `.immediate`): a fixed array, allocated once, whose elements
/// are moved in and moved out, never copied (a copy of a completion retains what its result
/// holds — a value's mapping, an array — and the copy's destruction releases it again: with an
/// `Array` and `for c in array` each completion cost both, ~120 instructions per command).
///
/// Each entry carries whether it is a mutation (or a read that may show one): what a failed
/// commit turns into a failure (`failMutations`).
///
/// Capacity: one entry per command in flight is enough — a command has one completion, and the
/// producer never has more than `ReactorLimits.commandsInFlightMax` commands awaiting theirs
/// (notifications go elsewhere). A full queue is a bug in that accounting (`precondition`).
///
/// Reactor thread only.
struct CompletionQueue: ~Copyable {
    private struct Entry {
        var completion: ReactorCompletion
        var mutation: Bool
    }

    private let entries: UnsafeMutablePointer<Entry>
    let capacity: Int
    /// Entries `0..<count` are initialized.
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
    }

    deinit {
        entries.deinitialize(count: count)
        entries.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func append(_ completion: consuming ReactorCompletion, mutation: Bool) {
        precondition(count < capacity, "completion queue overflow: in-flight accounting broken")
        (entries + count).initialize(to: Entry(completion: completion, mutation: mutation))
        count += 1
    }

    /// Replaces the result of every mutation entry at index `start` or later with `result`.
    mutating func failMutations(from start: Int, with result: ReactorResult) {
        var i = start
        while i < count {
            if entries[i].mutation { entries[i].completion.result = result }
            i += 1
        }
    }

    /// Moves the first `n` entries into `ring` in order, with one publishing store, and moves the
    /// rest to the front. Every one must fit (the in-flight accounting guarantees it).
    @inline(__always)
    mutating func drain(_ n: Int, into ring: SPSCRing<ReactorCompletion>) {
        precondition(n >= 0 && n <= count)
        guard n > 0 else { return }
        let entries = self.entries
        let pushed = ring.push(count: n) { (entries + $0).move().completion }
        precondition(pushed == n, "completion ring overflow: in-flight accounting broken")
        if n < count { entries.moveInitialize(from: entries + n, count: count - n) }
        count -= n
    }

    /// The result at `index` (tests).
    func result(at index: Int) -> ReactorResult {
        precondition(index >= 0 && index < count)
        return entries[index].completion.result
    }
}
