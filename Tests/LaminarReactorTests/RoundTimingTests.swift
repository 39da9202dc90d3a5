import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

/// `RoundTiming`: the reactor thread times its rounds (`/metrics`: the longest, the slow ones).
@Suite struct RoundTimingTests {
    @Test func theReactorThreadTimesItsRounds() throws {
        let reactor = try Reactor(store: LogStore.inMemory())
        let c = TestClient(reactor: reactor)
        #expect(reactor.roundTiming.maxNs.load(ordering: .relaxed) == 0)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.defineStream(StreamDefinition(name: "t", windowSizeMs: 1000)))?.isOK == true)
        let keys = (0..<5000).map { "k\($0)" }
        _ = c.call(.appendEvents(stream: "t", batch: EventBatch(keys: keys, timestamps: Array(repeating: 10, count: keys.count),
            values: Array(repeating: 1, count: keys.count)), idempotencyKey: nil))
        let longest = reactor.roundTiming.maxNs.load(ordering: .relaxed)
        #expect(longest > 0 && longest < 60_000_000_000, "\(longest) ns")
        #expect(reactor.roundTiming.slowRounds.load(ordering: .relaxed) <= reactor.roundCount.load(ordering: .relaxed))
    }
}
