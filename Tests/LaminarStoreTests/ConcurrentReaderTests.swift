import Dispatch
import Foundation
import Synchronization
import Testing
@testable import LaminarStore

/// Reads of a store from other threads while its writer goes on (`ConcurrentReader`): they see
/// only values written for the key, whole, durable, never older than one seen before, through
/// table growths, deletes, batches and compactions; they answer what the writer would answer at
/// once and fall back for the rest.
@Suite struct ConcurrentReaderTests {
    /// `k<i>:<round>:` then filler bytes that all derive from (i, round): a torn value, or one
    /// of another key, does not parse back.
    static func value(_ i: Int, _ round: Int) -> [UInt8] {
        let head = Array("k\(i):\(round):".utf8)
        let fill = (0..<(24 + (i &* 7 &+ round) % 90)).map { UInt8(truncatingIfNeeded: i &* 31 &+ round &* 17 &+ $0) }
        return head + fill
    }

    /// Nil if `bytes` is a whole `value(i, round)` for this `i`; else what is wrong.
    static func check(_ bytes: [UInt8], key i: Int) -> String? {
        let text = String(decoding: bytes.prefix(32), as: UTF8.self)
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "k\(i)", let round = Int(parts[1]) else { return "key \(i): foreign value \(text)" }
        return bytes == value(i, round) ? nil : "key \(i): torn value of round \(round)"
    }

    static func key(_ i: Int) -> [UInt8] { Array("key-\(i)".utf8) }

    /// Runs `body` on `count` threads (not the cooperative pool: they spin); returns a join.
    static func spawn(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> () -> Void {
        let group = DispatchGroup()
        for t in 0..<count {
            group.enter()
            let thread = Thread {
                body(t)
                group.leave()
            }
            thread.start()
        }
        return { group.wait() }
    }

    @Test func readersSeeWholeDurableValuesThroughGrowthDeletesBatchesAndCompactions() throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionBytesMin = 256 << 10
        options.compactionGarbageRatio = 0.3
        options.compactionSliceBytes = 8192
        let store = try LogStore.open(directory: dir.path, options: options)
        let reader = store.concurrentReader
        let base = 2_000
        for i in 0..<base { try store.put(Self.key(i), Self.value(i, 0), condition: .always, expiresAtMs: nil) }
        try store.flush()

        let stop = Atomic<Bool>(false)
        let keysMax = Atomic<Int>(base)
        let problems = Mutex<[String]>([])
        let counts = Mutex<(found: Int, absent: Int, fallback: Int)>((0, 0, 0))
        let readers = 3
        let join = Self.spawn(readers) { t in
            guard let handle = reader.register() else {
                problems.withLock { $0.append("no reader slot") }
                return
            }
            var seen = [Int: Revision]()
            var found = 0, absent = 0, fallback = 0
            var rng = SystemRandomNumberGenerator()
            while !stop.load(ordering: .relaxed) {
                let i = Int.random(in: 0..<keysMax.load(ordering: .relaxed) + 50, using: &rng)
                let result = Self.key(i).withUnsafeBytes { reader.read($0, handle) }
                switch result {
                case .value(let v, let version):
                    found += 1
                    let durable = reader.durableRevision
                    var problem = Self.check(v.bytes, key: i)
                    if version > durable { problem = "key \(i): version \(version) above the durable \(durable)" }
                    if let last = seen[i], version < last { problem = "key \(i): version \(version) after \(last)" }
                    seen[i] = version
                    if let problem { problems.withLock { $0.append(problem) } }
                case .notFound:
                    absent += 1
                    // Only deleted keys (i % 7 == 0) and keys not written yet are ever absent.
                    if i < base && i % 7 != 0 { problems.withLock { $0.append("key \(i): absent") } }
                case .fallback:
                    fallback += 1
                }
            }
            counts.withLock { $0.found += found; $0.absent += absent; $0.fallback += fallback }
            _ = t
        }

        var next = base
        var compactions = 0
        for round in 1...12 {
            for i in 0..<base {
                if i % 5 == 0 {
                    // A batch: the key and a neighbour, one revision.
                    let j = (i + 1) % base
                    try store.apply([
                        .put(key: Self.key(i), value: Self.value(i, round), condition: .always, expiresAtMs: nil),
                        .put(key: Self.key(j), value: Self.value(j, round), condition: .always, expiresAtMs: nil),
                    ])
                } else {
                    try store.put(Self.key(i), Self.value(i, round), condition: .always, expiresAtMs: nil)
                }
                if i % 7 == 0 && round % 2 == 0 { try store.delete(Self.key(i), condition: .always) }
                if i % 251 == 0 { try store.flush() }
            }
            // New keys: the table grows (incrementally) while the readers probe it.
            for i in next..<(next + 1_500) { try store.put(Self.key(i), Self.value(i, round), condition: .always, expiresAtMs: nil) }
            next += 1_500
            try store.flush()
            keysMax.store(next, ordering: .relaxed)
            if round % 4 == 0 {
                try store.compact()
                compactions += 1
            }
        }
        stop.store(true, ordering: .relaxed)
        join()
        let all = problems.withLock { $0 }
        #expect(all.isEmpty, "\(all.prefix(10))")
        let c = counts.withLock { $0 }
        #expect(c.found > 1_000, "found \(c.found), absent \(c.absent), fell back \(c.fallback)")
        #expect(c.absent > 0)
        #expect(store.stats.compactions >= UInt64(compactions))
        store.checkInvariants()
        try store.close()
    }

