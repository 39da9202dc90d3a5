import Foundation
import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

/// A store that refuses result slice writes (`_results/…`) as a full disk does while `full` is
/// set, and forwards everything else to the store it wraps.
final class SliceRefusingStore: StateStore {
    let base: any StateStore
    var full = false
    private(set) var refused = 0

    init(_ base: any StateStore) { self.base = base }

    private func check(_ key: [UInt8]) throws {
        guard full, key.starts(with: Array("_results/".utf8)) else { return }
        refused += 1
        throw StoreError.io(operation: "pwrite", path: "test", errno: ENOSPC)
    }

    var limits: StoreLimits { base.limits }
    var revision: Revision { base.revision }
    var count: Int { base.count }
    var sizeBytes: Int { base.sizeBytes }
    func get(_ key: [UInt8]) -> StoreEntry? { base.get(key) }
    func withValue<R>(_ key: [UInt8], _ body: (UnsafeRawBufferPointer, Revision) throws -> R) rethrows -> R? { try base.withValue(key, body) }
    func storedValue(_ key: [UInt8]) -> (value: StoredValue, version: Revision)? { base.storedValue(key) }
    func read(_ key: [UInt8], hash: UInt64, durability: Bool) -> (found: (value: StoredValue, version: Revision)?, durable: Bool) {
        base.read(key, hash: hash, durability: durability)
    }
    func version(of key: [UInt8]) -> Revision? { base.version(of: key) }
    func contains(_ key: [UInt8]) -> Bool { base.contains(key) }
    func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?) throws -> Revision {
        try check(key)
        return try base.put(key, value, condition: condition, expiresAtMs: expiresAtMs)
    }
    func put(_ key: [UInt8], _ value: [UInt8], condition: WriteCondition, expiresAtMs: Int64?, hash: UInt64) throws -> Revision {
        try check(key)
        return try base.put(key, value, condition: condition, expiresAtMs: expiresAtMs, hash: hash)
    }
    func delete(_ key: [UInt8], condition: WriteCondition) throws -> Revision? { try base.delete(key, condition: condition) }
    func apply(_ batch: [StoreMutation]) throws -> Revision { try base.apply(batch) }
    func visitPrefix(_ prefix: [UInt8], after: [UInt8]?, limit: Int, _ body: (StoreEntryView) -> Void) -> Int {
        base.visitPrefix(prefix, after: after, limit: limit, body)
    }
    func visitRange(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int, _ body: (StoreEntryView) -> Void) -> Int {
        base.visitRange(start: start, end: end, after: after, limit: limit, body)
    }
    func snapshot() -> StoreSnapshot { base.snapshot() }
    func restore(_ snapshot: StoreSnapshot) throws { try base.restore(snapshot) }
    var fsyncPolicy: FsyncPolicy { base.fsyncPolicy }
    var fileIO: any FileIO { base.fileIO }
    var failure: StoreError? { base.failure }
    func isDurable(_ key: UnsafeRawBufferPointer) -> Bool { base.isDurable(key) }
    var lookupHasher: KeyHasher { base.lookupHasher }
    func prefetchLookup(slotOf: UInt64?, recordOf: UInt64?) { base.prefetchLookup(slotOf: slotOf, recordOf: recordOf) }
    var garbageRatio: Double { base.garbageRatio }
    var stats: LogStoreStats { base.stats }
    func commit() throws { try base.commit() }
    func beginSync() -> SyncJob? { base.beginSync() }
    var syncDue: Bool { base.syncDue }
    func endSync(nanoseconds: UInt64, errno: Int32, operation: String) throws { try base.endSync(nanoseconds: nanoseconds, errno: errno, operation: operation) }
    func flush() throws { try base.flush() }
    func releaseOwnership() { base.releaseOwnership() }
}

/// A result slice the store refuses (full disk) is kept and written once space returns: every
/// row of a closed window is stored once under consecutive seqs, followers get each row once and
/// only once it is stored, no checkpoint covers a row not stored, and a restart loses nothing.
@Suite struct ResultRefusalTests {
    typealias Stepper = ResultDeliveryTests.Stepper

    var limits: ReactorLimits {
        var l = ReactorLimits()
        l.resultRowsPerRoundMax = 100
        l.walEntriesPerCheckpointMax = 1
        l.checkpointGroupsPerEntry = 1 << 20  // the entries alone set the interval, whatever the keys
        l.followProgressIntervalMs = 0
        l.resultRetryIntervalMs = 100
        return l
    }

