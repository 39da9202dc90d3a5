import LaminarFormats
import LaminarStore
import Testing
@testable import LaminarReactor

@Suite struct ReactorLimitsTests {
    @Test func defaultsAgree() {
        #expect(ReactorLimits.default.checkConsistency() == nil)
    }

    @Test func completionRingMustHoldInFlightPlusNotifications() {
        var limits = ReactorLimits()
        limits.notificationSlotsPerProducer = limits.completionRingCapacity
        #expect(limits.checkConsistency() != nil)
        limits = ReactorLimits()
        limits.submissionRingCapacity = 1000
        #expect(limits.checkConsistency() != nil)
    }

    @Test func timerHeapFiresInDeadlineThenSchedulingOrder() {
        var heap = TimerHeap<Int>()
        var rng = SystemRandomNumberGenerator()
        var expected: [(Int64, Int)] = []
        for i in 0..<500 {
            let d = Int64.random(in: 0...50, using: &rng)
            heap.schedule(atMs: d, i)
            expected.append((d, i))
            heap.checkInvariants()
        }
        #expect(heap.popDue(nowMs: -1) == nil)
        var fired: [Int] = []
        while let p = heap.popDue(nowMs: 50) { fired.append(p); heap.checkInvariants() }
        #expect(fired == expected.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map(\.1))
    }
}

/// The reactor enforces the client's value bound itself, below its store's bound, and refuses a
/// batch its store cannot log by its size (413), never with an internal error.
@Suite struct ReactorValueBoundTests {
    @Test func clientValuesStopAtValueBytesMaxBelowTheStoreBound() throws {
        var options = LogStoreOptions()
        options.limits = StoreLimits(keyBytesMax: 4096, valueBytesMax: 1 << 20)
        var limits = ReactorLimits()
        limits.valueBytesMax = 1000
        let reactor = try Reactor(store: LogStore.inMemory(options: options), limits: limits)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.put(key: [1], value: [UInt8](repeating: 7, count: 1000), condition: .always, ttlMs: nil))?.written != nil)
        #expect(c.call(.put(key: [1], value: [UInt8](repeating: 7, count: 1001), condition: .always, ttlMs: nil))?.failure
            == .valueTooLarge(bytes: 1001, max: 1000))
        #expect(c.call(.batch([.put(key: [2], value: [1]), .put(key: [3], value: [UInt8](repeating: 7, count: 1001))]))?.failure
            == .valueTooLarge(bytes: 1001, max: 1000))
        #expect(c.call(.get(key: [2]))?.failure == .notFound)
        // A stream's write-ahead entry may pass the client's bound (up to the store's).
        #expect(c.call(.defineStream(StreamDefinition(name: "s", windowSizeMs: 1000)))?.isOK == true)
        let keys = (0..<100).map { "key-\($0)" }
        let batch = EventBatch(keys: keys, timestamps: keys.map { _ in 1 }, values: keys.map { _ in 1 })
        #expect(batch.bytes.count > 1000)
        #expect(c.call(.appendEvents(stream: "s", batch: batch, idempotencyKey: nil))?.ack?.accepted == 100)
    }

    @Test func aBatchTheStoreCannotLogIsRefusedBySize() throws {
        var options = LogStoreOptions()
        options.limits = StoreLimits(keyBytesMax: 4096, valueBytesMax: 4096)
        let reactor = try Reactor(store: LogStore.inMemory(options: options))
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.defineStream(StreamDefinition(name: "s", windowSizeMs: 1000)))?.isOK == true)
        let keys = (0..<1000).map { "key-\($0)" }
        let batch = EventBatch(keys: keys, timestamps: keys.map { _ in 1 }, values: keys.map { _ in 1 })
        guard case .batchBytesTooLarge(let bytes, let max)? = c.call(.appendEvents(stream: "s", batch: batch, idempotencyKey: nil))?.failure else {
            Issue.record("expected batchBytesTooLarge"); return
        }
        #expect(bytes == batch.bytes.count + 10 && max == 4096)
        #expect(c.call(.streamStats(name: "s"))?.stats?.eventsAccepted == 0)
    }
}
