import Glibc
import LaminarStore
import PropertyBased
import Testing
@testable import LaminarReactor

/// The error bounds of the quantile sketch and the HyperLogLog, as properties over random
/// distributions, against exact quantiles and exact distinct counts.
@Suite struct SketchTests {
    /// Every quantile of a sketch is within relative `accuracy` of the exact element of rank
    /// floor(q·(n−1)); a merge of two sketches answers as the sketch of the union.
    /// Values near Double's largest (a bucket's γ^i beyond it) are estimated, not infinite.
    @Test func quantilesOfTheLargestValues() {
        for accuracy in [0.01, 0.001, 0.05] {
            for x in [1.7e308, -1.79e308, 1.5e308, Double.greatestFiniteMagnitude] {
                var sketch = QuantileSketch(accuracy: accuracy)
                sketch.add(x)
                let got = sketch.quantile(0.5)!
                #expect(got.isFinite && abs(got - x) <= accuracy * abs(x) * (1 + 1e-12), "\(x) (α \(accuracy)): \(got)")
            }
        }
    }

    @Test func quantilesWithinRelativeAccuracy() async {
        await propertyCheck(count: 80, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var rng = SeededRandom(state: UInt64(seed))
            let accuracy = [0.01, 0.001, 0.05, 0.1][Int.random(in: 0..<4, using: &rng)]
            let n = Int.random(in: 1...3000, using: &rng)
            let shape = Int.random(in: 0..<4, using: &rng)
            let xs: [Double] = (0..<n).map { _ in
                let u = Double.random(in: 0..<1, using: &rng)
                switch shape {
                case 0: return u * 1000                                  // uniform
                case 1: return exp(u * 30 - 15)  // log-uniform over 13 decades (within γ^bucketsMax at α = 0.1 %)
                case 2: return (Bool.random(using: &rng) ? -1 : 1) * exp(u * 10)  // both signs
                default: return Double(Int.random(in: -3...3, using: &rng))      // ties and zeros
                }
            }
            var a = QuantileSketch(accuracy: accuracy), b = QuantileSketch(accuracy: accuracy), all = QuantileSketch(accuracy: accuracy)
            for (i, x) in xs.enumerated() {
                if i % 2 == 0 { a.add(x) } else { b.add(x) }
                all.add(x)
            }
            a.merge(b)
            let sorted = xs.sorted()
            for q in [0.0001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999] {
                let exact = sorted[Int((q * Double(n - 1)).rounded(.down))]
                let got = a.quantile(q)!
                #expect(abs(got - exact) <= accuracy * abs(exact) * (1 + 1e-12), "q \(q): \(got) vs \(exact) (α \(accuracy))")
                #expect(got == all.quantile(q)!)
            }
        }
    }

    /// The table-based index is libm's `ceil(log(x) / log(γ))` exactly: on random magnitudes
    /// over the whole range and on the values next to every bucket boundary of a span.
    @Test func fastIndexMatchesLog() {
        var rng = SeededRandom(state: 7)
        for accuracy in [0.01, 0.001, 0.05, 0.1] {
            let m = SketchMapping(accuracy: accuracy)
            let exact = { (x: Double) in Int((log(x) * m.inverseLogGamma).rounded(.up)) }
            for _ in 0..<200_000 {
                let x = exp(Double.random(in: -690...709, using: &rng))
                #expect(m.index(x) == exact(x), "x \(x) α \(accuracy)")
            }
            for i in -2000...2000 {
                let b = pow(m.gamma, Double(i))
                for x in [b.nextDown, b, b.nextUp] where x > QuantileSketch.minIndexable {
                    #expect(m.index(x) == exact(x), "x \(x) α \(accuracy)")
                }
            }
        }
    }

