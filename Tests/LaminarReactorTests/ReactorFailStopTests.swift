import Foundation
import Glibc
import LaminarFormats
@testable import LaminarReactor
import LaminarStore
import Testing

/// Fail-stop through the reactor at `fsync always` (the pipelined commit on the syncer thread):
/// every sync and write of a run of KV puts, a batch, a stream definition and event batches that
/// trigger stream checkpoints is failed in turn. The command whose sync failed and every later
/// write is answered `storageFailed`, never a success; reads go on; watches are refused; after a
/// reopen with the real file layer every acknowledged write and event is there exactly once.
@Suite(.serialized) struct ReactorFailStopTests {
    typealias State = [String: [UInt8]]

    /// What a run acknowledged, and what is in doubt (the one command whose commit failed).
    struct Outcome {
        var acknowledged: State = [:]
        var inDoubt: State?
        var eventsAcknowledged = 0
        var eventsInDoubt = 0
        var streamDefined = false
        var streamInDoubt = false
        var durableEnd: Int?
        var logEnd = 0
        var failedAt: String?
    }

    static let eventsPerBatch = 5
    static let definition = StreamDefinition(name: "s", windowSizeMs: 1000)

    static func value(_ i: Int) -> [UInt8] {
        (0..<(i % 2 == 0 ? 5000 : 10)).map { UInt8(truncatingIfNeeded: $0 &+ i &* 13) }
    }

    /// Drives the reactor through `io`; checks every answer against the fail-stop rules.
    static func drive(dir: String, io: FaultInjectingFileIO) throws -> Outcome {
        var out = Outcome()
        var options = LogStoreOptions()
        options.fileIO = io
        options.fsync = .always
        let store: LogStore
        do { store = try LogStore.open(directory: dir, options: options) } catch { return out }
        var limits = ReactorLimits.default
        limits.walEntriesPerCheckpointMax = 3  // a stream checkpoint every third batch
        let reactor = try Reactor(store: store, clock: ManualClock(), limits: limits)
        let c = TestClient(reactor: reactor)
        reactor.start()

        /// Runs a mutation; `effect` applies it to a state. Returns whether it was acknowledged.
        func mutate(_ name: String, _ op: ReactorOperation, _ effect: (inout State) -> Void) -> Bool {
            let result = c.call(op)
            switch result {
            case .failure(.storageFailed(let detail))?:
                #expect(detail.contains("errno"), "\(detail)")
                #expect(reactor.storageFailureDetail != nil, "a storage_failed answer before /health knows")
                if out.failedAt == nil {
                    out.failedAt = name
                    var s = out.acknowledged
                    effect(&s)
                    out.inDoubt = s
                }
                return false
            case .failure(let e)?:
                Issue.record("\(name): \(e)")
                return false
            case nil:
                Issue.record("\(name): no answer")
                return false
            default:
                #expect(out.failedAt == nil, "\(name) acknowledged after the store failed at \(out.failedAt ?? "")")
                effect(&out.acknowledged)
                return true
            }
        }

        for i in 0..<4 {
            _ = mutate("put k\(i)", .put(key: bytes("k\(i)"), value: value(i), condition: .always, ttlMs: nil)) { $0["k\(i)"] = value(i) }
        }
        _ = mutate("batch", .batch([.put(key: bytes("b1"), value: value(10)), .delete(key: bytes("k0")), .put(key: bytes("b2"), value: value(11))])) {
            $0["b1"] = value(10)
            $0["k0"] = nil
            $0["b2"] = value(11)
        }
        switch c.call(.defineStream(definition)) {
        case .ok?: #expect(out.failedAt == nil); out.streamDefined = true
        case .failure(.storageFailed)?: if out.failedAt == nil { out.failedAt = "define"; out.streamInDoubt = true }
        case let other: Issue.record("define: \(String(describing: other))")
        }
        for b in 0..<7 {
            let batch = EventBatch(
                keys: (0..<eventsPerBatch).map { "u\($0)" }, timestamps: (0..<eventsPerBatch).map { Int64(b * 100 + $0) },
                values: (0..<eventsPerBatch).map { Double($0) })
            switch c.call(.appendEvents(stream: "s", batch: batch, idempotencyKey: UInt64(b + 1))) {
            case .eventsAccepted(let ack)?:
                #expect(out.failedAt == nil && !ack.duplicate, "batch \(b) acknowledged after the store failed at \(out.failedAt ?? "")")
                out.eventsAcknowledged += ack.accepted
            case .failure(.storageFailed)?:
                if out.failedAt == nil {
                    out.failedAt = "events \(b)"
                    out.eventsInDoubt = eventsPerBatch
                    // The retry of a batch whose commit failed is no duplicate to acknowledge.
                    let retry = c.call(.appendEvents(stream: "s", batch: batch, idempotencyKey: UInt64(b + 1)))
                    #expect(retry?.failure.map { if case .storageFailed = $0 { true } else { false } } == true, "retry: \(String(describing: retry))")
                }
            case .failure(.unknownStream)?:
                #expect(!out.streamDefined)
            case let other: Issue.record("events \(b): \(String(describing: other))")
            }
        }
        // A retry of an acknowledged batch is a duplicate only while the store works.
        if out.failedAt == nil, out.streamDefined {
            let retry = EventBatch(keys: ["u0"], timestamps: [0], values: [0])
            #expect(c.call(.appendEvents(stream: "s", batch: retry, idempotencyKey: 1))?.ack?.duplicate == true)
        }
        for i in 4..<7 {
            _ = mutate("put k\(i)", .put(key: bytes("k\(i)"), value: value(i), condition: .always, ttlMs: nil)) { $0["k\(i)"] = value(i) }
        }
        if out.failedAt != nil {
            #expect(reactor.storageFailureDetail?.contains("errno") == true)
            // Reads of durable keys go on; a read that could show the write in doubt (of its key,
            // or of a key sharing its write slot) is refused like it; a watch would wait for
            // changes that cannot come.
            for (key, v) in out.acknowledged {
                let got = c.call(.get(key: bytes(key)))
                let refused = got?.failure.map { if case .storageFailed = $0 { true } else { false } } == true
                #expect(got?.valueBytes == v || refused, "read of \(key) after the failure: \(String(describing: got))")
            }
            #expect(c.call(.watch(prefix: bytes("k")))?.failure.map { if case .storageFailed = $0 { true } else { false } } == true)
            #expect(mutate("after", .delete(key: bytes("k1"), condition: .always)) { $0["k1"] = nil } == false)
        } else {
            #expect(reactor.storageFailureDetail == nil)
        }
        reactor.stop()
        out.durableEnd = store.durableEnd
        out.logEnd = store.sizeBytes
        // A fault that fired while commands ran was answered storage_failed; a fault in the
        // close itself (its checkpoint) makes the close fail.
        let firedBeforeClose = io.fired
        #expect(firedBeforeClose == (out.failedAt != nil), "fault fired: \(firedBeforeClose), failed at \(out.failedAt ?? "-")")
        let closed = (try? store.close()) != nil
        #expect(closed == !io.fired)
        return out
    }

