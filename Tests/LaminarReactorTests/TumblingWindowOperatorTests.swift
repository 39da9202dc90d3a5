import LaminarFormats
import PropertyBased
import Testing
@testable import LaminarReactor

/// A straightforward model of the window semantics documented on `TumblingWindowOperator`.
struct ReferenceWindows {
    let size: Int64, lateness: Int64
    var watermark = Int64.min
    var open: [String: [Int64: [Double]]] = [:]
    var late = 0
    var results: [WindowResult] = []

    mutating func add(key: String, ts: Int64, value: Double) {
        let start = Int64((Double(ts) / Double(size)).rounded(.down)) * size
        if start + size <= watermark { late += 1 } else { open[key, default: [:]][start, default: []].append(value) }
        watermark = max(watermark, ts - lateness)
        for (k, windows) in open {
            for (s, values) in windows where s + size <= watermark {
                results.append(WindowResult(key: k, startMs: s, endMs: s + size, count: Int64(values.count),
                    sum: values.reduce(0, +), min: values.min()!, max: values.max()!))
                open[k]![s] = nil
            }
        }
    }
}

func sorted(_ r: [WindowResult]) -> [WindowResult] {
    r.sorted { ($0.startMs, $0.key) < ($1.startMs, $1.key) }
}

@Suite struct TumblingWindowOperatorTests {
    @Test func floorForNegativeTimes() {
        #expect(TumblingWindowOperator.windowStart(-1, sizeMs: 10) == -10)
        #expect(TumblingWindowOperator.windowStart(-10, sizeMs: 10) == -10)
        #expect(TumblingWindowOperator.windowStart(-11, sizeMs: 10) == -20)
        #expect(TumblingWindowOperator.windowStart(0, sizeMs: 10) == 0)
        #expect(TumblingWindowOperator.windowStart(19, sizeMs: 10) == 10)
    }

    @Test func orderedStartSortsNumerically() {
        let starts: [Int64] = [-1 << 60, -1000, -1, 0, 1, 999, 1 << 60]
        let encoded = starts.map(ReservedKeys.orderedStart)
        #expect(encoded == encoded.sorted())
        #expect(ReservedKeys.escapeKey("a/b%") == "a%2Fb%25")
    }

    @Test func lateEventIsCountedAndDropped() {
        var op = TumblingWindowOperator(windowSizeMs: 10, allowedLatenessMs: 0)
        let batch = EventBatch(keys: ["a", "a", "a"], timestamps: [5, 25, 7], values: [1, 2, 3])
        let r = batch.withEvents { op.ingest($0, keysMax: 100) }
        #expect(r.accepted == 2 && r.late == 1)
        var out: [WindowResult] = []
        op.closeReady { out.append($0) }
        #expect(out == [WindowResult(key: "a", startMs: 0, endMs: 10, count: 1, sum: 1, min: 1, max: 1)])
        #expect(op.watermarkMs == 25)
    }

    /// Random out-of-order and late sequences, split into random batches, with a checkpoint
    /// round-trip in the middle: the operator agrees with the reference model.
    @Test func matchesReferenceModel() async {
        await propertyCheck(
            count: 300,
            input: Gen.int(in: 0...1_000_000).array(of: 0...300), Gen.int(in: 1...200), Gen.int(in: 0...400), Gen.int(in: 1...40)
        ) { seeds, size, lateness, batchSize in
            var model = ReferenceWindows(size: Int64(size), lateness: Int64(lateness))
            var op = TumblingWindowOperator(windowSizeMs: Int64(size), allowedLatenessMs: Int64(lateness))
            var emitted: [WindowResult] = []
            var late = 0
            let events = seeds.map { n in ("k\(n % 5)", Int64((n / 5) % 3000) - 1000, Double(n % 17) - 8) }
            for e in events { model.add(key: e.0, ts: e.1, value: e.2) }
            var index = 0
            var batchNumber = 0
            while index < events.count {
                let chunk = events[index..<min(index + batchSize, events.count)]
                index += chunk.count
                let batch = EventBatch(keys: chunk.map(\.0), timestamps: chunk.map(\.1), values: chunk.map(\.2))
                late += batch.withEvents { op.ingest($0, keysMax: 1000) }.late
                op.closeReady { emitted.append($0) }
                batchNumber += 1
                if batchNumber == 2 {
                    var w = ByteWriter()
                    op.encodeCheckpoint(into: &w)
                    var restored = TumblingWindowOperator(windowSizeMs: Int64(size), allowedLatenessMs: Int64(lateness))
                    var r = ByteReader(w.bytes)
                    try! restored.decodeCheckpoint(from: &r, keysMax: 1000)
                    #expect(r.atEnd)
                    op = restored
                }
            }
            #expect(late == model.late)
            #expect(op.watermarkMs == model.watermark)
            #expect(sorted(emitted) == sorted(model.results))
            #expect(op.eventsLate == UInt64(model.late))
        }
    }
}
