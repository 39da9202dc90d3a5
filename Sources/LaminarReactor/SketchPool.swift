/// The quantile sketches of one stream's window slots, all in one arena: a sketch is a small
/// plain header (`headers[id]`; a slot holds the id) and, per sign, one block of the arena.
/// Adding a value touches the header and one arena word: no object per sketch, no array header
/// to load, no allocation once the blocks are there (a released sketch keeps its blocks for the
/// next window's sketch of its slot).
///
/// A store begins sparse: its block lists `(index, count)` entries as they come (a window of a
/// few hundred events per group touches a few cache lines instead of a bucket array spanning
/// every index seen); it turns dense (one count per bucket index) when a list that fills its
/// block would be larger than the buckets it spans, or spans more than `bucketsMax`.
///
/// Invariants: a store's values lie in `lo...hi` (tight: both ends were added, unless empty);
/// a dense store's `lo...hi` is inside its block `[offset, offset + capacity)` and holds at most
/// `QuantileSketch.bucketsMax` buckets, the ones ending at the largest index seen (lower
/// indexes fold into the lowest kept one), so a merge is exactly the sketch of the union; a
/// sparse store's span is within `bucketsMax` too; every block on a free list, and every word
/// of a block a store does not use, is zero. Checkpoints use `QuantileSketch`'s format: `f64`
/// accuracy, `u64` zero count, `u64` count, then the positive and the negative store, each
/// `i64` first index, `u32` buckets, a LEB128 count per bucket.
struct SketchPool: Sendable {
    /// The buckets of one sign of one sketch.
    struct Store: Sendable {
        /// Arena position of the block, -1 for none.
        var base: Int32 = -1
        /// The block holds `8 << sizeClass` words.
        var sizeClass: Int32 = 0
        /// Dense: the bucket index at `base`.
        var offset: Int32 = 0
        var lo: Int32 = 1
        var hi: Int32 = 0
        /// Sparse: entries used (`Arena.entry`); -1 when dense.
        var entries: Int32 = 0
        var isEmpty: Bool { hi < lo }
        var isDense: Bool { entries < 0 }
        var capacity: Int { 8 << Int(sizeClass) }
    }

    struct Header: Sendable {
        var count: UInt64 = 0
        var zeroCount: UInt64 = 0
        var positive = Store()
        var negative = Store()
    }

    var headers: [Header] = []
    var freeHeaders: [Int32] = []
    var arena = Arena()

    /// An empty sketch's id (its blocks, if reused, kept).
    mutating func take() -> Int {
        if let id = freeHeaders.popLast() { return Int(id) }
        headers.append(Header())
        return headers.count - 1
    }

    /// Empties sketch `id` (zeroing only the buckets it used) and frees its id; its blocks stay
    /// with it for reuse.
    mutating func release(_ id: Int) {
        arena.clear(&headers[id].positive)
        arena.clear(&headers[id].negative)
        headers[id].count = 0
        headers[id].zeroCount = 0
        freeHeaders.append(Int32(id))
    }

    /// Adds `x` to sketch `id`: the headers and the arena held once (one uniqueness check
    /// each), the usual bucket written in place (`Arena.addInPlace`), `add` when it does not fit.
    @inline(__always)
    mutating func add(_ id: Int, _ x: Double, _ mapping: SketchMapping) {
        let magnitude = Swift.abs(x)
        guard magnitude > QuantileSketch.minIndexable else {
            headers[id].count += 1
            headers[id].zeroCount += 1
            return
        }
        let index = mapping.index(magnitude), positive = x > 0
        let added = headers.withUnsafeMutableBufferPointer { h in
            arena.counts.withUnsafeMutableBufferPointer { c in
                h[id].count &+= 1
                return positive ? Arena.addInPlace(&h[id].positive, index, c) : Arena.addInPlace(&h[id].negative, index, c)
            }
        }
        if !added {
            if positive { arena.add(&headers[id].positive, index, 1) } else { arena.add(&headers[id].negative, index, 1) }
        }
    }

