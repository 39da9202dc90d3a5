import Foundation
import Glibc
import Testing
@testable import LaminarStore

/// Fail-stop under injected file faults (`FaultInjectingFileIO`): every write, sync, allocation
/// and rename a scenario makes is failed in turn (EIO, ENOSPC, torn writes). For each: nothing
/// crashes; a full disk that changed nothing stays recoverable and anything else stops writes for
/// good; after a reopen with the real file layer every acknowledged write is there and nothing
/// else but the one write in doubt — exactly the acknowledged state when the bytes that were
/// never synced are lost (zeroed) or garbled.
@Suite struct FailStopTests {
    /// One step of a scenario; every mutation is followed by a commit (`--fsync always`).
    enum Step: Sendable {
        case put(String, bytes: Int)
        case delete(String)
        /// `nil` bytes: delete the key.
        case batch([(String, Int?)])
        case checkpoint
        case compact
        /// Starts a background compaction and waits for its thread (the tail is then copied a
        /// record per commit, and swapped in once caught up).
        case startCompaction

        var isMutation: Bool {
            switch self {
            case .put, .delete, .batch: return true
            case .checkpoint, .compact, .startCompaction: return false
            }
        }
    }

    /// A named list of steps (the test's argument).
    struct Scenario: Sendable, CustomTestStringConvertible {
        var name: String
        var steps: [Step]
        var testDescription: String { name }
    }

    /// Values a page or larger go through `pwrite` (a write the fault layer sees); smaller ones
    /// are stored through the mapping.
    static let scenarios: [Scenario] = [
        Scenario(name: "single puts", steps: [
            .put("a", bytes: 10), .put("big1", bytes: 5000), .put("b", bytes: 30), .put("big2", bytes: 9000),
            .put("a", bytes: 12), .delete("b"), .put("big1", bytes: 4096),
        ]),
        Scenario(name: "batches", steps: [
            .batch([("x", 10), ("y", 5000), ("z", 20)]),
            .batch([("x", nil), ("w", 7000), ("y", 8)]),
            .put("solo", bytes: 16),
            .batch([("z", 6000), ("v", 1), ("w", nil)]),
        ]),
        Scenario(name: "checkpoints", steps: [
            .put("k1", bytes: 10), .put("k2", bytes: 5000), .checkpoint,
            .put("k3", bytes: 40), .delete("k1"), .checkpoint, .put("k4", bytes: 4500),
        ]),
        Scenario(name: "compaction", steps: [
            .put("c1", bytes: 5000), .put("c2", bytes: 10), .put("c1", bytes: 6000), .put("c2", bytes: 20),
            .delete("c2"), .compact, .put("c3", bytes: 4200), .put("c1", bytes: 8), .compact, .put("c4", bytes: 9),
        ]),
        // Writes while a compaction is in progress: the tail copied into the new file a record
        // per commit (the swap at the commit that catches up), then a tail left for `compact()`.
        Scenario(name: "background compaction", steps: [
            .put("b1", bytes: 5000), .put("b2", bytes: 10), .put("b1", bytes: 20), .delete("b2"), .startCompaction,
            .put("b5", bytes: 6000), .batch([("b3", 4500), ("b1", nil), ("b4", 30)]), .startCompaction,
            .batch([("b6", 8), ("b5", nil), ("b7", 5000)]), .put("b3", bytes: 12), .delete("b4"), .compact, .put("b8", bytes: 9),
        ]),
    ]

    typealias State = [String: [UInt8]]

    /// What one run saw.
    struct Run {
        var acknowledged: State = [:]
        /// The state if the one write in doubt (applied, its commit failed) reached the disk.
        var inDoubt: State?
        /// Where the bytes that were never durable start (nil if the store never opened): the
        /// store's durable length when the run ended, or before the mutation whose commit the
        /// fault hit, whichever is less (a later sync that "succeeds" proves nothing).
        var durableEnd: Int?
        var logEnd = 0
        var failStop = false
        /// The fault hit a compaction's publication after its new file was fsynced (a rename, the
        /// directory fsync): the write in doubt is in that file, durable, and the file may or may
        /// not be `data.lmnr` after a crash.
        var publicationInDoubt = false
    }