    struct Reopened {
        var state: State
        var streamExists: Bool
        var events: Int
    }

    static func reopen(_ dir: String) throws -> Reopened {
        let store = try LogStore.open(directory: dir)
        let reactor = try Reactor(store: store, clock: ManualClock())
        let c = TestClient(reactor: reactor)
        reactor.start()
        var state: State = [:]
        for e in c.call(.prefixScan(prefix: bytes("k"), after: nil, limit: 100))?.entries ?? [] { state[String(decoding: e.key, as: UTF8.self)] = e.value }
        for e in c.call(.prefixScan(prefix: bytes("b"), after: nil, limit: 100))?.entries ?? [] { state[String(decoding: e.key, as: UTF8.self)] = e.value }
        let stats = c.call(.streamStats(name: "s"))?.stats
        #expect(c.call(.put(key: bytes("after-reopen"), value: [1], condition: .always, ttlMs: nil))?.written != nil)
        reactor.stop()
        try store.close()
        return Reopened(state: state, streamExists: stats != nil, events: Int(stats?.eventsAccepted ?? 0))
    }

    @Test func everySyncAndWriteFailureStopsAcknowledgementsAndRecoversExactly() throws {
        let counting = FaultInjectingFileIO()
        let clean = try Self.drive(dir: TempDir().path, io: counting)
        #expect(clean.failedAt == nil && clean.eventsAcknowledged == 7 * Self.eventsPerBatch)
        let syncs = counting.count(.sync), writes = counting.count(.write)
        #expect(syncs > 15 && writes > 4, "syncs \(syncs), writes \(writes)")
        var faults: [FaultInjectingFileIO.Fault] = []
        for n in 1...syncs { faults.append(.init(.sync, occurrence: n, errno: EIO)) }
        for n in 1...writes { faults.append(.init(.write, occurrence: n, errno: EIO, tear: n % 2 == 0)) }
        for fault in faults {
            let dir = TempDir()
            let io = FaultInjectingFileIO(fault: fault)
            let out = try Self.drive(dir: dir.path, io: io)
            #expect(io.fired, "\(fault) never fired")
            let lost = dir.path + "-lost"
            defer { try? FileManager.default.removeItem(atPath: lost) }
            try FileManager.default.createDirectory(atPath: lost, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name != "LOCK" {
                try FileManager.default.copyItem(atPath: dir.path + "/" + name, toPath: lost + "/" + name)
            }
            if let durable = out.durableEnd, out.logEnd > durable {
                let fd = open(lost + "/data.lmnr", O_WRONLY)
                let zeros = [UInt8](repeating: 0, count: out.logEnd - durable)
                #expect(zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(durable)) } == zeros.count)
                close(fd)
            }
            let kept = try Self.reopen(dir.path)
            let keptAllowed = kept.state == out.acknowledged || kept.state == out.inDoubt
            #expect(keptAllowed, "\(fault) (failed at \(out.failedAt ?? "-")): kept \(kept.state.keys.sorted()), acknowledged \(out.acknowledged.keys.sorted())")
            #expect(kept.events == out.eventsAcknowledged || kept.events == out.eventsAcknowledged + out.eventsInDoubt,
                    "\(fault): \(kept.events) events, \(out.eventsAcknowledged) acknowledged")
            #expect(kept.streamExists == out.streamDefined || out.streamInDoubt)
            let exact = try Self.reopen(lost)
            let exactState = exact.state == out.acknowledged
            #expect(exactState, "\(fault) (failed at \(out.failedAt ?? "-")), unsynced bytes lost: \(exact.state.keys.sorted()), acknowledged \(out.acknowledged.keys.sorted())")
            #expect(exact.events == out.eventsAcknowledged, "\(fault), unsynced bytes lost: \(exact.events) events, \(out.eventsAcknowledged) acknowledged")
            #expect(exact.streamExists == out.streamDefined)
        }
        print("[fail-stop] reactor: \(faults.count) faults (\(syncs) syncs, \(writes) writes)")
    }

