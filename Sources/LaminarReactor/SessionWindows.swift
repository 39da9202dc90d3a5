/// Session windows, per group: an event at t forms `[t, t + gap)` and merges with every open
/// session s of its group where `s.start <= t + gap` and `s.end >= t` (touching sessions merge;
/// a bridging event merges them all, accumulators included). A session's start is its first
/// event time and its end its last event time + gap; it closes when the watermark reaches its
/// end and is then forgotten (it never reopens).
///
/// Sessions live in flat arrays indexed by session id (a free list reuses ids) with one
/// accumulator slot each; a group's open sessions form a singly linked list (they are few, and
/// disjoint). Closing uses a lazy min-heap of (end, id, generation): each live session has one
/// entry whose end is at most its current end; an entry found early is pushed again with the
/// current end, a stale one (session merged away or closed) is dropped.
struct SessionWindows {
    let gapMs: Int64
    var head: [Int32] = []          // per group: first open session, -1 if none
    var start: [Int64] = []
    var end: [Int64] = []
    var group: [UInt32] = []
    var next: [Int32] = []
    var generation: [UInt32] = []
    var alive: [Bool] = []
    /// The start a changelog row was last emitted with (`Int64.min`: none yet).
    var emittedStart: [Int64] = []
    var dirtyMark: [Bool] = []
    var dirty: [Int32] = []
    var acc: [Double] = []
    var free: [Int32] = []
    var heap: [HeapEntry] = []
    private(set) var openCount = 0

    struct HeapEntry {
        var end: Int64
        var id: Int32
        var generation: UInt32
    }

    init(gapMs: Int64) { self.gapMs = gapMs }

    /// Sessions merged away by the last `place` (retired; their start, end and emitted start
    /// stay readable until the id is reused).
    var mergedAway: [Int32] = []

    /// Scratch: the sessions an event overlaps.
    private var overlapping: [Int32] = []

    /// Adds an event at `ts` (not late: `ts + gap > watermark`) of `group`; returns the slot
    /// (session id) it went into. When it overlaps several sessions, the one that starts first
    /// takes the others in (so its row keeps its identity); those are in `mergedAway`.
    @inline(__always)
    mutating func place(ts: Int64, group g: UInt32, layout: AccumulatorLayout, pools: inout AccumulatorPools) -> Int {
        if !mergedAway.isEmpty { mergedAway.removeAll(keepingCapacity: true) }
        while head.count <= Int(g) { head.append(-1) }
        let newEnd = ts + gapMs
        // The usual case first, with no scratch list: the event overlaps one session (or none).
        var only: Int32 = -1
        var several = false
        var s = head[Int(g)]
        while s >= 0 {
            if start[Int(s)] <= newEnd && end[Int(s)] >= ts {
                if only >= 0 { several = true; break }
                only = s
            }
            s = next[Int(s)]
        }
        if only < 0 { return Int(allocate(group: g, startMs: ts, endMs: newEnd, layout: layout, pools: &pools)) }
        if !several {
            let t = Int(only)
            if ts < start[t] { start[t] = ts }
            if newEnd > end[t] { end[t] = newEnd }
            return t
        }
        overlapping.removeAll(keepingCapacity: true)
        s = head[Int(g)]
        while s >= 0 {
            if start[Int(s)] <= newEnd && end[Int(s)] >= ts { overlapping.append(s) }
            s = next[Int(s)]
        }
        var target = overlapping[0]
        for o in overlapping.dropFirst() where start[Int(o)] < start[Int(target)] { target = o }
        let t = Int(target)
        for o in overlapping where o != target {
            let i = Int(o)
            if start[i] < start[t] { start[t] = start[i] }
            if end[i] > end[t] { end[t] = end[i] }
            acc.withUnsafeMutableBufferPointer { b in
                layout.merge(into: b.baseAddress! + t * layout.width, UnsafePointer(b.baseAddress! + i * layout.width), pools: &pools)
            }
            unlink(o)
            mergedAway.append(o)
            retire(o, layout: layout, pools: &pools)
        }
        if ts < start[t] { start[t] = ts }
        if newEnd > end[t] { end[t] = newEnd }
        return t
    }

    /// A new open session (linked first in its group's list, with a heap entry).
    mutating func allocate(group g: UInt32, startMs: Int64, endMs: Int64, layout: AccumulatorLayout, pools: inout AccumulatorPools) -> Int32 {
        while head.count <= Int(g) { head.append(-1) }
        let id: Int32
        if let f = free.popLast() {
            id = f
            let i = Int(f)
            start[i] = startMs; end[i] = endMs; group[i] = g; alive[i] = true
            emittedStart[i] = .min; dirtyMark[i] = false
            generation[i] &+= 1
        } else {
            id = Int32(start.count)
            start.append(startMs); end.append(endMs); group.append(g); next.append(-1)
            generation.append(0); alive.append(true); emittedStart.append(.min); dirtyMark.append(false)
            acc.append(contentsOf: repeatElement(0, count: layout.width))
        }
        let i = Int(id)
        acc.withUnsafeMutableBufferPointer { layout.initialize($0.baseAddress! + i * layout.width, pools: &pools) }
        next[i] = head[Int(g)]
        head[Int(g)] = id
        push(HeapEntry(end: endMs, id: id, generation: generation[i]))
        openCount += 1
        return id
    }

    /// Frees a session already unlinked from its group's list.
    mutating func retire(_ s: Int32, layout: AccumulatorLayout, pools: inout AccumulatorPools) {
        let i = Int(s)
        alive[i] = false
        generation[i] &+= 1
        acc.withUnsafeBufferPointer { layout.release($0.baseAddress! + i * layout.width, pools: &pools) }
        free.append(s)
        openCount -= 1
    }

    @inline(__always)
    mutating func markDirty(_ s: Int) {
        if !dirtyMark[s] { dirtyMark[s] = true; dirty.append(Int32(s)) }
    }

    /// The smallest end any open session may have (a lower bound), `Int64.max` if none.
    var nextCloseAtMs: Int64 { heap.first?.end ?? .max }

    /// Unlinks each session whose end is `<= wm`, in end order, and returns them; the caller
    /// reads them, then `retire`s them.
    mutating func closeDue(watermark wm: Int64) -> [Int32] {
        var closed: [Int32] = []
        while let top = heap.first, top.end <= wm {
            pop()
            let i = Int(top.id)
            guard alive[i], generation[i] == top.generation else { continue }
            if end[i] > wm {
                push(HeapEntry(end: end[i], id: top.id, generation: top.generation))
                continue
            }
            unlink(top.id)
            closed.append(top.id)
        }
        return closed
    }

    private mutating func unlink(_ s: Int32) {
        let g = Int(group[Int(s)])
        if head[g] == s { head[g] = next[Int(s)]; return }
        var p = head[g]
        while p >= 0 {
            if next[Int(p)] == s { next[Int(p)] = next[Int(s)]; return }
            p = next[Int(p)]
        }
    }

    /// Live session ids (checkpoint order: by id).
    var liveIds: [Int] { (0..<alive.count).filter { alive[$0] } }

    // MARK: - Heap

    private mutating func push(_ e: HeapEntry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].end < heap[parent].end else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && heap[l].end < heap[m].end { m = l }
            if r < heap.count && heap[r].end < heap[m].end { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
