import LaminarFormats
import LaminarStore

/// Event-time windows of one stream as a pure value: events in, result rows out; no threads, no
/// store, no clock. Tumbling and hopping windows are `PaneWindows`, sessions `SessionWindows`;
/// the aggregates of a group are a slot laid out by `AccumulatorLayout`.
///
/// Semantics (the reference model in the tests says the same; `proto-docs/streams.md`):
/// - events are taken in order; an event is late, counted and dropped (and listed in
///   `lateIndices` when `keepLate`), when every window it belongs to has closed at its arrival:
///   tumble/hop when the end of its latest window (`floor(ts / slide)·slide + size`) is
///   `<= watermark`, sessions when `ts + gap <= watermark`;
/// - after each event, `watermark = max(watermark, ts − allowedLateness)` (it never goes back),
///   and every window whose end is `<= watermark` closes at once (before the next event):
///   `emit: final` gives its rows then, a changelog its `final` rows;
/// - a changelog (`emit: changes`/`every`) also gives, at each `flushChanges`, an `insert` or
///   `update` (with `before`) for each open window whose values changed since its last row, and
///   a `delete` for each emitted session merged away or restarted earlier.
/// Rows pile up in `output` until the caller takes them (`takeRows`); a closed tumbling or
/// hopping window is queued whole and its rows are built as they are taken.
public struct WindowOperator {
    public let definition: StreamDefinition
    let layout: AccumulatorLayout
    public let allowedLatenessMs: Int64
    let groupAll: Bool
    let changelog: Bool
    /// A `delete` row carries the values last emitted in `before` (a stream with `having` needs
    /// them to know whether the deleted row was shown).
    let deletesCarryValues: Bool
    public var keepLate = false
    public internal(set) var watermarkMs: Int64 = .min
    public internal(set) var maxEventTimeMs: Int64 = .min
    public internal(set) var eventsAccepted: UInt64 = 0
    public internal(set) var eventsLate: UInt64 = 0
    public internal(set) var windowsClosed: UInt64 = 0
    /// Events seen so far: the next event's arrival number (`first`/`last` ties).
    var arrivals: UInt64 = 0
    var keys = KeyInterner()
    /// Scratch: the key hashes of the batch being ingested (`hashKeys`).
    private var keyHashes: [UInt64] = []
    /// Seeds the key hash of `count_distinct` (kept in checkpoints, so HLLs merge across restarts).
    var distinctHasher = KeyHasher(seed: UInt64.random(in: 0...UInt64.max))
    var pools = AccumulatorPools()
    var panes: PaneWindows
    var sessions: SessionWindows
    let isSession: Bool
    /// Changelog: the values last emitted for each open (window start, group) of tumble/hop.
    var emitted = EmittedWindows()
    /// Changelog: session values last emitted, by session id.
    var sessionEmitted: [Int: [Double]] = [:]
    var dirtyPanes = false
    /// Rows produced and not yet taken (closed windows' rows not yet built).
    var output = RowQueue()
    /// Indices (in the last batch) of its late events, when `keepLate`.
    public private(set) var lateIndices: [Int] = []
    private var nextCloseAtMs: Int64 = .max
    /// Groups of the tumbling or hopping window closed last (not checkpointed: 0 after a restart
    /// until the next close); `Reactor.checkpointEntries` reads it.
    public private(set) var lastClosedGroups = 0
    /// Scratch: one row's values (`takeClosedRows`).
    private var valueScratch: [Double] = []

    /// `nullable`, `nonNullCounts`: fields computed by expressions that may be null (NaN), and
    /// the `count` aggregates that count only their non-null values (`AccumulatorLayout`).
    public init(definition: StreamDefinition, nullable: Set<Int> = [], nonNullCounts: Set<Int> = []) {
        self.definition = definition
        layout = AccumulatorLayout(definition: definition, nullable: nullable, nonNullCounts: nonNullCounts)
        allowedLatenessMs = definition.allowedLatenessMs
        groupAll = definition.groupBy == .all
        changelog = definition.emit != .final
        deletesCarryValues = definition.having != nil
        keepLate = definition.lateData == .keep
        switch definition.window {
        case .tumble(let size):
            panes = PaneWindows(sizeMs: size, slideMs: size); sessions = SessionWindows(gapMs: 1); isSession = false
        case .hop(let size, let slide):
            panes = PaneWindows(sizeMs: size, slideMs: slide); sessions = SessionWindows(gapMs: 1); isSession = false
        case .session(let gap):
            panes = PaneWindows(sizeMs: 1, slideMs: 1); sessions = SessionWindows(gapMs: gap); isSession = true
        }
    }

