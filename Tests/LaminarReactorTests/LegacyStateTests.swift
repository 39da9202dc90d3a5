import LaminarFormats
import LaminarStore
import Testing
@testable import LaminarReactor

/// Definitions and checkpoints written before window kinds existed (definition version 1,
/// checkpoint version 2 with a tumbling operator's buckets) still load, and their open windows
/// close with what they held.
@Suite struct LegacyStateTests {
    @Test func versionOneDefinitionAndVersionTwoCheckpointLoad() throws {
        let dir = TempDir()
        do {
            let store = try LogStore.open(directory: dir.path)
            var d = ByteWriter()
            d.u8(1)
            d.string("old"); d.string("key"); d.string("ts"); d.string("value")
            d.i64(1000); d.i64(0); d.i64(3_600_000)
            d.string("count,sum,max")
            var cp = ByteWriter()
            cp.u8(2); cp.u64(UInt64(bitPattern: 1_700_000_000_000)); cp.u64(1)  // written at, next sequence
            cp.u32(1); cp.u64(42)                                               // one idempotency key
            cp.i64(1500); cp.i64(1500)                                          // watermark, max event time
            cp.u64(3); cp.u64(1); cp.u64(1)                                     // accepted, late, windows closed
            cp.u32(1)                                                           // one open window
            cp.i64(1000); cp.u32(1)                                             // [1000, 2000), one key
            cp.blob(Array("u1".utf8)); cp.i64(2); cp.f64(5); cp.f64(1); cp.f64(4)
            try store.put(ReservedKeys.definition("old"), d.bytes, condition: .always, expiresAtMs: nil)
            try store.put(ReservedKeys.checkpoint("old"), cp.bytes, condition: .always, expiresAtMs: nil)
            try store.commit()
            try store.close()
        }
        let reactor = try Reactor(store: LogStore.open(directory: dir.path))
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        let stats = try #require(c.call(.streamStats(name: "old"))?.stats)
        #expect(stats.definition.aggregates == [.count, .sum, .max])
        #expect(stats.definition.window == .tumble(sizeMs: 1000))
        #expect(stats.eventsAccepted == 3 && stats.eventsLate == 1 && stats.watermarkMs == 1500 && stats.openWindows == 1)
        // The idempotency key is remembered; a later event closes [1000, 2000) with the old bucket.
        #expect(c.call(.appendEvents(stream: "old", batch: EventBatch(keys: ["u1"], timestamps: [1600], values: [10]), idempotencyKey: 42))?.ack?.duplicate == true)
        _ = c.call(.appendEvents(stream: "old", batch: EventBatch(keys: ["u1", "z"], timestamps: [1600, 5000], values: [10, 0]), idempotencyKey: nil))
        let rows = try #require(c.call(.queryResults(stream: "old", key: Array("u1".utf8), after: nil, limit: 10))?.entries)
        #expect(rows.map { String(decoding: $0.value, as: UTF8.self) } == [#"{"seq":1,"key":"u1","window_start":1000,"window_end":2000,"count":3,"sum":15,"max":10}"#])
    }
}
