import LaminarFormats
@testable import LaminarReactor
import Testing

/// `emit: changes` over hopping windows: the rows of a flush are exactly the windows whose
/// values changed, with the values of the merge of their panes (windows covering the same
/// panes of a group share one merge), whatever the panes a group holds.
@Suite struct HopChangesTests {
    /// After every flush, the latest row of each window (changelog replayed) equals the row a
    /// fresh operator fed all the events so far gives it: nothing changed is missed, nothing
    /// is stale. Nothing closes (lateness covers every event); values are compared bit for bit
    /// (the events of a pane are added in the same order in both).
    @Test func latestRowsEqualARecomputation() {
        for seed in 1...40 as ClosedRange<UInt64> {
            var rng = SeededRandom(state: seed)
            let slide = Int64.random(in: 1...20, using: &rng), perWindow = Int64.random(in: 1...6, using: &rng)
            var d = StreamDefinition(name: "h", windowSizeMs: slide * perWindow, allowedLatenessMs: 1 << 40,
                                     aggregates: [.count, .sum, .min, Aggregate(.p, quantile: 0.9), Aggregate(.last)])
            d.window = .hop(sizeMs: slide * perWindow, slideMs: slide)
            d.emit = .changes
            var op = WindowOperator(definition: d)
            var latest: [String: [Double]] = [:]
            var keys: [String] = [], times: [Int64] = [], values: [Double] = []
            for round in 0..<8 {
                let from = keys.count
                for _ in 0..<Int.random(in: 1...20, using: &rng) {
                    keys.append("k\(Int.random(in: 0..<4, using: &rng))")
                    times.append(Int64.random(in: 0...(slide * 12), using: &rng))
                    values.append(Double(Int.random(in: -50...50, using: &rng)))
                }
                _ = EventBatch(keys: Array(keys[from...]), timestamps: Array(times[from...]), values: Array(values[from...]))
                    .withEvents { op.ingest($0, keysMax: 100) }
                op.flushChanges()
                for r in op.takeOutput() {
                    #expect(r.op == .insert || r.op == .update, "seed \(seed)")
                    latest["\(String(decoding: r.key!, as: UTF8.self))@\(r.startMs)"] = r.values
                }
                var fresh = WindowOperator(definition: d)
                _ = EventBatch(keys: keys, timestamps: times, values: values).withEvents { fresh.ingest($0, keysMax: 100) }
                fresh.flushChanges()
                var expected: [String: [Double]] = [:]
                for r in fresh.takeOutput() { expected["\(String(decoding: r.key!, as: UTF8.self))@\(r.startMs)"] = r.values }
                #expect(latest.keys.sorted() == expected.keys.sorted(), "seed \(seed) round \(round)")
                for (k, v) in expected { #expect(WindowOperator.same(latest[k] ?? [], v), "seed \(seed) round \(round) \(k)") }
            }
        }
    }
}