    /// Open panes (tumble/hop: the open windows of a tumbling stream) or open sessions.
    public var openWindowCount: Int { isSession ? sessions.openCount : panes.panes.count }
    public var keyCount: Int { groupAll ? 0 : keys.count }

    /// Groups a checkpoint writes: those of open panes (tumble/hop) or open sessions.
    var checkpointGroups: Int { isSession ? sessions.openCount : panes.panes.reduce(0) { $0 + $1.count } }

    /// Whether a batch of `events` new events can never exceed `keysMax` keys (conservative).
    public func wouldFit(events: Int, keysMax: Int) -> Bool { groupAll || keys.count + events <= keysMax }

    /// Adds a batch's events; returns how many were accepted and how many were late. The caller
    /// has checked times, values and field count, and `wouldFit`, so a batch is taken whole.
    public mutating func ingest(_ events: EventBatch.EventView, keysMax: Int) -> (accepted: Int, late: Int) {
        precondition(events.fieldCount == definition.fields.count, "caller checks the field count")
        lateIndices.removeAll(keepingCapacity: true)
        let late = isSession ? ingestSessions(events, keysMax: keysMax) : ingestPanes(events, keysMax: keysMax)
        eventsLate += UInt64(late)
        eventsAccepted += UInt64(events.count - late)
        return (events.count - late, late)
    }

    /// Event `i`'s group (its key's id; the key hashed by `hashKeys`), and its key hashed for
    /// `count_distinct` (0 when not asked for).
    @inline(__always)
    private mutating func group(_ events: EventBatch.EventView, _ i: Int, keysMax: Int) -> (UInt32, UInt64) {
        let key = events.key(i)
        let hash: UInt64 = layout.hllBase >= 0 ? distinctHasher.hash(key) : 0
        if groupAll { return (0, hash) }
        if i + WindowOperator.prefetchDistance < events.count { keys.prefetch(keyHashes[i + WindowOperator.prefetchDistance]) }
        if keys.count > WindowOperator.deepPrefetchKeys {
            // The key's offset and bytes are cache misses too with this many keys.
            if i + 4 < events.count { keys.prefetchKey(keyHashes[i + 4], bytes: false) }
            if i + 2 < events.count { keys.prefetchKey(keyHashes[i + 2], bytes: true) }
        }
        guard let id = keys.intern(key, hash: keyHashes[i], limit: keysMax) else { preconditionFailure("caller must check wouldFit before ingest") }
        return (id, hash)
    }

    /// Hashes every event's key into `keyHashes` (a column at a time: the lookups that follow
    /// prefetch their table slot a few events ahead).
    private mutating func hashKeys(_ events: EventBatch.EventView) {
        if keyHashes.count < events.count { keyHashes = Array(repeating: 0, count: events.count) }
        let hasher = keys.hasher
        keyHashes.withUnsafeMutableBufferPointer { h in
            for i in 0..<events.count { h[i] = hasher.hash(events.key(i)) }
        }
    }

    /// How many events ahead the key table's slot is prefetched.
    static let prefetchDistance = 8
    /// Above this many keys the key's offset and bytes are prefetched as well
    /// (`KeyInterner.prefetchKey`): the table no longer fits the caches.
    static let deepPrefetchKeys = 1 << 16

