import LaminarReactor
import Testing

@Suite("DurationHistogram buckets")
struct DurationHistogramTests {
    /// Every duration lands in the bucket whose bounds hold it, the bounds grow, and within the
    /// covered range a bucket is at most a quarter of its lower bound wide.
    @Test func bucketsHoldTheirValues() {
        var previous: UInt64 = 0
        for i in 0..<(DurationHistogram.bucketCount - 1) {
            let upper = DurationHistogram.upperBoundNs(i)!
            #expect(upper > previous, "bucket \(i)")
            if i > 0 { #expect((upper - previous) * 4 <= previous, "bucket \(i) is \(upper - previous) ns wide from \(previous)") }
            #expect(DurationHistogram.bucket(previous) == i)
            #expect(DurationHistogram.bucket(upper - 1) == i)
            previous = upper
        }
        #expect(DurationHistogram.upperBoundNs(DurationHistogram.bucketCount - 1) == nil)
        #expect(DurationHistogram.bucket(previous) == DurationHistogram.bucketCount - 1)
        #expect(DurationHistogram.bucket(.max) == DurationHistogram.bucketCount - 1)
    }

    @Test func recordsCountsAndSum() {
        let h = DurationHistogram()
        h.record(100)
        h.record(1_000_000)
        h.record(1_000_001)
        let (counts, sum) = h.snapshot()
        #expect(counts.reduce(0, +) == 3)
        #expect(counts[0] == 1)
        #expect(counts[DurationHistogram.bucket(1_000_000)] == 2)
        #expect(sum == 2_000_101)
    }
}
