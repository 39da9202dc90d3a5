import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

/// Checkpoints stored in parts (`CheckpointJob`): encoded off the reactor, written one part per
/// round, made current by a head; recovery reads the parts and deletes those no head names.
@Suite(.serialized) struct CheckpointJobTests {
    let definition = StreamDefinition(name: "clicks", windowSizeMs: 1000, allowedLatenessMs: 500, idleTimeoutMs: 2000)

    /// Parts of 64 bytes, every checkpoint in parts: each event counted once across restarts,
    /// the head names parts that are all there, and a stray part (a crash mid-checkpoint) goes.
    @Test func partedCheckpointsRecoverEveryEventOnce() throws {
        let dir = TempDir()
        var limits = ReactorLimits()
        limits.walEntriesPerCheckpointMax = 3
        limits.checkpointInlineBytesMax = 0
        limits.checkpointPartBytes = 64
        var expected: [String: Int64] = [:]
        func ingest(_ c: TestClient, batches: Range<Int>) throws {
            for b in batches {
                let keys = (0..<20).map { "k\(($0 + b) % 13)" }
                let ts = (0..<20).map { Int64(b * 400 + $0 * 10) }
                let ack = try #require(c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: keys, timestamps: ts,
                    values: Array(repeating: 1, count: 20)), idempotencyKey: UInt64(b)))?.ack)
                #expect(ack.late == 0)
                for k in keys { expected[k, default: 0] += 1 }
            }
        }
        /// Asks for stats until no checkpoint is pending (the reactor writes a part per round).
        func settledStats(_ c: TestClient) throws -> StreamStats {
            for _ in 0..<10_000 {
                let stats = try #require(c.call(.streamStats(name: "clicks"))?.stats)
                if stats.walEntries < UInt64(limits.walEntriesPerCheckpointMax) { return stats }
            }
            Issue.record("the checkpoint in parts never became current")
            return try #require(c.call(.streamStats(name: "clicks"))?.stats)
        }
        do {
            let store = try LogStore.open(directory: dir.path)
            let reactor = try Reactor(store: store, limits: limits)
            let c = TestClient(reactor: reactor)
            reactor.start()
            #expect(c.call(.defineStream(definition))?.isOK == true)
            try ingest(c, batches: 0..<10)
            let stats = try settledStats(c)
            #expect(stats.lastCheckpointAtMs != nil)
            reactor.stop()
            // The head (version 5) and exactly the parts it names.
            let head = try #require(store.get(Array("_checkpoint/clicks".utf8))).value
            #expect(head.first == 5 && head.count == 21)
            let parts = Int(head[9]) | Int(head[10]) << 8
            let stored = store.prefixScan(Array("_checkpoint/clicks/".utf8), after: nil, limit: 10_000)
            #expect(parts > 1 && stored.count == parts)
            #expect(stored.allSatisfy { $0.value.count <= 64 })
            // A part of a checkpoint a crash interrupted (another generation).
            _ = try store.put(Array("_checkpoint/clicks/00000000000000FF/00000000".utf8), [1, 2, 3], condition: .always, expiresAtMs: nil)
            try store.commit()
            try store.close()
        }
        do {
            let store = try LogStore.open(directory: dir.path)
            let reactor = try Reactor(store: store, limits: limits)
            #expect(store.get(Array("_checkpoint/clicks/00000000000000FF/00000000".utf8)) == nil, "recovery deletes stray parts")
            let c = TestClient(reactor: reactor)
            reactor.start()
            #expect(c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: ["k0"], timestamps: [5000], values: [1]),
                idempotencyKey: 9))?.ack?.duplicate == true, "idempotency keys are in the checkpoint")
            #expect(try #require(c.call(.streamStats(name: "clicks"))?.stats).eventsAccepted == 200)
            try ingest(c, batches: 10..<17)
            _ = try settledStats(c)
            reactor.stop()
            // The parts of the checkpoints made current before were deleted with them.
            let head = try #require(store.get(Array("_checkpoint/clicks".utf8))).value
            let parts = Int(head[9]) | Int(head[10]) << 8
            #expect(store.prefixScan(Array("_checkpoint/clicks/".utf8), after: nil, limit: 10_000).count == parts)
            try store.close()
        }
        let store = try LogStore.open(directory: dir.path)
        let reactor = try Reactor(store: store, limits: limits)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(try #require(c.call(.streamStats(name: "clicks"))?.stats).eventsAccepted == 340)
        _ = c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: ["end"], timestamps: [1_000_000], values: [0]), idempotencyKey: nil))
        let results = try #require(c.call(.queryResults(stream: "clicks", key: nil, after: nil, limit: 10_000))?.entries)
        var counted: [String: Int64] = [:]
        for r in results {
            let json = String(decoding: r.value, as: UTF8.self)
            counted[resultKey(json), default: 0] += Int64(json.split(separator: "\"count\":")[1].prefix { $0.isNumber })!
        }
        #expect(counted == expected)
        // Deleting the stream deletes its checkpoint's parts.
        #expect(c.call(.deleteStream(name: "clicks"))?.isOK == true)
        #expect(c.call(.prefixScan(prefix: Array("_checkpoint/clicks".utf8), after: nil, limit: 10))?.entries?.isEmpty == true)
    }
}