    private mutating func ingestPanes(_ events: EventBatch.EventView, keysMax: Int) -> Int {
        var late = 0
        var cached = -1
        let size = panes.sizeMs, slide = panes.slideMs
        let n = events.count
        // A local copy: the closures below would otherwise copy `self.layout` (retaining its
        // arrays) for every event.
        let layout = self.layout
        if !groupAll {
            hashKeys(events)
            for i in 0..<Swift.min(n, WindowOperator.prefetchDistance) { keys.prefetch(keyHashes[i]) }
        }
        for i in 0..<n {
            let ts = events.timestamp(i)
            let start = PaneWindows.floor(ts, slide)
            if start + size <= watermarkMs {
                late += 1
                if keepLate { lateIndices.append(i) }
            } else {
                let (g, hllHash) = group(events, i, keysMax: keysMax)
                if cached < 0 || cached >= panes.panes.count || panes.panes[cached].startMs != start {
                    cached = panes.paneIndex(start: start, watermark: watermarkMs)
                    if cached == 0 { nextCloseAtMs = panes.nextCloseAtMs }
                }
                let s = panes.slot(pane: cached, group: g, layout: layout, pools: &pools)
                let arrival = arrivals
                panes.panes[cached].acc.withUnsafeMutableBufferPointer { b in
                    layout.add(b.baseAddress! + s * layout.width, events, i, ts: ts, arrival: arrival, keyHash: hllHash, pools: &pools)
                }
                if changelog { panes.panes[cached].markDirty(s); dirtyPanes = true }
            }
            arrivals += 1
            if ts > maxEventTimeMs {
                maxEventTimeMs = ts
                let w = ts - allowedLatenessMs
                if w > watermarkMs {
                    watermarkMs = w
                    if w >= nextCloseAtMs { closeReady(); cached = -1 }
                }
            }
        }
        return late
    }

    private mutating func ingestSessions(_ events: EventBatch.EventView, keysMax: Int) -> Int {
        var late = 0
        let gap = sessions.gapMs
        let n = events.count
        let layout = self.layout  // as in `ingestPanes`
        if !groupAll {
            hashKeys(events)
            for i in 0..<Swift.min(n, WindowOperator.prefetchDistance) { keys.prefetch(keyHashes[i]) }
        }
        for i in 0..<n {
            let ts = events.timestamp(i)
            if ts + gap <= watermarkMs {
                late += 1
                if keepLate { lateIndices.append(i) }
            } else {
                let (g, hash) = group(events, i, keysMax: keysMax)
                let s = sessions.place(ts: ts, group: g, layout: layout, pools: &pools)
                if changelog && !sessions.mergedAway.isEmpty {
                    // Each emitted session merged away is deleted; its last values no longer hold.
                    for gone in sessions.mergedAway {
                        let k = Int(gone)
                        sessions.dirtyMark[k] = false
                        guard sessions.emittedStart[k] != .min else { continue }
                        output.append(WindowResult(key: rowKey(g), startMs: sessions.emittedStart[k], endMs: sessions.end[k], values: [], op: .delete,
                            before: deletesCarryValues ? sessionEmitted[k] : nil))
                        sessionEmitted[k] = nil
                    }
                }
                let arrival = arrivals
                sessions.acc.withUnsafeMutableBufferPointer { b in
                    layout.add(b.baseAddress! + s * layout.width, events, i, ts: ts, arrival: arrival, keyHash: hash, pools: &pools)
                }
                if changelog { sessions.markDirty(s) }
                if sessions.nextCloseAtMs < nextCloseAtMs { nextCloseAtMs = sessions.nextCloseAtMs }
            }
            arrivals += 1
            if ts > maxEventTimeMs {
                maxEventTimeMs = ts
                let w = ts - allowedLatenessMs
                if w > watermarkMs {
                    watermarkMs = w
                    if w >= nextCloseAtMs { closeReady() }
                }
            }
        }
        return late
    }

    /// Moves the watermark forward to `ms` (never back) and closes what it passes.
    public mutating func advanceWatermark(toMs ms: Int64) {
        if ms > watermarkMs {
            watermarkMs = ms
            closeReady()
        }
    }

    /// The end of the oldest open window, if any (the idle timer aims at it).
    public var oldestOpenWindowEndMs: Int64? {
        let at = isSession ? sessions.nextCloseAtMs : panes.nextCloseAtMs
        return at == .max ? nil : at
    }

    mutating func refreshNextClose() {
        nextCloseAtMs = isSession ? sessions.nextCloseAtMs : panes.nextCloseAtMs
    }

    /// Rows produced and not yet taken.
    public var rowsQueued: Int { output.rowCount }

