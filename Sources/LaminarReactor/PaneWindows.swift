import CLinux
import LaminarFormats
import LaminarStore

/// One slide-sized pane `[startMs, startMs + slide)`: each group's partial aggregates, as a flat
/// map from group id to a slot of `acc` (no object per group; one slot written per event).
///
/// The map (`slotOfGroup`, slot + 1, 0 = none) is hashed (open addressing on the group id, load
/// at most 1/2) while the pane's groups are few among the ids, and direct (indexed by the group
/// id: one read, nothing to verify) once a direct table would take at most `directFactor` times
/// the entries of the hashed one: the layout is chosen again whenever the table must grow, so a
/// pane's table never exceeds `directFactor` times what the hashed table of its most groups
/// took (hopping windows with many panes of a few groups each stay hashed).
struct Pane {
    var startMs: Int64
    private var slotOfGroup: [Int32]
    private var mask: Int
    /// Whether `slotOfGroup` is indexed by group id; then it is longer than every group's id in
    /// the pane, and its entries of groups not in the pane are 0. A new pane is direct (64
    /// entries, as small as the smallest hashed table).
    private(set) var isDirect = true
    var groupIds: [UInt32] = []
    var acc: [Double] = []
    /// Groups changed since the last changelog flush (`emit: changes`/`every`), as slots.
    var dirty: [Int32] = []
    /// Per slot, whether it is in `dirty` (`isDirty`); `markDirty` grows it past the slot it
    /// marks, so streams without a changelog never write it.
    var dirtyMark: [Bool] = []

    /// How many times the entries of the hashed table a direct one may take.
    static let directFactor = 4

    init(startMs: Int64) {
        self.startMs = startMs
        slotOfGroup = Array(repeating: 0, count: 64)
        mask = 63
    }

    var count: Int { groupIds.count }

    /// Entries of the group table (for its memory bound, and for tests).
    var tableCount: Int { slotOfGroup.count }

    /// Makes `copy` the pane as a checkpoint reads it (`PaneWindows.checkpointCopy`): its
    /// groups, slots and dirty marks copied now into `copy`'s memory, its table left out.
    /// Copied rather than shared: the live pane writes them next, and a shared array written is
    /// copied whole then, into fresh memory at a capacity that fits only its count. `copy` is
    /// never looked up in.
    func checkpointCopy(into copy: inout Pane) {
        copy.startMs = startMs
        copy.slotOfGroup = []
        copy.mask = -1
        copy.isDirect = false
        copy.groupIds.removeAll(keepingCapacity: true)
        copy.groupIds.append(contentsOf: groupIds)
        copy.acc.removeAll(keepingCapacity: true)
        copy.acc.append(contentsOf: acc)
        copy.dirty.removeAll(keepingCapacity: true)
        copy.dirty.append(contentsOf: dirty)
        copy.dirtyMark.removeAll(keepingCapacity: true)
        copy.dirtyMark.append(contentsOf: dirtyMark)
    }

    /// Empties the pane for reuse at `startMs`, keeping its memory and table layout (the caller
    /// released the slots' pool entries).
    mutating func reset(startMs: Int64) {
        self.startMs = startMs
        if !groupIds.isEmpty {
            if isDirect && groupIds.count * 16 < slotOfGroup.count {
                // A few groups in a big direct table: clear their entries only.
                slotOfGroup.withUnsafeMutableBufferPointer { t in for g in groupIds { t[Int(g)] = 0 } }
            } else {
                slotOfGroup.withUnsafeMutableBufferPointer { t in t.update(repeating: 0) }
            }
            groupIds.removeAll(keepingCapacity: true)
            acc.removeAll(keepingCapacity: true)
            dirty.removeAll(keepingCapacity: true)
            dirtyMark.removeAll(keepingCapacity: true)
        }
    }

    /// Where the lookup of `group` begins in `slotOfGroup` (direct: the group's entry, or -1 if
    /// the table is too short to hold it).
    @inline(__always)
    private static func home(_ group: UInt32, direct: Bool, mask: Int, count: Int) -> Int {
        if direct { return Int(group) < count ? Int(group) : -1 }
        return Int(truncatingIfNeeded: UInt64(group) &* 0x9E37_79B9_7F4A_7C15 >> 32) & mask
    }