    /// Several writes in one reactor round (submitted together), one of them a large value whose
    /// `pwrite` fails: none of the round's writes is acknowledged, not even those before it, and
    /// none is lost that was.
    @Test func aWriteFailureInARoundFailsTheRoundsEarlierWrites() throws {
        let dir = TempDir()
        var options = LogStoreOptions()
        let io = FaultInjectingFileIO(fault: .init(.write, occurrence: 2, errno: EIO))
        options.fileIO = io
        let store = try LogStore.open(directory: dir.path, options: options)
        let reactor = try Reactor(store: store, clock: ManualClock())
        let c = TestClient(reactor: reactor)
        reactor.start()
        #expect(c.call(.put(key: bytes("first"), value: Self.value(0), condition: .always, ttlMs: nil))?.written != nil)
        // Let the reactor park, so that the three commands below reach it in one round.
        let parks = reactor.parkCount.load(ordering: .acquiring)
        for _ in 0..<1000 where reactor.parkCount.load(ordering: .acquiring) == parks { usleep(1000) }
        // One round: a small put, then the large put whose pwrite (write #2) fails, then another.
        let ops: [ReactorOperation] = [
            .put(key: bytes("small"), value: [1], condition: .always, ttlMs: nil),
            .put(key: bytes("large"), value: Self.value(2), condition: .always, ttlMs: nil),
            .put(key: bytes("later"), value: [3], condition: .always, ttlMs: nil),
        ]
        let results = c.callTogether(ops)
        #expect(io.fired)
        #expect(results.count == 3)
        for (i, r) in results.enumerated() {
            #expect(r?.failure.map { if case .storageFailed = $0 { true } else { false } } == true, "op \(i): \(String(describing: r))")
        }
        #expect(c.call(.get(key: bytes("first")))?.valueBytes == Self.value(0))
        reactor.stop()
        #expect(throws: StoreError.self) { try store.close() }
        let again = try LogStore.open(directory: dir.path)
        #expect(again.get(bytes("first"))?.value == Self.value(0))
        #expect(again.get(bytes("large")) == nil)
        try again.close()
    }
}

