import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

@Suite(.serialized) struct ReactorStreamTests {
    let definition = StreamDefinition(name: "clicks", windowSizeMs: 1000, allowedLatenessMs: 500, idleTimeoutMs: 2000)

    @Test func eventsWindowsFollowersAndStats() throws {
        let reactor = try Reactor(store: LogStore.inMemory())
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.defineStream(definition))?.isOK == true)
        guard case .subscribed? = c.call(.follow(stream: "clicks")) else { Issue.record("follow"); return }
        let first = EventBatch(keys: ["u1", "u2", "u1"], timestamps: [100, 200, 900], values: [1, 2, 3])
        #expect(c.call(.appendEvents(stream: "clicks", batch: first, idempotencyKey: 7))?.ack
            == EventsAck(accepted: 3, late: 0, watermarkMs: 400, duplicate: false))
        // A retry with the same idempotency key counts once.
        #expect(c.call(.appendEvents(stream: "clicks", batch: first, idempotencyKey: 7))?.ack?.duplicate == true)
        // ts 1600 → watermark 1100 closes [0, 1000); then ts 50 is late.
        let second = EventBatch(keys: ["u1", "u1"], timestamps: [1600, 50], values: [5, 9])
        #expect(c.call(.appendEvents(stream: "clicks", batch: second, idempotencyKey: nil))?.ack
            == EventsAck(accepted: 1, late: 1, watermarkMs: 1100, duplicate: false))
        let notes = c.awaitNotifications(1)
        #expect(notes.count == 1, "one notification for the window's two keys")
        let closed = notes.flatMap { (n: ReactorCompletion) -> [WindowResult] in if case .windowsClosed(let r) = n.result { r } else { [] } }
            .sorted { $0.key!.lexicographicallyPrecedes($1.key!) }
        #expect(closed.map(\.seq) == [1, 2], "rows numbered in emission order")
        #expect(closed.map { var r = $0; r.seq = 0; return r } == [
            WindowResult(key: Array("u1".utf8), startMs: 0, endMs: 1000, values: [2, 4, 1, 3, 2]),
            WindowResult(key: Array("u2".utf8), startMs: 0, endMs: 1000, values: [1, 2, 2, 2, 2]),
        ])
        let stored = try #require(c.call(.queryResults(stream: "clicks", key: Array("u1".utf8), after: nil, limit: 10))?.entries)
        #expect(stored.count == 1)
        #expect(String(decoding: stored[0].value, as: UTF8.self)
            == #"{"seq":1,"key":"u1","window_start":0,"window_end":1000,"count":2,"sum":4,"min":1,"max":3,"avg":2}"#)
        let stats = try #require(c.call(.streamStats(name: "clicks"))?.stats)
        #expect(stats.eventsAccepted == 4 && stats.eventsLate == 1 && stats.openWindows == 1)
        #expect(c.call(.appendEvents(stream: "nope", batch: first, idempotencyKey: nil))?.failure == .unknownStream("nope"))
    }

    /// Results come back in key byte order (`a`, `a b`, `a.`, `a/b`), not in the order of an
    /// escaped text; a result stored under the earlier key layout is moved to the current one
    /// when the reactor opens the store, and is found by its key.
    @Test func resultsInKeyByteOrderAndEarlierLayoutMoved() throws {
        let dir = TempDir()
        let old = Array("_streams/clicks/old%2Fkey/8000000000000000".utf8)
        let oldValue = Array(#"{"key":"old/key","start":0,"end":1000,"count":1}"#.utf8)
        do {
            let store = try LogStore.open(directory: dir.path)
            _ = try store.put(old, oldValue, condition: .always, expiresAtMs: nil)
            try store.close()
        }
        let reactor = try Reactor(store: try LogStore.open(directory: dir.path))
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.get(key: old))?.failure == .notFound)
        #expect(c.call(.defineStream(definition))?.isOK == true)
        let keys = ["a/b", "a.", "a", "a b"]
        _ = c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: keys + ["z"], timestamps: [1, 2, 3, 4, 5000], values: [1, 2, 3, 4, 5]),
            idempotencyKey: nil))
        func keysOf(_ entries: [StoreEntry]) -> [String] {
            entries.map { resultKey(String(decoding: $0.value, as: UTF8.self)) }
        }
        let all = try #require(c.call(.queryResults(stream: "clicks", key: nil, after: nil, limit: 100))?.entries)
        #expect(keysOf(all) == ["a", "a b", "a.", "a/b", "old/key"])
        // Paged two at a time, with the last key as the cursor: the same order.
        var paged: [StoreEntry] = []
        var after: [UInt8]? = nil
        while let page = c.call(.queryResults(stream: "clicks", key: nil, after: after, limit: 2))?.entries, !page.isEmpty {
            paged += page
            after = page.last!.key
        }
        #expect(keysOf(paged) == keysOf(all))
        let moved = try #require(c.call(.queryResults(stream: "clicks", key: Array("old/key".utf8), after: nil, limit: 10))?.entries)
        #expect(moved.map(\.value) == [oldValue])
        #expect(c.call(.queryResults(stream: "clicks", key: Array("a".utf8), after: nil, limit: 10))?.entries?.count == 1)
    }

    @Test func idleStreamAdvancesWatermarkByProcessingTime() throws {
        let clock = ManualClock()
        let reactor = try Reactor(store: LogStore.inMemory(), clock: clock)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.defineStream(definition))?.isOK == true)
        _ = c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: ["k"], timestamps: [10_100], values: [1]), idempotencyKey: nil))
        #expect(c.call(.streamStats(name: "clicks"))?.stats?.watermarkMs == 9600)
        clock.advance(byMs: 1999)
        #expect(c.call(.streamStats(name: "clicks"))?.stats?.openWindows == 1, "not idle yet")
        clock.advance(byMs: 1)
        // Idle for 2000 ms: watermark = 10100 − 500 + 2000 = 11600 ≥ 11000, the window closes.
        let stats = try #require(c.call(.streamStats(name: "clicks"))?.stats)
        #expect(stats.watermarkMs == 11_600)
        #expect(stats.openWindows == 0)
        #expect(c.call(.queryResults(stream: "clicks", key: nil, after: nil, limit: 10))?.entries?.count == 1)
    }

    /// `emit: {"every": 1s}`: rows of changed windows appear on the processing-time tick, not
    /// before; a window that did not change emits nothing at the next tick; the tick is logged, so
    /// a reopened store replays to the same rows, under the same `seq`. (The tick fires at the
    /// start of a round; its rows are stored after that round's commands, so `stored` looks one
    /// round later.)
    @Test func emitEveryFlushesOnItsTimer() throws {
        let clock = ManualClock()
        let dir = TempDir()
        var d = StreamDefinition(name: "ticks", windowSizeMs: 10_000, aggregates: [.count, .sum], idleTimeoutMs: 3_600_000)
        d.emit = .every(ms: 1000)
        func stored(_ c: TestClient) -> [String] {
            _ = c.call(.streamStats(name: "ticks"))
            return (c.call(.queryResults(stream: "ticks", key: nil, after: nil, limit: 10))?.entries ?? []).map { String(decoding: $0.value, as: UTF8.self) }
        }
        do {
            let reactor = try Reactor(store: LogStore.open(directory: dir.path), clock: clock)
            let c = TestClient(reactor: reactor)
            reactor.start()
            #expect(c.call(.defineStream(d))?.isOK == true)
            _ = c.call(.appendEvents(stream: "ticks", batch: EventBatch(keys: ["k"], timestamps: [100], values: [2]), idempotencyKey: nil))
            #expect(stored(c).isEmpty, "no row before the tick")
            clock.advance(byMs: 1000)
            #expect(stored(c) == [#"{"seq":1,"key":"k","window_start":0,"window_end":10000,"count":1,"sum":2}"#])
            _ = c.call(.appendEvents(stream: "ticks", batch: EventBatch(keys: ["k"], timestamps: [200], values: [3]), idempotencyKey: nil))
            #expect(stored(c) == [#"{"seq":1,"key":"k","window_start":0,"window_end":10000,"count":1,"sum":2}"#])
            clock.advance(byMs: 1000)
            #expect(stored(c) == [#"{"seq":2,"key":"k","window_start":0,"window_end":10000,"count":2,"sum":5}"#])
            reactor.stop()
        }
        let reopened = try Reactor(store: LogStore.open(directory: dir.path), clock: clock)
        let c = TestClient(reactor: reopened)
        reopened.start()
        defer { reopened.stop() }
        #expect(stored(c) == [#"{"seq":2,"key":"k","window_start":0,"window_end":10000,"count":2,"sum":5}"#])
        _ = c.call(.appendEvents(stream: "ticks", batch: EventBatch(keys: ["k"], timestamps: [20_000], values: [0]), idempotencyKey: nil))
        #expect(stored(c).first == #"{"seq":3,"key":"k","window_start":0,"window_end":10000,"count":2,"sum":5,"final":true}"#)
    }

    /// Checkpoint + write-ahead replay in-process: a reactor stopped without a checkpoint and one
    /// with several, reopened on the same directory, count every event once.
    @Test(arguments: [1, 3, 1000])
    func recoveryCountsEachEventOnce(walEntriesPerCheckpoint: Int) throws {
        let dir = TempDir()
        var limits = ReactorLimits()
        limits.walEntriesPerCheckpointMax = walEntriesPerCheckpoint
        var expected: [String: Int64] = [:]
        do {
            let store = try LogStore.open(directory: dir.path)
            let reactor = try Reactor(store: store, limits: limits)
            let c = TestClient(reactor: reactor)
            reactor.start()
            #expect(c.call(.defineStream(definition))?.isOK == true)
            for b in 0..<10 {
                let keys = (0..<20).map { "k\(($0 + b) % 7)" }
                let ts = (0..<20).map { Int64(b * 400 + $0 * 10) }
                let ack = try #require(c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: keys, timestamps: ts,
                    values: Array(repeating: 1, count: 20)), idempotencyKey: UInt64(b)))?.ack)
                #expect(ack.late == 0)
                for k in keys { expected[k, default: 0] += 1 }
            }
            reactor.stop()
            try store.close()
        }
        let store = try LogStore.open(directory: dir.path)
        let reactor = try Reactor(store: store, limits: limits)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        // A retried batch after the restart is still recognised.
        #expect(c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: ["k0"], timestamps: [5000], values: [1]),
            idempotencyKey: 9))?.ack?.duplicate == true)
        let stats = try #require(c.call(.streamStats(name: "clicks"))?.stats)
        #expect(stats.eventsAccepted == 200)
        // 10 batches logged: a checkpoint every N entries, its time survives the restart, and
        // the entries after it are what was replayed.
        #expect(stats.walEntries == UInt64(10 % walEntriesPerCheckpoint))
        #expect((stats.lastCheckpointAtMs != nil) == (walEntriesPerCheckpoint <= 10))
        if let at = stats.lastCheckpointAtMs { #expect(at > 1_700_000_000_000) }
        // Close everything and sum counts per key from the stored results.
        _ = c.call(.appendEvents(stream: "clicks", batch: EventBatch(keys: ["end"], timestamps: [1_000_000], values: [0]), idempotencyKey: nil))
        let results = try #require(c.call(.queryResults(stream: "clicks", key: nil, after: nil, limit: 10_000))?.entries)
        var counted: [String: Int64] = [:]
        for r in results {
            let json = String(decoding: r.value, as: UTF8.self)
            let key = resultKey(json)
            let count = Int64(json.split(separator: "\"count\":")[1].prefix { $0.isNumber })!
            counted[key, default: 0] += count
        }
        #expect(counted == expected)
    }
}

/// The `"key"` of a stored result row (rows carry `"seq"` first; rows moved from an earlier
/// layout do not).
func resultKey(_ json: String) -> String {
    String(json.split(separator: #""key":""#)[1].prefix { $0 != "\"" })
}