    /// The slot of `group`, initialized (and its pool entries taken) if new.
    @inline(__always)
    mutating func slot(_ group: UInt32, layout: AccumulatorLayout, pools: inout AccumulatorPools) -> Int {
        if isDirect {
            let g = Int(group)
            if g < slotOfGroup.count, case let s = Int(slotOfGroup[g]), s != 0 { return s - 1 }
            if g >= slotOfGroup.count { rebuildTable(including: group) }
            if isDirect { return insert(group, at: g, layout: layout, pools: &pools) }
        }
        var i = Int(truncatingIfNeeded: UInt64(group) &* 0x9E37_79B9_7F4A_7C15 >> 32) & mask
        while true {
            let s = Int(slotOfGroup[i])
            if s == 0 { break }
            if groupIds[s - 1] == group { return s - 1 }
            i = (i + 1) & mask
        }
        return insert(group, at: i, layout: layout, pools: &pools)
    }

    /// Makes the slot of `group` (not in the pane), its table entry `i` being free.
    private mutating func insert(_ group: UInt32, at i: Int, layout: AccumulatorLayout, pools: inout AccumulatorPools) -> Int {
        let s = groupIds.count
        groupIds.append(group)
        // One append per field: `append(contentsOf: repeatElement(…))` cost ~100 instructions.
        for _ in 0..<layout.width { acc.append(0) }
        acc.withUnsafeMutableBufferPointer { layout.initialize($0.baseAddress! + s * layout.width, pools: &pools) }
        slotOfGroup[i] = Int32(s + 1)
        if !isDirect && groupIds.count * 2 > slotOfGroup.count { rebuildTable(including: nil) }
        return s
    }

    /// Rebuilds the table for the pane's groups and `extra` (about to be added), direct or
    /// hashed as the type's doc says.
    private mutating func rebuildTable(including extra: UInt32?) {
        let n = groupIds.count + (extra == nil ? 0 : 1)
        var maxGroup = extra.map { Int($0) } ?? 0
        for g in groupIds where Int(g) > maxGroup { maxGroup = Int(g) }
        var hashed = 64
        while hashed < 2 * (n + 1) { hashed <<= 1 }
        var direct = 64
        while direct <= maxGroup { direct <<= 1 }
        isDirect = direct <= Pane.directFactor * hashed
        let c = isDirect ? direct : hashed
        slotOfGroup = Array(repeating: 0, count: c)
        mask = c - 1
        let isDirect = self.isDirect
        slotOfGroup.withUnsafeMutableBufferPointer { t in
            for (s, group) in groupIds.enumerated() {
                var i = Pane.home(group, direct: isDirect, mask: c - 1, count: c)
                while t[i] != 0 { i = (i + 1) & (c - 1) }
                t[i] = Int32(s + 1)
            }
        }
    }

    /// How many events ahead `addDirectRun` loads a group's table entry, and how many its slot.
    static let entryDistance = 16, slotDistance = 8

