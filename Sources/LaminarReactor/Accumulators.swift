import Glibc
import LaminarFormats

/// How one group's partial aggregates lie in a slot of `width` Doubles, compiled once from a
/// definition's aggregates, and the per-event update, merge and read-out over such slots. A slot
/// is flat numbers only (sketches and HLLs sit in pools, the slot holds their index), so panes
/// and sessions are plain arrays and the per-event path allocates nothing.
///
/// Slot layout: `[0]` count; when `first`/`last` are asked for, `[1]` first time, `[2]` its
/// arrival, `[3]` last time, `[4]` its arrival (Int64/UInt64 bit patterns); then per field read:
/// sum, min, max, then mean and M2 (Welford) for `stddev`/`variance`, then first and last value
/// for `first`/`last`; then one pool index per sketch and one for the HLL.
///
/// A field computed by an expression that can be null (`nullable`: NaN stands for null) skips
/// the events where it is null: its part keeps its own count (after the sums), which `avg`,
/// `stddev`, `variance` and `count` of that input (`nonNullCounts`) read instead of `[0]`.
struct AccumulatorLayout: Sendable {
    /// The sample variance from the sum of squared deviations `m2` of `n` values: never below 0
    /// (rounding), and null (NaN) when `m2` overflowed to NaN — not 0, as `max(0, NaN)` gives.
    static func sampleVariance(_ m2: Double, _ n: Double) -> Double {
        let v = m2 / (n - 1)
        return v.isNaN ? .nan : Swift.max(0, v)
    }

    struct FieldPart: Sendable {
        var field: Int
        var base: Int
        var moments: Bool
        var firstLast: Int  // offset of first/last values, or -1
        /// Offset of the part's own count (a nullable field), else 0 (the slot's count).
        var countAt: Int = 0
    }
    struct SketchPart: Sendable {
        var field: Int
        var mapping: SketchMapping
        var base: Int
        var nullable: Bool
        var accuracy: Double { mapping.accuracy }
    }
    /// How a column is read out of a merged slot (offsets into the slot).
    enum Column: Sendable {
        case count
        /// The non-null count of a nullable field (offset of its count).
        case countOf(Int)
        /// Offsets of the value and of the count that says whether there is one (0: the slot's).
        case sum(Int, Int), min(Int, Int), max(Int, Int), avg(Int, Int), variance(Int, Int), stddev(Int, Int)
        case first(Int), last(Int)
        case quantile(Int, Double, SketchMapping)
        case distinctOne
        case distinct(Int)
    }

    let width: Int
    let firstLast: Bool
    let parts: [FieldPart]
    let sketches: [SketchPart]
    let hllBase: Int
    let columns: [Column]
    /// Column kinds for JSON: integers for count and count_distinct.
    let integerColumns: [Bool]
    /// The field of the common case — count, sum, min, max of one field, nothing else — or -1.
    /// `add` takes a short path for it (no loops over parts).
    let simpleField: Int

