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
        // Writes after the thread's last round: each commit copies one slice (4 KiB) of them,
        // then the swap.
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
        #expect(steps > 2, "the rest went in several slices")
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
