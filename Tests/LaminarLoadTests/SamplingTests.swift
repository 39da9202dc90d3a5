import Testing
@testable import laminar_load

@Suite struct SamplingTests {
    @Test func uniformStaysInRange() {
        var rng = SplitMix64(seed: 1)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[rng.below(10)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 600 })
    }

    /// The sampler's frequencies follow the Zipf law: monotone in rank, close to the exact
    /// probabilities for the hot ranks, and the whole range reachable.
    @Test func zipfFollowsTheLaw() {
        let n = 1000
        let zipf = ZipfSampler(n: n, theta: 0.99)
        var rng = SplitMix64(seed: 7)
        var counts = [Int](repeating: 0, count: n)
        let samples = 400_000
        for _ in 0..<samples {
            let k = zipf.sample(rng.unit())
            #expect(k >= 0 && k < n)
            counts[k] += 1
        }
        #expect(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[10] && counts[10] > counts[100])
        for k in [0, 1, 2, 5] {
            let expected = zipf.probability(k) * Double(samples)
            // Gray et al.'s closed-form sampler (as YCSB's) approximates the law: within 20 %.
            #expect(abs(Double(counts[k]) - expected) / expected < 0.2, "rank \(k): \(counts[k]) vs \(expected)")
        }
        // Heavy head: the hottest 10 % of the keys take most of the traffic.
        let head = counts[0..<(n / 10)].reduce(0, +)
        #expect(Double(head) / Double(samples) > 0.6)
        #expect(counts[(n / 2)...].reduce(0, +) > 0)
    }

    @Test func zipfSmallKeySpaces() {
        var rng = SplitMix64(seed: 3)
        for n in [1, 2, 3] {
            let zipf = ZipfSampler(n: n, theta: 0.99)
            for _ in 0..<1000 { #expect(zipf.sample(rng.unit()) < n) }
        }
    }
}