    /// Adds sketch `b` into sketch `a` (same accuracy, same pool).
    mutating func merge(into a: Int, _ b: Int) {
        let h = headers[b]
        guard h.count > 0 else { return }
        headers[a].count += h.count
        headers[a].zeroCount += h.zeroCount
        mergeStore(h.positive, into: a, positive: true)
        mergeStore(h.negative, into: a, positive: false)
    }

    private mutating func mergeStore(_ o: Store, into a: Int, positive: Bool) {
        guard !o.isEmpty else { return }
        if !o.isDense {
            for k in 0..<Int(o.entries) {
                let (i, v) = Arena.unpack(arena.counts[Int(o.base) + k])
                if positive { arena.add(&headers[a].positive, i, v) } else { arena.add(&headers[a].negative, i, v) }
            }
            return
        }
        // The ends first: at most two moves to a block covering the union.
        var i = Int(o.hi)
        while true {
            let v = arena.bucket(o, i)
            if v != 0 {
                if positive { arena.add(&headers[a].positive, i, v) } else { arena.add(&headers[a].negative, i, v) }
            }
            if i == Int(o.hi) { i = Int(o.lo) } else { i += 1 }
            if i == Int(o.hi) { break }
        }
    }

    /// Copies sketch `b` of another pool into a new sketch of this one; returns its id.
    mutating func importSketch(from other: SketchPool, _ b: Int) -> Int {
        let id = take()
        let h = other.headers[b]
        headers[id].count = h.count
        headers[id].zeroCount = h.zeroCount
        other.arena.forEachBucket(h.positive) { i, v in arena.add(&headers[id].positive, i, v) }
        other.arena.forEachBucket(h.negative) { i, v in arena.add(&headers[id].negative, i, v) }
        return id
    }

    /// The estimate of the element of rank `floor(q · (n − 1))` of sketch `id`; `nil` when empty.
    func quantile(_ id: Int, _ q: Double, _ mapping: SketchMapping) -> Double? {
        let h = headers[id]
        guard h.count > 0 else { return nil }
        let rank = UInt64((q * Double(h.count - 1)).rounded(.down))
        var seen: UInt64 = 0
        // Negatives first, most negative (largest magnitude index) first.
        let negative: Double? = arena.withBuckets(h.negative) { b in
            var i = b.count - 1
            while i >= 0 {
                seen += b[i]
                if seen > rank { return -mapping.value(Int(h.negative.lo) + i) }
                i -= 1
            }
            return nil
        }
        if let negative { return negative }
        seen += h.zeroCount
        if seen > rank || h.positive.isEmpty { return 0 }
        return arena.withBuckets(h.positive) { b in
            for i in 0..<b.count {
                seen += b[i]
                if seen > rank { return mapping.value(Int(h.positive.lo) + i) }
            }
            return mapping.value(Int(h.positive.hi))
        }
    }

    // MARK: - Checkpoint

    func encode(_ id: Int, _ mapping: SketchMapping, into w: inout ByteWriter) {
        let h = headers[id]
        w.f64(mapping.accuracy); w.u64(h.zeroCount); w.u64(h.count)
        for s in [h.positive, h.negative] {
            if s.isEmpty {
                w.i64(0); w.u32(0)
                continue
            }
            w.i64(Int64(s.lo)); w.u32(UInt32(s.hi - s.lo + 1))
            arena.withBuckets(s) { b in for c in b { w.varint(c) } }
        }
    }

    /// Reads the accuracy that begins an encoded sketch (and checks it).
    static func decodeAccuracy(from r: inout ByteReader) throws -> Double {
        let accuracy = try r.f64()
        guard QuantileSketch.accuracyRange.contains(accuracy) else { throw ByteReader.DecodeError() }
        return accuracy
    }