    /// Rows built straight into slices (no follower at the close) or sent to a follower: the
    /// close waits while the store refuses, then every row is written once space returns, each
    /// reaches the follower once, and all survive a restart.
    @Test(arguments: [false, true]) func aClosedWindowWaitsForSpaceAndLosesNoRow(follow: Bool) throws {
        let dir = TempDir()
        var followToken: UInt64 = 0
        do {
            let base = try LogStore.open(directory: dir.path)
            let store = SliceRefusingStore(base)
            let clock = ManualClock()
            let s = try Stepper(store, limits, clock: clock)
            #expect(s.call(.defineStream(StreamDefinition(name: "w", windowSizeMs: 1000)))?.isOK == true)
            if follow {
                followToken = s.token
                guard case .subscribed? = s.call(.follow(stream: "w")) else { Issue.record("follow"); return }
            }
            #expect(s.call(.appendEvents(stream: "w", batch: ResultDeliveryTests.keysBatch(1000, ts: 10), idempotencyKey: nil))?.ack?.accepted == 1000)
            store.full = true
            // Closes window 0 (1000 rows): its first slice is refused, nothing more goes out.
            #expect(s.call(.appendEvents(stream: "w", batch: ResultDeliveryTests.keysBatch(1, ts: 1500), idempotencyKey: nil))?.ack?.accepted == 1)
            for _ in 0..<5 { s.round() }
            var st = try #require(s.stats("w"))
            #expect(st.resultSeq == 0 && st.rowsPending == 900 && st.resultWritesRefused == 1, "\(st)")
            #expect(st.walEntries == 0, "the checkpoint at the close holds the window's rows, none stored")
            #expect(s.resumeAll("w").isEmpty, "a resume sees no row that is not stored")
            #expect(s.followedSeqs(token: followToken).isEmpty, "followers get no row that is not stored")
            if !follow {
                // A follower that comes while the slice (built with no rows as values) waits gets
                // its rows read back from the slice once it is stored.
                followToken = s.token
                guard case .subscribed? = s.call(.follow(stream: "w")) else { Issue.record("follow"); return }
            }
            // The retry timer: refused again.
            clock.advance(byMs: 100)
            s.round()
            #expect(store.refused == 2 && s.stats("w")?.resultWritesRefused == 2)
            store.full = false
            clock.advance(byMs: 100)
            for _ in 0..<20 { s.round() }
            st = try #require(s.stats("w"))
            #expect(st.resultSeq == 1000 && st.rowsPending == 0 && st.walEntries == 0, "\(st)")
            let rows = s.resumeAll("w")
            #expect(rows.map(\.0) == Array(1...1000), "consecutive seqs, each once")
            #expect(Set(rows.map(\.1)).count == 1000)
            #expect(s.followedSeqs(token: followToken) == Array(1...1000), "followers got each row once, in order")
            try base.close()
        }
        let store = try LogStore.open(directory: dir.path)
        let s = try Stepper(store, limits, clock: ManualClock())
        let st = try #require(s.stats("w"))
        #expect(st.resultSeq == 1000 && st.rowsPending == 0, "\(st)")
        let rows = s.resumeAll("w")
        #expect(rows.map(\.0) == Array(1...1000) && Set(rows.map(\.1)).count == 1000)
        try store.close()
    }

    /// A window whose rows all left the operator into a refused slice: the checkpoint taken at
    /// the close holds them, and none after it passes them, so a crash before space returns
    /// loses nothing.
    @Test func aCrashWhileASliceWaitsLosesNothing() throws {
        let dir = TempDir()
        do {
            let base = try LogStore.open(directory: dir.path)
            let store = SliceRefusingStore(base)
            let s = try Stepper(store, limits, clock: ManualClock())
            #expect(s.call(.defineStream(StreamDefinition(name: "c", windowSizeMs: 1000)))?.isOK == true)
            _ = s.call(.appendEvents(stream: "c", batch: ResultDeliveryTests.keysBatch(50, ts: 10), idempotencyKey: nil))
            store.full = true
            _ = s.call(.appendEvents(stream: "c", batch: ResultDeliveryTests.keysBatch(1, ts: 1500), idempotencyKey: nil))
            let st = try #require(s.stats("c"))
            #expect(st.rowsPending == 0 && st.resultSeq == 0 && st.walEntries == 0, "the checkpoint holds the window's rows: \(st)")
            try base.close()  // the process dies with the slice in memory
        }
        let store = try LogStore.open(directory: dir.path)
        let s = try Stepper(store, limits, clock: ManualClock())
        let st = try #require(s.stats("c"))
        #expect(st.resultSeq == 50, "replay emitted the window again: \(st)")
        let rows = s.resumeAll("c")
        #expect(rows.map(\.0) == Array(1...50) && Set(rows.map(\.1)).count == 50)
        try store.close()
    }
}

extension ResultDeliveryTests.Stepper {
    /// Every retained row of `stream` by resumes from the start: (seq, key).
    func resumeAll(_ stream: String) -> [(UInt64, String)] {
        var out: [(UInt64, String)] = []
        var seq: UInt64 = 0
        while case .retainedResults(let rows, let last, let live)? = call(.resumeResults(stream: stream, after: seq, keyPrefix: [])) {
            for row in rows { out.append((row.seq, Self.key(row.json))) }
            seq = last
            if live { break }
        }
        return out
    }

    static func key(_ json: [UInt8]) -> String {
        let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any]
        return object?["key"] as? String ?? "?"
    }

    func followedSeqs(token: UInt64) -> [UInt64] {
        notes.filter { $0.token == token }.flatMap { n -> [UInt64] in
            if case .windowsClosed(let rows) = n.result { rows.map(\.seq) } else { [] }
        }
    }
}
