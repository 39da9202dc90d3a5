import Foundation

/// SplitMix64: a small, fast, seedable generator; one per load thread.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (multiply-shift; bias below 2^-32 for the sizes used here).
    @inline(__always)
    mutating func below(_ n: Int) -> Int {
        Int((UInt64(truncatingIfNeeded: next() >> 32) &* UInt64(n)) >> 32)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// Zipfian ranks in 0..<n with exponent `s` (rank 0 the most popular), by the method of Gray et
/// al. ("Quickly generating billion-record synthetic databases", as in YCSB's ZipfianGenerator):
/// O(n) set-up for zeta(n), O(1) per sample, no tables.
struct ZipfSampler: Sendable {
    let n: Int
    let theta: Double
    private let alpha: Double
    private let zetaN: Double
    private let eta: Double
    private let halfPowTheta: Double

    init(n: Int, theta: Double) {
        precondition(n >= 1 && theta > 0 && theta != 1, "zipf needs n >= 1 and theta > 0, != 1")
        self.n = n
        self.theta = theta
        var zeta = 0.0
        for i in 1...n { zeta += 1 / pow(Double(i), theta) }
        zetaN = zeta
        let zeta2 = 1 + 1 / pow(2, theta)
        alpha = 1 / (1 - theta)
        eta = n <= 2 ? 0 : (1 - pow(2 / Double(n), 1 - theta)) / (1 - zeta2 / zeta)
        halfPowTheta = pow(0.5, theta)
    }

    /// The exact probability of rank `k` (for tests).
    func probability(_ k: Int) -> Double { 1 / pow(Double(k + 1), theta) / zetaN }

    @inline(__always)
    func sample(_ u: Double) -> Int {
        let uz = u * zetaN
        if uz < 1 { return 0 }
        if n >= 2 && uz < 1 + halfPowTheta { return 1 }
        return min(n - 1, Int(Double(n) * pow(eta * u - eta + 1, alpha)))
    }
}

/// Samples key indexes in 0..<keys by the configured distribution.
struct KeySampler: Sendable {
    let keys: Int
    private let zipf: ZipfSampler?

    init(keys: Int, distribution: KeyDistribution) {
        self.keys = keys
        switch distribution {
        case .uniform: zipf = nil
        case .zipf(let s): zipf = ZipfSampler(n: keys, theta: s)
        }
    }

    @inline(__always)
    func sample(_ rng: inout SplitMix64) -> Int {
        if let zipf { return zipf.sample(rng.unit()) }
        return rng.below(keys)
    }
}

/// Key names, written into reused buffers: `k0000001234`, or `g000012.k0000001234` when keys are
/// grouped for prefix scans (group = index / groupSize; prefix `g000012.`). With `tags`, every key
/// starts with a partition tag, `t7/k0000001234` (`proto-docs/cluster.md`): tag = index % tags, or
/// group % tags when keys are grouped, so that a scan group lies within one tag.
struct KeyNamer: Sendable {
    let groupSize: Int?
    /// `--key-prefix`, written before every key (and every scan prefix), after the tag.
    let prefix: [UInt8]
    /// `--tags`: how many partition tags `t0/` … keys are spread over (nil: keys have no tag).
    let tags: Int?

    init(groupSize: Int?, prefix: [UInt8] = [], tags: Int? = nil) {
        self.groupSize = groupSize
        self.prefix = prefix
        self.tags = tags
    }

    /// The partition tag number of key `index`, nil without `--tags`.
    func tag(ofKey index: Int) -> Int? {
        tags.map { (groupSize.map { index / $0 } ?? index) % $0 }
    }

    static let indexDigits = 10
    static let groupDigits = 6

    func appendKey(_ index: Int, to out: inout [UInt8]) {
        appendTag(tag(ofKey: index), to: &out)
        out.append(contentsOf: prefix)
        if let groupSize { appendGroup(index / groupSize, to: &out) }
        out.append(UInt8(ascii: "k"))
        Self.appendDigits(index, Self.indexDigits, to: &out)
    }

    /// The scan prefix of a group: `--key-prefix` then `gNNNNNN.`.
    func appendGroupPrefix(_ group: Int, to out: inout [UInt8]) {
        appendTag(tags.map { group % $0 }, to: &out)
        out.append(contentsOf: prefix)
        appendGroup(group, to: &out)
    }

    private func appendTag(_ tag: Int?, to out: inout [UInt8]) {
        guard let tag else { return }
        out.append(UInt8(ascii: "t"))
        Self.appendInteger(Int64(tag), to: &out)
        out.append(UInt8(ascii: "/"))
    }

    private func appendGroup(_ group: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "g"))
        Self.appendDigits(group, Self.groupDigits, to: &out)
        out.append(UInt8(ascii: "."))
    }

    func key(_ index: Int) -> [UInt8] {
        var out: [UInt8] = []
        appendKey(index, to: &out)
        return out
    }

    @inline(__always)
    static func appendDigits(_ value: Int, _ width: Int, to out: inout [UInt8]) {
        let start = out.count
        var v = value
        for _ in 0..<width { out.append(0) }
        var i = out.count - 1
        while i >= start {
            out[i] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            i -= 1
        }
    }

    /// Appends a decimal integer (no padding).
    @inline(__always)
    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            appendInteger(value == .min ? .max : -value, to: &out)
            return
        }
        var digits = 1
        var p: Int64 = 10
        while digits < 19 && value >= p { digits += 1; p &*= 10 }
        appendDigits(Int(value), digits, to: &out)
    }
}