    static func value(_ key: String, _ bytes: Int, step: Int) -> [UInt8] {
        let seed = key.utf8.reduce(step &* 131) { $0 &* 31 &+ Int($1) }
        return (0..<bytes).map { UInt8(truncatingIfNeeded: seed &+ $0 &* 7) }
    }

    static func applying(_ step: Step, at index: Int, to state: State) -> State {
        var s = state
        switch step {
        case .put(let k, let n): s[k] = value(k, n, step: index)
        case .delete(let k): s[k] = nil
        case .batch(let ops):
            for (k, n) in ops { s[k] = n.map { value(k, $0, step: index) } }
        case .checkpoint, .compact, .startCompaction: break
        }
        return s
    }

    /// Whether `fault`, which hit the file at `path`, must stop the store. `switched`: the store
    /// ran on a compaction's new file not yet published (`data.lmnr.compact`, its data file).
    static func expectsFailStop(_ fault: FaultInjectingFileIO.Fault, path: String?, switched: Bool) -> Bool {
        guard fault.errno == ENOSPC else { return true }  // EIO: always
        switch fault.operation {
        case .sync, .rename, .truncate: return true
        case .allocate: return false
        case .write:
            // Into the data file (the scenarios run at fsync always): a sync job's write of the
            // write-behind tail, whose records are in the index already; into a temporary file
            // (hint, compaction output) a failed write is discarded, unless torn.
            guard let path else { return fault.tear }
            return path.hasSuffix("/" + LogStore.dataFileName) || (switched && path.hasSuffix("/" + LogStore.compactFileName))
        }
    }

    static func options(_ io: any FileIO) -> LogStoreOptions {
        var o = LogStoreOptions()
        o.fileIO = io
        o.fsync = .always
        o.compactionSliceBytes = 1  // a record per step
        return o
    }

    /// Runs `scenario` on `dir` through `io`; checks the classification and the refusals.
    static func run(_ scenario: Scenario, dir: String, io: FaultInjectingFileIO, fault: FaultInjectingFileIO.Fault?) -> Run {
        var run = Run()
        let store: LogStore
        do {
            store = try LogStore.open(directory: dir, options: options(io))
        } catch {
            #expect(fault != nil && io.fired, "open failed without a fault: \(error)")
            if let fault { checkClassification(error, fault: fault, path: io.firedPath) }
            return run
        }
        var lossFrom = Int.max
        for (i, step) in scenario.steps.enumerated() {
            let firedBefore = io.fired
            let durableBefore = store.durableEnd
            let switched = store.publicationDue != nil
            var thrown: (any Error)?
            var applied = false
            do {
                switch step {
                case .put(let k, let n): try store.put(Array(k.utf8), value(k, n, step: i))
                case .delete(let k): try store.delete(Array(k.utf8))
                case .batch(let ops):
                    try store.apply(ops.map { k, n in
                        n.map { StoreMutation.put(key: Array(k.utf8), value: value(k, $0, step: i)) } ?? .delete(key: Array(k.utf8))
                    })
                case .checkpoint: try store.checkpoint()
                case .compact: try store.compact()
                case .startCompaction:
                    // (A fault that refused an earlier write left the last one unfinished.)
                    if !store.compactionInProgress { store.startCompaction() }
                    try store.waitForCompactionThread()
                }
                applied = true
                if step.isMutation { try store.commit() }
            } catch {
                thrown = error
            }
            if applied && step.isMutation {
                if thrown == nil {
                    run.acknowledged = applying(step, at: i, to: run.acknowledged)
                } else {
                    run.inDoubt = applying(step, at: i, to: run.acknowledged)
                }
            }
            if let fault, io.fired && !firedBefore {
                let failStop = expectsFailStop(fault, path: io.firedPath, switched: switched)
                if switched && (fault.operation == .rename || (fault.operation == .sync && io.firedPath == dir)) {
                    run.publicationInDoubt = true
                }
                // A mutation acknowledged although the fault stopped the store was durable first
                // (the fault hit the compaction step after its commit's sync).
                if step.isMutation && failStop && thrown != nil { lossFrom = durableBefore }
                #expect((store.failure != nil) == failStop, "\(fault) during \(step) on \(io.firedPath ?? "?"): failure \(String(describing: store.failure)), thrown \(String(describing: thrown))")
                if let thrown { checkClassification(thrown, fault: fault, path: io.firedPath, switched: switched) }
            } else if !io.fired || firedBefore {
                #expect(thrown == nil || store.failure != nil, "\(step) failed without a fault: \(String(describing: thrown))")
            }
            if store.failure != nil {
                run.failStop = true
                checkRefusals(store, acknowledged: run.acknowledged, inDoubt: run.inDoubt)
                break
            }
        }
        run.durableEnd = min(lossFrom, store.durableEnd)
        run.logEnd = store.sizeBytes
        store.checkInvariants()
        store.abandon()
        return run
    }

