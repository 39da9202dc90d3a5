import Foundation
import Glibc
import Synchronization
import Testing
@testable import LaminarStore

/// The data file's write-behind tail (`MappedRegion.startWriteBehind`, at `fsync always`):
/// appends land in anonymous memory and reach the file only through a sync job (`SyncJob`, run by
/// the reactor's commit syncer, or by `commit`), so the writer never touches a file page; what a
/// commit acknowledged is in the file (at every policy: a crash of the process alone loses none
/// of it), values stay readable across the remapping of the tail, and a reopened store finds
/// everything, after a compaction too.
@Suite struct WriteBehindTests {
    /// The data file as another process would see it now (the page cache): a copy of the
    /// directory, opened as a store.
    static func reopenCopy(_ dir: String) throws -> LogStore {
        let copy = dir + "-copy"
        try? FileManager.default.removeItem(atPath: copy)
        try FailStopTests.copyDirectory(dir, copy)
        return try LogStore.open(directory: copy)
    }

    @Test(arguments: [FsyncPolicy.never, .interval, .always])
    func committedWritesAreInTheFile(policy: FsyncPolicy) throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.fsync = policy
        options.fsyncIntervalMs = 60_000
        let store = try LogStore.open(directory: dir.path, options: options)
        for i in 0..<300 { try store.put(bytes("k\(i)"), [UInt8](repeating: UInt8(i & 0xFF), count: 100)) }
        try store.commit()
        // Not committed: it may or may not be in the file yet; the committed ones must be.
        try store.put(bytes("uncommitted"), [1])
        let copy = try Self.reopenCopy(dir.path)
        defer { try? FileManager.default.removeItem(atPath: dir.path + "-copy") }
        copy.checkInvariants()
        for i in 0..<300 {
            #expect(copy.get(bytes("k\(i)"))?.value == [UInt8](repeating: UInt8(i & 0xFF), count: 100), "k\(i)")
        }
        try copy.close()
        try store.close()
    }

    /// The pipelined commit: the owner writes nothing to the file, however big the records; a
    /// job writes exactly what was written before `beginSync`, the records appended while it is
    /// out stay for the next job, and a compaction's new file gets a tail of its own.
    @Test func onlySyncJobsWriteTheDataFile() throws {
        let dir = TempDirectory()
        let io = FaultInjectingFileIO()
        var options = LogStoreOptions()
        options.fileIO = io
        let store = try LogStore.open(directory: dir.path, options: options)
        #expect(store.region.tailStart != Int.max)
        let big = [UInt8](repeating: 7, count: 3 * MappedRegion.pageBytes)
        try store.put(bytes("small"), [1])
        try store.put(bytes("big"), big)
        #expect(io.count(.write) == 0, "appends are not written by the owner")
        let job = try #require(store.beginSync())
        let pending = store.sizeBytes - store.durableEnd
        #expect(job.writeBytes == pending)
        try store.put(bytes("during"), [2])  // after the job's bytes, while it is out
        var (e, operation) = job.run(io: io)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        #expect(io.count(.write) == 1)
        do {
            let copy = try Self.reopenCopy(dir.path)
            defer { try? FileManager.default.removeItem(atPath: dir.path + "-copy") }
            #expect(copy.get(bytes("big"))?.value == big && copy.get(bytes("small"))?.value == [1])
            #expect(copy.get(bytes("during")) == nil, "not yet written: the next job's")
            try copy.close()
        }
        let next = try #require(store.beginSync())
        #expect(next.writeBytes == store.sizeBytes - store.durableEnd && next.writeBytes > 0)
        (e, operation) = next.run(io: io)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        // A compaction swaps in a new file; appends to it go to its own tail.
        for i in 0..<50 { try store.put(bytes("small"), [UInt8(i)]) }
        try store.compact()
        #expect(store.stats.compactions == 1 && store.region.tailStart != Int.max)
        let writes = io.count(.write)
        try store.put(bytes("after-compaction"), [3])
        #expect(io.count(.write) == writes)
        let last = try #require(store.beginSync())
        (e, operation) = last.run(io: io)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        store.abandon()  // as a crash after the sync
        let reopened = try LogStore.open(directory: dir.path)
        reopened.checkInvariants()
        #expect(reopened.get(bytes("after-compaction"))?.value == [3] && reopened.get(bytes("during"))?.value == [2])
        #expect(reopened.get(bytes("small"))?.value == [49] && reopened.get(bytes("big"))?.value == big)
        try reopened.close()
    }

    static func value(_ i: Int) -> [UInt8] { (0..<200).map { UInt8(truncatingIfNeeded: $0 &+ i) } }

    final class Shared: @unchecked Sendable {
        let held: [(Int, StoredValue)]
        let done = Atomic<Bool>(false)
        let mismatches = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        init(_ held: [(Int, StoredValue)]) { self.held = held }
    }

    /// More than `tailRemapBytes` of records, committed in small rounds: values read from the
    /// tail read the same while (on another thread, as the I/O thread sends them) and after the
    /// file is mapped back over it.
    @Test func valuesSurviveTheRemapping() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)  // fsync always: a write-behind tail
        var held: [(Int, StoredValue)] = []
        for i in 0..<200 {
            try store.put(bytes("key-\(i)"), Self.value(i))
            try store.commit()
            held.append((i, store.storedValue(bytes("key-\(i)"))!.value))
        }
        let shared = Shared(held)
        let reader = Thread {
            while !shared.done.load(ordering: .acquiring) {
                for (i, v) in shared.held where v.bytes != Self.value(i) { shared.mismatches.add(1, ordering: .relaxed) }
                shared.reads.add(1, ordering: .relaxed)
            }
        }
        reader.start()
        let total = 3 * MappedRegion.tailRemapBytes / 220
        for i in 200..<total {
            try store.put(bytes("key-\(i)"), Self.value(i))
            if i % 97 == 0 { try store.commit() }
        }
        try store.commit()
        while shared.reads.load(ordering: .relaxed) < 2 { usleep(100) }
        shared.done.store(true, ordering: .releasing)
        while !reader.isFinished { usleep(1000) }
        #expect(store.region.tailStart >= 2 * MappedRegion.tailRemapBytes, "the file was mapped back over the tail")
        #expect(shared.reads.load(ordering: .relaxed) > 0 && shared.mismatches.load(ordering: .relaxed) == 0)
        for (i, v) in held { #expect(v.bytes == Self.value(i)) }
        for i in stride(from: 0, to: total, by: 13) { #expect(store.get(bytes("key-\(i)"))?.value == Self.value(i)) }
        store.checkInvariants()
        try store.close()
        let reopened = try LogStore.open(directory: dir.path)
        reopened.checkInvariants()
        #expect(reopened.count == total)
        for i in stride(from: 0, to: total, by: 7) { #expect(reopened.get(bytes("key-\(i)"))?.value == Self.value(i)) }
        try reopened.close()
    }

    /// Reopening a store whose log ends inside a page: the tail starts with that page's bytes,
    /// appends after them reach the file, nothing before them changes.
    @Test func appendsAfterReopenInsideAPage() throws {
        let dir = TempDirectory()
        for round in 0..<4 {
            let store = try LogStore.open(directory: dir.path)
            #expect(store.region.tailStart != Int.max)
            #expect(store.sizeBytes % MappedRegion.pageBytes != 0 || round == 0)
            for i in 0..<37 { try store.put(bytes("r\(round)-\(i)"), [UInt8(round), UInt8(i)]) }
            try store.commit()
            store.abandon()  // no close, no hint: as a crash after the commit
        }
        let store = try LogStore.open(directory: dir.path)
        store.checkInvariants()
        #expect(store.count == 4 * 37)
        for round in 0..<4 {
            for i in 0..<37 { #expect(store.get(bytes("r\(round)-\(i)"))?.value == [UInt8(round), UInt8(i)]) }
        }
        try store.close()
    }
}