    /// Reads the rest of an encoded sketch into the empty sketch `id`.
    mutating func decodeBody(into id: Int, from r: inout ByteReader) throws {
        let zeroCount = try r.u64(), count = try r.u64()
        var stores = [headers[id].positive, headers[id].negative]
        // A slot decoded twice (a group listed twice in a damaged checkpoint) is refused.
        guard stores[0].isEmpty && stores[1].isEmpty && headers[id].count == 0 else { throw ByteReader.DecodeError() }
        var total = zeroCount
        for k in 0..<2 {
            let first = try r.i64()
            let n = Int(try r.u32())
            guard n <= QuantileSketch.bucketsMax, n == 0 || (abs(first) < 1 << 30) else { throw ByteReader.DecodeError() }
            for i in 0..<n {
                let v = try r.varint()
                guard v > 0 else { continue }
                let (t, o) = total.addingReportingOverflow(v)
                guard !o else { throw ByteReader.DecodeError() }
                total = t
                arena.add(&stores[k], Int(first) + i, v)
            }
        }
        guard total == count else { throw ByteReader.DecodeError() }
        headers[id].positive = stores[0]
        headers[id].negative = stores[1]
        headers[id].zeroCount = zeroCount
        headers[id].count = count
    }
}

/// The blocks of a `SketchPool`: blocks of `8 << sizeClass` words in one array, free blocks
/// (all zero) listed by size class. A dense store's word is a bucket count; a sparse store's
/// an entry, `UInt32(bitPattern: index) | count << 32` (count below 2^32).
struct Arena: Sendable {
    typealias Store = SketchPool.Store
    static let sizeClasses = 12  // 8 << 11 = bucketsMax

    var counts: [UInt64] = []
    var freeBlocks: [[Int32]] = Array(repeating: [], count: Arena.sizeClasses)

    @inline(__always)
    static func pack(_ index: Int, _ n: UInt64) -> UInt64 { UInt64(UInt32(bitPattern: Int32(index))) | n << 32 }
    @inline(__always)
    static func unpack(_ e: UInt64) -> (Int, UInt64) { (Int(Int32(bitPattern: UInt32(truncatingIfNeeded: e))), e >> 32) }

    /// A dense store's bucket `i`.
    @inline(__always)
    func bucket(_ s: Store, _ i: Int) -> UInt64 { counts[Int(s.base) + i - Int(s.offset)] }

    /// Calls `body` with the counts of buckets `s.lo...s.hi` (a sparse store's summed up in a
    /// temporary buffer).
    func withBuckets<R>(_ s: Store, _ body: (UnsafeBufferPointer<UInt64>) -> R) -> R {
        guard !s.isEmpty else { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        let span = Int(s.hi - s.lo) + 1
        if s.isDense {
            return counts.withUnsafeBufferPointer { c in
                body(UnsafeBufferPointer(rebasing: c[(Int(s.base) + Int(s.lo - s.offset))...].prefix(span)))
            }
        }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: span) { t in
            t.initialize(repeating: 0)
            for k in 0..<Int(s.entries) {
                let (i, v) = Arena.unpack(counts[Int(s.base) + k])
                t[i - Int(s.lo)] += v
            }
            return body(UnsafeBufferPointer(t))
        }
    }

    /// Calls `body` with each non-zero bucket (index, count); a sparse store's entries as listed.
    func forEachBucket(_ s: Store, _ body: (Int, UInt64) -> Void) {
        guard !s.isEmpty else { return }
        if s.isDense {
            for i in Int(s.lo)...Int(s.hi) {
                let v = bucket(s, i)
                if v != 0 { body(i, v) }
            }
        } else {
            for k in 0..<Int(s.entries) {
                let (i, v) = Arena.unpack(counts[Int(s.base) + k])
                body(i, v)
            }
        }
    }

