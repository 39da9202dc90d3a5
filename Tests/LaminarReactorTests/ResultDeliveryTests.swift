import Foundation
import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

/// Result delivery on a reactor driven round by round (no thread): rows of a closing window
/// emitted in slices while commands go on, sequence numbers that survive a crash in the middle of
/// a sliced close, resumes after a seq, retention.
@Suite struct ResultDeliveryTests {
    /// A reactor stepped by hand: each `call` submits, runs one round, and returns the result.
    final class Stepper {
        let reactor: Reactor
        let producer: ReactorProducer
        var token: UInt64 = 1
        var notes: [ReactorCompletion] = []

        init(_ store: any StateStore, _ limits: ReactorLimits, clock: any ReactorClock = SystemClock()) throws {
            reactor = try Reactor(store: store, clock: clock, limits: limits)
            producer = reactor.makeProducer {}
        }

        func call(_ op: ReactorOperation) -> ReactorResult? {
            let t = token
            token += 1
            precondition(producer.submit(ReactorCommand(token: t, op)))
            reactor.runRound()
            var result: ReactorResult?
            _ = producer.poll { c in if c.token == t && !c.result.isNotification { result = c.result } else { notes.append(c) } }
            return result
        }

        func round() {
            reactor.runRound()
            _ = producer.poll { notes.append($0) }
        }

        func stats(_ name: String) -> StreamStats? { call(.streamStats(name: name))?.stats }
    }

    static func keysBatch(_ n: Int, ts: Int64) -> EventBatch {
        EventBatch(keys: (0..<n).map { "k\($0)" }, timestamps: Array(repeating: ts, count: n), values: Array(repeating: 1, count: n))
    }

    var limits: ReactorLimits {
        var l = ReactorLimits()
        l.resultRowsPerRoundMax = 100
        l.walEntriesPerCheckpointMax = 1
        l.checkpointGroupsPerEntry = 1 << 20  // the entries alone set the interval, whatever the keys
        l.followProgressIntervalMs = 0
        return l
    }

    @Test func aClosingWindowIsEmittedInSlicesWhileBatchesAreAnswered() throws {
        var l = limits
        l.walEntriesPerCheckpointMax = 2
        let s = try Stepper(LogStore.inMemory(), l)
        #expect(s.call(.defineStream(StreamDefinition(name: "w", windowSizeMs: 1000)))?.isOK == true)
        guard case .subscribed? = s.call(.follow(stream: "w")) else { Issue.record("follow"); return }
        #expect(s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))?.ack?.accepted == 1000)
        // This batch closes window 0 (1000 rows): its answer comes in the round that emits 100.
        #expect(s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1, ts: 1500), idempotencyKey: nil))?.ack?.accepted == 1)
        // (A round runs its commands, then emits a slice: stats see the rows before that slice.)
        var st = try #require(s.stats("w"))
        #expect(st.rowsPending == 900 && st.resultSeq == 100, "\(st)")
        // Another batch is answered while the close is still being emitted.
        #expect(s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1, ts: 1600), idempotencyKey: nil))?.ack?.accepted == 1)
        st = try #require(s.stats("w"))
        #expect(st.rowsPending == 700 && st.resultSeq == 300)
        #expect(st.walEntries == 1, "the checkpoint was taken at the close, the window's rows in it")
        for _ in 0..<10 { s.round() }
        st = try #require(s.stats("w"))
        #expect(st.rowsPending == 0 && st.resultSeq == 1000 && st.resultSlices == 10)
        #expect(st.walEntries == 1)
        // Followers got every row once, in seq order, one notification per slice.
        let seqs = s.notes.flatMap { n -> [UInt64] in if case .windowsClosed(let rows) = n.result { rows.map(\.seq) } else { [] } }
        #expect(seqs == Array(1...1000))
    }

    /// A round that ingested more events than the row bound emits as many rows (still in slices
    /// of the bound): the rows of closes keep pace with the events however few rounds there are.
    @Test func aRoundEmitsAsManyRowsAsItIngestedEvents() throws {
        let s = try Stepper(LogStore.inMemory(), limits)  // 100 rows a round and a slice
        #expect(s.call(.defineStream(StreamDefinition(name: "e", windowSizeMs: 1000)))?.isOK == true)
        _ = s.call(.appendEvents(stream: "e", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))
        // 600 events in the round that closes window 0 (1000 rows): 600 rows go out in it.
        _ = s.call(.appendEvents(stream: "e", batch: Self.keysBatch(600, ts: 1500), idempotencyKey: nil))
        let st = try #require(s.stats("e"))
        #expect(st.rowsPending == 400 && st.resultSeq == 600 && st.resultSlices == 6, "\(st)")
    }

