/// The rows a `WindowOperator` produced that its caller has not taken, in order: rows already
/// built (changelog rows, session rows) and closed tumbling/hopping windows whose rows are built
/// only as they are taken (`WindowOperator.takeRows`). Closing a window of a million groups so
/// costs nothing at once: the reactor takes its rows in bounded slices, one per round.
///
/// Invariants: `rowCount` is the number of rows the items from `head` on still hold; a window
/// item's pane keeps its pool entries (sketches, HLLs) until its last row is built, then the
/// operator releases them and keeps the pane for reuse.
struct RowQueue {
    /// A closed window: its groups' merged aggregates; rows for slots `next..<pane.count` are
    /// still to build.
    struct ClosedWindow {
        var pane: Pane
        var startMs: Int64
        var endMs: Int64
        var next: Int
    }

    enum Item {
        case row(WindowResult)
        case window(ClosedWindow)
        case taken
    }

    var items: [Item] = []
    var head = 0
    private(set) var rowCount = 0

    var isEmpty: Bool { rowCount == 0 }

    mutating func append(_ row: WindowResult) {
        items.append(.row(row))
        rowCount += 1
    }

    /// Queues the rows of a closed window (`pane.count` of them, none if it is empty).
    mutating func appendWindow(_ pane: Pane, startMs: Int64, endMs: Int64) {
        items.append(.window(ClosedWindow(pane: pane, startMs: startMs, endMs: endMs, next: 0)))
        rowCount += pane.count
    }

    /// `n` rows of the head item were taken.
    mutating func took(_ n: Int) { rowCount -= n }

    /// The head item is done: it is dropped, and the array emptied once all are.
    mutating func advance() {
        items[head] = .taken
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.capacity <= 1 << 16)
            head = 0
        }
    }

    /// Whether every item still queued is a closed window (no built rows): a checkpoint may
    /// then hold the queue as it is (`WindowOperator.checkpointCopy`).
    var holdsOnlyClosedWindows: Bool {
        for i in head..<items.count {
            if case .row = items[i] { return false }
        }
        return true
    }

    /// The closed windows still queued, each with the slot of its next row to build.
    var queuedWindows: [ClosedWindow] {
        (head..<items.count).compactMap { i in
            if case .window(let w) = items[i], w.next < w.pane.count { return w }
            return nil
        }
    }

    /// The window end of the first queued row that closes a window (a `final` row, or any row of
    /// `emit: final`), `nil` if none.
    var firstClosingEndMs: Int64? {
        for i in head..<items.count {
            switch items[i] {
            case .row(let r) where r.op == nil || r.isFinal: return r.endMs
            case .window(let w) where w.next < w.pane.count: return w.endMs
            default: continue
            }
        }
        return nil
    }
}