    /// `nullable`: fields that may hold NaN (null); `nonNullCounts`: indices of `count`
    /// aggregates that count the events where their `field` is not null.
    init(definition d: StreamDefinition, nullable: Set<Int> = [], nonNullCounts: Set<Int> = []) {
        var needFirstLast = false
        var fieldsRead: [Int] = []
        var moments = Set<Int>(), firstLastFields = Set<Int>()
        for (i, a) in d.aggregates.enumerated() where (a.function.readsField && a.function != .p) || nonNullCounts.contains(i) {
            if !fieldsRead.contains(a.field) { fieldsRead.append(a.field) }
            if a.function == .stddev || a.function == .variance { moments.insert(a.field) }
            if a.function == .first || a.function == .last { firstLastFields.insert(a.field); needFirstLast = true }
        }
        var at = needFirstLast ? 5 : 1
        var parts: [FieldPart] = []
        for f in fieldsRead {
            var p = FieldPart(field: f, base: at, moments: moments.contains(f), firstLast: -1)
            at += 3
            if p.moments { at += 2 }
            if firstLastFields.contains(f) { p.firstLast = at; at += 2 }
            if nullable.contains(f) { p.countAt = at; at += 1 }
            parts.append(p)
        }
        var sketches: [SketchPart] = []
        for a in d.aggregates where a.function == .p {
            if !sketches.contains(where: { $0.field == a.field && $0.accuracy == a.accuracy }) {
                sketches.append(SketchPart(field: a.field, mapping: SketchMapping(accuracy: a.accuracy), base: at, nullable: nullable.contains(a.field)))
                at += 1
            }
        }
        let wantsHLL = d.groupBy == .all && d.aggregates.contains { $0.function == .countDistinct }
        hllBase = wantsHLL ? at : -1
        if wantsHLL { at += 1 }
        width = at
        firstLast = needFirstLast
        self.parts = parts
        self.sketches = sketches
        columns = d.aggregates.enumerated().map { (i, a) in
            let p = parts.first { $0.field == a.field }
            switch a.function {
            case .count: return nonNullCounts.contains(i) && p!.countAt > 0 ? .countOf(p!.countAt) : .count
            case .countDistinct: return wantsHLL ? .distinct(at - 1) : .distinctOne
            case .sum: return .sum(p!.base, p!.countAt)
            case .min: return .min(p!.base + 1, p!.countAt)
            case .max: return .max(p!.base + 2, p!.countAt)
            case .avg: return .avg(p!.base, p!.countAt)
            case .variance: return .variance(p!.base + 3, p!.countAt)
            case .stddev: return .stddev(p!.base + 3, p!.countAt)
            case .first: return .first(p!.firstLast)
            case .last: return .last(p!.firstLast + 1)
            case .p:
                let k = sketches.first { $0.field == a.field && $0.accuracy == a.accuracy }!
                return .quantile(k.base, a.quantile, k.mapping)
            }
        }
        integerColumns = d.aggregates.map { $0.function == .count || $0.function == .countDistinct }
        simpleField = !needFirstLast && sketches.isEmpty && !wantsHLL && parts.count == 1 && !parts[0].moments && parts[0].base == 1
            && parts[0].countAt == 0 ? parts[0].field : -1
    }

    var usesPools: Bool { !sketches.isEmpty || hllBase >= 0 }

    /// Fills a fresh slot (taking sketches and an HLL from the pools).
    @inline(__always)
    func initialize(_ s: UnsafeMutablePointer<Double>, pools: inout AccumulatorPools) {
        s[0] = 0
        if firstLast {
            s[1] = Double(bitPattern: UInt64(bitPattern: Int64.max)); s[2] = Double(bitPattern: UInt64.max)
            s[3] = Double(bitPattern: UInt64(bitPattern: Int64.min)); s[4] = Double(bitPattern: 0)
        }
        for p in parts {
            s[p.base] = 0; s[p.base + 1] = .infinity; s[p.base + 2] = -.infinity
            if p.countAt > 0 { s[p.countAt] = 0 }
            if p.moments { s[p.base + 3] = 0; s[p.base + 4] = 0 }
            if p.firstLast >= 0 { s[p.firstLast] = 0; s[p.firstLast + 1] = 0 }
        }
        for k in sketches { s[k.base] = Double(pools.sketches.take()) }
        if hllBase >= 0 { s[hllBase] = Double(pools.takeHLL()) }
    }

    /// Gives a slot's sketches and HLL back to the pools.
    func release(_ s: UnsafePointer<Double>, pools: inout AccumulatorPools) {
        for k in sketches { pools.sketches.release(Int(s[k.base])) }
        if hllBase >= 0 { pools.freeHLLs.append(Int32(s[hllBase])) }
    }

