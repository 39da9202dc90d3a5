/// The quantile sketches of one stream's window slots, all in one arena: a sketch is a small
/// plain header (`headers[id]`; a slot holds the id) and, per sign, one block of bucket counts in
/// `counts`. Adding a value touches the header and one bucket: no object per sketch, no array
/// header to load, no allocation once the blocks are there (they are kept when a sketch is
/// released, for the next window's sketch of the slot).
///
/// Invariants: a store's non-zero buckets lie in `lo...hi`, which are tight (both non-zero when
/// the store is not empty) and inside its block `[offset, offset + capacity)`; the buckets kept
/// are the `QuantileSketch.bucketsMax` ending at the largest index seen (lower indexes are
/// folded into the lowest kept one), so a merge is exactly the sketch of the union; every block
/// on a free list and every bucket of a block outside `lo...hi` is zero. Checkpoints use
/// `QuantileSketch`'s format: `f64` accuracy, `u64` zero count, `u64` count, then the positive and
/// the negative store, each `i64` first index, `u32` buckets, a LEB128 count per bucket.
struct SketchPool: Sendable {
    /// The buckets of one sign of one sketch.
    struct Store: Sendable {
        /// Arena position of the block, -1 for none.
        var base: Int32 = -1
        /// The block holds `8 << sizeClass` buckets.
        var sizeClass: Int32 = 0
        /// The bucket index at `base`.
        var offset: Int32 = 0
        var lo: Int32 = 1
        var hi: Int32 = 0
        var isEmpty: Bool { hi < lo }
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