    /// Keys that are never deleted, in a full table where their neighbours are deleted (their
    /// slots shifted back) and put again as fast as the writer can: a read that overlaps a shift
    /// must retry, never report one of them absent or read another key's value.
    @Test func keysMovedByDeletesOfTheirNeighboursAreNeverMissed() throws {
        var options = LogStoreOptions()
        options.fsync = .never
        let store = try LogStore.inMemory(options: options)
        let reader = store.concurrentReader
        let stable = 300
        let churn = 300
        func churnKey(_ j: Int) -> [UInt8] { Array("churn-\(j)".utf8) }
        for i in 0..<stable { try store.put(Self.key(i), Self.value(i, 0), condition: .always, expiresAtMs: nil) }
        for j in 0..<churn { try store.put(churnKey(j), [1], condition: .always, expiresAtMs: nil) }
        let stop = Atomic<Bool>(false)
        let problems = Mutex<[String]>([])
        let answered = Atomic<Int>(0)
        let join = Self.spawn(2) { _ in
            guard let handle = reader.register() else { return }
            var n = 0
            var i = 0
            while !stop.load(ordering: .relaxed) {
                i = (i &+ 7) % stable
                switch Self.key(i).withUnsafeBytes({ reader.read($0, handle) }) {
                case .value(let v, _):
                    n += 1
                    if let problem = Self.check(v.bytes, key: i) { problems.withLock { $0.append(problem) } }
                case .notFound: problems.withLock { $0.append("key \(i): absent") }
                case .fallback: break
                }
            }
            answered.add(n, ordering: .relaxed)
        }
        for round in 0..<200 {
            for j in 0..<churn { try store.delete(churnKey(j), condition: .always) }
            for j in 0..<churn { try store.put(churnKey(j), [UInt8(truncatingIfNeeded: round)], condition: .always, expiresAtMs: nil) }
        }
        stop.store(true, ordering: .relaxed)
        join()
        let all = problems.withLock { $0 }
        #expect(all.isEmpty, "\(all.count) problems: \(all.prefix(5))")
        #expect(answered.load(ordering: .relaxed) > 1_000)
    }

    /// A read whose probe overlapped a write section (here: a delete made, on the writer's
    /// thread, between the probe and its check) is retried and answers the state after it.
    @Test func aReadThatOverlappedAWriteIsRetried() throws {
        var options = LogStoreOptions()
        options.fsync = .never
        let store = try LogStore.inMemory(options: options)
        let reader = store.concurrentReader
        let handle = try #require(reader.register())
        try store.put(bytes("k"), bytes("v1"), condition: .always, expiresAtMs: nil)
        var probes = 0
        reader.afterProbe = {
            probes += 1
            if probes == 1 { _ = try? store.delete(bytes("k"), condition: .always) }
        }
        defer { reader.afterProbe = nil }
        let result = bytes("k").withUnsafeBytes { reader.read($0, handle) }
        #expect(probes == 2)
        guard case .notFound = result else { Issue.record("the read before the delete was kept: \(result)"); return }
        // A writer that never leaves its section: the read gives up.
        probes = 0
        reader.afterProbe = nil
        reader.beginWrite()
        let blocked = bytes("k").withUnsafeBytes { reader.read($0, handle) }
        reader.endWrite()
        guard case .fallback = blocked else { Issue.record("answered inside a write section: \(blocked)"); return }
    }