    /// Adds event `i` (arrival number `arrival`, key hash `keyHash` for the HLL).
    @inline(__always)
    func add(_ s: UnsafeMutablePointer<Double>, _ events: EventBatch.EventView, _ i: Int, ts: Int64, arrival: UInt64,
             keyHash: UInt64, pools: inout AccumulatorPools) {
        s[0] += 1
        if simpleField >= 0 {
            let x = events.field(i, simpleField)
            s[1] += x
            if x < s[2] { s[2] = x }
            if x > s[3] { s[3] = x }
            return
        }
        let n = s[0]
        var isFirst = false, isLast = false
        if firstLast {
            if ts < Int64(bitPattern: s[1].bitPattern) {
                s[1] = Double(bitPattern: UInt64(bitPattern: ts)); s[2] = Double(bitPattern: arrival); isFirst = true
            }
            if ts >= Int64(bitPattern: s[3].bitPattern) {
                s[3] = Double(bitPattern: UInt64(bitPattern: ts)); s[4] = Double(bitPattern: arrival); isLast = true
            }
        }
        // Index loops over the parts (an array's iterator would retain it per event).
        for j in 0..<parts.count {
            let p = parts[j]
            let x = events.field(i, p.field)
            let b = p.base
            var n = n
            if p.countAt > 0 {
                if x.isNaN { continue }  // null: this input skips the event
                s[p.countAt] += 1
                n = s[p.countAt]
            }
            s[b] += x
            if x < s[b + 1] { s[b + 1] = x }
            if x > s[b + 2] { s[b + 2] = x }
            if p.moments {
                let delta = x - s[b + 3]
                s[b + 3] += delta / n
                s[b + 4] += delta * (x - s[b + 3])
            }
            if p.firstLast >= 0 {
                if isFirst { s[p.firstLast] = x }
                if isLast { s[p.firstLast + 1] = x }
            }
        }
        for j in 0..<sketches.count {
            let k = sketches[j]
            let x = events.field(i, k.field)
            if k.nullable && x.isNaN { continue }
            pools.sketches.add(Int(s[k.base]), x, k.mapping)
        }
        if hllBase >= 0 { pools.hlls[Int(s[hllBase])].add(hash: keyHash) }
    }

    /// Merges slot `b` into slot `a` (the aggregates of the union of their events).
    func merge(into a: UnsafeMutablePointer<Double>, _ b: UnsafePointer<Double>, pools: inout AccumulatorPools) {
        let na = a[0], nb = b[0]
        guard nb > 0 else { return }
        a[0] = na + nb
        var bFirst = false, bLast = false
        if firstLast {
            let (ta, aa) = (Int64(bitPattern: a[1].bitPattern), a[2].bitPattern)
            let (tb, ab) = (Int64(bitPattern: b[1].bitPattern), b[2].bitPattern)
            if tb < ta || (tb == ta && ab < aa) { a[1] = b[1]; a[2] = b[2]; bFirst = true }
            let (la, lra) = (Int64(bitPattern: a[3].bitPattern), a[4].bitPattern)
            let (lb, lrb) = (Int64(bitPattern: b[3].bitPattern), b[4].bitPattern)
            if lb > la || (lb == la && lrb > lra) { a[3] = b[3]; a[4] = b[4]; bLast = true }
        }
        for p in parts {
            let x = p.base
            var na = na, nb = nb
            if p.countAt > 0 {
                na = a[p.countAt]; nb = b[p.countAt]
                a[p.countAt] = na + nb
                if nb == 0 { continue }
            }
            a[x] += b[x]
            if b[x + 1] < a[x + 1] { a[x + 1] = b[x + 1] }
            if b[x + 2] > a[x + 2] { a[x + 2] = b[x + 2] }
            if p.moments && na == 0 {  // into an empty slot (a hop window's first pane): b's as they are
                a[x + 3] = b[x + 3]
                a[x + 4] = b[x + 4]
            } else if p.moments {
                // Chan et al.: combine means and sums of squared deviations (na > 0: with na = 0,
                // δ² · na overflows to ∞ · 0 = NaN for a mean beyond 1e154).
                let delta = b[x + 3] - a[x + 3]
                let n = na + nb
                a[x + 3] += delta * nb / n
                a[x + 4] += b[x + 4] + delta * delta * na * nb / n
            }
            if p.firstLast >= 0 {
                if bFirst { a[p.firstLast] = b[p.firstLast] }
                if bLast { a[p.firstLast + 1] = b[p.firstLast + 1] }
            }
        }
        for k in sketches { pools.sketches.merge(into: Int(a[k.base]), Int(b[k.base])) }
        if hllBase >= 0 {
            let other = pools.hlls[Int(b[hllBase])]
            pools.hlls[Int(a[hllBase])].merge(other)
        }
    }

