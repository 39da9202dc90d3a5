import CLinux
import Glibc
import LaminarStore
import Synchronization

/// The reactor's second thread at `fsync always`: it runs the store's `SyncJob` (the bytes of
/// the write-behind tail not yet in the data file, one `pwrite`, then `fdatasync`, and after a
/// compaction's switch that file's renames and the directory fsync) while the
/// reactor goes on applying the next round's commands (pipelined group commit), so the reactor
/// itself never writes into the file nor waits for its pages. One sync at a time: `start` only
/// when `isIdle`; when the job returns, `isDone` turns true and the reactor's doorbell rings. The
/// reactor thread alone calls `start`, `take` and `stop`. The job goes through the store's
/// `FileIO` (so tests can make it fail); its outcome is handed back as is: deciding what a
/// failure means is the store's job (`LogStore.endSync`).
final class CommitSyncer: @unchecked Sendable {
    private let request = Doorbell()
    private let wakeReactor: Doorbell
    private let io: any FileIO
    /// The job to run next (set by `start`, taken by the thread).
    private let job = Mutex<SyncJob?>(nil)
    private let finished = Atomic<Bool>(false)
    private let resultErrno = Atomic<Int32>(0)
    /// The failed call (with `resultErrno` not 0): an index into `operations`.
    private let resultOperation = Atomic<Int>(0)
    /// The calls a job makes (`SyncJob.run`: the write, the sync, and a compaction's publication).
    private static let operations = ["fdatasync", "pwrite", "rename", "open", "fsync"]
    private let resultNanos = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t = 0
    /// Reactor thread: a sync was started and not yet taken.
    private(set) var inFlight = false
    /// Debug (`ReactorLimits.slowRoundLogMs`): a line on stderr for each sync longer than this,
    /// in nanoseconds; 0: never.
    private let logAboveNs: UInt64

    init(wakeReactor: Doorbell, io: any FileIO, sliceNs: UInt64 = 0, logAboveMs: Int = 0) {
        self.wakeReactor = wakeReactor
        self.io = io
        self.logAboveNs = UInt64(max(0, logAboveMs)) * 1_000_000
        guard let started = ServerThread.start(name: "laminar-syncer", sliceNs: sliceNs, run) else {
            preconditionFailure("pthread_create failed for the commit syncer")
        }
        thread = started
    }

    /// Starts `job` on the syncer thread.
    func start(_ job: SyncJob) {
        precondition(!inFlight)
        inFlight = true
        finished.store(false, ordering: .relaxed)
        self.job.withLock { $0 = job }
        request.ring()
    }

    /// Starts `fdatasync(fd)` on the syncer thread.
    func start(fd: Int32) { start(SyncJob(fd: fd)) }

    /// Whether the sync in flight has returned (then `take` it).
    var isDone: Bool { inFlight && finished.load(ordering: .acquiring) }

    /// The finished job's outcome: `errno` (0 on success), its duration and the call that
    /// failed (`pwrite`, `fdatasync`, or a step of a compaction's publication).
    func take() -> (errno: Int32, nanoseconds: UInt64, operation: String) {
        precondition(isDone)
        inFlight = false
        let operation = Self.operations[resultOperation.load(ordering: .relaxed)]
        return (resultErrno.load(ordering: .relaxed), resultNanos.load(ordering: .relaxed), operation)
    }

    /// Waits for the sync in flight, if any, to return.
    func waitUntilDone() {
        while inFlight && !finished.load(ordering: .acquiring) { _ = wakeReactor.wait(timeoutMs: 10) }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        request.ring()
        pthread_join(thread, nil)
    }

    private func run() {
        while true {
            request.wait(timeoutMs: -1)
            if stopping.load(ordering: .acquiring) { return }
            guard let job = self.job.withLock({ j -> SyncJob? in defer { j = nil }; return j }) else { continue }
            var start = timespec(), end = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            let (error, operation) = job.run(io: io)
            clock_gettime(CLOCK_MONOTONIC, &end)
            let nanos = UInt64(max(0, (end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec)))
            resultErrno.store(error, ordering: .relaxed)
            resultOperation.store(error == 0 ? 0 : Self.operations.firstIndex(of: operation) ?? 0, ordering: .relaxed)
            resultNanos.store(nanos, ordering: .relaxed)
            if logAboveNs > 0 && nanos > logAboveNs {
                let endUs = UInt64(end.tv_sec) * 1_000_000 + UInt64(end.tv_nsec) / 1000
                RoundTiming.log("laminar syncer: sync of \(nanos / 1000) us ending at \(RoundTiming.seconds(us: endUs)) s")
            }
            finished.store(true, ordering: .releasing)
            wakeReactor.ring()
        }
    }
}