    /// Values spanning more than `bucketsMax` buckets fold the smallest into the lowest bucket
    /// kept, the same however they are split and merged; released sketches come back empty.
    @Test func foldAndReuseAreExact() {
        var rng = SeededRandom(state: 11)
        let xs: [Double] = (0..<5000).map { _ in (Bool.random(using: &rng) ? -1 : 1) * exp(Double.random(in: -690...700, using: &rng)) }
        var all = QuantileSketch(), a = QuantileSketch(), b = QuantileSketch()
        for (i, x) in xs.enumerated() {
            all.add(x)
            if i % 3 == 0 { a.add(x) } else { b.add(x) }
        }
        a.merge(b)
        #expect(a == all)
        let sorted = xs.sorted()
        // Above the folded range the accuracy holds.
        let exact = sorted[Int(0.99 * Double(xs.count - 1))]
        #expect(abs(all.quantile(0.99)! - exact) <= 0.01 * abs(exact) * (1 + 1e-12))

        var pool = SketchPool()
        let m = SketchMapping(accuracy: 0.01)
        let one = pool.take()
        for x in xs.prefix(500) { pool.add(one, x, m) }
        pool.release(one)
        let again = pool.take()
        #expect(again == one)
        #expect(pool.quantile(again, 0.5, m) == nil)
        for x in [3.0, 5, 7] { pool.add(again, x, m) }
        #expect(abs(pool.quantile(again, 0.5, m)! - 5) <= 0.05)
        // Dense too: many events over a few buckets.
        for i in 0..<20_000 { pool.add(again, Double(i % 50 + 1), m) }
        #expect(pool.headers[again].positive.isDense)
        #expect(abs(pool.quantile(again, 0.5, m)! - 25) <= 0.25 + 1e-9)
        pool.release(again)
        #expect(pool.arena.counts.allSatisfy { $0 == 0 }, "a released sketch leaves nothing behind")
    }

    @Test func sketchCheckpointRoundTrip() throws {
        var s = QuantileSketch()
        for x in [-5.0, 0, 1e-9, 3, 3, 1e12] { s.add(x) }
        var w = ByteWriter()
        s.encode(into: &w)
        var r = ByteReader(w.bytes)
        #expect(try QuantileSketch.decode(from: &r) == s)
    }

    /// The estimate's relative error stays within 4 standard errors (4 × 0.81 %) over
    /// cardinalities from 1 to 200 000, seeds random; small counts are near exact (within a
    /// register collision).
    @Test func hyperLogLogWithinThreeStandardErrors() async {
        await propertyCheck(count: 40, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var rng = SeededRandom(state: UInt64(seed))
            let n = [1, 10, 100, 1000, 20_000, 40_000, 80_000, 200_000][Int.random(in: 0..<8, using: &rng)]
            let hasher = KeyHasher(seed: rng.next())
            var h = HyperLogLog(), part1 = HyperLogLog(), part2 = HyperLogLog()
            for i in 0..<n {
                var key = Array("user-\(i)".utf8)
                let x = key.withUnsafeBytes { hasher.hash($0) }
                h.add(hash: x)
                if i % 3 == 0 { part1.add(hash: x) } else { part2.add(hash: x) }
                if i % 7 == 0 { key.withUnsafeBytes { h.add(hash: hasher.hash($0)) } }  // repeats count once
            }
            // 4 standard errors: 40 trials of 3 would fail one run in ten by chance alone. Small
            // counts are near exact, bar a register collision (one key fewer, 10 % of n = 10).
            let error = abs(h.estimate - Double(n)) / Double(n)
            #expect(error <= 4 * 1.04 / 128 + (n < 100 ? 1.5 / Double(n) : 0), "n \(n): estimate \(h.estimate)")
            part1.merge(part2)
            #expect(part1 == h)
        }
    }

    /// Over many seeds, the mean squared relative error at 50 000 distinct keys is at most 1 %
    /// (the standard error the definition promises).
    @Test func hyperLogLogStandardErrorAtMostOnePercent() {
        var rng = SeededRandom(state: 42)
        var squares = 0.0
        let runs = 30, n = 50_000
        for _ in 0..<runs {
            let hasher = KeyHasher(seed: rng.next())
            var h = HyperLogLog()
            for i in 0..<n { Array("k\(i)".utf8).withUnsafeBytes { h.add(hash: hasher.hash($0)) } }
            let e = (h.estimate - Double(n)) / Double(n)
            squares += e * e
        }
        #expect((squares / Double(runs)).squareRoot() <= 0.01)
    }
}