    /// Zeroes the words `s` used and empties it; its block stays, as a sparse list.
    mutating func clear(_ s: inout Store) {
        if !s.isEmpty {
            let from = s.isDense ? Int(s.base) + Int(s.lo - s.offset) : Int(s.base)
            let to = s.isDense ? Int(s.base) + Int(s.hi - s.offset) : Int(s.base) + Int(s.entries) - 1
            counts.withUnsafeMutableBufferPointer { c in
                for i in from...to { c[i] = 0 }
            }
        }
        s.lo = 1; s.hi = 0; s.entries = 0
    }

    /// Adds 1 to bucket `index` of `s` if it fits where `s` is (`add`'s first two cases, on the
    /// arena's words `c`); `false` (nothing done) otherwise.
    @inline(__always)
    static func addInPlace(_ s: inout Store, _ index: Int, _ c: UnsafeMutableBufferPointer<UInt64>) -> Bool {
        let base = Int(s.base)
        if s.entries < 0 {
            let at = index &- Int(s.offset)
            guard at >= 0 && at < s.capacity else { return false }
            c[base &+ at] &+= 1
            if index < Int(s.lo) { s.lo = Int32(truncatingIfNeeded: index) } else if index > Int(s.hi) { s.hi = Int32(truncatingIfNeeded: index) }
            return true
        }
        let entries = Int(s.entries)
        if s.isEmpty {
            guard base >= 0 && entries < s.capacity else { return false }
            s.lo = Int32(truncatingIfNeeded: index); s.hi = s.lo
        } else {
            let lo = Swift.min(Int(s.lo), index), hi = Swift.max(Int(s.hi), index)
            guard base >= 0 && entries < s.capacity && hi &- lo < QuantileSketch.bucketsMax else { return false }
            s.lo = Int32(truncatingIfNeeded: lo); s.hi = Int32(truncatingIfNeeded: hi)
        }
        c[base &+ entries] = Arena.pack(index, 1)
        s.entries = Int32(truncatingIfNeeded: entries &+ 1)
        return true
    }

    /// Adds `n` (> 0) to bucket `index` of `s`. A dense store keeps a bucket inside its block
    /// (`index` and the store's range then lie in at most `bucketsMax` buckets: nothing folds); a
    /// sparse one appends an entry while its block has room and its span stays within
    /// `bucketsMax`.
    @inline(__always)
    mutating func add(_ s: inout Store, _ index: Int, _ n: UInt64) {
        if s.isDense {
            let at = index - Int(s.offset)
            if at >= 0 && at < s.capacity {
                counts[Int(s.base) + at] += n
                if index < Int(s.lo) { s.lo = Int32(index) } else if index > Int(s.hi) { s.hi = Int32(index) }
                return
            }
        } else if s.base >= 0 && Int(s.entries) < s.capacity && n < 1 << 32
                    && (s.isEmpty || max(Int(s.hi), index) - min(Int(s.lo), index) < QuantileSketch.bucketsMax) {
            counts[Int(s.base) + Int(s.entries)] = Arena.pack(index, n)
            s.entries += 1
            if s.isEmpty { s.lo = Int32(index); s.hi = Int32(index) }
            else if index < Int(s.lo) { s.lo = Int32(index) }
            else if index > Int(s.hi) { s.hi = Int32(index) }
            return
        }
        addOutside(&s, index, n)
    }