    /// Adds the events from `from` on, in order, while each lies in the pane (before
    /// `startMs + slideMs`), is not late (`groups[i] != WindowOperator.lateGroup`) and the
    /// watermark stays before `clock.closeAtMs`, making the slots of groups new to the pane:
    /// the path of a direct pane, whose lookup is one read of its table. The pane must be
    /// direct and hold event `from`'s time, which must not be late. `distinct` hashes keys for
    /// the HLL (`layout.hllBase >= 0`); `changes` marks the slots dirty; `deep` loads entries
    /// and slots some events ahead (tables too big for the caches). Stops after an event if
    /// the table stops being direct. Returns the first event not taken and whether the last one
    /// taken made a close due.
    @inline(__always)
    mutating func addDirectRun(from: Int, _ events: EventBatch.EventView, groups: UnsafeBufferPointer<UInt32>, slideMs: Int64,
                               clock: inout IngestClock, layout: AccumulatorLayout, pools: inout AccumulatorPools,
                               distinct: KeyHasher, changes: Bool, deep: Bool) -> (next: Int, closeDue: Bool) {
        let lo = startMs, hi = lo + slideMs, n = events.count, width = layout.width, hll = layout.hllBase >= 0
        var i = from
        var closeDue = false
        while i < n && !closeDue {
            // Events of groups the pane has, with its arrays held once (no bounds, uniqueness or
            // ARC per event); a group new to the pane ends the inner run.
            let runFrom = i
            closeDue = slotOfGroup.withUnsafeBufferPointer { t in
                acc.withUnsafeMutableBufferPointer { a in
                    let acc = a.baseAddress!
                    while i < n {
                        let ts = events.timestamp(i)
                        let g = Int(groups[i])  // a late event's (UInt32.max) is beyond the table
                        guard ts >= lo && ts < hi && g < t.count, case let s = Int(t[g]), s != 0 else { return false }
                        if deep {
                            let far = i &+ Pane.entryDistance, near = i &+ Pane.slotDistance
                            if far < n, case let gf = Int(groups[far]), gf < t.count { CLinux_prefetch(t.baseAddress! + gf) }
                            if near < n, case let gn = Int(groups[near]), gn < t.count, case let sn = Int(t[gn]), sn != 0 {
                                CLinux_prefetch(acc + (sn &- 1) &* width)
                            }
                        }
                        let keyHash = hll ? distinct.hash(events.key(i)) : 0
                        layout.add(acc + (s &- 1) &* width, events, i, ts: ts, arrival: clock.arrivals, keyHash: keyHash, pools: &pools)
                        i &+= 1
                        if clock.observe(ts) { return true }
                    }
                    return false
                }
            }
            if changes {
                for k in runFrom..<i { markDirty(Int(slotOfGroup[Int(groups[k])]) - 1) }
            }
            if closeDue || i == n { break }
            // Event `i`: a group new to the pane, or the run's end.
            let ts = events.timestamp(i)
            let group = groups[i]
            guard ts >= lo && ts < hi && group != WindowOperator.lateGroup else { break }
            if deep { prefetchAhead(i, groups: groups, width: width) }
            let s = slot(group, layout: layout, pools: &pools)
            let keyHash = hll ? distinct.hash(events.key(i)) : 0
            let arrival = clock.arrivals
            acc.withUnsafeMutableBufferPointer { a in
                layout.add(a.baseAddress! + s &* width, events, i, ts: ts, arrival: arrival, keyHash: keyHash, pools: &pools)
            }
            if changes { markDirty(s) }
            i += 1
            closeDue = clock.observe(ts)
            if !isDirect { break }
        }
        return (i, closeDue)
    }