    @inline(__always)
    mutating func add(_ id: Int, _ x: Double, _ mapping: SketchMapping) {
        headers[id].count += 1
        if x > QuantileSketch.minIndexable {
            arena.add(&headers[id].positive, mapping.index(x), 1)
        } else if x < -QuantileSketch.minIndexable {
            arena.add(&headers[id].negative, mapping.index(-x), 1)
        } else {
            headers[id].zeroCount += 1
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
        // The ends first: at most two moves to a block covering the union.
        var i = Int(o.hi)
        while i >= Int(o.lo) {
            let v = arena.bucket(o, i)
            if v != 0 {
                if positive { arena.add(&headers[a].positive, i, v) } else { arena.add(&headers[a].negative, i, v) }
            }
            i = i == Int(o.hi) ? Int(o.lo) : (i == Int(o.lo) ? Int(o.lo) + 1 : i + 1)
            if i == Int(o.hi) { break }
        }
    }

    /// Copies sketch `b` of another pool into a new sketch of this one; returns its id.
    mutating func importSketch(from other: SketchPool, _ b: Int) -> Int {
        let id = take()
        let h = other.headers[b]
        headers[id].count = h.count
        headers[id].zeroCount = h.zeroCount
        if !h.positive.isEmpty {
            for i in Int(h.positive.lo)...Int(h.positive.hi) {
                let v = other.arena.bucket(h.positive, i)
                if v != 0 { arena.add(&headers[id].positive, i, v) }
            }
        }
        if !h.negative.isEmpty {
            for i in Int(h.negative.lo)...Int(h.negative.hi) {
                let v = other.arena.bucket(h.negative, i)
                if v != 0 { arena.add(&headers[id].negative, i, v) }
            }
        }
        return id
    }

    /// The estimate of the element of rank `floor(q · (n − 1))` of sketch `id`; `nil` when empty.
    func quantile(_ id: Int, _ q: Double, _ mapping: SketchMapping) -> Double? {
        let h = headers[id]
        guard h.count > 0 else { return nil }
        let rank = UInt64((q * Double(h.count - 1)).rounded(.down))
        var seen: UInt64 = 0
        // Negatives first, most negative (largest magnitude index) first.
        if !h.negative.isEmpty {
            var i = Int(h.negative.hi)
            while i >= Int(h.negative.lo) {
                seen += arena.bucket(h.negative, i)
                if seen > rank { return -mapping.value(i) }
                i -= 1
            }
        }
        seen += h.zeroCount
        if seen > rank || h.positive.isEmpty { return 0 }
        for i in Int(h.positive.lo)...Int(h.positive.hi) {
            seen += arena.bucket(h.positive, i)
            if seen > rank { return mapping.value(i) }
        }
        return mapping.value(Int(h.positive.hi))
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
            for i in Int(s.lo)...Int(s.hi) { w.varint(arena.bucket(s, i)) }
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

/// The bucket blocks of a `SketchPool`: blocks of `8 << sizeClass` counts in one array, free
/// blocks (all zero) listed by size class.
struct Arena: Sendable {
    typealias Store = SketchPool.Store
    static let sizeClasses = 12  // 8 << 11 = bucketsMax

    var counts: [UInt64] = []
    var freeBlocks: [[Int32]] = Array(repeating: [], count: Arena.sizeClasses)

    @inline(__always)
    func bucket(_ s: Store, _ i: Int) -> UInt64 { counts[Int(s.base) + i - Int(s.offset)] }

    /// Zeroes the buckets `s` used and empties it (its block stays).
    mutating func clear(_ s: inout Store) {
        guard !s.isEmpty else { return }
        let from = Int(s.base) + Int(s.lo - s.offset), to = Int(s.base) + Int(s.hi - s.offset)
        counts.withUnsafeMutableBufferPointer { c in
            for i in from...to { c[i] = 0 }
        }
        s.lo = 1; s.hi = 0
    }

    /// Adds `n` (> 0) to bucket `index` of `s`. Inside the block the bucket is kept (both `index`
    /// and the store's range then lie in a block of at most `bucketsMax`, so nothing folds).
    @inline(__always)
    mutating func add(_ s: inout Store, _ index: Int, _ n: UInt64) {
        let at = index - Int(s.offset)
        if s.base >= 0 && at >= 0 && at < s.capacity {
            counts[Int(s.base) + at] += n
            if s.isEmpty { s.lo = Int32(index); s.hi = Int32(index) }
            else if index < Int(s.lo) { s.lo = Int32(index) }
            else if index > Int(s.hi) { s.hi = Int32(index) }
        } else {
            addOutside(&s, index, n)
        }
    }

    /// The slow path: an empty store's block moves to centre on `index`; else a block that covers
    /// the new range (twice its span, within `bucketsMax`), folding what falls below the kept range.
    private mutating func addOutside(_ s: inout Store, _ index: Int, _ n: UInt64) {
        let cap = QuantileSketch.bucketsMax
        if s.isEmpty && s.base >= 0 {
            s.offset = Int32(index - s.capacity / 2)
            counts[Int(s.base) + s.capacity / 2] += n
            s.lo = Int32(index); s.hi = Int32(index)
            return
        }
        let newHi = s.isEmpty ? index : max(Int(s.hi), index)
        let floor = newHi - cap + 1
        let target = max(index, floor)
        let newLo = s.isEmpty ? target : max(min(Int(s.lo), target), floor)
        let span = newHi - newLo + 1
        if s.base >= 0 && newLo >= Int(s.offset) && newHi < Int(s.offset) + s.capacity && Int(s.lo) >= floor {
            // The block covers it: `index` folds into the lowest bucket kept.
            counts[Int(s.base) + target - Int(s.offset)] += n
            s.lo = Int32(newLo); s.hi = Int32(newHi)
            return
        }
        var sizeClass = 0
        while (8 << sizeClass) < min(2 * span, cap) { sizeClass += 1 }
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
        if s.base >= 0 { freeBlocks[Int(s.sizeClass)].append(s.base) }
        s = Store(base: Int32(base), sizeClass: Int32(sizeClass), offset: Int32(offset), lo: Int32(newLo), hi: Int32(newHi))
    }

    private mutating func allocate(_ sizeClass: Int) -> Int {
        if let b = freeBlocks[sizeClass].popLast() { return Int(b) }
        let base = counts.count
        counts.append(contentsOf: repeatElement(0, count: 8 << sizeClass))
        precondition(counts.count <= Int(Int32.max), "sketch arena beyond 2^31 buckets")
        return base
    }
}