    static func checkClassification(_ error: any Error, fault: FaultInjectingFileIO.Fault, path: String?, switched: Bool = false) {
        guard let e = error as? StoreError else {
            Issue.record("not a StoreError: \(error)")
            return
        }
        switch e {
        case .storageFailed(_, _, let errno):
            #expect(expectsFailStop(fault, path: path, switched: switched), "\(fault): \(e)")
            #expect(errno == fault.errno)
        case .io(_, _, let errno):
            #expect(!expectsFailStop(fault, path: path, switched: switched), "\(fault): \(e)")
            #expect(errno == ENOSPC)
        default:
            Issue.record("\(fault): unexpected \(e)")
        }
    }

    /// A failed store refuses every write with its failure and still answers reads.
    static func checkRefusals(_ store: LogStore, acknowledged: State, inDoubt: State?) {
        guard let failure = store.failure else { return }
        guard case .storageFailed = failure else {
            Issue.record("failure is not storageFailed: \(failure)")
            return
        }
        #expect(throws: failure) { try store.put(Array("after".utf8), [1]) }
        #expect(throws: failure) { try store.delete(Array("a".utf8)) }
        #expect(throws: failure) { try store.apply([.put(key: Array("after".utf8), value: [2])]) }
        #expect(throws: failure) { try store.commit() }
        #expect(throws: failure) { try store.flush() }
        #expect(throws: failure) { try store.checkpoint() }
        #expect(throws: failure) { try store.compact() }
        #expect(store.beginSync() == nil)
        #expect(store.get(Array("after".utf8)) == nil)
        for (k, v) in acknowledged {
            let got = store.get(Array(k.utf8))?.value
            #expect(got == v || inDoubt.map { got == $0[k] } == true, "read of \(k) after the failure")
        }
    }

    /// The live state of the store in `dir`, reopened with the real file layer; checks it still
    /// takes writes.
    static func reopen(_ dir: String) throws -> State {
        let store = try LogStore.open(directory: dir)
        store.checkInvariants()
        var state: State = [:]
        for e in store.snapshot().entries { state[String(decoding: e.key, as: UTF8.self)] = e.value }
        try store.put(Array("zz-after-reopen".utf8), [9])
        try store.commit()
        try store.close()
        return state
    }

    /// Overwrites `data.lmnr` from `from` to `to` with `byte` (unsynced pages lost or garbled).
    static func overwrite(_ dir: String, from: Int, to: Int, byte: UInt8) {
        guard to > from else { return }
        let fd = open(dir + "/" + LogStore.dataFileName, O_WRONLY)
        precondition(fd >= 0)
        defer { close(fd) }
        let bytes = [UInt8](repeating: byte, count: to - from)
        #expect(bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress, $0.count, off_t(from)) } == bytes.count)
    }