    /// `addDirectRun`'s lookahead at event `i`: the table entry of event `i + entryDistance`'s
    /// group, the slot of event `i + slotDistance`'s (whose entry has arrived) if the pane has
    /// it. `mutating` only to be called in place (`prefetchSlot`).
    @inline(__always)
    mutating func prefetchAhead(_ i: Int, groups: UnsafeBufferPointer<UInt32>, width: Int) {
        let far = i &+ Pane.entryDistance, near = i &+ Pane.slotDistance, n = groups.count
        slotOfGroup.withUnsafeBufferPointer { t in
            if far < n, case let gf = Int(groups[far]), gf < t.count { CLinux_prefetch(t.baseAddress! + gf) }
            if near < n, case let gn = Int(groups[near]), gn < t.count, case let sn = Int(t[gn]), sn != 0 {
                acc.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + (sn &- 1) &* width) }
            }
        }
    }

    /// The slot of `group`, if the pane has it.
    func find(_ group: UInt32) -> Int? {
        if isDirect {
            guard Int(group) < slotOfGroup.count, case let s = Int(slotOfGroup[Int(group)]), s != 0 else { return nil }
            return s - 1
        }
        var i = Int(truncatingIfNeeded: UInt64(group) &* 0x9E37_79B9_7F4A_7C15 >> 32) & mask
        while true {
            let s = Int(slotOfGroup[i])
            if s == 0 { return nil }
            if groupIds[s - 1] == group { return s - 1 }
            i = (i + 1) & mask
        }
    }

    /// Calls `body` with the groups, the slots (`count` of them, `layout.width` wide) and a
    /// function that starts loading where the table lookup of a group begins (`prefetchTable`).
    @inline(__always)
    mutating func withColumns<R>(_ body: (UnsafeBufferPointer<UInt32>, UnsafeMutablePointer<Double>, (UInt32) -> Void) -> R) -> R {
        let mask = self.mask, direct = isDirect
        return slotOfGroup.withUnsafeBufferPointer { t in
            groupIds.withUnsafeBufferPointer { g in
                acc.withUnsafeMutableBufferPointer { a in
                    body(g, a.baseAddress!) { group in
                        let i = Pane.home(group, direct: direct, mask: mask, count: t.count)
                        if i >= 0 { CLinux_prefetch(t.baseAddress! + i) }
                    }
                }
            }
        }
    }

    /// Starts loading slot `s` (its group and aggregates), if the pane has it. The prefetches
    /// are `mutating` only so that they are called in place: a non-mutating call on a pane (or
    /// on `PaneWindows`) reached through the operator's `inout` self in a closure copies it
    /// first, retaining and releasing each of its arrays, per event.
    @inline(__always)
    mutating func prefetchSlot(_ s: Int, width: Int) {
        guard s < groupIds.count else { return }
        groupIds.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + s) }
        acc.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + s * width) }
    }

    /// Starts loading the slot of the pane's table where the lookup of `group` begins.
    @inline(__always)
    mutating func prefetchTable(_ group: UInt32) {
        let i = Pane.home(group, direct: isDirect, mask: mask, count: slotOfGroup.count)
        if i >= 0 { slotOfGroup.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + i) } }
    }

    @inline(__always)
    mutating func markDirty(_ s: Int) {
        if s >= dirtyMark.count { dirtyMark.append(contentsOf: repeatElement(false, count: Swift.max(s + 1, groupIds.count, 2 * dirtyMark.count) - dirtyMark.count)) }
        if !dirtyMark[s] { dirtyMark[s] = true; dirty.append(Int32(s)) }
    }

    /// Whether slot `s` changed since the last changelog flush.
    func isDirty(_ s: Int) -> Bool { s < dirtyMark.count && dirtyMark[s] }

    func release(layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        guard layout.usesPools else { return }
        acc.withUnsafeBufferPointer { b in
            for s in 0..<groupIds.count { layout.release(b.baseAddress! + s * layout.width, pools: &pools) }
        }
    }
}

/// The event-time bookkeeping of a batch being ingested, held in locals for a run of events
/// (`PaneWindows.addRun`); the operator's fields are written back after the run.
struct IngestClock {
    var watermarkMs: Int64
    var maxEventTimeMs: Int64
    var arrivals: UInt64
    let allowedLatenessMs: Int64
    /// A close is due once the watermark reaches this.
    let closeAtMs: Int64

    /// Takes the time of an event just added; returns whether a close is now due.
    @inline(__always)
    mutating func observe(_ ts: Int64) -> Bool {
        arrivals &+= 1
        guard ts > maxEventTimeMs else { return false }
        maxEventTimeMs = ts
        let w = ts - allowedLatenessMs
        guard w > watermarkMs else { return false }
        watermarkMs = w
        return w >= closeAtMs
    }
}

/// Tumbling (`slide == size`) and hopping windows over slide-sized panes. An event goes into
/// ONE pane; a window `[w, w + size)` is the merge of its `size / slide` panes, done when it is
/// emitted. Open panes are few (about `(size + lateness) / slide`), so they are a sorted array.
///
/// `nextWindowStart` is the first window start not yet closed: windows before it were emitted
/// (or were empty when the watermark passed their end), and a pane before it is dropped.
struct PaneWindows {
    let sizeMs: Int64
    let slideMs: Int64
    /// Open panes, ascending start.
    var panes: [Pane] = []
    var spare: [Pane] = []
    /// Panes a checkpoint snapshot copied the open ones into, back once it was encoded: the next
    /// snapshot copies into their memory. Fresh memory costs more than the copy, at its first
    /// touch: a pane of 1M groups copied into new arrays took 74 ms, mostly zeroing new pages.
    var copySpares: [Pane] = []
    var nextWindowStart: Int64 = .min
    /// Scratch for merging the panes of one hop window.
    var scratch = Pane(startMs: 0)
    /// Per group id: the start of the pane the group was last added to and its slot there, for
    /// hashed panes (a direct pane's table is read as quickly). A hint only
    /// (`slot(pane:group:)` checks that the pane's slot still holds the group), so an event of
    /// a group already in its pane — nearly all — skips the pane's table.
    private var hintStart: [Int64] = []
    private var hintSlot: [Int32] = []