    /// The window end of the first queued row that closes a window, `nil` if none.
    public var firstQueuedCloseEndMs: Int64? { output.firstClosingEndMs }

    /// Takes every row produced so far (tests; the reactor takes them in slices, `takeRows`).
    public mutating func takeOutput() -> [WindowResult] { takeRows(max: .max) }

    /// Takes up to `max` rows, in order, building those of closed windows now (no allocation
    /// when there are none, as after most batches).
    public mutating func takeRows(max: Int) -> [WindowResult] {
        guard output.rowCount > 0, max > 0 else { return [] }
        var rows: [WindowResult] = []
        rows.reserveCapacity(Swift.min(max, output.rowCount))
        while rows.count < max, output.head < output.items.count {
            switch output.items[output.head] {
            case .row(let r):
                rows.append(r)
                output.took(1)
                output.advance()
            case .window(var w):
                let stop = Swift.min(w.pane.count, w.next + (max - rows.count))
                w.pane.acc.withUnsafeBufferPointer { b in
                    for s in w.next..<stop { rows.append(closedRow(b.baseAddress! + s * layout.width, group: w.pane.groupIds[s], startMs: w.startMs, endMs: w.endMs)) }
                }
                output.took(stop - w.next)
                w.next = stop
                if stop == w.pane.count {
                    output.advance()
                    panes.giveBack(w.pane, layout: layout, pools: &pools)
                } else {
                    output.items[output.head] = .window(w)
                }
            case .taken:
                output.advance()
            }
        }
        return rows
    }

    /// Whether the queue begins with a closed window of `emit: final`, whose rows
    /// `takeClosedRows` hands out without building `WindowResult`s.
    public var headIsClosedFinalWindow: Bool {
        guard !changelog, output.head < output.items.count, case .window = output.items[output.head] else { return false }
        return true
    }

    /// Takes up to `max` rows of the closed window at the head of the queue (`emit: final`,
    /// `headIsClosedFinalWindow`), in the order `takeRows` gives them: `body` gets each row's
    /// key bytes (`nil` for `group_by: all`), window start and end, and values (NaN for null),
    /// all in place and valid during the call only. Returns the rows taken.
    public mutating func takeClosedRows(max: Int, _ body: (UnsafeRawBufferPointer?, Int64, Int64, UnsafeBufferPointer<Double>) -> Void) -> Int {
        guard max > 0, headIsClosedFinalWindow, case .window(var w) = output.items[output.head] else { return 0 }
        let stop = Swift.min(w.pane.count, w.next + max)
        let width = layout.width, columns = layout.columns.count
        if valueScratch.count < columns { valueScratch = Array(repeating: 0, count: columns) }
        do {
            // Local copies for the loop (ended before `giveBack` changes the pools, so that
            // nothing shares their storage then).
            let layout = self.layout, pools = self.pools, keys = self.keys, groupAll = self.groupAll
            valueScratch.withUnsafeMutableBufferPointer { v in
                let values = UnsafeBufferPointer(rebasing: v[0..<columns])
                w.pane.acc.withUnsafeBufferPointer { b in
                    w.pane.groupIds.withUnsafeBufferPointer { groups in
                        for s in w.next..<stop {
                            layout.writeValues(b.baseAddress! + s * width, to: v.baseAddress!, pools: pools)
                            if groupAll {
                                body(nil, w.startMs, w.endMs, values)
                            } else {
                                keys.key(Int(groups[s])).withUnsafeBytes { body($0, w.startMs, w.endMs, values) }
                            }
                        }
                    }
                }
            }
        }
        output.took(stop - w.next)
        let taken = stop - w.next
        w.next = stop
        if stop == w.pane.count {
            output.advance()
            panes.giveBack(w.pane, layout: layout, pools: &pools)
        } else {
            output.items[output.head] = .window(w)
        }
        return taken
    }

    /// Drops the rows not taken (a deleted stream): closed windows' panes go back unread.
    public mutating func dropQueuedRows() {
        while output.head < output.items.count {
            if case .window(let w) = output.items[output.head] { panes.giveBack(w.pane, layout: layout, pools: &pools) }
            output.advance()
        }
        output = RowQueue()
    }

    private func rowKey(_ g: UInt32) -> [UInt8]? { groupAll ? nil : Array(keys.key(Int(g))) }

