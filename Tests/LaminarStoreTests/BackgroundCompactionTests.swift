import Dispatch
import Foundation
import Testing
@testable import LaminarStore

/// Compaction off the writer's path: the writer goes on while the compaction thread copies, the
/// tail is copied in slices, and the result holds exactly the writes made before and during it.
@Suite struct BackgroundCompactionTests {
    /// Holds the compaction thread at a step until the test lets it go.
    final class Gate: Sendable {
        let step: CompactionStep
        let reached = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)

        init(at step: CompactionStep) { self.step = step }

        func observe(_ s: CompactionStep) {
            guard s == step else { return }
            reached.signal()
            release.wait()
        }
    }

    static func value(_ i: Int, _ round: Int) -> [UInt8] {
        Array("v\(i)-\(round)-".utf8) + [UInt8](repeating: UInt8(truncatingIfNeeded: i &+ round), count: 60 + i % 50)
    }

    @Test func theWriterIsNotStoppedWhileTheCompactionThreadCopies() throws {
        let dir = TempDirectory()
        let gate = Gate(at: .copiedLive)
        var options = LogStoreOptions()
        options.compactionBytesMin = 1 << 20
        options.compactionGarbageRatio = 0.4
        options.compactionSliceBytes = 4096
        options.compactionObserver = { gate.observe($0) }
        let store = try LogStore.open(directory: dir.path, options: options)
        let keys = 20_000
        var model: [String: [UInt8]] = [:]
        for round in 0..<2 {
            for i in 0..<keys {
                try store.put(bytes("k\(i)"), Self.value(i, round))
                model["k\(i)"] = Self.value(i, round)
            }
        }
        try store.commit()  // garbage is half the file: this starts the compaction
        #expect(store.stats.compactionsStarted == 1)
        let snapshotEnd = store.sizeBytes
        gate.reached.wait()
        // The compaction thread holds at its first step; the writer works meanwhile.
        for i in 0..<200 {
            #expect(store.compactionThreadRunning)
            let key = "k\(i * 7)"
            #expect(store.get(bytes(key))?.value == model[key])
            if i % 5 == 4 {
                try store.delete(bytes(key))
                model[key] = nil
            } else {
                try store.put(bytes(key), Self.value(i, 9))
                model[key] = Self.value(i, 9)
            }
            try store.put(bytes("new\(i)"), [UInt8(i & 0xFF)])
            model["new\(i)"] = [UInt8(i & 0xFF)]
            try store.commit()
        }
        #expect(store.stats.compactions == 0 && store.stats.compactionTailBytes == 0)
        let writtenMeanwhile = store.sizeBytes - snapshotEnd
        gate.release.signal()
        // The thread catches up with what was written meanwhile (the owner published it).
        try store.waitForCompactionThread()
        #expect(store.stats.compactionTailBytes == UInt64(writtenMeanwhile))
        // Writes after the thread's last round: the next commit copies twice what was appended
        // since the output was taken (more than one 4 KiB slice), then the swap.
        for i in 0..<100 {
            try store.put(bytes("late\(i)"), Self.value(i, 3))
            model["late\(i)"] = Self.value(i, 3)
        }
        let tailBefore = store.stats.compactionTailBytes
        var steps = 0
        while store.compactionInProgress {
            try store.apply([.put(key: bytes("step\(steps)"), value: [1]), .delete(key: bytes("step\(steps)"))])
            try store.commit()
            steps += 1
            #expect(steps < 1000, "the tail copy never caught up")
            if steps >= 1000 { return }
        }
        #expect(steps >= 1)
        #expect(store.stats.compactionTailBytes - tailBefore > 3 * 4096)
        #expect(store.stats.compactions == 1)
        store.checkInvariants()
        #expect(store.count == model.count)
        for (k, v) in model { #expect(store.get(bytes(k))?.value == v, "\(k)") }
        // A crash now: reopening uses the compacted file's hint and replays only the tail.
        let revision = store.revision
        store.abandon()
        let reopened = try LogStore.open(directory: dir.path)
        #expect(reopened.stats.recoveryUsedHint)
        #expect(reopened.stats.recoveryRecordsReplayed > 0 && reopened.stats.recoveryRecordsReplayed < 2000)
        #expect(reopened.revision == revision)
        reopened.checkInvariants()
        #expect(reopened.count == model.count)
        for (k, v) in model { #expect(reopened.get(bytes(k))?.value == v, "\(k) after reopen") }
        try reopened.close()
    }

    /// A writer that appends more than a slice between two steps: each step copies at least twice
    /// what was appended since the previous one, so the tail still catches up and the swap comes
    /// (with a fixed slice the rest grew by every step and the compaction never ended).
    @Test func theTailCatchesUpWhenEveryCommitAppendsMoreThanASlice() throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionBytesMin = 1 << 20
        options.compactionGarbageRatio = 0.4
        options.compactionSliceBytes = 4096
        let store = try LogStore.open(directory: dir.path, options: options)
        for round in 0..<2 {
            for i in 0..<20_000 { try store.put(bytes("k\(i)"), Self.value(i, round)) }
        }
        try store.commit()  // starts the compaction
        try store.waitForCompactionThread()
        var steps = 0
        var model: [String: [UInt8]] = [:]
        while store.compactionInProgress {
            for j in 0..<6 {  // ~12 KiB a step, more than the 4 KiB slice (a commit may step twice)
                let value = [UInt8](repeating: UInt8(truncatingIfNeeded: steps), count: 2000)
                try store.put(bytes("big\(steps)-\(j)"), value)
                model["big\(steps)-\(j)"] = value
            }
            try store.commit()
            steps += 1
            #expect(steps < 200, "the tail copy never caught up")
            if steps >= 200 { return }
        }
        #expect(store.stats.compactions == 1)
        store.checkInvariants()
        for (k, v) in model { #expect(store.get(bytes(k))?.value == v, "\(k)") }
        try store.close()
    }

    /// Random writes, batches and deletes while a compaction runs, in both kinds of store: every
    /// read agrees with a model at every step, before and after the swap and after a reopen.
    @Test(arguments: StoreKind.allCases)
    func writesDuringACompactionAllLand(_ kind: StoreKind) throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionSliceBytes = 300
        options.compactionBytesMin = .max  // started by hand
        let store = try makeStore(kind, directory: dir.path, options: options)
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = SystemRandomNumberGenerator()
        func randomWrite(_ n: Int) throws {
            let key = bytes("k\(Int.random(in: 0..<300, using: &rng))")
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<2:
                try store.delete(key)
                model[key] = nil
            case 2:
                let other = bytes("k\(Int.random(in: 0..<300, using: &rng))")
                try store.apply([.put(key: key, value: [UInt8(n & 0xFF)]), .delete(key: other)])
                model[key] = [UInt8(n & 0xFF)]
                model[other] = nil
            default:
                let value = [UInt8](repeating: UInt8(n & 0xFF), count: Int.random(in: 0..<100, using: &rng))
                try store.put(key, value)
                model[key] = value
            }
            try store.commit()
        }
        for n in 0..<2000 { try randomWrite(n) }
        for compaction in 1...3 {
            store.startCompaction()
            for n in 0..<50 { try randomWrite(n) }  // while the thread copies (or after)
            try store.waitForCompactionThread()
            var n = 0
            while store.compactionInProgress {
                try randomWrite(n)
                n += 1
                #expect(n < 10_000)
                if n >= 10_000 { return }
                let key = bytes("k\(n % 300)")
                #expect(store.get(key)?.value == model[key])
            }
            #expect(store.stats.compactions == UInt64(compaction))
            store.checkInvariants()
            #expect(store.count == model.count)
            for (k, v) in model { #expect(store.get(k)?.value == v) }
        }
        guard kind == .persistent else { return }
        try store.close()
        let reopened = try LogStore.open(directory: dir.path)
        reopened.checkInvariants()
        #expect(reopened.count == model.count)
        for (k, v) in model { #expect(reopened.get(k)?.value == v) }
        try reopened.close()
    }

    /// The thread's catch-up rounds leave out records that a later record of the same key in the
    /// round overwrites (most of the tail under repeated writes to few keys), but keep a batch's
    /// records, and deletes: the new file is a fraction of the tail, and the store, its revision
    /// and a reopened store (no hint for the tail: the records are replayed) hold exactly the
    /// writes made.
    @Test func theCatchUpLeavesOutOverwrittenRecordsButKeepsBatches() throws {
        let dir = TempDirectory()
        let gate = Gate(at: .copiedLive)
        var options = LogStoreOptions()
        options.compactionBytesMin = .max  // started by hand
        options.compactionSliceBytes = 4096
        options.compactionObserver = { gate.observe($0) }
        let store = try LogStore.open(directory: dir.path, options: options)
        var model: [String: [UInt8]] = [:]
        func put(_ key: String, _ value: [UInt8]) throws {
            try store.put(bytes(key), value)
            model[key] = value
        }
        for i in 0..<100 { try put("k\(i)", Self.value(i, 0)) }
        try store.commit()
        store.startCompaction()
        gate.reached.wait()
        let snapshotEnd = store.sizeBytes
        // While the thread holds: 20 keys written 50 times each, a batch whose first key is then
        // overwritten on its own (its record stays: batches are kept whole), a key deleted after
        // its last put, a key deleted then put again.
        for round in 1...50 {
            for i in 0..<20 { try put("k\(i)", Self.value(i, round)) }
            try store.commit()
        }
        try store.apply([.put(key: bytes("k30"), value: [1]), .put(key: bytes("k31"), value: [2])])
        model["k30"] = [1]
        model["k31"] = [2]
        try put("k30", [3])
        try put("k40", [4])
        try store.delete(bytes("k40"))
        model["k40"] = nil
        try store.delete(bytes("k41"))
        try put("k41", [5])
        try store.commit()
        let writtenMeanwhile = store.sizeBytes - snapshotEnd
        let revision = store.revision
        gate.release.signal()
        try store.waitForCompactionThread()
        #expect(store.stats.compactionTailBytes == UInt64(writtenMeanwhile), "every tail byte was handled")
        try store.compact()  // the rest, and the swap
        #expect(store.stats.compactions == 1)
        // The live records (100, of ~110 bytes) and the latest write of each key, not 50 rounds.
        #expect(store.sizeBytes < 100 * 200 + writtenMeanwhile / 10, "\(store.sizeBytes) bytes after \(writtenMeanwhile) written")
        #expect(store.revision == revision)
        store.checkInvariants()
        #expect(store.count == model.count)
        for (k, v) in model { #expect(store.get(bytes(k))?.value == v, "\(k)") }
        store.abandon()
        let reopened = try LogStore.open(directory: dir.path)
        #expect(reopened.revision == revision)
        reopened.checkInvariants()
        #expect(reopened.count == model.count)
        for (k, v) in model { #expect(reopened.get(bytes(k))?.value == v, "\(k) after reopen") }
        try reopened.close()
    }

    /// At `fsync always` the swap is a switch of memory on the owner (no rename, no sync, no
    /// directory fsync there); the next sync job publishes the file. Until it has, a crash keeps
    /// the old file with every acknowledged write, a write made after the switch is not durable
    /// (a read of it waits) while reads of other keys are, and the job runs even with no write.
    @Test func theSwitchIsPublishedByTheNextSyncJob() throws {
        let dir = TempDirectory()
        let io = FaultInjectingFileIO()
        var options = LogStoreOptions()
        options.fileIO = io
        options.compactionBytesMin = .max  // started by hand
        options.compactionSliceBytes = 4096
        let store = try LogStore.open(directory: dir.path, options: options)
        func sync() throws {
            let job = try #require(store.beginSync())
            let (e, operation) = job.run(io: io)
            try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        }
        for round in 0..<2 {
            for i in 0..<2000 { try store.put(bytes("k\(i)"), Self.value(i, round)) }
            try sync()
        }
        store.startCompaction()
        try store.waitForCompactionThread()
        var steps = 0
        while store.publicationDue == nil {
            try store.put(bytes("during\(steps)"), [UInt8(steps & 0xFF)])
            let renames = io.count(.rename), syncs = io.count(.sync)
            try sync()  // its endSync takes the next slice, or switches
            steps += 1
            if store.publicationDue != nil {
                #expect(io.count(.rename) == renames && io.count(.sync) == syncs + 1, "the switch renamed or synced on the owner")
            }
            #expect(steps < 1000)
            if steps >= 1000 { return }
        }
        #expect(store.stats.compactions == 0 && store.compactionInProgress && store.syncDue)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/" + LogStore.compactFileName))
        try store.put(bytes("after-switch"), [42])
        #expect(store.read(bytes("after-switch"), durability: true).durable == false)
        #expect(store.read(bytes("k7"), durability: true).durable, "a key acknowledged before the switch stays durable")
        // A crash now: the old file, with everything acknowledged, nothing written since.
        do {
            let copy = try WriteBehindTests.reopenCopy(dir.path)
            defer { try? FileManager.default.removeItem(atPath: dir.path + "-copy") }
            #expect(copy.get(bytes("k7"))?.value == Self.value(7, 1))
            #expect(copy.get(bytes("during\(steps - 1)"))?.value == [UInt8((steps - 1) & 0xFF)])
            #expect(copy.get(bytes("after-switch")) == nil)
            try copy.close()
        }
        let renames = io.count(.rename)
        try sync()  // publishes: two renames (data, hint) and the directory fsync
        #expect(io.count(.rename) == renames + 2)
        #expect(store.stats.compactions == 1 && !store.compactionInProgress && !store.syncDue)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + LogStore.compactFileName))
        #expect(store.read(bytes("after-switch"), durability: true).durable)
        store.checkInvariants()
        store.abandon()  // a crash after the publication
        let reopened = try LogStore.open(directory: dir.path)
        #expect(reopened.stats.recoveryUsedHint)
        #expect(reopened.get(bytes("after-switch"))?.value == [42] && reopened.get(bytes("k1999"))?.value == Self.value(1999, 1))
        #expect(reopened.count == 2000 + steps + 1)
        try reopened.close()
    }

    /// Without a write after the switch, the publication still comes: `syncDue` asks for a job.
    @Test func aSwitchWithoutWritesIsPublishedToo() throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionBytesMin = .max
        let store = try LogStore.open(directory: dir.path, options: options)
        for round in 0..<2 { for i in 0..<500 { try store.put(bytes("k\(i)"), Self.value(i, round)) } }
        let first = try #require(store.beginSync())
        var (e, operation) = first.run(io: SystemFileIO.shared)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        store.startCompaction()
        try store.waitForCompactionThread()
        try store.put(bytes("last"), [1])
        let job = try #require(store.beginSync())
        (e, operation) = job.run(io: SystemFileIO.shared)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        // That endSync copied the last record and switched; nothing is written after it, yet a
        // job is due, and it publishes.
        #expect(store.syncDue && store.stats.compactions == 0)
        let publish = try #require(store.beginSync())
        (e, operation) = publish.run(io: SystemFileIO.shared)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        #expect(store.stats.compactions == 1 && !store.syncDue && store.beginSync() == nil)
        try store.close()
    }

    /// Descriptors of this process open on `path` after it was unlinked.
    static func deletedDescriptors(of path: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)) == path + " (deleted)"
        }.count
    }

    /// After a compaction the old file (unlinked by the rename) is retired off the writer's
    /// thread: not while a value read from it is still held (its bytes stay readable), and once
    /// the last such value is gone, cut and closed.
    @Test func theOldFileIsRetiredOnceNoValuePinsIt() throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionBytesMin = .max
        let store = try LogStore.open(directory: dir.path, options: options)
        for round in 0..<3 { for i in 0..<3000 { try store.put(bytes("k\(i)"), Self.value(i, round)) } }
        try store.commit()
        var pinned: StoredValue? = try #require(store.storedValue(bytes("k42"))).value
        let slots = store.table.capacity
        try store.compact()
        #expect(store.stats.compactions == 1)
        #expect(store.table.capacity >= slots, "the new hash table would grow (rehash on the writer) sooner than the old one")
        let path = dir.path + "/" + LogStore.dataFileName
        usleep(200_000)
        #expect(Self.deletedDescriptors(of: path) == 1, "the old file is gone while a value pins it")
        #expect(pinned?.bytes == Self.value(42, 2))
        pinned = nil
        var waited = 0
        while Self.deletedDescriptors(of: path) > 0 && waited < 10_000 {
            usleep(10_000)
            waited += 10
        }
        #expect(Self.deletedDescriptors(of: path) == 0, "the old file was not closed")
        #expect(store.get(bytes("k42"))?.value == Self.value(42, 2))
        try store.close()
    }

    /// Closing (or a restore) while the compaction thread runs stops it and removes its files.
    @Test func closingDuringACompactionRemovesItsFiles() throws {
        let dir = TempDirectory()
        let gate = Gate(at: .copiedLive)
        var options = LogStoreOptions()
        options.compactionBytesMin = .max
        options.compactionObserver = { gate.observe($0) }
        let store = try LogStore.open(directory: dir.path, options: options)
        for i in 0..<1000 { try store.put(bytes("k\(i)"), Self.value(i, 0)) }
        try store.commit()
        store.startCompaction()
        gate.reached.wait()
        #expect(FileManager.default.fileExists(atPath: dir.path + "/" + LogStore.compactFileName))
        gate.release.signal()
        try store.close()
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + LogStore.compactFileName))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + LogStore.compactHintFileName))
        let reopened = try LogStore.open(directory: dir.path)
        #expect(reopened.count == 1000)
        try reopened.close()
    }
}