    init(sizeMs: Int64, slideMs: Int64) {
        self.sizeMs = sizeMs
        self.slideMs = slideMs
    }

    /// A true floor of `ts` to a multiple of `unit` (right for negative times).
    @inline(__always)
    static func floor(_ ts: Int64, _ unit: Int64) -> Int64 {
        let q = ts / unit
        return (ts % unit != 0 && ts < 0 ? q - 1 : q) * unit
    }

    var panesPerWindow: Int64 { sizeMs / slideMs }

    /// A copy holding only what a checkpoint encodes (`WindowOperator.checkpointCopy`): copies
    /// of the open panes without their tables (`Pane.checkpointCopy`), made in the memory of
    /// earlier snapshots' copies (`recycleCheckpointCopies`), no hints, no spare panes. Its cost
    /// grows with the open panes' groups: a tumbling stream with many of them checkpoints just
    /// after a close, when they are few (`Reactor.checkpointIfDue`).
    mutating func checkpointCopy() -> PaneWindows {
        var c = PaneWindows(sizeMs: sizeMs, slideMs: slideMs)
        c.panes = panes.map { pane in
            var copy = copySpares.popLast() ?? Pane(startMs: 0)
            pane.checkpointCopy(into: &copy)
            return copy
        }
        c.nextWindowStart = nextWindowStart
        return c
    }

    /// Takes back the pane copies of an encoded checkpoint snapshot (`checkpointCopy`), keeping
    /// as many as there are open panes, so that the next snapshot copies each pane into the
    /// memory of the one at its place (about its size) in the last.
    mutating func recycleCheckpointCopies(_ copies: [Pane]) {
        for copy in copies.reversed() where copySpares.count < Swift.max(panes.count, 1) { copySpares.append(copy) }
    }

    /// The first window start whose window is still open at watermark `wm` (end > wm).
    func firstOpenStart(watermark wm: Int64) -> Int64 {
        if wm == .min { return .min }
        return PaneWindows.floor(wm - sizeMs, slideMs) + slideMs
    }

    /// The end of the first window that closing would emit, or `Int64.max` if none.
    var nextCloseAtMs: Int64 {
        guard let first = panes.first else { return .max }
        return max(nextWindowStart, first.startMs - (panesPerWindow - 1) * slideMs) + sizeMs
    }

    /// The slot of `group` in pane `k`, made if new.
    @inline(__always)
    mutating func slot(pane k: Int, group: UInt32, layout: AccumulatorLayout, pools: inout AccumulatorPools) -> Int {
        // A direct pane's table is as quick as the hints; they are left for hashed panes.
        if panes[k].isDirect { return panes[k].slot(group, layout: layout, pools: &pools) }
        let g = Int(group)
        let start = panes[k].startMs
        if g < hintStart.count {
            let s = Int(hintSlot[g])
            if hintStart[g] == start && s < panes[k].count && panes[k].groupIds[s] == group { return s }
        } else {
            while hintStart.count <= g { hintStart.append(.min); hintSlot.append(0) }
        }
        let s = panes[k].slot(group, layout: layout, pools: &pools)
        hintStart[g] = start
        hintSlot[g] = Int32(s)
        return s
    }

    /// How many events ahead `prefetch` loads a group's hint, and how many its slot.
    static let hintDistance = 16, slotDistance = 8