    /// Closes every window whose end is `<= watermark` (its rows go to `output`).
    mutating func closeReady() {
        if isSession {
            let closed = sessions.closeDue(watermark: watermarkMs)
            for id in closed { emitClosedSession(Int(id)) }
            for id in closed { sessions.retire(id, layout: layout, pools: &pools) }
            windowsClosed += UInt64(closed.count)
            nextCloseAtMs = sessions.nextCloseAtMs
        } else {
            while let (w, range) = panes.nextWindowToClose(watermark: watermarkMs, layout: layout, pools: &pools) {
                // Queued whole; its rows are built as they are taken (`takeRows`). A tumbling
                // window is its one pane; a hopping window the merge of its panes, made now
                // (later windows share those panes and go on changing them).
                let pane: Pane
                if panes.panesPerWindow == 1 {
                    precondition(range.count == 1, "a tumbling window is one pane")
                    pane = panes.detach(range.lowerBound)
                } else {
                    panes.mergeIntoScratch(range, start: w, layout: layout, pools: &pools)
                    pane = panes.takeScratch()
                }
                output.appendWindow(pane, startMs: w, endMs: w + panes.sizeMs)
                lastClosedGroups = pane.count
                windowsClosed += 1
                panes.windowDone(w, layout: layout, pools: &pools)
            }
            panes.closedThrough(watermark: watermarkMs, layout: layout, pools: &pools)
            nextCloseAtMs = panes.nextCloseAtMs
        }
    }

    private mutating func emitClosedSession(_ s: Int) {
        let values = sessions.acc.withUnsafeBufferPointer { layout.values($0.baseAddress! + s * layout.width, pools: pools) }
        let key = rowKey(sessions.group[s])
        let start = sessions.start[s], end = sessions.end[s]
        guard changelog else {
            output.append(WindowResult(key: key, startMs: start, endMs: end, values: values))
            return
        }
        let previous = sessionEmitted.removeValue(forKey: s)
        let emittedStart = sessions.emittedStart[s]
        if emittedStart != .min && emittedStart != start {
            output.append(WindowResult(key: key, startMs: emittedStart, endMs: end, values: [], op: .delete,
                before: deletesCarryValues ? previous : nil))
            output.append(WindowResult(key: key, startMs: start, endMs: end, values: values, op: .insert, isFinal: true))
        } else {
            output.append(WindowResult(key: key, startMs: start, endMs: end, values: values,
                op: previous == nil ? .insert : .update, before: previous, isFinal: true))
        }
        sessions.dirtyMark[s] = false
    }

    /// The row of a closed window's group from its merged slot `slot` (at close, or for a
    /// changelog the final row, `before` what was last emitted).
    private mutating func closedRow(_ slot: UnsafePointer<Double>, group g: UInt32, startMs w: Int64, endMs end: Int64) -> WindowResult {
        let values = layout.values(slot, pools: pools)
        guard changelog else { return WindowResult(key: rowKey(g), startMs: w, endMs: end, values: values) }
        let previous = emitted.remove(g, w)
        return WindowResult(key: rowKey(g), startMs: w, endMs: end, values: values,
            op: previous == nil ? .insert : .update, before: previous, isFinal: true)
    }

    /// Whether a changelog flush would look at anything.
    public var hasPendingChanges: Bool { isSession ? !sessions.dirty.isEmpty : dirtyPanes }

    /// Changelog: emits an `insert` or `update` row for each open window whose values changed
    /// since its last row (`emit: changes` after each round, `every` on its timer).
    public mutating func flushChanges() {
        guard changelog else { return }
        if isSession { flushSessions() } else { flushPanes() }
    }

