@testable import LaminarReactor
import LaminarStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct ReactorKVTests {
    @Test func putGetDeleteConditionsAndScans() throws {
        let reactor = try Reactor(store: LogStore.inMemory())
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        let v1 = try #require(c.call(.put(key: bytes("a/1"), value: bytes("x"), condition: .always, ttlMs: nil))?.written)
        guard case .value(let value, let version)? = c.call(.get(key: bytes("a/1"))) else { Issue.record("get"); return }
        #expect(value.bytes == bytes("x") && version == v1)
        #expect(c.call(.put(key: bytes("a/1"), value: bytes("y"), condition: .ifVersion(v1 + 100), ttlMs: nil))?.failure
            == .conditionFailed(current: v1))
        #expect(c.call(.put(key: bytes("a/1"), value: bytes("y"), condition: .absent, ttlMs: nil))?.failure == .conditionFailed(current: v1))
        #expect(c.call(.put(key: bytes("a/2"), value: bytes("z"), condition: .absent, ttlMs: nil))?.written != nil)
        #expect(c.call(.put(key: bytes("b"), value: bytes("z"), condition: .always, ttlMs: nil))?.written != nil)
        #expect(c.call(.prefixScan(prefix: bytes("a/"), after: nil, limit: 10))?.entries?.map(\.key) == [bytes("a/1"), bytes("a/2")])
        #expect(c.call(.prefixScan(prefix: bytes("a/"), after: bytes("a/1"), limit: 10))?.entries?.map(\.key) == [bytes("a/2")])
        #expect(c.call(.rangeScan(start: bytes("a/2"), end: bytes("c"), after: nil, limit: 1))?.entries?.map(\.key) == [bytes("a/2")])
        #expect(c.call(.delete(key: bytes("zz"), condition: .always))?.failure == .notFound)
        guard case .deleted? = c.call(.delete(key: bytes("b"), condition: .always)) else { Issue.record("delete"); return }
        #expect(c.call(.get(key: bytes("b")))?.failure == .notFound)
        #expect(c.call(.put(key: bytes("_wal/x"), value: [], condition: .always, ttlMs: nil))?.failure == .reservedKey)
        // Atomic batch: one failing condition applies nothing.
        #expect(c.call(.batch([.put(key: bytes("n1"), value: [1]), .put(key: bytes("a/1"), value: [2], condition: .absent)]))?.failure
            == .conditionFailed(current: v1))
        #expect(c.call(.get(key: bytes("n1")))?.failure == .notFound)
        guard case .batchApplied? = c.call(.batch([.put(key: bytes("n1"), value: [1]), .delete(key: bytes("a/2"))])) else {
            Issue.record("batch"); return
        }
        #expect(c.call(.get(key: bytes("a/2")))?.failure == .notFound)
    }

    /// One round of many KV commands: from the `CommandPrefetch.slotAhead`-th command of a pop
    /// on, a get or put uses the key hash its prefetch step computed (debug builds check it is
    /// the key's), the first ones hash in line; commands without a key sit in between. Every
    /// answer must be that of the commands run one at a time.
    @Test(arguments: [false, true])
    func aRoundOfManyCommandsUsesEachKeysOwnHash(persistent: Bool) throws {
        let dir = TempDir()
        let store = try persistent ? LogStore.open(directory: dir.path) : LogStore.inMemory()
        let reactor = try Reactor(store: store)
        let producer = reactor.makeProducer {}
        func key(_ i: Int) -> [UInt8] { bytes("k\(i)" + String(repeating: "-", count: i % 23)) }
        var ops: [ReactorOperation] = []
        for i in 0..<60 {
            ops.append(.put(key: key(i), value: bytes("v\(i)"), condition: .always, ttlMs: nil))
            ops.append(.get(key: key(i)))
            ops.append(.get(key: key(i + 1000)))  // absent
            if i % 7 == 0 { ops.append(.prefixScan(prefix: bytes("k1"), after: nil, limit: 3)) }
            if i % 5 == 0 { ops.append(.delete(key: key(i), condition: .always)) }
            if i % 5 == 0 { ops.append(.get(key: key(i))) }  // deleted just before
        }
        #expect(ops.count < reactor.limits.commandsPerRoundMax)
        for (t, op) in ops.enumerated() { #expect(producer.submit(ReactorCommand(token: UInt64(t), op))) }
        reactor.runRound()
        var results: [UInt64: ReactorResult] = [:]
        _ = producer.poll { results[$0.token] = $0.result }
        #expect(results.count == ops.count)
        var model: [[UInt8]: [UInt8]] = [:]
        for (t, op) in ops.enumerated() {
            let result = results[UInt64(t)]
            switch op {
            case .put(let k, let v, _, _):
                #expect(result?.written != nil)
                model[k] = v
            case .get(let k):
                if let expected = model[k] {
                    guard case .value(let value, _)? = result else { Issue.record("get \(t): \(String(describing: result))"); continue }
                    #expect(value.bytes == expected, "get \(t)")
                } else {
                    #expect(result?.failure == .notFound, "get \(t)")
                }
            case .delete(let k, _):
                guard case .deleted? = result else { Issue.record("delete \(t)"); continue }
                model[k] = nil
            default:
                #expect(result?.entries != nil)
            }
        }
    }

    @Test func ttlExpiryByInjectedClock() throws {
        let clock = ManualClock()
        let reactor = try Reactor(store: LogStore.inMemory(), clock: clock)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.put(key: bytes("t"), value: [1], condition: .always, ttlMs: 1000))?.written != nil)
        #expect(c.call(.watch(prefix: bytes("t"))).map { if case .subscribed = $0 { true } else { false } } == true)
        clock.advance(byMs: 999)
        guard case .value? = c.call(.get(key: bytes("t"))) else { Issue.record("expired early"); return }
        clock.advance(byMs: 1)
        #expect(c.call(.get(key: bytes("t")))?.failure == .notFound)
        let n = c.awaitNotifications(1)
        guard case .change(let change)? = n.first?.result else { Issue.record("no expiry notification"); return }
        #expect(change.key == bytes("t") && change.value == nil)
    }

    /// Many one-command exchanges with the reactor parking between each: a lost wake-up would
    /// hang a call (it returns nil after 10 s).
    @Test func noLostWakeUps() throws {
        let reactor = try Reactor(store: LogStore.inMemory())
        let a = TestClient(reactor: reactor)
        let b = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        let other = TestThread {
            for i in 0..<3000 {
                guard b.call(.put(key: bytes("b\(i % 10)"), value: [1], condition: .always, ttlMs: nil))?.written != nil else {
                    fatalError("lost wake-up on the second producer")
                }
            }
        }
        var ok = 0
        for i in 0..<3000 where a.call(.get(key: bytes("k\(i)")))?.failure == .notFound { ok += 1 }
        other.join()
        #expect(ok == 3000)
        // Then every call finds the reactor parked, so each one gets through only by its wake-up.
        // `parked` is set before the reactor's last look at the rings and the park is counted only
        // after it, so a call sent in between is found by that look, not by a wake-up: wait for
        // the flag *and* a park counted since the previous call.
        let parksBefore = reactor.parkCount.load(ordering: .relaxed)
        var lastCounted = -1
        for i in 0..<200 {
            var waitedUs = 0
            while true {
                let counted = reactor.parkCount.load(ordering: .acquiring)
                if reactor.parking.parked.load(ordering: .acquiring) && counted > lastCounted {
                    lastCounted = counted
                    break
                }
                usleep(50)
                waitedUs += 50
                if waitedUs > 5_000_000 { Issue.record("the reactor did not park while idle"); return }
            }
            #expect(a.call(.get(key: bytes("p\(i)")))?.failure == .notFound, "call \(i) after a park")
        }
        // Parked before call 0 (counted already), again before each of calls 1…199.
        #expect(reactor.parkCount.load(ordering: .relaxed) - parksBefore >= 199, "the reactor parks between calls")
    }

    /// A subscriber that never polls is ended with a final error; the reactor keeps serving.
    @Test func slowSubscriberIsEnded() throws {
        var limits = ReactorLimits()
        limits.completionRingCapacity = 64
        limits.submissionRingCapacity = 32
        limits.commandsInFlightMax = 32
        limits.notificationSlotsPerProducer = 32
        limits.subscriptionBacklogMax = 16
        let reactor = try Reactor(store: LogStore.inMemory(), limits: limits)
        let watcher = TestClient(reactor: reactor)
        let writer = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        // Subscribe, then stop polling (the watcher only looks at the end).
        let token = watcher.nextToken
        #expect(watcher.producer.submit(ReactorCommand(token: token, .watch(prefix: bytes("w/")))))
        watcher.producer.wakeReactorIfParked()
        for i in 0..<200 {
            #expect(writer.call(.put(key: bytes("w/\(i)"), value: [1], condition: .always, ttlMs: nil))?.written != nil)
        }
        var got: [ReactorCompletion] = []
        watcher.producer.poll { got.append($0) }
        #expect(got.count == 1 + 32)  // subscribed + the notification slots, the rest was dropped
        let final = watcher.awaitNotifications(1)
        guard case .subscriptionEnded(.slowSubscriber)? = final.last?.result else { Issue.record("no final error: \(final.count)"); return }
    }
}