    /// Starts loading what adding the events of `groups` from `i` on to pane `k` reads, for
    /// streams with too many groups for the caches: the hint of event `i + hintDistance`'s
    /// group, and for event `i + slotDistance` (whose hint has arrived) its slot in the pane, or
    /// where the pane's table lookup begins when the hint gives none. `mutating` only to be
    /// called in place (`Pane.prefetchSlot`).
    @inline(__always)
    mutating func prefetch(pane k: Int, groups: UnsafeBufferPointer<UInt32>, at i: Int, width: Int) {
        let far = i + PaneWindows.hintDistance, near = i + PaneWindows.slotDistance
        // Plain subscripts, no nested closures (which retained the hint arrays per call).
        if far < groups.count {
            let g = Int(groups[far])  // a late event's (UInt32.max) is beyond every hint
            if g < hintStart.count {
                hintStart.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + g) }
                hintSlot.withUnsafeBufferPointer { CLinux_prefetch($0.baseAddress! + g) }
            }
        }
        guard near < groups.count else { return }
        let g = Int(groups[near])
        guard g < hintStart.count else { return }
        if hintStart[g] == panes[k].startMs {
            panes[k].prefetchSlot(Int(hintSlot[g]), width: width)
        } else {
            panes[k].prefetchTable(UInt32(truncatingIfNeeded: g))
        }
    }

    /// Adds the events from `from` on, in order, while each lies in pane `k`, is not late
    /// (`groups[i] != WindowOperator.lateGroup`) and its group's hint gives its slot there, and
    /// the watermark stays before `clock.closeAtMs`: the usual event, with one pane's arrays and
    /// the hints held once for the whole run (no bounds, uniqueness or ARC per event). Returns
    /// the first event not taken and whether the last one taken made a close due.
    @inline(__always)
    mutating func addRun(pane k: Int, from: Int, _ events: EventBatch.EventView, groups: UnsafeBufferPointer<UInt32>,
                         clock: inout IngestClock, layout: AccumulatorLayout, pools: inout AccumulatorPools,
                         deep: Bool) -> (next: Int, closeDue: Bool) {
        let lo = panes[k].startMs, hi = lo + slideMs, n = events.count, width = layout.width
        return hintStart.withUnsafeBufferPointer { hs in
            hintSlot.withUnsafeBufferPointer { hsl in
                panes[k].withColumns { gids, acc, prefetchTable in
                    var i = from
                    while i < n {
                        let ts = events.timestamp(i)
                        // A late event's group (UInt32.max) is beyond every hint.
                        let g = Int(groups[i])
                        guard ts >= lo && ts < hi && g < hs.count && hs[g] == lo else { break }
                        let s = Int(hsl[g])
                        guard s < gids.count && gids[s] == UInt32(truncatingIfNeeded: g) else { break }
                        if deep {
                            // As `prefetch`, with the pane's arrays held here.
                            let far = i + PaneWindows.hintDistance, near = i + PaneWindows.slotDistance
                            if far < n, case let gf = Int(groups[far]), gf < hs.count {
                                CLinux_prefetch(hs.baseAddress! + gf); CLinux_prefetch(hsl.baseAddress! + gf)
                            }
                            if near < n, case let gn = Int(groups[near]), gn < hs.count {
                                let sn = Int(hsl[gn])
                                if hs[gn] == lo && sn < gids.count {
                                    CLinux_prefetch(gids.baseAddress! + sn); CLinux_prefetch(acc + sn &* width)
                                } else {
                                    prefetchTable(UInt32(truncatingIfNeeded: gn))
                                }
                            }
                        }
                        layout.add(acc + s &* width, events, i, ts: ts, arrival: clock.arrivals, keyHash: 0, pools: &pools)
                        i += 1
                        if clock.observe(ts) { return (i, true) }
                    }
                    return (i, false)
                }
            }
        }
    }

    /// Whether `group`'s hint names pane `k`: `addRun` would take at least its event (a run
    /// set up for nothing costs its arrays' retains; with a million groups most events are their
    /// group's first in the pane). `mutating` only to be called in place (`Pane.prefetchSlot`).
    @inline(__always)
    mutating func hintNames(pane k: Int, group: UInt32) -> Bool {
        let g = Int(group)
        return g < hintStart.count && hintStart[g] == panes[k].startMs
    }

    /// Marks dirty the slots in pane `k` of the groups of events `range`, just taken by `addRun`.
    mutating func markRunDirty(pane k: Int, groups: UnsafeBufferPointer<UInt32>, _ range: Range<Int>) {
        for i in range { panes[k].markDirty(Int(hintSlot[Int(groups[i])])) }
    }

    /// The index of the pane starting at `start`, inserted if new.
    mutating func paneIndex(start: Int64, watermark: Int64) -> Int {
        var i = panes.count
        while i > 0 && panes[i - 1].startMs > start { i -= 1 }
        if i > 0 && panes[i - 1].startMs == start { return i - 1 }
        // Windows already closed never see this pane.
        nextWindowStart = max(nextWindowStart, firstOpenStart(watermark: watermark))
        var p = spare.popLast() ?? Pane(startMs: start)
        p.reset(startMs: start)
        panes.insert(p, at: i)
        return i
    }

    /// The next window to close at watermark `wm` that holds events: its start and the range
    /// of its panes in `panes`; `nil` when none is due. Empty windows on the way are passed.
    mutating func nextWindowToClose(watermark wm: Int64, layout: AccumulatorLayout, pools: inout AccumulatorPools) -> (start: Int64, panes: Range<Int>)? {
        let r = panesPerWindow
        while let first = panes.first {
            let w = max(nextWindowStart, first.startMs - (r - 1) * slideMs)
            if w > wm - sizeMs { return nil }
            var lo = 0
            while lo < panes.count && panes[lo].startMs < w { lo += 1 }
            var hi = lo
            while hi < panes.count && panes[hi].startMs < w + sizeMs { hi += 1 }
            if hi > lo { return (w, lo..<hi) }
            windowDone(w, layout: layout, pools: &pools)
        }
        return nil
    }

    /// Merges the panes `range` into `scratch` (emptied first; the caller releases it).
    mutating func mergeIntoScratch(_ range: Range<Int>, start: Int64, layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        scratch.reset(startMs: start)
        for k in range {
            for s in 0..<panes[k].count {
                let t = scratch.slot(panes[k].groupIds[s], layout: layout, pools: &pools)
                scratch.acc.withUnsafeMutableBufferPointer { dst in
                    panes[k].acc.withUnsafeBufferPointer { from in
                        layout.merge(into: dst.baseAddress! + t * layout.width, from.baseAddress! + s * layout.width, pools: &pools)
                    }
                }
            }
        }
    }

    /// Removes pane `i` (a closed tumbling window's) without releasing it: its rows are still to
    /// be built (`giveBack` when done).
    mutating func detach(_ i: Int) -> Pane { panes.remove(at: i) }

    /// The merged panes of a closed hopping window, for its rows (`giveBack` when done); the next
    /// merge gets another scratch pane.
    mutating func takeScratch() -> Pane {
        let p = scratch
        scratch = spare.popLast() ?? Pane(startMs: 0)
        return p
    }

    /// A closed window's pane whose rows were taken: its pool entries go back; the pane is kept
    /// for reuse unless enough are (windows queued while emission lagged would otherwise keep
    /// the memory of all of them for good).
    mutating func giveBack(_ pane: Pane, layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        pane.release(layout: layout, pools: &pools)
        if spare.count <= Int(panesPerWindow) { spare.append(pane) }
    }

    /// Window `w` was emitted: the next one starts a slide later; panes no open window holds go.
    mutating func windowDone(_ w: Int64, layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        nextWindowStart = w + slideMs
        dropPanes(before: nextWindowStart, layout: layout, pools: &pools)
    }

    /// After closing at `wm`: windows ending by `wm` are all closed, even those never seen.
    mutating func closedThrough(watermark wm: Int64, layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        nextWindowStart = max(nextWindowStart, firstOpenStart(watermark: wm))
        dropPanes(before: nextWindowStart, layout: layout, pools: &pools)
    }

    private mutating func dropPanes(before start: Int64, layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        var n = 0
        while n < panes.count && panes[n].startMs < start { n += 1 }
        guard n > 0 else { return }
        for k in 0..<n {
            panes[k].release(layout: layout, pools: &pools)
            spare.append(panes[k])
        }
        panes.removeFirst(n)
    }
}
