import LaminarFormats
import Testing
@testable import LaminarReactor

/// The result key layout and the JSON form of result rows.
@Suite struct ResultKeyTests {
    @Test func floorForNegativeTimes() {
        #expect(PaneWindows.floor(-1, 10) == -10)
        #expect(PaneWindows.floor(-10, 10) == -10)
        #expect(PaneWindows.floor(-11, 10) == -20)
        #expect(PaneWindows.floor(0, 10) == 0)
        #expect(PaneWindows.floor(19, 10) == 10)
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
        var op = WindowOperator(definition: StreamDefinition(name: "bin", windowSizeMs: 1000, aggregates: [.count, .sum]))
        _ = builder.build().withEvents { op.ingest($0, keysMax: 100) }
        op.advanceWatermark(toMs: 1000)
        let out = op.takeOutput()
        #expect(out.count == 4)
        #expect(Set(out.map(\.key)) == Set(keys))
        #expect(out.first { $0.key == [0xFE] }?.values == [2, 12])
        #expect(out.first { $0.key == [0xFE, 0xFF] }?.values == [1, 3])
        let stored = Set(out.map { ReservedKeys.result(stream: "bin", key: $0.key!, startMs: $0.startMs) })
        #expect(stored.count == 4)
    }

    /// Result JSON: columns in the definition's order; a key that is not UTF-8 as `key_base64`;
    /// null for NaN; changelog members; no key for `group_by: all`.
    @Test func resultJSON() {
        var d = StreamDefinition(name: "s", windowSizeMs: 10, aggregates: [.avg, .max, .count, Aggregate(.stddev)])
        let columns = WindowResult.Columns(d)
        let r = WindowResult(key: Array("u\"1".utf8), startMs: -1000, endMs: 0, values: [1.5, 2, 2, .nan])
        #expect(String(decoding: r.json(columns: columns), as: UTF8.self)
            == #"{"key":"u\"1","window_start":-1000,"window_end":0,"avg":1.5,"max":2,"count":2,"stddev":null}"#)
        let bytes = WindowResult(key: [0xFE, 0xFF], startMs: 0, endMs: 10, values: [0.25, 0.25, 1, .nan], op: .update,
                                 before: [0.5, 0.5, 1, .nan], isFinal: true)
        #expect(String(decoding: bytes.json(columns: columns), as: UTF8.self)
            == #"{"key_base64":"/v8=","window_start":0,"window_end":10,"avg":0.25,"max":0.25,"count":1,"stddev":null,"op":"update","before":{"avg":0.5,"max":0.5,"count":1,"stddev":null},"final":true}"#)
        #expect(String(decoding: bytes.json(columns: columns, stored: true), as: UTF8.self)
            == #"{"key_base64":"/v8=","window_start":0,"window_end":10,"avg":0.25,"max":0.25,"count":1,"stddev":null,"final":true}"#)
        let gone = WindowResult(key: Array("k".utf8), startMs: 5, endMs: 9, values: [], op: .delete)
        #expect(String(decoding: gone.json(columns: columns), as: UTF8.self) == #"{"key":"k","window_start":5,"window_end":9,"op":"delete"}"#)
        d.groupBy = .all
        let all = WindowResult(key: nil, startMs: 0, endMs: 10, values: [1, 1, 1, .nan])
        #expect(String(decoding: all.json(columns: WindowResult.Columns(d)), as: UTF8.self)
            == #"{"window_start":0,"window_end":10,"avg":1,"max":1,"count":1,"stddev":null}"#)
    }

    /// Column names: `fn` for the one value, `fn_field` with declared fields, `pNN`, `as`.
    @Test func columnNames() {
        var d = StreamDefinition(name: "s", windowSizeMs: 10, aggregates: [.count, .sum, Aggregate(.p, quantile: 0.99), Aggregate(.p, quantile: 0.5),
            Aggregate(.p, quantile: 0.999), Aggregate(.avg, alias: "mean"), Aggregate(.countDistinct)])
        #expect(d.columnNames == ["count", "sum", "p99", "p50", "p999", "mean", "count_distinct"])
        d.fields = ["price", "volume"]
        d.fieldsDeclared = true
        d.aggregates = [.count, Aggregate(.sum, field: 1), Aggregate(.p, field: 0, quantile: 0.95), Aggregate(.first, field: 0, alias: "open")]
        #expect(d.columnNames == ["count", "sum_volume", "p95_price", "open"])
        #expect(Aggregate.percentileName(0.05) == "p05")
    }
}