/// `--fsync interval`: the commit runs in the round (no syncer thread). The first commit syncs and
/// fails: the round's write is answered storageFailed, `storageFailureDetail` is set, later writes
/// are refused, reads answer.
@Suite struct ReactorIntervalFailStopTests {
    @Test func failedIntervalSyncStopsWrites() throws {
        let dir = TempDir()
        var options = LogStoreOptions()
        options.fsync = .interval
        // Syncs #1 and #2 belong to opening a new store (header, directory); #3 is the first commit's.
        options.fileIO = FaultInjectingFileIO(fault: .init(.sync, occurrence: 3, errno: EIO))
        let store = try LogStore.open(directory: dir.path, options: options)
        let reactor = try Reactor(store: store, clock: ManualClock())
        let producer = reactor.makeProducer {}
        var token: UInt64 = 0
        func run(_ op: ReactorOperation) -> ReactorResult? {
            token += 1
            #expect(producer.submit(ReactorCommand(token: token, op)))
            reactor.runRound()
            var result: ReactorResult?
            _ = producer.poll { c in if c.token == token { result = c.result } }
            return result
        }
        let first = run(.put(key: bytes("a"), value: [1], condition: .always, ttlMs: nil))
        guard case .failure(.storageFailed(let detail))? = first else {
            Issue.record("first put: \(String(describing: first))")
            return
        }
        #expect(detail.contains("fdatasync") && detail.contains("errno 5"))
        #expect(reactor.storageFailureDetail == detail)
        guard case .failure(.storageFailed)? = run(.put(key: bytes("b"), value: [2], condition: .always, ttlMs: nil)) else {
            Issue.record("a write after the failure was not refused")
            return
        }
        #expect(run(.get(key: bytes("b")))?.failure == .notFound)
        #expect(throws: StoreError.self) { try store.close() }
    }
}

/// Store errors as reactor errors: out of space is `insufficientStorage` (507), a storage failure
/// `storageFailed` (503), any other I/O error `store` (500).
@Suite struct ReactorStoreErrorTests {
    @Test func classification() {
        let p = "/d/data.lmnr"
        for e in [ENOSPC, EDQUOT, EFBIG] {
            guard case .insufficientStorage = ReactorError(StoreError.io(operation: "posix_fallocate", path: p, errno: e)) else {
                Issue.record("errno \(e) is not insufficientStorage")
                continue
            }
        }
        guard case .storageFailed(let detail) = ReactorError(StoreError.storageFailed(operation: "fdatasync", path: p, errno: ENOSPC)) else {
            Issue.record("storageFailed")
            return
        }
        #expect(detail.contains("fdatasync /d/data.lmnr failed: errno 28"))
        guard case .store = ReactorError(StoreError.io(operation: "mmap", path: p, errno: ENOMEM)) else {
            Issue.record("ENOMEM is not store")
            return
        }
        guard case .storageFailed = ReactorError(StoreError.storageFailed(operation: "rename", path: p, errno: EIO) as any Error) else {
            Issue.record("any Error")
            return
        }
    }
}

extension TestClient {
    /// Submits every operation before waking the reactor once (so one round applies them all);
    /// returns their results in order (nil: no answer within 10 s).
    func callTogether(_ ops: [ReactorOperation]) -> [ReactorResult?] {
        let first = nextToken
        for op in ops {
            precondition(producer.submit(ReactorCommand(token: nextToken, op)))
            nextToken += 1
        }
        producer.wakeReactorIfParked()
        var results = [UInt64: ReactorResult]()
        var waits = 0
        while results.count < ops.count && waits < 100 {
            producer.poll { c in if !c.result.isNotification { results[c.token] = c.result } }
            if results.count < ops.count, !doorbell.wait(timeoutMs: 100) { waits += 1 }
        }
        return (0..<ops.count).map { results[first + UInt64($0)] }
    }
}

extension ReactorResult {
    var valueBytes: [UInt8]? { if case .value(let v, _) = self { return v.bytes } else { return nil } }
}