    /// The slow path. A sparse store gets a block, or a block twice as large, or turns dense
    /// (when its list would outgrow the buckets it spans, a count reaches 2^32, or the span
    /// `bucketsMax`); a dense store moves to a block that covers the new range (a quarter more
    /// than its span, within `bucketsMax`), folding what falls below the kept range.
    private mutating func addOutside(_ s: inout Store, _ index: Int, _ n: UInt64) {
        let cap = QuantileSketch.bucketsMax
        if !s.isDense {
            if s.base < 0 {
                s.base = Int32(allocate(0)); s.sizeClass = 0
                add(&s, index, n)
                return
            }
            let span = s.isEmpty ? 1 : max(Int(s.hi), index) - min(Int(s.lo), index) + 1
            if n < 1 << 32 && span <= cap && Int(s.entries) == s.capacity && s.sizeClass + 1 < Arena.sizeClasses && 2 * s.capacity < span {
                let base = allocate(Int(s.sizeClass) + 1)
                counts.withUnsafeMutableBufferPointer { c in
                    for k in 0..<Int(s.entries) { c[base + k] = c[Int(s.base) + k]; c[Int(s.base) + k] = 0 }
                }
                freeBlocks[Int(s.sizeClass)].append(s.base)
                s.base = Int32(base); s.sizeClass += 1
                add(&s, index, n)
                return
            }
            densify(&s)
        }
        let newHi = s.isEmpty ? index : max(Int(s.hi), index)
        let floor = newHi - cap + 1
        let target = max(index, floor)
        let newLo = s.isEmpty ? target : max(min(Int(s.lo), target), floor)
        let span = newHi - newLo + 1
        if newLo >= Int(s.offset) && newHi < Int(s.offset) + s.capacity && (s.isEmpty || Int(s.lo) >= floor) {
            // The block covers it: `index` folds into the lowest bucket kept.
            counts[Int(s.base) + target - Int(s.offset)] += n
            s.lo = Int32(newLo); s.hi = Int32(newHi)
            return
        }
        var sizeClass = 0
        while (8 << sizeClass) < min(span + span / 4, cap) { sizeClass += 1 }
        let capacity = 8 << sizeClass
        let offset = newLo - (capacity - span) / 2
        let base = allocate(sizeClass)
        counts.withUnsafeMutableBufferPointer { c in
            if !s.isEmpty {
                // Move the old buckets over (folding those below `floor`), zeroing them.
                let oldBase = Int(s.base), oldOffset = Int(s.offset)
                for i in Int(s.lo)...Int(s.hi) {
                    let v = c[oldBase + i - oldOffset]
                    guard v != 0 else { continue }
                    c[oldBase + i - oldOffset] = 0
                    c[base + max(i, floor) - offset] += v
                }
            }
            c[base + target - offset] += n
        }
        freeBlocks[Int(s.sizeClass)].append(s.base)
        s = Store(base: Int32(base), sizeClass: Int32(sizeClass), offset: Int32(offset), lo: Int32(newLo), hi: Int32(newHi), entries: -1)
    }

    /// Turns a sparse store (with a block) into a dense one over its span (within `bucketsMax`).
    private mutating func densify(_ s: inout Store) {
        let span = s.isEmpty ? 1 : Int(s.hi - s.lo) + 1
        var sizeClass = 0
        while (8 << sizeClass) < min(span + span / 4, QuantileSketch.bucketsMax) { sizeClass += 1 }
        let capacity = 8 << sizeClass
        let offset = (s.isEmpty ? 0 : Int(s.lo)) - (capacity - span) / 2
        let base = allocate(sizeClass)
        counts.withUnsafeMutableBufferPointer { c in
            for k in 0..<Int(s.entries) {
                let (i, v) = Arena.unpack(c[Int(s.base) + k])
                c[Int(s.base) + k] = 0
                c[base + i - offset] += v
            }
        }
        freeBlocks[Int(s.sizeClass)].append(s.base)
        s = Store(base: Int32(base), sizeClass: Int32(sizeClass), offset: Int32(offset), lo: s.lo, hi: s.hi, entries: -1)
    }

    private mutating func allocate(_ sizeClass: Int) -> Int {
        if let b = freeBlocks[sizeClass].popLast() { return Int(b) }
        let base = counts.count
        counts.append(contentsOf: repeatElement(0, count: 8 << sizeClass))
        precondition(counts.count <= Int(Int32.max), "sketch arena beyond 2^31 words")
        return base
    }
}