    private mutating func flushSessions() {
        let dirty = sessions.dirty
        sessions.dirty.removeAll(keepingCapacity: true)
        for d in dirty {
            let s = Int(d)
            guard sessions.alive[s], sessions.dirtyMark[s] else { continue }
            sessions.dirtyMark[s] = false
            let values = sessions.acc.withUnsafeBufferPointer { layout.values($0.baseAddress! + s * layout.width, pools: pools) }
            let key = rowKey(sessions.group[s])
            let previous = sessionEmitted[s]
            let start = sessions.start[s], end = sessions.end[s]
            if sessions.emittedStart[s] != .min && sessions.emittedStart[s] != start {
                output.append(WindowResult(key: key, startMs: sessions.emittedStart[s], endMs: end, values: [], op: .delete,
                    before: deletesCarryValues ? previous : nil))
                output.append(WindowResult(key: key, startMs: start, endMs: end, values: values, op: .insert))
            } else if let previous {
                if !WindowOperator.same(previous, values) {
                    output.append(WindowResult(key: key, startMs: start, endMs: end, values: values, op: .update, before: previous))
                }
            } else {
                output.append(WindowResult(key: key, startMs: start, endMs: end, values: values, op: .insert))
            }
            sessions.emittedStart[s] = start
            sessionEmitted[s] = values
        }
    }

    private mutating func flushPanes() {
        guard dirtyPanes else { return }
        dirtyPanes = false
        let r = panes.panesPerWindow, slide = panes.slideMs, size = panes.sizeMs
        // Each (group, pane) changed since the last flush, once.
        var touched: [(group: UInt32, pane: Int64)] = []
        for k in 0..<panes.panes.count {
            let p = panes.panes[k].startMs
            for d in panes.panes[k].dirty {
                touched.append((panes.panes[k].groupIds[Int(d)], p))
                panes.panes[k].dirtyMark[Int(d)] = false
            }
            panes.panes[k].dirty.removeAll(keepingCapacity: true)
        }
        // Key bytes, not group ids, order the rows (then the window start): ids are assigned
        // anew when a checkpoint is read, and replay must emit the same rows in the same order.
        touched.sort { a, b in
            if a.group == b.group { return a.pane < b.pane }
            return keys.key(Int(a.group)).lexicographicallyPrecedes(keys.key(Int(b.group)))
        }
        var merged = [Double](repeating: 0, count: layout.width)
        var holding: [(start: Int64, pane: Int, slot: Int)] = []
        var i = 0
        while i < touched.count {
            let g = touched[i].group
            var j = i + 1
            while j < touched.count && touched[j].group == g { j += 1 }
            // The panes holding the group, ascending: a window's values are the merge of those
            // within it, so windows covering the same of them (most of a hop's windows) share
            // one merge.
            holding.removeAll(keepingCapacity: true)
            for k in 0..<panes.panes.count {
                if let s = panes.panes[k].find(g) { holding.append((panes.panes[k].startMs, k, s)) }
            }
            let key = rowKey(g)
            var values: [Double] = []
            var mergedRange = 0..<0
            var next = Int64.min  // windows before it were looked at for this group
            for t in i..<j {
                // The windows holding the changed pane p, not yet looked at, ascending.
                let p = touched[t].pane
                var w = max(panes.nextWindowStart, p - (r - 1) * slide, next)
                while w <= p {
                    var lo = 0
                    while lo < holding.count && holding[lo].start < w { lo += 1 }
                    var hi = lo
                    while hi < holding.count && holding[hi].start < w + size { hi += 1 }
                    precondition(hi > lo, "a changed window holds the changed pane")
                    if lo..<hi != mergedRange {
                        mergedRange = lo..<hi
                        merged.withUnsafeMutableBufferPointer { m in
                            layout.initialize(m.baseAddress!, pools: &pools)
                            for h in lo..<hi {
                                panes.panes[holding[h].pane].acc.withUnsafeBufferPointer { b in
                                    layout.merge(into: m.baseAddress!, b.baseAddress! + holding[h].slot * layout.width, pools: &pools)
                                }
                            }
                        }
                        values = merged.withUnsafeBufferPointer { layout.values($0.baseAddress!, pools: pools) }
                        merged.withUnsafeBufferPointer { layout.release($0.baseAddress!, pools: &pools) }
                    }
                    let previous = emitted.update(g, w, values)
                    if previous == nil || !WindowOperator.same(previous!, values) {
                        output.append(WindowResult(key: key, startMs: w, endMs: w + size, values: values,
                            op: previous == nil ? .insert : .update, before: previous))
                    }
                    w += slide
                }
                next = w
            }
            i = j
        }
    }

    /// Equal values, bit for bit (so null, NaN, equals null).
    static func same(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }
}
