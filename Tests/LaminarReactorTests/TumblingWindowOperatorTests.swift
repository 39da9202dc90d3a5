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
                results.append(WindowResult(key: Array(k.utf8), startMs: s, endMs: s + size, count: Int64(values.count),
                    sum: values.reduce(0, +), min: values.min()!, max: values.max()!))
                open[k]![s] = nil
            }
        }
    }
}

func sorted(_ r: [WindowResult]) -> [WindowResult] {
    r.sorted { $0.startMs != $1.startMs ? $0.startMs < $1.startMs : $0.key.lexicographicallyPrecedes($1.key) }
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
    }

    /// Result keys sort by event key bytes first (a key before every longer key it begins,
    /// whatever bytes follow, `00` included), then by window start; one key's prefix never
    /// holds another key's results.
    @Test func resultKeysSortByKeyBytesThenStart() {
        let keys: [[UInt8]] = [Array("a".utf8), Array("a b".utf8), Array("a.".utf8), Array("a/b".utf8), Array("a%".utf8),
                               [0x61, 0x00], [0x61, 0x00, 0x00], [0x61, 0x00, 0x01], [0x00], [0x00, 0xFF], [0xFE], [0xFE, 0xFF], [0xFF]]
        let byBytes = keys.sorted { $0.lexicographicallyPrecedes($1) }
        var stored: [([UInt8], Int64, [UInt8])] = []
        for key in keys {
            for start: Int64 in [-1000, 0, 1000] { stored.append((key, start, ReservedKeys.result(stream: "s", key: key, startMs: start))) }
        }
        let order = stored.sorted { $0.2.lexicographicallyPrecedes($1.2) }
        let expected = byBytes.flatMap { key in [-1000, 0, 1000].map { (key, Int64($0)) } }
        #expect(order.map(\.0) == expected.map(\.0))
        #expect(order.map(\.1) == expected.map(\.1))
        for a in keys {
            let prefix = ReservedKeys.resultPrefix(stream: "s", key: a)
            for b in keys where b != a {
                #expect(!ReservedKeys.result(stream: "s", key: b, startMs: 0).starts(with: prefix), "\(a) \(b)")
            }
        }
    }

    /// Results stored under the earlier layout (`{key}` with `%25`/`%2F`, `/` before the start)
    /// map to the current key; current keys and other keys do not.
    @Test func earlierResultLayoutMapsToTheCurrentOne() {
        let old = Array("_streams/clicks/a%2Fb%25c/80000000000003E8".utf8)
        #expect(ReservedKeys.resultKeyFromEarlierLayout(old) == ReservedKeys.result(stream: "clicks", key: Array("a/b%c".utf8), startMs: 1000))
        #expect(ReservedKeys.resultKeyFromEarlierLayout(ReservedKeys.result(stream: "clicks", key: Array("u/1".utf8), startMs: 1000)) == nil)
        #expect(ReservedKeys.resultKeyFromEarlierLayout(Array("_streams/clicks/80000000000003E8".utf8)) == nil)
        #expect(ReservedKeys.resultKeyFromEarlierLayout(Array("_wal/clicks/00000000000003E8".utf8)) == nil)
        #expect(ReservedKeys.resultKeyFromEarlierLayout(Array("_streams/clicks/u1/80000000000003e8".utf8)) == nil)
    }

    /// Keys are bytes: `ff`, `fe`, `fe ff` (not UTF-8) and `café` in one window give four
    /// results, each with its own key (decoding them as UTF-8 once merged the first three).
    @Test func keysThatAreNotUTF8StayDistinct() {
        let keys: [[UInt8]] = [[0xFF], [0xFE], [0xFE, 0xFF], [0x63, 0x61, 0x66, 0xC3, 0xA9]]
        var builder = EventBatch.Builder()
        for (i, key) in keys.enumerated() { builder.append(key: key, timestamp: 10 + Int64(i), value: Double(i + 1)) }
        builder.append(key: [0xFE], timestamp: 20, value: 10)
        var op = TumblingWindowOperator(windowSizeMs: 1000, allowedLatenessMs: 0)
        _ = builder.build().withEvents { op.ingest($0, keysMax: 100) }
        op.advanceWatermark(toMs: 1000)
        var out: [WindowResult] = []
        op.closeReady { out.append($0) }
        #expect(out.count == 4)
        #expect(Set(out.map(\.key)) == Set(keys))
        #expect(out.first { $0.key == [0xFE] }?.count == 2)
        #expect(out.first { $0.key == [0xFE] }?.sum == 12)
        #expect(out.first { $0.key == [0xFE, 0xFF] }?.sum == 3)
        let stored = Set(out.map { ReservedKeys.result(stream: "bin", key: $0.key, startMs: $0.startMs) })
        #expect(stored.count == 4)
    }

    /// Result JSON: aggregates in the documented order whatever the definition's order; a key
    /// that is not UTF-8 as `key_base64`.
    @Test func resultJSON() {
        let r = WindowResult(key: Array("u\"1".utf8), startMs: -1000, endMs: 0, count: 2, sum: 3, min: 1, max: 2)
        #expect(String(decoding: r.json(aggregates: [.avg, .max, .count]), as: UTF8.self)
            == #"{"seq":0,"key":"u\"1","start":-1000,"end":0,"count":2,"max":2,"avg":1.5}"#)
        let bytes = WindowResult(key: [0xFE, 0xFF], startMs: 0, endMs: 10, count: 1, sum: 0.25, min: 0.25, max: 0.25)
        #expect(String(decoding: bytes.json(aggregates: Aggregate.allCases), as: UTF8.self)
            == #"{"seq":0,"key_base64":"/v8=","start":0,"end":10,"count":1,"sum":0.25,"min":0.25,"max":0.25,"avg":0.25}"#)
    }

    @Test func lateEventIsCountedAndDropped() {
        var op = TumblingWindowOperator(windowSizeMs: 10, allowedLatenessMs: 0)
        let batch = EventBatch(keys: ["a", "a", "a"], timestamps: [5, 25, 7], values: [1, 2, 3])
        let r = batch.withEvents { op.ingest($0, keysMax: 100) }
        #expect(r.accepted == 2 && r.late == 1)
        var out: [WindowResult] = []
        op.closeReady { out.append($0) }
        #expect(out == [WindowResult(key: Array("a".utf8), startMs: 0, endMs: 10, count: 1, sum: 1, min: 1, max: 1)])
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