    /// A round takes a ring's commands only until they brought `eventsPerRoundMax` events (the
    /// one that passes it whole); the rest, a KV write among them, wait in order for the next
    /// round, so that a round's work stays bounded however many batches are in flight; but not
    /// while an `emit: changes` stream takes events (its rows are per round).
    @Test func aRoundStopsTakingCommandsAfterItsEvents() throws {
        var l = limits
        l.eventsPerRoundMax = 250
        let s = try Stepper(LogStore.inMemory(), l)
        #expect(s.call(.defineStream(StreamDefinition(name: "b", windowSizeMs: 1000)))?.isOK == true)
        for i in 0..<4 {
            precondition(s.producer.submit(ReactorCommand(token: 100 + UInt64(i),
                .appendEvents(stream: "b", batch: Self.keysBatch(100, ts: 10), idempotencyKey: nil))))
        }
        precondition(s.producer.submit(ReactorCommand(token: 200, .put(key: Array("kv".utf8), value: [1], condition: .always, ttlMs: nil))))
        var answered: [UInt64] = []
        s.reactor.runRound()
        _ = s.producer.poll { answered.append($0.token) }
        #expect(answered == [100, 101, 102], "100 + 100 + 100 events pass 250 at the third batch")
        answered = []
        s.reactor.runRound()
        _ = s.producer.poll { answered.append($0.token) }
        #expect(answered == [103, 200])
        #expect(s.stats("b")?.eventsAccepted == 400)
        // Not for an `emit: changes` stream (its rows are per round): all four in one round.
        var changes = StreamDefinition(name: "c", windowSizeMs: 1000)
        changes.emit = .changes
        #expect(s.call(.defineStream(changes))?.isOK == true)
        for i in 0..<4 {
            precondition(s.producer.submit(ReactorCommand(token: 300 + UInt64(i),
                .appendEvents(stream: "c", batch: Self.keysBatch(100, ts: 10), idempotencyKey: nil))))
        }
        answered = []
        s.reactor.runRound()
        _ = s.producer.poll { if !$0.result.isNotification { answered.append($0.token) } }
        #expect(answered == [300, 301, 302, 303])
    }

    /// Built rows (closed sessions here) come faster than slices drain them: once the checkpoint,
    /// which waits for them, is overdue (twice its entries), the stream also emits a quarter of
    /// its queue per round, and the checkpoint follows.
    @Test func anOverdueCheckpointSpeedsTheSlicesUp() throws {
        let s = try Stepper(LogStore.inMemory(), limits)  // a checkpoint every entry; 100 rows a round
        var d = StreamDefinition(name: "o", windowSizeMs: 1000)
        d.window = .session(gapMs: 1000)  // the first batch's sessions close at 1010, k0's next one at 2500
        #expect(s.call(.defineStream(d))?.isOK == true)
        _ = s.call(.appendEvents(stream: "o", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))
        _ = s.call(.appendEvents(stream: "o", batch: Self.keysBatch(1, ts: 1500), idempotencyKey: nil))  // 900 left
        #expect(s.stats("o")?.rowsPending == 900)  // then 800
        _ = s.call(.appendEvents(stream: "o", batch: Self.keysBatch(1, ts: 1600), idempotencyKey: nil))  // 2 entries: overdue
        let st = try #require(s.stats("o"))
        #expect(st.rowsPending == 800 - 100 - 175, "\(st)")
        for _ in 0..<10 { s.round() }
        let done = try #require(s.stats("o"))
        #expect(done.rowsPending == 0 && done.resultSeq == 1000 && done.walEntries == 0, "\(done)")
    }