    @Test func aDurableKeyIsAnsweredWhileAnotherKeysSyncIsInFlight() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path, options: LogStoreOptions())
        let reader = store.concurrentReader
        let handle = try #require(reader.register())
        func read(_ k: String) -> ConcurrentRead { Array(k.utf8).withUnsafeBytes { reader.read($0, handle) } }
        try store.put(bytes("a"), bytes("A1"), condition: .always, expiresAtMs: nil)
        try store.put(bytes("gone"), bytes("G"), condition: .always, expiresAtMs: nil)
        try store.flush()
        let durableA = try #require(store.version(of: bytes("a")))

        try store.put(bytes("b"), bytes("B1"), condition: .always, expiresAtMs: nil)
        try store.delete(bytes("gone"), condition: .always)
        try store.put(bytes("ttl"), bytes("T"), condition: .always, expiresAtMs: Int64.max)
        let job = try #require(store.beginSync())
        // The sync is in flight: a is durable, b and the delete of `gone` are not.
        guard case .value(let a, let version) = read("a") else { Issue.record("a not answered: \(read("a"))"); return }
        #expect(a.bytes == bytes("A1") && version == durableA)
        guard case .fallback = read("b") else { Issue.record("b answered before its sync: \(read("b"))"); return }
        guard case .fallback = read("gone") else { Issue.record("gone's delete answered before its sync"); return }
        let (e, operation) = job.run(io: store.fileIO)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        guard case .value(let b, _) = read("b") else { Issue.record("b not answered after its sync"); return }
        #expect(b.bytes == bytes("B1"))
        guard case .notFound = read("gone") else { Issue.record("gone not absent after its sync"); return }
        guard case .notFound = read("never") else { Issue.record("a key never written not absent"); return }
        // A value with an expiry is the reactor's (it checks the clock and its timers).
        guard case .fallback = read("ttl") else { Issue.record("a key with a TTL answered"); return }
        // Overwritten but not durable: the writer's (it waits for the sync), not the old value.
        try store.put(bytes("a"), bytes("A2"), condition: .always, expiresAtMs: nil)
        guard case .fallback = read("a") else { Issue.record("a's old value answered"); return }
        try store.close()
        guard case .fallback = read("b") else { Issue.record("a closed store answered"); return }
    }

    @Test func withoutDurabilityEveryAppliedWriteIsAnswered() throws {
        var options = LogStoreOptions()
        options.fsync = .never
        let store = try LogStore.inMemory(options: options)
        let reader = store.concurrentReader
        #expect(!reader.requiresDurable)
        let handle = try #require(reader.register())
        try store.put(bytes("k"), bytes("v"), condition: .always, expiresAtMs: nil)
        guard case .value(let v, let version) = bytes("k").withUnsafeBytes({ reader.read($0, handle) }) else {
            Issue.record("not answered")
            return
        }
        #expect(v.bytes == bytes("v") && version == store.version(of: bytes("k")))
        try store.delete(bytes("k"), condition: .always)
        guard case .notFound = bytes("k").withUnsafeBytes({ reader.read($0, handle) }) else {
            Issue.record("a deleted key found")
            return
        }
    }

    @Test func aFailedStoreFallsBack() throws {
        let dir = TempDirectory()
        // The sync that fails comes after a few that succeed (open syncs too).
        let io = FaultInjectingFileIO(fault: .init(.sync, occurrence: 6, errno: EIO))
        var options = LogStoreOptions()
        options.fileIO = io
        let store = try LogStore.open(directory: dir.path, options: options)
        let reader = store.concurrentReader
        let handle = try #require(reader.register())
        var failed = false
        for round in 0..<10 where !failed {
            guard case .notFound = bytes("absent").withUnsafeBytes({ reader.read($0, handle) }) else {
                Issue.record("not answered before the failure")
                return
            }
            try store.put(bytes("k\(round)"), bytes("v"), condition: .always, expiresAtMs: nil)
            do { try store.flush() } catch { failed = true }
        }
        #expect(failed && io.fired)
        guard case .fallback = bytes("absent").withUnsafeBytes({ reader.read($0, handle) }) else {
            Issue.record("a failed store answered")
            return
        }
    }
}