    /// The column values of a slot; NaN stands for null (variance of one event, an empty sketch).
    func values(_ s: UnsafePointer<Double>, pools: AccumulatorPools) -> [Double] {
        columns.map { value($0, s, pools: pools) }
    }

    /// The same written to `out` (`columns.count` values), with no allocation.
    @inline(__always)
    func writeValues(_ s: UnsafePointer<Double>, to out: UnsafeMutablePointer<Double>, pools: AccumulatorPools) {
        for (i, c) in columns.enumerated() { out[i] = value(c, s, pools: pools) }
    }

    @inline(__always)
    private func value(_ c: Column, _ s: UnsafePointer<Double>, pools: AccumulatorPools) -> Double {
        switch c {
        case .count: return s[0]
        case .countOf(let c): return s[c]
        case .sum(let b, let c), .min(let b, let c), .max(let b, let c): return s[c] == 0 ? .nan : s[b]
        case .first(let b), .last(let b): return s[b]
        case .avg(let b, let c): return s[c] == 0 ? .nan : s[b] / s[c]
        case .variance(let b, let c): return s[c] < 2 ? .nan : AccumulatorLayout.sampleVariance(s[b + 1], s[c])
        case .stddev(let b, let c): return s[c] < 2 ? .nan : AccumulatorLayout.sampleVariance(s[b + 1], s[c]).squareRoot()
        case .quantile(let b, let q, let m): return pools.sketches.quantile(Int(s[b]), q, m) ?? .nan
        case .distinctOne: return s[0] > 0 ? 1 : 0
        case .distinct(let b): return pools.hlls[Int(s[b])].estimate.rounded()
        }
    }

    // MARK: - Checkpoint

    func encode(_ s: UnsafePointer<Double>, pools: AccumulatorPools, into w: inout ByteWriter) {
        for i in 0..<width { w.f64(s[i]) }
        for k in sketches { pools.sketches.encode(Int(s[k.base]), k.mapping, into: &w) }
        if hllBase >= 0 { pools.hlls[Int(s[hllBase])].encode(into: &w) }
    }

    /// Reads a slot written by `encode` into a fresh slot `s` (initialized: its pool entries are
    /// replaced in place).
    func decode(_ s: UnsafeMutablePointer<Double>, pools: inout AccumulatorPools, from r: inout ByteReader) throws {
        var raw = [Double](repeating: 0, count: width)
        for i in 0..<width { raw[i] = try r.f64() }
        for k in sketches { raw[k.base] = s[k.base] }
        if hllBase >= 0 { raw[hllBase] = s[hllBase] }
        for i in 0..<width { s[i] = raw[i] }
        for k in sketches {
            guard try SketchPool.decodeAccuracy(from: &r) == k.accuracy else { throw ByteReader.DecodeError() }
            try pools.sketches.decodeBody(into: Int(s[k.base]), from: &r)
        }
        if hllBase >= 0 { pools.hlls[Int(s[hllBase])] = try HyperLogLog.decode(from: &r) }
    }
}

/// The sketches and HLLs of a stream's slots, reused through free lists (their memory is kept).
struct AccumulatorPools: Sendable {
    var sketches = SketchPool()
    var hlls: [HyperLogLog] = []
    var freeHLLs: [Int32] = []

    mutating func takeHLL() -> Int {
        if let i = freeHLLs.popLast().map(Int.init) {
            hlls[i].reset()
            return i
        }
        hlls.append(HyperLogLog())
        return hlls.count - 1
    }
}
