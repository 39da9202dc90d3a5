import LaminarReactor

/// The I/O thread's side of the debug trace of single-key reads (`ReadStageTrace`,
/// `LAMINAR_DEBUG_READ_STAGES=1`): notes when a loop iteration began and when each traced read
/// was submitted, then, as its completion is taken and its answer flushed, records its stages.
///
/// Thread ownership: the loop thread of its `RequestHandler`. Bounds: one stamp per KV token slot
/// below `ReadStageTrace.slots`; the reads answered between two flushes.
struct ReadTraceRecorder {
    let trace: ReadStageTrace
    private var iterationBeganNs: UInt64 = 0
    private var pollNs: UInt64 = 0
    /// By KV token slot: the start of the iteration in which the read arrived (0: not traced).
    private var receivedNs = [UInt64](repeating: 0, count: ReadStageTrace.slots)
    /// Reads answered since the last flush: when they arrived and when their completion was taken.
    private var awaitingFlush: [(received: UInt64, polled: UInt64)] = []

    init(trace: ReadStageTrace) {
        self.trace = trace
        awaitingFlush.reserveCapacity(256)
    }

    mutating func iterationBegan() { iterationBeganNs = ReadStageTrace.nowNs() }

    /// A read went to the reactor with KV token slot `slot`.
    mutating func submitted(slot: Int) {
        if slot < ReadStageTrace.slots { receivedNs[slot] = iterationBeganNs }
    }

    /// Completions are about to be taken from the ring.
    mutating func polling() { pollNs = ReadStageTrace.nowNs() }

    /// The completion of the read in `slot` (handed to the handler at `handledNs`) was taken.
    mutating func completed(slot: Int, handledNs: UInt64) {
        guard slot < ReadStageTrace.slots else { return }
        let received = receivedNs[slot]
        receivedNs[slot] = 0
        guard received > 0, let (applied, delivered) = trace.reactorStamps(slot: slot),
              handledNs >= received, applied >= handledNs, pollNs >= delivered else { return }
        trace.record(.receive, handledNs - received)
        trace.record(.queue, applied - handledNs)
        trace.record(.round, delivered - applied)
        trace.record(.wake, pollNs - delivered)
        awaitingFlush.append((received, pollNs))
    }

    /// The output of the connections marked for a flush was written (`endOfIteration`: the
    /// iteration's last flush).
    mutating func flushed(endOfIteration: Bool) {
        let now = ReadStageTrace.nowNs()
        if endOfIteration { trace.record(.ioIteration, now - iterationBeganNs) }
        for (received, polled) in awaitingFlush {
            trace.record(.send, now - polled)
            trace.record(.total, now - received)
        }
        awaitingFlush.removeAll(keepingCapacity: true)
    }
}
