import Glibc

/// The bucket mapping of a DDSketch-style quantile sketch (Masson, Rim, Lee 2019): a magnitude
/// x goes to bucket `ceil(log_γ x)` with `γ = (1 + α) / (1 − α)`; a bucket's representative
/// value `2γ^i / (γ + 1)` is within relative error α of every value in the bucket.
///
/// `index` computes exactly `ceil(log(x) / log(γ))` as libm would, without calling `log` for
/// almost every value: ln x = e·ln 2 + ln c_j + ln(1 + r), with c_j the centre of the 1/256-wide
/// mantissa cell j (a 256-entry table of 1/c_j and ln c_j), |r| < 2^-9 and a 4-term series
/// (error below 1e-14). The result is off from libm's by less than 1e-9 of a bucket; only when
/// it lies within 1e-7 of a bucket boundary (about one value in 10^7) is `log` called to decide.
/// So the buckets are the same as with `log` everywhere, checkpoints of earlier versions included.
public struct SketchMapping: Sendable, Hashable {
    public let accuracy: Double
    let gamma: Double
    let inverseLogGamma: Double

    public init(accuracy: Double) {
        self.accuracy = accuracy
        gamma = (1 + accuracy) / (1 - accuracy)
        inverseLogGamma = 1 / log(gamma)
    }

    /// `[1/c_0, ln c_0, 1/c_1, ln c_1, …]`, c_j = 1 + (j + ½)/256.
    static let cells: [Double] = (0..<256).flatMap { j -> [Double] in
        let c = 1 + (Double(j) + 0.5) / 256
        return [1 / c, log(c)]
    }
    static let ln2 = 0.693_147_180_559_945_309_417_232_121_458

    /// `ceil(log_γ x)` for a normal x > 0 (the sketch indexes only |x| > `minIndexable`).
    @inline(__always)
    func index(_ x: Double) -> Int {
        let bits = x.bitPattern
        let e = Int(truncatingIfNeeded: bits >> 52) - 1023
        let j = Int(truncatingIfNeeded: (bits >> 44) & 0xFF)
        let m = Double(bitPattern: (bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000)
        let y: Double = SketchMapping.cells.withUnsafeBufferPointer { t in
            let r = m * t[2 * j] - 1
            let ln = Double(e) * SketchMapping.ln2 + t[2 * j + 1] + r * (1 - r * (0.5 - r * (1.0 / 3 - r * 0.25)))
            return ln * inverseLogGamma
        }
        var f = Int(y)  // toward zero; made a floor below
        if Double(f) > y { f -= 1 }
        let frac = y - Double(f)
        if frac > 1e-7 && frac < 1 - 1e-7 { return f + 1 }
        return Int((log(x) * inverseLogGamma).rounded(.up))
    }

    func value(_ index: Int) -> Double {
        let v = 2 * pow(gamma, Double(index)) / (gamma + 1)
        // The top buckets' γ^i passes Double's largest although their values do not: the
        // estimate from γ^(i−1), at most Double's largest (closer to every value than beyond).
        return v.isFinite ? v : min(2 * gamma / (gamma + 1) * pow(gamma, Double(index - 1)), .greatestFiniteMagnitude)
    }
}

/// A mergeable relative-error quantile sketch (`SketchMapping` buckets; negatives in a mirrored
/// store, |x| below `minIndexable` in a zero count), standing alone: one sketch of a
/// `SketchPool`, whose code it uses. Window slots use the pool directly.
///
/// Guarantee: `quantile(q)` returns a value within relative error α (`accuracy`) of the element
/// of rank `floor(q · (n − 1))` (0-based) of the values added, as long as the non-zero values of
/// one sign span less than `γ^bucketsMax` (at α = 1 %: a ratio of e^327; beyond that the
/// smallest magnitudes are folded into the lowest bucket kept). Merging two sketches of the same
/// α gives exactly the sketch of the union (folding included: the buckets kept are always the
/// `bucketsMax` below the largest index seen).
public struct QuantileSketch: Sendable, Hashable {
    public static let defaultAccuracy = 0.01
    public static let accuracyRange: ClosedRange<Double> = 0.001...0.1
    /// Buckets per sign at most (the fold bound).
    public static let bucketsMax = 16_384
    /// Magnitudes below this count as zero.
    public static let minIndexable = 1e-300

    public let mapping: SketchMapping
    var pool = SketchPool()
    public var accuracy: Double { mapping.accuracy }
    public var count: UInt64 { pool.headers[0].count }

    public init(accuracy: Double = QuantileSketch.defaultAccuracy) {
        mapping = SketchMapping(accuracy: accuracy)
        _ = pool.take()
    }

    public mutating func add(_ x: Double) { pool.add(0, x, mapping) }

    public mutating func merge(_ other: QuantileSketch) {
        precondition(other.accuracy == accuracy)
        let b = pool.importSketch(from: other.pool, 0)
        pool.merge(into: 0, b)
        pool.release(b)
    }

    /// The estimate of the element of rank `floor(q · (n − 1))`; `nil` when empty.
    public func quantile(_ q: Double) -> Double? { pool.quantile(0, q, mapping) }

    func encode(into w: inout ByteWriter) { pool.encode(0, mapping, into: &w) }

    static func decode(from r: inout ByteReader) throws -> QuantileSketch {
        let accuracy = try SketchPool.decodeAccuracy(from: &r)
        var s = QuantileSketch(accuracy: accuracy)
        try s.pool.decodeBody(into: 0, from: &r)
        return s
    }

    public static func == (a: QuantileSketch, b: QuantileSketch) -> Bool {
        var wa = ByteWriter(), wb = ByteWriter()
        a.encode(into: &wa); b.encode(into: &wb)
        return wa.bytes == wb.bytes
    }

    public func hash(into hasher: inout Hasher) {
        var w = ByteWriter()
        encode(into: &w)
        hasher.combine(w.bytes)
    }
}
