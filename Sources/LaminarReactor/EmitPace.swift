/// Spreads the rows of a big close over the time until the next one, so that the rounds that
/// emit them stay short (a POST waits for the round it lands in).
///
/// Without it a round emits as many rows as it ingested events (`Reactor.emitResultSlices`):
/// after a close of 650 K rows (1M keys, 1 s windows) every round did its events' work twice
/// over until the queue was empty, rounds grew and the POSTs they carried waited for them. Paced,
/// the rows of a close leave at a steady rate that empties the queue `paceFraction` of the way
/// to the next close (the processing time between the last two closes): the same work, spread.
///
/// Pacing applies only where it helps and can hold: a queue of more than `queueUnpacedMax` rows,
/// closes at least `intervalMinNs` apart (a changelog queues
/// rows every round; a replay of old events closes windows back to back), a round that carried
/// events (an idle reactor emits at once), and before the deadline (after it, the round's share
/// as without pacing). So a stream never emits less than without pacing for long, and the queue
/// stays bounded by what one interval closes.
///
/// Invariant: `deadlineNs` is 0 or the time by which the rows queued so far should be out.
struct EmitPace {
    /// Of the interval between closes, the part over which a close's rows are spread.
    static let paceFraction = 0.75
    /// Closes closer than this are not paced.
    static let intervalMinNs: UInt64 = 50_000_000
    /// Nor spread over more than this.
    static let spreadMaxNs: UInt64 = 2_000_000_000
    /// Rows a paced round emits at least (one store write and notification each).
    static let rowsMin = 1024
    /// A queue of at most this many rows is not paced: a few rounds' shares empty it, and
    /// spreading it would only make its rows later.
    static let queueUnpacedMax = 65_536

    /// When rows were last seen to arrive, and the processing time between the last two arrivals.
    private var lastQueuedNs: UInt64 = 0
    private var intervalNs: UInt64 = 0
    private var deadlineNs: UInt64 = 0
    /// When the rows were last paced (the pace counts the time since).
    private var lastNs: UInt64 = 0
    /// Rows pending after the last emit: more at the next look means rows arrived.
    private var knownRows = 0

    /// The rows to emit now out of `pending`, or nil for the round's share (no pacing).
    /// `roundHadEvents`: whether the round ingested any.
    mutating func allowance(pending: Int, nowNs: UInt64, roundHadEvents: Bool) -> Int? {
        if pending > knownRows {
            if lastQueuedNs != 0 { intervalNs = nowNs &- lastQueuedNs }
            lastQueuedNs = nowNs
            if intervalNs >= Self.intervalMinNs {
                if knownRows == 0 { lastNs = nowNs }
                deadlineNs = nowNs + Swift.min(UInt64(Double(intervalNs) * Self.paceFraction), Self.spreadMaxNs)
            } else {
                deadlineNs = 0
            }
        }
        knownRows = pending
        let since = lastNs
        lastNs = nowNs
        guard roundHadEvents, pending > Self.queueUnpacedMax, deadlineNs >= nowNs, deadlineNs > since else { return nil }
        let due = Double(pending) * Double(nowNs - since) / Double(deadlineNs - since)
        return Swift.max(Self.rowsMin, Int(due.rounded(.up)))
    }

    /// `pending` rows remain after the round's emits.
    mutating func emitted(remaining pending: Int) { knownRows = pending }
}