    /// A big window's close is not an overdue checkpoint: the window's groups still count after
    /// it closed (only a handful are open then), so its rows go on in slices of the round bound.
    @Test func aBigWindowsCloseKeepsItsCheckpointInterval() throws {
        var l = limits
        l.checkpointGroupsPerEntry = 100  // 1000 groups: a checkpoint after 10 entries
        let s = try Stepper(LogStore.inMemory(), l)
        #expect(s.call(.defineStream(StreamDefinition(name: "b", windowSizeMs: 1000)))?.isOK == true)
        _ = s.call(.appendEvents(stream: "b", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))
        _ = s.call(.appendEvents(stream: "b", batch: Self.keysBatch(1, ts: 1500), idempotencyKey: nil))  // closes 1000 rows
        #expect(s.stats("b")?.rowsPending == 900)  // then 800
        _ = s.call(.appendEvents(stream: "b", batch: Self.keysBatch(1, ts: 1600), idempotencyKey: nil))
        let st = try #require(s.stats("b"))
        #expect(st.rowsPending == 800 - 100 && st.walEntries == 3, "\(st)")  // no quarter of the queue on top
    }

    /// A checkpoint taken while a closed window's rows go out holds the rest of them: after a
    /// restart from it (no write-ahead entry after it) every row has the seq it had or would
    /// have had, and the events logged during the close count once.
    @Test func aCheckpointDuringASlicedCloseHoldsTheRowsStillToGo() throws {
        let dir = TempDir()
        var before: [String: UInt64] = [:]
        do {
            let store = try LogStore.open(directory: dir.path)
            let s = try Stepper(store, limits)  // a checkpoint every entry; 100 rows a round
            #expect(s.call(.defineStream(StreamDefinition(name: "w", windowSizeMs: 1000)))?.isOK == true)
            _ = s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))
            _ = s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1, ts: 1500), idempotencyKey: nil))
            s.round()
            // 200 rows out: this batch's checkpoint holds the window from row 201 on.
            _ = s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1, ts: 1600), idempotencyKey: nil))
            let st = try #require(s.stats("w"))
            #expect(st.walEntries == 0 && st.rowsPending == 700 && st.resultSeq == 300, "\(st)")
            for (seq, key) in s.resumeAll("w") { before[key] = seq }  // (its rounds emit more)
            #expect(before.count >= 300 && before.count < 1000)
            try store.close()  // the process dies with rows to go
        }
        let store = try LogStore.open(directory: dir.path)
        let s = try Stepper(store, limits)
        let st = try #require(s.stats("w"))
        #expect(st.resultSeq == 1000 && st.rowsPending == 0 && st.eventsAccepted == 1002, "\(st)")
        var after: [String: UInt64] = [:]
        for (seq, key) in s.resumeAll("w") { after[key] = seq }
        #expect(after.count == 1000 && Set(after.values) == Set(1...1000))
        for (key, n) in before { #expect(after[key] == n, "\(key) had seq \(n) before the crash") }
        // Window 1 holds k0's two events (1500 and 1600), each once.
        _ = s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1, ts: 2500), idempotencyKey: nil))
        for _ in 0..<3 { s.round() }
        guard case .retainedResults(let rows, _, _)? = s.call(.resumeResults(stream: "w", after: 1000, keyPrefix: [])) else {
            Issue.record("resume"); return
        }
        let row = rows.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.json)) as? [String: Any] }
        #expect(rows.count == 1 && row?["key"] as? String == "k0" && (row?["count"] as? NSNumber)?.intValue == 2, "\(rows)")
        try store.close()
    }

    @Test func aCrashInTheMiddleOfASlicedCloseKeepsEverySeq() throws {
        let dir = TempDir()
        var before: [String: UInt64] = [:]
        do {
            let store = try LogStore.open(directory: dir.path)
            let s = try Stepper(store, limits)
            #expect(s.call(.defineStream(StreamDefinition(name: "w", windowSizeMs: 1000)))?.isOK == true)
            _ = s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))
            _ = s.call(.appendEvents(stream: "w", batch: Self.keysBatch(1, ts: 1500), idempotencyKey: nil))
            s.round()
            // 200 rows stored of 1000 when the page is read, 300 after its round; the process dies.
            let page = try #require(s.call(.resumeResults(stream: "w", after: 0, keyPrefix: [])))
            guard case .retainedResults(let rows, let last, let live) = page else { Issue.record("\(page)"); return }
            #expect(rows.count == 200 && last == 200 && live)
            for row in rows { before[resultKey(String(decoding: row.json, as: UTF8.self))] = row.seq }
            try store.close()
        }
        let store = try LogStore.open(directory: dir.path)
        let s = try Stepper(store, limits)
        let st = try #require(s.stats("w"))
        #expect(st.resultSeq == 1000 && st.rowsPending == 0, "replay emitted the whole close again: \(st)")
        var after: [String: UInt64] = [:]
        var seq: UInt64 = 0
        while true {
            guard case .retainedResults(let rows, let last, let live)? = s.call(.resumeResults(stream: "w", after: seq, keyPrefix: [])) else {
                Issue.record("resume"); return
            }
            for row in rows { after[resultKey(String(decoding: row.json, as: UTF8.self))] = row.seq }
            seq = last
            if live { break }
        }
        #expect(after.count == 1000 && Set(after.values) == Set(1...1000))
        for (key, n) in before { #expect(after[key] == n, "\(key) had seq \(n) before the crash") }
        try store.close()
    }

    @Test func resumePagesPrefixGoneAndRetention() throws {
        var l = limits
        l.resultPageRowsMax = 3
        let s = try Stepper(LogStore.inMemory(), l)
        #expect(s.call(.defineStream(StreamDefinition(name: "r", windowSizeMs: 1000, retentionMs: 2000)))?.isOK == true)
        let batch = EventBatch(keys: ["a1", "b1", "a2", "a1", "b1"], timestamps: [10, 20, 30, 1010, 1020], values: [1, 2, 3, 4, 5])
        _ = s.call(.appendEvents(stream: "r", batch: batch, idempotencyKey: nil))
        _ = s.call(.appendEvents(stream: "r", batch: Self.keysBatch(1, ts: 2500), idempotencyKey: nil))  // closes window 1000
        #expect(s.stats("r")?.resultSeq == 5)
        // Pages of at most 3 seqs, filtered by prefix; the last one goes live.
        guard case .retainedResults(let p1, 3, false)? = s.call(.resumeResults(stream: "r", after: 0, keyPrefix: Array("a".utf8))),
              case .retainedResults(let p2, 5, true)? = s.call(.resumeResults(stream: "r", after: 3, keyPrefix: Array("a".utf8)))
        else { Issue.record("pages"); return }
        #expect(p1.map(\.seq) == [1, 3] && p2.map(\.seq) == [4])
        #expect(s.call(.resumeResults(stream: "r", after: 6, keyPrefix: []))?.failure == .sinceAhead(lastSeq: 5))
        // Watermark 3500: window [0, 1000) is past its 2 s retention (end 1000 <= 3500 - 2000).
        _ = s.call(.appendEvents(stream: "r", batch: Self.keysBatch(1, ts: 3500), idempotencyKey: nil))
        let st = try #require(s.stats("r"))
        #expect(st.oldestRetainedSeq == 4, "\(st)")
        #expect(s.call(.resumeResults(stream: "r", after: 2, keyPrefix: []))?.failure == .resultsGone(oldestSeq: 4))
        guard case .retainedResults(let p3, _, _)? = s.call(.resumeResults(stream: "r", after: 3, keyPrefix: [])) else { Issue.record("p3"); return }
        #expect(p3.map(\.seq) == [4, 5, 6])
        let stored = try #require(s.call(.queryResults(stream: "r", key: nil, after: nil, limit: 100))?.entries)
        #expect(stored.map { resultKey(String(decoding: $0.value, as: UTF8.self)) } == ["a1", "b1", "k0"], "expired rows left the store")
        let prefixed = try #require(s.call(.queryResults(stream: "r", key: nil, after: nil, limit: 100, keyPrefix: Array("b".utf8)))?.entries)
        #expect(prefixed.count == 1)
    }

    /// Deleting a stream while a closed window's rows are going out drops those not yet stored
    /// (as its open windows are): the delete is one round; numbering goes on after the rows stored.
    @Test func deleteDropsRowsNotYetStored() throws {
        let s = try Stepper(LogStore.inMemory(), limits)
        #expect(s.call(.defineStream(StreamDefinition(name: "d", windowSizeMs: 1000)))?.isOK == true)
        _ = s.call(.appendEvents(stream: "d", batch: Self.keysBatch(1000, ts: 10), idempotencyKey: nil))
        _ = s.call(.appendEvents(stream: "d", batch: Self.keysBatch(1, ts: 1500), idempotencyKey: nil))  // 100 stored, 900 queued
        #expect(s.call(.deleteStream(name: "d"))?.isOK == true)
        #expect(s.call(.defineStream(StreamDefinition(name: "d", windowSizeMs: 1000)))?.isOK == true)
        let st = try #require(s.stats("d"))
        #expect(st.resultSeq == 100 && st.rowsPending == 0, "\(st)")
    }

    /// A stream defined again (or deleted and defined again) goes on numbering where it stopped.
    @Test func redefinitionKeepsNumbering() throws {
        let s = try Stepper(LogStore.inMemory(), limits)
        #expect(s.call(.defineStream(StreamDefinition(name: "n", windowSizeMs: 1000)))?.isOK == true)
        _ = s.call(.appendEvents(stream: "n", batch: EventBatch(keys: ["a", "a"], timestamps: [1, 1001], values: [1, 1]), idempotencyKey: nil))
        #expect(s.stats("n")?.resultSeq == 1)
        #expect(s.call(.defineStream(StreamDefinition(name: "n", windowSizeMs: 500)))?.isOK == true)
        _ = s.call(.appendEvents(stream: "n", batch: EventBatch(keys: ["a", "a"], timestamps: [1, 501], values: [1, 1]), idempotencyKey: nil))
        #expect(s.stats("n")?.resultSeq == 2)
        #expect(s.call(.deleteStream(name: "n"))?.isOK == true)
        #expect(s.call(.defineStream(StreamDefinition(name: "n", windowSizeMs: 500)))?.isOK == true)
        #expect(s.stats("n")?.resultSeq == 2)
        #expect(s.stats("n")?.oldestRetainedSeq == 1, "the earlier rows stay retained")
    }

    /// `emit: changes` with sessions: a resume from any `seq`, applied as a changelog onto what a
    /// follower had up to that `seq`, ends where the live changelog ends — and, once every window
    /// has closed, at the stored (final) rows. Deletes come from the log entries that keep them.
    @Test func aChangelogResumeEndsAtTheLiveChangelogAndTheFinalRows() throws {
        let s = try Stepper(LogStore.inMemory(), limits)
        var d = StreamDefinition(name: "v", windowSizeMs: 1000, allowedLatenessMs: 5000, aggregates: [.count, .sum], idleTimeoutMs: 3_600_000)
        d.window = .session(gapMs: 1000)
        d.emit = .changes
        #expect(s.call(.defineStream(d))?.isOK == true)
        guard case .subscribed? = s.call(.follow(stream: "v")) else { Issue.record("follow"); return }
        // u1: [1000,2000), then [3200,4200), then 2400 bridges them (a delete); u2 alongside;
        // 20000 and 40000 close everything before them.
        for (key, ts) in [("u1", 1000), ("u2", 1100), ("u1", 3200), ("u1", 2400), ("u2", 1500), ("u1", 20000), ("u3", 40000)] {
            _ = s.call(.appendEvents(stream: "v", batch: EventBatch(keys: [key], timestamps: [Int64(ts)], values: [Double(ts)]), idempotencyKey: nil))
        }
        for _ in 0..<3 { s.round() }
        let live = s.notes.flatMap { n -> [WindowResult] in if case .windowsClosed(let rows) = n.result { rows } else { [] } }
        #expect(live.map(\.seq) == Array(1...UInt64(live.count)))
        #expect(live.contains { $0.op == .delete && $0.startMs == 3200 }, "the bridged session is deleted")
        typealias State = [String: String]  // "key start" -> the row's columns
        func apply(_ json: [UInt8], to state: inout State) throws {
            let row = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
            let id = "\(row["key"] ?? "") \(row["window_start"] ?? "")"
            if row["op"] as? String == "delete" { state[id] = nil; return }
            state[id] = "count \(row["count"] ?? "") sum \(row["sum"] ?? "")"
        }
        let columns = WindowResult.Columns(d)
        var full: State = [:]
        for r in live { try apply(r.json(columns: columns), to: &full) }
        var stored: State = [:]
        for e in try #require(s.call(.queryResults(stream: "v", key: nil, after: nil, limit: 100))?.entries) { try apply(e.value, to: &stored) }
        // The closed sessions' rows are final; u3's is still open, in both.
        #expect(full == stored)
        for since in 0...UInt64(live.count) {
            var state: State = [:]
            for r in live where r.seq <= since { try apply(r.json(columns: columns), to: &state) }
            guard case .retainedResults(let rows, _, _)? = s.call(.resumeResults(stream: "v", after: since, keyPrefix: [])) else {
                Issue.record("resume after \(since)"); return
            }
            #expect(rows.map(\.seq) == rows.map(\.seq).sorted())
            for r in rows { try apply(r.json, to: &state) }
            #expect(state == full, "resumed after \(since)")
        }
    }
}