    static func copyDirectory(_ from: String, _ to: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: from) where name != "LOCK" {
            try fm.copyItem(atPath: from + "/" + name, toPath: to + "/" + name)
        }
    }

    /// Every fault the scenario's calls allow: each call of each kind, with EIO and ENOSPC, and
    /// writes torn as well.
    static func faults(for scenario: Scenario) -> [FaultInjectingFileIO.Fault] {
        let dir = TempDirectory()
        let counting = FaultInjectingFileIO()
        let clean = run(scenario, dir: dir.path, io: counting, fault: nil)
        #expect(!clean.failStop)
        var faults: [FaultInjectingFileIO.Fault] = []
        for operation in FaultInjectingFileIO.Operation.allCases {
            for n in stride(from: 1, through: counting.count(operation), by: 1) {
                for errno in [EIO, ENOSPC] {
                    faults.append(.init(operation, occurrence: n, errno: errno))
                    if operation == .write { faults.append(.init(operation, occurrence: n, errno: errno, tear: true)) }
                }
            }
        }
        return faults
    }

    @Test(arguments: scenarios)
    func everyFailurePointLosesNothingAcknowledged(_ scenario: Scenario) throws {
        let faults = Self.faults(for: scenario)
        #expect(faults.contains { $0.operation == .sync } && faults.contains { $0.operation == .allocate }
            && faults.contains { $0.operation == .write })
        var failStops = 0
        for fault in faults {
            let dir = TempDirectory()
            let io = FaultInjectingFileIO(fault: fault)
            let run = Self.run(scenario, dir: dir.path, io: io, fault: fault)
            #expect(io.fired, "\(fault) never fired")
            if run.failStop { failStops += 1 }
            // Three disks after the crash: the unsynced bytes kept, lost (zeros) or garbled.
            let lost = dir.path + "-lost", garbled = dir.path + "-garbled"
            defer {
                try? FileManager.default.removeItem(atPath: lost)
                try? FileManager.default.removeItem(atPath: garbled)
            }
            try Self.copyDirectory(dir.path, lost)
            try Self.copyDirectory(dir.path, garbled)
            if let durable = run.durableEnd {
                Self.overwrite(lost, from: durable, to: run.logEnd, byte: 0)
                Self.overwrite(garbled, from: durable, to: run.logEnd, byte: 0xA5)
            }
            let kept = try Self.reopen(dir.path)
            let keptIsAllowed = kept == run.acknowledged || kept == run.inDoubt
            #expect(keptIsAllowed, "\(scenario.name), \(fault), unsynced bytes kept: \(kept.keys.sorted()) vs acknowledged \(run.acknowledged.keys.sorted())")
            for (name, path) in [("lost", lost), ("garbled", garbled)] {
                let state = try Self.reopen(path)
                let exact = state == run.acknowledged || (run.publicationInDoubt && state == run.inDoubt)
                #expect(exact, "\(scenario.name), \(fault), unsynced bytes \(name): \(state.keys.sorted()) vs acknowledged \(run.acknowledged.keys.sorted())")
            }
        }
        #expect(failStops > 0)
        print("[fail-stop] \(scenario.name): \(faults.count) faults injected, \(failStops) stopped the store")
    }

    /// The pipelined commit's second half: a failed fdatasync is fail-stop, and a later sync is
    /// never started (the old code marked the store dirty and synced again).
    @Test func failedPipelinedSyncStopsWritesForGood() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path, options: Self.options(SystemFileIO.shared))
        try store.put(Array("a".utf8), [1])
        let job = try #require(store.beginSync())
        #expect(job.writeBytes > 0, "at fsync always the job writes the tail")
        let (e, operation) = job.run(io: SystemFileIO.shared)
        try store.endSync(nanoseconds: 1, errno: e, operation: operation)
        let acknowledgedEnd = store.durableEnd
        try store.put(Array("b".utf8), [2])
        try #require(store.beginSync() != nil)
        #expect(throws: StoreError.storageFailed(operation: "fdatasync", path: dir.path + "/data.lmnr", errno: EIO)) {
            try store.endSync(nanoseconds: 1, errno: EIO)
        }
        #expect(store.durableEnd == acknowledgedEnd)
        #expect(store.beginSync() == nil)
        let failure = try #require(store.failure)
        #expect(failure.description.contains("fdatasync") && failure.description.contains("errno 5 (Input/output error)"))
        #expect(throws: failure) { try store.put(Array("c".utf8), [3]) }
        #expect(store.get(Array("a".utf8))?.value == [1])
        #expect(throws: failure) { try store.close() }
        // close released the lock although it failed: the store reopens.
        let again = try LogStore.open(directory: dir.path)
        #expect(again.get(Array("a".utf8))?.value == [1])
        try again.close()
    }
}
