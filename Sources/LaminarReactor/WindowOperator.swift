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
    /// Scratch: the group of each event of the batch being ingested (`groupEvents`).
    private var groupOf: [UInt32] = []
    /// For a stream reading a named source with other streams: the group of each of the
    /// source's key ids (`SourceRuntime.internKeys`) plus one, 0 while not yet seen here. The
    /// source interns a batch's keys once for all its readers; each then finds its group by
    /// the id, and interns a key itself only the first time it sees it.
    private var groupOfSourceKey: [UInt32] = []
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
    /// Groups of the tumbling or hopping window closed last (after a restart: of the biggest
    /// one the checkpoint queued, else 0 until the next close); `Reactor.checkpointEntries` reads it.
    public internal(set) var lastClosedGroups = 0
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

    /// Whether a checkpoint may be taken now: rows queued are closed windows only (built rows,
    /// of changelogs and sessions, must go out first: they are not in a checkpoint).
    var checkpointable: Bool { output.holdsOnlyClosedWindows }

    /// Whether a checkpoint taken now would copy more than `groupsMax` open groups when a later
    /// one would copy few: a tumbling stream's open pane is nearly empty just after a close.
    func checkpointWaitsForClose(groupsMax: Int) -> Bool {
        !isSession && panes.panesPerWindow == 1 && checkpointGroups > groupsMax
    }

    /// A copy of the operator holding what `encodeCheckpoint` reads and no more (no lookup
    /// tables, hints or scratch), for a checkpoint snapshot (`CheckpointSnapshot`) to encode on
    /// another thread: the open panes copied (`PaneWindows.checkpointCopy`), the rest shared with
    /// the live operator. A shared array the live operator writes while the snapshot is being
    /// encoded is copied whole on the reactor: the tables and hints, written by nearly every
    /// event, are left out; closed windows queued (`checkpointable`) are never written again,
    /// only read as their rows go out. Only `encodeCheckpoint` may use it.
    mutating func checkpointCopy() -> WindowOperator {
        precondition(checkpointable, "a checkpoint holds no built rows")
        // First: `c` would share the spare copies' arrays, and writing them would copy them.
        let paneCopies = panes.checkpointCopy()
        var c = self
        c.keys = keys.withoutTable()
        c.keyHashes = []
        c.groupOf = []
        c.groupOfSourceKey = []
        c.panes = paneCopies
        c.valueScratch = []
        c.lateIndices = []
        return c
    }

    /// Takes back what an encoded snapshot (`checkpointCopy`) copied, for the next one to copy into.
    mutating func recycleCheckpointCopy(_ snapshot: WindowOperator) {
        panes.recycleCheckpointCopies(snapshot.panes.panes)
    }

    /// Whether a batch of `events` new events can never exceed `keysMax` keys (conservative).
    public func wouldFit(events: Int, keysMax: Int) -> Bool { groupAll || keys.count + events <= keysMax }

    /// Adds a batch's events; returns how many were accepted and how many were late. The caller
    /// has checked times, values and field count, and `wouldFit`, so a batch is taken whole.
    public mutating func ingest(_ events: EventBatch.EventView, keysMax: Int) -> (accepted: Int, late: Int) {
        ingest(events, keysMax: keysMax, sourceKeys: nil)
    }

    /// `ingest` with the source's key id of each event (`SourceRuntime.internKeys`;
    /// `SourceRuntime.noKeyId` for a key the source did not intern), or `nil`.
    mutating func ingest(_ events: EventBatch.EventView, keysMax: Int, sourceKeys: UnsafeBufferPointer<UInt32>?) -> (accepted: Int, late: Int) {
        precondition(events.fieldCount == definition.fields.count, "caller checks the field count")
        precondition(sourceKeys.map { $0.count == events.count } ?? true, "a source key id per event")
        lateIndices.removeAll(keepingCapacity: true)
        let late = isSession ? ingestSessions(events, keysMax: keysMax, sourceKeys: sourceKeys)
                             : ingestPanes(events, keysMax: keysMax, sourceKeys: sourceKeys)
        eventsLate += UInt64(late)
        eventsAccepted += UInt64(events.count - late)
        return (events.count - late, late)
    }

    /// Marks the batch's late events and interns the keys of the others, in event order:
    /// `groupOf[i]` is event `i`'s group, `lateGroup` when it is late. Lateness is known before
    /// any event is added: during a batch only its events move the watermark (after event `i`
    /// it is `max(watermark, max(ts of events 0...i) − allowedLateness)`), so this pass follows
    /// it as `ingestPanes`/`ingestSessions` will. With `sourceKeys` (the source's key ids of the
    /// batch, `SourceRuntime.internKeys`) a key is looked up here only the first time its id is
    /// seen. Returns how many events are late.
    private mutating func groupEvents(_ events: EventBatch.EventView, keysMax: Int, sourceKeys: UnsafeBufferPointer<UInt32>?) -> Int {
        let n = events.count
        if groupOf.count < n { groupOf = Array(repeating: 0, count: n) }
        let hashed = !groupAll && sourceKeys == nil
        let longKeys = hashed && hashKeys(events, measure: keys.count > WindowOperator.deepPrefetchKeys)
        let size = panes.sizeMs, gap = sessions.gapMs, session = isSession, all = groupAll
        var wm = watermarkMs, maxT = maxEventTimeMs
        // Tumble/hop: late iff floor(ts, slide) + size <= wm, i.e. ts < floor(wm − size, slide) + slide
        // (`firstOpenStart`), which changes only when wm reaches `openLimit`.
        var openStart = panes.firstOpenStart(watermark: wm), openLimit = openStart == .min ? Int64.min + size : openStart + size
        var late = 0
        let deep = longKeys && keys.count > WindowOperator.deepPrefetchKeys
        if hashed { for i in 0..<Swift.min(n, WindowOperator.prefetchDistance) { keys.prefetch(keyHashes[i]) } }
        // Plain subscripts, not buffer closures: `keys.intern` inside a closure retained the
        // key table's arrays per event.
        for i in 0..<n {
            let ts = events.timestamp(i)
            let isLate: Bool
            if session {
                isLate = ts + gap <= wm
            } else {
                if wm >= openLimit {
                    openStart = panes.firstOpenStart(watermark: wm)
                    openLimit = openStart + size
                }
                isLate = ts < openStart
            }
            if isLate {
                groupOf[i] = WindowOperator.lateGroup
                late += 1
            } else if all {
                groupOf[i] = 0
            } else if let sourceKeys {
                groupOf[i] = groupOfSourceKey(events, i, sourceId: Int(sourceKeys[i]), keysMax: keysMax)
            } else {
                if i + WindowOperator.prefetchDistance < n { keys.prefetch(keyHashes[i + WindowOperator.prefetchDistance]) }
                if deep {
                    // The offset and bytes of a key longer than a slot's word are cache misses
                    // too with this many keys.
                    if i + 4 < n { keys.prefetchKey(keyHashes[i + 4], bytes: false) }
                    if i + 2 < n { keys.prefetchKey(keyHashes[i + 2], bytes: true) }
                }
                guard let id = keys.intern(events.key(i), hash: keyHashes[i], limit: keysMax) else {
                    preconditionFailure("caller must check wouldFit before ingest")
                }
                groupOf[i] = id
            }
            if ts > maxT {
                maxT = ts
                if ts - allowedLatenessMs > wm { wm = ts - allowedLatenessMs }
            }
        }
        return late
    }

    /// The group of event `i`, whose key has id `sourceId` in its source (`groupOfSourceKey`):
    /// interned here only the first time the id is seen.
    @inline(__always)
    private mutating func groupOfSourceKey(_ events: EventBatch.EventView, _ i: Int, sourceId sid: Int, keysMax: Int) -> UInt32 {
        let g = groupOfSourceKey.withUnsafeBufferPointer { sid < $0.count ? $0[sid] : 0 }
        if g != 0 { return g &- 1 }
        guard let id = keys.intern(events.key(i), limit: keysMax) else { preconditionFailure("caller must check wouldFit before ingest") }
        if sid != Int(SourceRuntime.noKeyId) {
            if sid >= groupOfSourceKey.count {
                groupOfSourceKey.append(contentsOf: repeatElement(0, count: Swift.max(sid + 1, 2 * groupOfSourceKey.count, 1024) - groupOfSourceKey.count))
            }
            groupOfSourceKey[sid] = id + 1
        }
        return id
    }

    /// `groupOf` of a late event.
    static let lateGroup = UInt32.max

    /// Hashes every event's key into `keyHashes` (a column at a time: the lookups that follow
    /// prefetch their table slot a few events ahead); with `measure`, returns whether some
    /// key's lookup reads the interner's arena (`KeyInterner.readsArena`), else false.
    private mutating func hashKeys(_ events: EventBatch.EventView, measure: Bool) -> Bool {
        if keyHashes.count < events.count { keyHashes = Array(repeating: 0, count: events.count) }
        let hasher = keys.hasher
        return keyHashes.withUnsafeMutableBufferPointer { h in
            guard measure else {
                for i in 0..<events.count { h[i] = hasher.hash(events.key(i)) }
                return false
            }
            var longest = 0
            for i in 0..<events.count {
                let key = events.key(i)
                longest = Swift.max(longest, key.count)
                h[i] = hasher.hash(key)
            }
            return KeyInterner.readsArena(length: longest)
        }
    }

    /// How many events ahead the key table's slot is prefetched.
    static let prefetchDistance = 8
    /// Above this many keys the offset and bytes of a key that `KeyInterner.readsArena` are
    /// prefetched as well (`KeyInterner.prefetchKey`): the table no longer fits the caches.
    static let deepPrefetchKeys = 1 << 16

    /// Event time `ts` taken (after its event was added or found late): the watermark follows;
    /// windows it passes close (returns whether any may have).
    @inline(__always)
    private mutating func observe(_ ts: Int64) -> Bool {
        arrivals += 1
        guard ts > maxEventTimeMs else { return false }
        maxEventTimeMs = ts
        let w = ts - allowedLatenessMs
        guard w > watermarkMs else { return false }
        watermarkMs = w
        guard w >= nextCloseAtMs else { return false }
        closeReady()
        return true
    }

    /// The late event `i`, listed when late events are kept (`groupEvents` counted it).
    @inline(__always)
    private mutating func takeLate(_ i: Int) {
        if keepLate { lateIndices.append(i) }
    }

    /// The event-time bookkeeping for a run of events (`PaneWindows.addRun`, `Pane.addDirectRun`),
    /// held in locals during the run. Mutating only so that the call in `ingestPanes`' closure
    /// is made in place (a non-mutating one there copies the operator, retaining its arrays).
    @inline(__always)
    private mutating func ingestClock() -> IngestClock {
        IngestClock(watermarkMs: watermarkMs, maxEventTimeMs: maxEventTimeMs, arrivals: arrivals,
                    allowedLatenessMs: allowedLatenessMs, closeAtMs: nextCloseAtMs)
    }

    /// Takes back what a run advanced and closes what its watermark passed (`closeDue`);
    /// returns whether it closed (the pane index the caller holds may have moved).
    @inline(__always)
    private mutating func endRun(_ clock: IngestClock, closeDue: Bool) -> Bool {
        watermarkMs = clock.watermarkMs
        maxEventTimeMs = clock.maxEventTimeMs
        arrivals = clock.arrivals
        if closeDue { closeReady() }
        return closeDue
    }

    private mutating func ingestPanes(_ events: EventBatch.EventView, keysMax: Int, sourceKeys: UnsafeBufferPointer<UInt32>?) -> Int {
        let late = groupEvents(events, keysMax: keysMax, sourceKeys: sourceKeys)
        let slide = panes.slideMs
        let n = events.count
        // The batch's groups held once, as a local: reading `self.groupOf` in a closure that
        // changes `panes` retained and released it for every event.
        var groupArray: [UInt32] = []
        swap(&groupArray, &groupOf)
        defer { swap(&groupArray, &groupOf) }
        return groupArray.withUnsafeBufferPointer { all in
            let groups = UnsafeBufferPointer(rebasing: all[0..<n])
            // A local copy: the closures below would otherwise copy `self.layout` (retaining its
            // arrays) for every event.
            let layout = self.layout
            // In a hashed pane, runs of events whose groups have their slot there take
            // `PaneWindows.addRun` (no HLL: it needs each key's hash).
            let runs = layout.hllBase < 0
            var cached = -1
            var paneStart = Int64.max, paneEnd = Int64.min  // of pane `cached`
            // Groups and slots are loaded some events ahead when they do not fit the caches.
            let deep = keys.count > WindowOperator.deepPrefetchKeys
            var i = 0
            while i < n {
                let ts = events.timestamp(i)
                let g = groups[i]
                if g == WindowOperator.lateGroup {
                    takeLate(i)
                    i += 1
                    if observe(ts) { cached = -1 }
                    continue
                }
                if cached < 0 || ts < paneStart || ts >= paneEnd || cached >= panes.panes.count || panes.panes[cached].startMs != paneStart {
                    paneStart = PaneWindows.floor(ts, slide)
                    paneEnd = paneStart + slide
                    cached = panes.paneIndex(start: paneStart, watermark: watermarkMs)
                    if cached == 0 { nextCloseAtMs = panes.nextCloseAtMs }
                }
                if panes.panes[cached].isDirect {
                    // A direct pane (`Pane`) takes every event up to the pane's end, a late event
                    // or a close in one run, new groups included.
                    var clock = ingestClock()
                    let (next, closeDue) = panes.panes[cached].addDirectRun(from: i, events, groups: groups, slideMs: slide,
                                                                           clock: &clock, layout: layout, pools: &pools,
                                                                           distinct: distinctHasher, changes: changelog, deep: deep)
                    if changelog { dirtyPanes = true }
                    i = next
                    if endRun(clock, closeDue: closeDue) { cached = -1 }
                    continue
                }
                if runs && panes.hintNames(pane: cached, group: g) {
                    var clock = ingestClock()
                    let (next, closeDue) = panes.addRun(pane: cached, from: i, events, groups: groups, clock: &clock, layout: layout,
                                                        pools: &pools, deep: deep)
                    if next > i {
                        if changelog {
                            panes.markRunDirty(pane: cached, groups: groups, i..<next)
                            dirtyPanes = true
                        }
                        i = next
                        if endRun(clock, closeDue: closeDue) { cached = -1 }
                        continue
                    }
                }
                // One event: a group new to the pane, or an HLL to feed.
                if deep { panes.prefetch(pane: cached, groups: groups, at: i, width: layout.width) }
                let hllHash: UInt64 = layout.hllBase >= 0 ? distinctHasher.hash(events.key(i)) : 0
                let s = panes.slot(pane: cached, group: g, layout: layout, pools: &pools)
                let arrival = arrivals
                panes.panes[cached].acc.withUnsafeMutableBufferPointer { b in
                    layout.add(b.baseAddress! + s * layout.width, events, i, ts: ts, arrival: arrival, keyHash: hllHash, pools: &pools)
                }
                if changelog { panes.panes[cached].markDirty(s); dirtyPanes = true }
                i += 1
                if observe(ts) { cached = -1 }
            }
            return late
        }
    }

    private mutating func ingestSessions(_ events: EventBatch.EventView, keysMax: Int, sourceKeys: UnsafeBufferPointer<UInt32>?) -> Int {
        let late = groupEvents(events, keysMax: keysMax, sourceKeys: sourceKeys)
        let n = events.count
        let layout = self.layout  // as in `ingestPanes`
        for i in 0..<n {
            let ts = events.timestamp(i)
            let g = groupOf[i]
            if g == WindowOperator.lateGroup {
                takeLate(i)
            } else {
                let hash: UInt64 = layout.hllBase >= 0 ? distinctHasher.hash(events.key(i)) : 0
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
            _ = observe(ts)
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
                let stop = w.next + Swift.min(w.pane.count - w.next, max - rows.count)  // (no overflow at `max: .max`)
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
    /// key bytes (`nil` for `group_by: all`) and its group (the key's id in this operator's key
    /// table: the same key while the operator lives, another operator's ids mean other keys;
    /// 0 for `group_by: all`), window start and end, and values (NaN for null), all in place and
    /// valid during the call only. Returns the rows taken.
    public mutating func takeClosedRows(max: Int, _ body: (UnsafeRawBufferPointer?, UInt32, Int64, Int64, UnsafeBufferPointer<Double>) -> Void) -> Int {
        guard max > 0, headIsClosedFinalWindow, case .window(var w) = output.items[output.head] else { return 0 }
        let stop = w.next + Swift.min(w.pane.count - w.next, max)
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
                        let n = groups.count
                        for s in w.next..<stop {
                            layout.writeValues(b.baseAddress! + s * width, to: v.baseAddress!, pools: pools)
                            if groupAll {
                                body(nil, 0, w.startMs, w.endMs, values)
                            } else {
                                // Groups come in pane order (random ids with many keys): each
                                // key's offset and then its bytes are two dependent cache misses,
                                // loaded some rows ahead (past `stop` too: the next call's rows).
                                if s &+ 16 < n { keys.prefetchKey(id: Int(groups[s &+ 16]), bytes: false) }
                                if s &+ 8 < n { keys.prefetchKey(id: Int(groups[s &+ 8]), bytes: true) }
                                let g = groups[s]
                                keys.key(Int(g)).withUnsafeBytes { body($0, g, w.startMs, w.endMs, values) }
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
    public mutating func flushChanges() { flushChanges(showing: nil) }

    /// `flushChanges` for a stream with select/having: the rows of open tumbling and hopping
    /// windows that `projection` would drop are not built (`RowProjection.keeps`); the values
    /// they carry are still what was last emitted for their window, as if they had been.
    mutating func flushChanges(showing projection: RowProjection?) {
        guard changelog else { return }
        if isSession { flushSessions() } else { flushPanes(showing: projection) }
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

    private mutating func flushPanes(showing projection: RowProjection?) {
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
        let keys = self.keys  // one copy for the sort, not one per comparison
        touched.sort { a, b in
            if a.group == b.group { return a.pane < b.pane }
            return keys.precedes(Int(a.group), Int(b.group))
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
            var key: [UInt8]? = nil, keyMade = false  // made once, when a row is
            var values: [Double] = []
            // The projection's answer for the last window looked at, and the values it had before:
            // with the same values and previous values (a hop's windows holding the same panes),
            // a projection reading the columns only answers the same.
            var asked: (previous: [Double]?, keeps: Bool)? = nil
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
                        asked = nil
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
                    var emit = previous == nil || !WindowOperator.same(previous!, values)
                    if emit, let projection {
                        if let asked, projection.memoize, asked.previous == nil ? previous == nil : previous.map({ WindowOperator.same($0, asked.previous!) }) ?? false {
                            emit = asked.keeps
                        } else {
                            emit = projection.keeps(previous: previous, values, key: { rowKey(g) }, startMs: w, endMs: w + size)
                            asked = (previous, emit)
                        }
                    }
                    if emit {
                        if !keyMade { key = rowKey(g); keyMade = true }
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
