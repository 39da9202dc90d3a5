import Glibc

/// A mergeable relative-error quantile sketch in the style of DDSketch (Masson, Rim, Lee 2019):
/// a value x > 0 goes to bucket `ceil(log_γ x)` with `γ = (1 + α) / (1 − α)`, negatives to a
/// mirrored store, |x| below `minIndexable` to a zero count. A bucket's representative value
/// `2γ^i / (γ + 1)` is within relative error α of every value in the bucket.
///
/// Guarantee: `quantile(q)` returns a value within relative error α (`accuracy`) of the element
/// of rank `floor(q · (n − 1))` (0-based) of the values added, as long as the non-zero values of
/// one sign span less than `γ^bucketsMax` (at α = 1 %: a ratio of e^327; the smallest magnitudes
/// are merged into one bucket beyond that). Merging two sketches of the same α gives exactly
/// the sketch of the union. Bucket counts live in one dense array per sign (no object per
/// value); memory grows only with the span of the values.
public struct QuantileSketch: Sendable, Hashable {
    public static let defaultAccuracy = 0.01
    public static let accuracyRange: ClosedRange<Double> = 0.001...0.1
    /// Buckets per sign at most (the collapse bound).
    public static let bucketsMax = 16_384
    /// Magnitudes below this count as zero.
    public static let minIndexable = 1e-300

    public let accuracy: Double
    let gamma: Double
    let inverseLogGamma: Double
    var positive = DenseStore()
    var negative = DenseStore()
    var zeroCount: UInt64 = 0
    public private(set) var count: UInt64 = 0

    public init(accuracy: Double = QuantileSketch.defaultAccuracy) {
        self.accuracy = accuracy
        gamma = (1 + accuracy) / (1 - accuracy)
        inverseLogGamma = 1 / log(gamma)
    }

    /// Empties the sketch, keeping its memory.
    mutating func reset() {
        positive.reset(); negative.reset()
        zeroCount = 0; count = 0
    }

    @inline(__always)
    public mutating func add(_ x: Double) {
        count += 1
        if x > QuantileSketch.minIndexable {
            positive.add(index(x), 1)
        } else if x < -QuantileSketch.minIndexable {
            negative.add(index(-x), 1)
        } else {
            zeroCount += 1
        }
    }

    @inline(__always)
    func index(_ x: Double) -> Int { Int((log(x) * inverseLogGamma).rounded(.up)) }

    func value(_ index: Int) -> Double { 2 * pow(gamma, Double(index)) / (gamma + 1) }

    public mutating func merge(_ other: QuantileSketch) {
        precondition(other.accuracy == accuracy)
        positive.merge(other.positive)
        negative.merge(other.negative)
        zeroCount += other.zeroCount
        count += other.count
    }

    /// The estimate of the element of rank `floor(q · (n − 1))`; `nil` when empty.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = UInt64((q * Double(count - 1)).rounded(.down))
        var seen: UInt64 = 0
        // Negatives first, most negative (largest magnitude index) first.
        var i = negative.counts.count - 1
        while i >= 0 {
            seen += negative.counts[i]
            if seen > rank { return -value(negative.offset + i) }
            i -= 1
        }
        seen += zeroCount
        if seen > rank { return 0 }
        for j in 0..<positive.counts.count {
            seen += positive.counts[j]
            if seen > rank { return value(positive.offset + j) }
        }
        return value(positive.offset + positive.counts.count - 1)
    }

    func encode(into w: inout ByteWriter) {
        w.f64(accuracy); w.u64(zeroCount); w.u64(count)
        positive.encode(into: &w); negative.encode(into: &w)
    }

    static func decode(from r: inout ByteReader) throws -> QuantileSketch {
        let accuracy = try r.f64()
        guard accuracyRange.contains(accuracy) else { throw ByteReader.DecodeError() }
        var s = QuantileSketch(accuracy: accuracy)
        s.zeroCount = try r.u64(); s.count = try r.u64()
        s.positive = try DenseStore.decode(from: &r)
        s.negative = try DenseStore.decode(from: &r)
        return s
    }
}

/// Bucket counts for indexes `offset ..< offset + counts.count`; beyond `bucketsMax` buckets the
/// lowest indexes are folded into the lowest kept one.
struct DenseStore: Sendable, Hashable {
    var offset = 0
    var counts: [UInt64] = []

    mutating func reset() {
        offset = 0
        counts.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    mutating func add(_ index: Int, _ n: UInt64) {
        let at = index - offset
        if at >= 0 && at < counts.count {
            counts[at] += n
        } else {
            addOutside(index, n)
        }
    }

    /// Extends the store to `index`, with slack (half the span, at least 8 buckets, within
    /// `bucketsMax`) so that values arriving in any order extend it a logarithmic number of times.
    private mutating func addOutside(_ index: Int, _ n: UInt64) {
        let cap = QuantileSketch.bucketsMax
        if counts.isEmpty {
            offset = index - 4
            counts.append(contentsOf: repeatElement(0, count: 9))
            counts[4] += n
            return
        }
        if max(index, offset + counts.count - 1) - min(index, offset) + 1 > cap { trim() }  // slack never costs buckets
        let span = counts.count
        let slack = max(span / 2, 8)
        if index >= offset + span {
            var high = index + slack
            if high - offset + 1 > cap { high = max(index, offset + cap - 1) }
            let low = max(offset, high - cap + 1)
            if low > offset { collapse(to: low) }
            counts.append(contentsOf: repeatElement(0, count: high - (offset + counts.count) + 1))
            counts[index - offset] += n
        } else {  // below offset
            let high = offset + span - 1
            let low = max(index - slack, high - cap + 1)
            let target = max(index, low)  // beyond the cap: folded into the lowest bucket kept
            if low < offset {
                counts.insert(contentsOf: repeatElement(0, count: offset - low), at: 0)
                offset = low
            }
            counts[target - offset] += n
        }
    }

    /// Drops empty buckets at both ends (keeps one).
    private mutating func trim() {
        guard let first = counts.firstIndex(where: { $0 != 0 }), let last = counts.lastIndex(where: { $0 != 0 }) else {
            counts.removeLast(counts.count - 1)
            return
        }
        counts.removeLast(counts.count - 1 - last)
        counts.removeFirst(first)
        offset += first
    }

    /// Folds every bucket below `low` into bucket `low`.
    private mutating func collapse(to low: Int) {
        let drop = min(low - offset, counts.count)
        var folded: UInt64 = 0
        for i in 0..<drop { folded += counts[i] }
        counts.removeFirst(drop)
        offset = low
        if counts.isEmpty { counts.append(0) }
        counts[0] += folded
    }

    mutating func merge(_ other: DenseStore) {
        guard let first = other.counts.firstIndex(where: { $0 != 0 }), let last = other.counts.lastIndex(where: { $0 != 0 }) else { return }
        // Extend to the union's ends first (the other's non-empty ones), then add in place.
        add(other.offset + last, 0)
        add(other.offset + first, 0)
        for i in first...last where other.counts[i] != 0 { add(other.offset + i, other.counts[i]) }
    }

    func encode(into w: inout ByteWriter) {
        w.i64(Int64(offset)); w.u32(UInt32(counts.count))
        for c in counts { w.varint(c) }
    }

    static func decode(from r: inout ByteReader) throws -> DenseStore {
        var s = DenseStore()
        s.offset = Int(try r.i64())
        let n = Int(try r.u32())
        guard n <= QuantileSketch.bucketsMax else { throw ByteReader.DecodeError() }
        s.counts.reserveCapacity(n)
        for _ in 0..<n { s.counts.append(try r.varint()) }
        return s
    }
}
