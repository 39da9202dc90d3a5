import CLinux
import Glibc
import LaminarStore
import Synchronization

/// The single writer: one thread that owns the state store, every stream's windows, watermarks
/// and timers, and all subscriptions. Producers hand it commands through their own SPSC rings.
///
/// A round: fire due timers; drain every submission ring (at most `commandsPerRoundMax` each,
/// and no more once its commands brought `eventsPerRoundMax` events), applying commands in
/// ring order; emit a bounded slice of the rows of closed windows
/// (`emitResultSlices`); if anything was written, ONE `store.commit()` (group commit:
/// one fsync at `FsyncPolicy.always`); only then push the round's completions and notifications
/// and call each producer's wake closure once if it got any. Completions wait for the commit so
/// an acknowledged write is durable; nothing is released early.
///
/// Pipelined commit (the reactor thread at `fsync always`): the fdatasync runs on a
/// `CommitSyncer` thread while the reactor goes on with the next rounds. A sync covers every
/// write made before it started; the completions and notifications produced before it started
/// are released when it returns, the later ones wait for the next sync (which starts as soon as
/// the previous one returned, covering all the rounds in between). A read of one key whose writes
/// are all durable (`StateStore.isDurable`) is answered in the round it is applied
/// (`completeRead`); every other read waits like a write, so nothing not yet durable is ever
/// answered.
///
/// When a round finds no work, the reactor parks: it sets `parked`, fences, re-checks every ring,
/// and only then waits on its eventfd (until the next timer). Producers fence after pushing and
/// ring only when they see `parked` (`ReactorProducer.wakeReactorIfParked`), so no wake-up is lost.
///
/// Fail-stop: once the store has failed (`StateStore.failure`: a failed sync, rename or write that
/// may have lost data), no mutation that a successful sync did not cover is acknowledged — its
/// completion becomes `storageFailed` — and every later write is refused by the store; watches
/// and follows end with `storageFailed`, new ones are refused. Reads of durable keys go on; at
/// `fsync always` a read of a key with a write no successful sync covered is answered
/// `storageFailed` like that write (scans and other reads go on from memory).
/// `storageFailureDetail` says why, for `/health`.
///
/// Lifecycle: `init` recovers streams from the store; `makeProducer` before `start`; `stop` joins
/// the thread, after which the caller owns the store again.
public final class Reactor: @unchecked Sendable {
    public let limits: ReactorLimits
    // Reactor thread (the caller's before `start` and after `stop`):
    let store: any StateStore
    let clock: any ReactorClock
    var timers = TimerHeap<TimerKind>()
    var streams: [String: StreamRuntime] = [:]
    /// Named sources (streams without one own an implicit source and are not listed here).
    var sources: [String: SourceRuntime] = [:]
    /// `emit: changes` streams with rows to flush before this round commits.
    var changelogPending: [StreamRuntime] = []
    var subscriptions: [UInt64: Subscription] = [:]
    var watchIds: [UInt64] = []
    var nextSubscriptionId: UInt64 = 1
    var nextStreamId: UInt64 = 1
    var ttlTimersPending = 0
    var mutatedThisRound = false
    /// Streams with result rows to emit or expire (`emitResultSlices`), each at most once.
    var resultWork: [StreamRuntime] = []
    /// Streams with a checkpoint being written in parts (`advanceCheckpoints`), each at most once.
    var checkpointJobs: [StreamRuntime] = []
    /// Scratch for `emitClosedRows`: the slice being built and its finished value (memory kept
    /// from round to round, so a close of a million rows allocates nothing per slice).
    var sliceBuilder = ResultSlice.Builder(firstSeq: 0)
    var sliceValue: [UInt8] = []
    /// Scratch for `emitClosedRows`: the operator's group of each row of the slice being built.
    var groupScratch: [UInt32] = []
    /// Retained results by stream name (`ResultSet`): they outlive a deleted stream, and a
    /// stream defined again under the name takes them over.
    var resultSets: [String: ResultSet] = [:]
    var progressTimerPending = false
    /// Pipelined commit: writes made since the sync in flight (or the last one) started.
    var unsyncedMutations = false
    var syncer: CommitSyncer?
    var currentProducer: ReactorProducer!
    let intervalFsync: Bool
    /// Set once, when the reactor first sees that the store has failed: the answer to every
    /// mutation not covered by an earlier successful sync, and to new watches and follows.
    var storageFailure: ReactorError?
    // Shared:
    let parking = ReactorParking()
    let stopRequested = Atomic<Bool>(false)
    /// Times the reactor parked (tests check the wake-up protocol was exercised).
    public let parkCount = Atomic<Int>(0)
    public let roundCount = Atomic<Int>(0)
    /// Round durations (`RoundTiming`); `roundNotes` what the current round did.
    public let roundTiming = RoundTiming()
    var roundNotes = RoundNotes()
    /// Events the current round ingested (its result rows keep pace with them: `emitResultSlices`).
    var eventsThisRound = 0
    /// Why the store failed (`StoreError.storageFailed`'s description), nil while it works.
    private let failureReport = Mutex<String?>(nil)
    public private(set) var producers: [ReactorProducer] = []
    private var thread: pthread_t = 0
    private var started = false

    enum TimerKind {
        case expire(key: [UInt8], atMs: Int64)
        case idle(stream: String, id: UInt64)
        case emitTick(stream: String, id: UInt64)
        case resultRetry(stream: String, id: UInt64)
        case fsync
        case progress
    }

    struct Subscription {
        enum Kind { case watch([UInt8]), follow(String) }
        var kind: Kind
        var producer: Int
        var token: UInt64
        var queued = 0
    }

    /// Takes ownership of `store` and recovers stream state from it (definitions, checkpoints,
    /// write-ahead entries) and the TTL timers of its keys.
    public init(store: any StateStore, clock: any ReactorClock = SystemClock(), limits: ReactorLimits = .default) throws {
        if let problem = limits.checkConsistency() { preconditionFailure("ReactorLimits: \(problem)") }
        self.store = store
        self.clock = clock
        self.limits = limits
        self.intervalFsync = store.fsyncPolicy == .interval
        try recover()
        if intervalFsync { timers.schedule(atMs: clock.nowMs() + limits.fsyncIntervalMs, .fsync) }
    }

    /// A producer handle; `wake` is called on the reactor thread once per round in which it got
    /// completions (the HTTP layer writes its eventfd). Only before `start`.
    public func makeProducer(wake: @escaping @Sendable () -> Void) -> ReactorProducer {
        precondition(!started, "producers are registered before start")
        let p = ReactorProducer(index: producers.count, limits: limits, parking: parking, wake: wake)
        producers.append(p)
        return p
    }

    public func start() {
        precondition(!started)
        started = true
        for p in producers { p.submissions.releaseOwnership(); p.completions.releaseOwnership() }
        store.releaseOwnership()  // the reactor thread takes it
        if store.fsyncPolicy == .always {
            syncer = CommitSyncer(wakeReactor: parking.doorbell, io: store.fileIO, sliceNs: limits.threadSliceNs, logAboveMs: limits.slowRoundLogMs)
        }
        guard let started = ServerThread.start(name: "laminar-reactor", sliceNs: limits.threadSliceNs, run) else {
            preconditionFailure("pthread_create failed for the reactor")
        }
        thread = started
    }

    /// Finishes the commands already submitted, ends subscriptions, commits, and joins the thread.
    public func stop() {
        guard started else { return }
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        parking.doorbell.ring()
        pthread_join(thread, nil)
        syncer?.stop()
        syncer = nil
        store.releaseOwnership()  // back to the caller (to close it)
        started = false
    }

    // MARK: - The loop

    func run() {
        let logAboveNs = UInt64(limits.slowRoundLogMs) * 1_000_000
        while true {
            let t0 = RoundTiming.nowNs(), cpu0 = logAboveNs > 0 ? RoundTiming.threadCPUNs() : 0
            roundNotes = RoundNotes()
            let worked = runRound()
            roundTiming.record(RoundTiming.nowNs() - t0, cpuNs: logAboveNs > 0 ? RoundTiming.threadCPUNs() - cpu0 : 0,
                               notes: roundNotes, logAboveNs: logAboveNs)
            if stopRequested.load(ordering: .acquiring) {
                if !worked { break }
                continue
            }
            if worked { continue }
            park()
        }
        if let syncer {
            syncer.waitUntilDone()
            settlePipelinedCommit(syncer, startNext: false)
        }
        for (id, sub) in subscriptions {
            enqueueNotification(subscription: 0, producer: sub.producer, ReactorCompletion(token: sub.token, .subscriptionEnded(.stopping)))
            subscriptions[id] = nil
        }
        do { try store.commit() } catch { failUnreleasedMutations(.failure(ReactorError(error))) }
        refuseUndurableMutationsIfFailed()
        releaseAll()
        deliver()
    }

    /// Why the store failed, or nil while it works (any thread: `/health`).
    public var storageFailureDetail: String? { failureReport.withLock { $0 } }

    private func park() {
        parking.parked.store(true, ordering: .sequentiallyConsistent)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if hasWork() || stopRequested.load(ordering: .acquiring) {
            // Unpark ourselves; if a producer beat us to it, its ring stays pending: one spare wake-up.
            _ = parking.parked.exchange(false, ordering: .acquiringAndReleasing)
            return
        }
        parkCount.add(1, ordering: .relaxed)
        var timeoutMs: Int32 = -1
        if let next = timers.nextDeadlineMs { timeoutMs = Int32(clamping: max(0, min(next - clock.nowMs(), 1000))) }
        parking.doorbell.wait(timeoutMs: timeoutMs)
        parking.parked.store(false, ordering: .releasing)
    }

    private func hasWork() -> Bool {
        if syncer?.isDone == true { return true }
        if !resultWork.isEmpty { return true }
        if checkpointJobs.contains(where: { $0.checkpointJob?.isEncoded ?? true }) { return true }
        for p in producers {
            if !p.submissions.isEmpty { return true }
            if p.pendingHead < p.releasedPending && notificationSpace(p) > 0 { return true }
        }
        return false
    }

    /// One round (also the whole loop of a reactor driven without a thread, in tests).
    @discardableResult
    public func runRound() -> Bool {
        roundCount.add(1, ordering: .relaxed)
        eventsThisRound = 0
        var worked = false
        let now = clock.nowMs()
        while let timer = timers.popDue(nowMs: now) {
            fire(timer, nowMs: now)
            roundNotes.timersFired += 1
            worked = true
        }
        let commandsMax = limits.commandsPerRoundMax
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: CommandPrefetch.hashSlots) { scratch in
            let hashes = scratch.baseAddress!
            hashes.initialize(repeating: 0, count: CommandPrefetch.hashSlots)
            let hasher = store.lookupHasher
            for p in producers {
                currentProducer = p
                let ring = p.submissions
                var popped = 0
                // A ring's commands stop for this round once they brought `eventsPerRoundMax`
                // events (the rest wait in order for the next round, which comes sooner), unless
                // an `emit: changes` stream took events in it: its rows are one per changed window
                // per round, so smaller rounds would multiply them (a hop of 30 windows per key
                // fell from 3.4 M to 1.4 M events/s).
                let eventsStop = eventsThisRound + limits.eventsPerRoundMax
                let n = ring.popWhile(max: commandsMax) { command in
                    CommandPrefetch.ahead(ring, max: commandsMax, popped: popped, store: store, hasher: hasher, hashes: hashes)
                    let keyHash = CommandPrefetch.keyHash(of: command, popped: popped, hasher: hasher, hashes: hashes)
                    popped += 1
                    execute(command, producer: p, keyHash: keyHash)
                    return eventsThisRound < eventsStop || !changelogPending.isEmpty
                }
                if n > 0 { worked = true; roundNotes.commands += n }
            }
        }
        flushChangelogs()
        // Rows of closing windows, a bounded slice per round, after the round's commands: no
        // command waits for a whole window's rows.
        if emitResultSlices() { worked = true }
        // A part of each checkpoint being stored in parts (its encoding runs on its own thread).
        if advanceCheckpoints() { worked = true }
        // Only for the slow-round log (`ReactorLimits.slowRoundLogMs`): two clock reads a round.
        let commitStart = limits.slowRoundLogMs > 0 ? RoundTiming.nowNs() : 0
        defer { if commitStart > 0 { roundNotes.commitNs = RoundTiming.nowNs() - commitStart } }
        if let syncer {
            if mutatedThisRound { unsyncedMutations = true }
            mutatedThisRound = false
            if settlePipelinedCommit(syncer, startNext: true) { worked = true }
        } else {
            if mutatedThisRound {
                mutatedThisRound = false
                do {
                    try store.commit()
                } catch {
                    // Not durable: no mutation of this round may be acknowledged as a success.
                    failUnreleasedMutations(.failure(ReactorError(error)))
                }
            }
            refuseUndurableMutationsIfFailed()
            releaseAll()
        }
        if deliver() { worked = true }
        for p in producers { p.readTrace?.roundEnded() }
        return worked
    }

    /// Pipelined commit: takes a sync that returned (releasing what it covers), then starts the
    /// next one if writes are pending, or releases everything if none are. Returns whether a sync
    /// was taken.
    @discardableResult
    private func settlePipelinedCommit(_ syncer: CommitSyncer, startNext: Bool) -> Bool {
        var took = false
        if syncer.isDone {
            took = true
            let (error, nanoseconds, operation) = syncer.take()
            do {
                try store.endSync(nanoseconds: nanoseconds, errno: error, operation: operation)
            } catch {
                // Not durable: neither what the sync covered nor anything after it is a success.
                failUnreleasedMutations(.failure(ReactorError(error)))
            }
            for p in producers {
                p.releasedOutbox = p.snapshotOutbox
                p.releasedPending = p.snapshotPending
            }
        }
        guard startNext, !syncer.inFlight else { return took }
        if unsyncedMutations || store.syncDue {
            unsyncedMutations = false
            if let job = store.beginSync() {
                for p in producers {
                    p.snapshotOutbox = p.outbox.count
                    p.snapshotPending = p.pending.count
                }
                syncer.start(job)
                return took
            }
        }
        // Nothing written since the last sync returned: all of it is durable, unless the store
        // failed since (then no sync will come).
        refuseUndurableMutationsIfFailed()
        releaseAll()
        return took
    }

    /// Turns every mutation completion not yet released into `result`: it is not durable.
    private func failUnreleasedMutations(_ result: ReactorResult) {
        for p in producers { p.outbox.failMutations(from: p.releasedOutbox, with: result) }
    }

    /// Before completions are released: if the store has failed, no mutation completion still
    /// waiting is a success (the first time: report it, end every watch and follow).
    private func refuseUndurableMutationsIfFailed() {
        if storageFailure == nil {
            guard let failure = store.failure else { return }
            let error = ReactorError(failure)
            storageFailure = error
            failureReport.withLock { $0 = failure.description }
            for id in Array(subscriptions.keys) { endSubscription(id, reason: error) }
        }
        failUnreleasedMutations(.failure(storageFailure!))
    }

    /// Everything produced so far may be delivered.
    private func releaseAll() {
        for p in producers {
            p.releasedOutbox = p.outbox.count
            p.releasedPending = p.pending.count
        }
    }

    /// Pushes the round's immediate completions and the released ones, then the notifications
    /// that fit; wakes producers.
    @discardableResult
    func deliver() -> Bool {
        var any = false
        for p in producers {
            p.readTrace?.delivering()
            // Cannot overflow the ring: in-flight commands never exceed its non-notification share.
            var pushed = p.immediate.count
            p.immediate.drain(pushed, into: p.completions)
            let released = p.releasedOutbox
            p.outbox.drain(released, into: p.completions)
            pushed += released
            p.snapshotOutbox = max(0, p.snapshotOutbox - released)
            p.releasedOutbox = 0
            var space = notificationSpace(p)
            while space > 0 && p.pendingHead < p.releasedPending {
                let (subId, c) = p.pending[p.pendingHead]
                p.pendingHead += 1
                if subId != 0 {
                    guard subscriptions[subId] != nil else { continue }  // ended: drop its backlog
                    subscriptions[subId]!.queued -= 1
                }
                precondition(p.completions.push(c), "completion ring overflow: notification accounting broken")
                p.notificationsPushed += 1
                pushed += 1
                space -= 1
            }
            if p.pendingHead == p.pending.count {
                p.pending.removeAll(keepingCapacity: true)
                p.releasedPending = 0
                p.snapshotPending = 0
                p.pendingHead = 0
            } else if p.pendingHead > 4096 && p.pendingHead * 2 > p.pending.count {
                p.pending.removeFirst(p.pendingHead)
                p.releasedPending -= p.pendingHead
                p.snapshotPending = max(0, p.snapshotPending - p.pendingHead)
                p.pendingHead = 0
            }
            if pushed > 0 {
                any = true
                p.wake()
            }
        }
        return any
    }

    @inline(__always)
    func notificationSpace(_ p: ReactorProducer) -> Int {
        limits.notificationSlotsPerProducer - (p.notificationsPushed - p.notificationsConsumed.load(ordering: .acquiring))
    }

    // MARK: - Completions and notifications

    @inline(__always)
    func complete(_ token: UInt64, _ result: consuming ReactorResult, producer p: ReactorProducer, mutation: Bool = false) {
        p.outbox.append(ReactorCompletion(token: token, consume result), mutation: mutation)
    }

    /// Completes a read of the single key `key`: at once (this round, whatever sync is pending)
    /// when every write to that key is durable — the answer is then one a crash cannot take
    /// back — else in order with the other completions, after the sync that covers them.
    /// `durable`: `StateStore.isDurable` of the key.
    @inline(__always)
    func completeRead(_ token: UInt64, _ result: consuming ReactorResult, durable: Bool, producer p: ReactorProducer) {
        p.readTrace?.applied(token: token, inRound: durable || syncer == nil)
        // `consume` at each use: a plain use of a consuming parameter copies it (a value's
        // mapping retained for the completion, then released with the parameter: ~40
        // instructions per get, callgrind).
        guard syncer != nil else { return complete(token, consume result, producer: p) }
        if durable {
            p.immediate.append(ReactorCompletion(token: token, consume result), mutation: false)
        } else {
            // It may show a write in doubt: if the sync fails, it is refused like that write.
            complete(token, consume result, producer: p, mutation: true)
        }
    }

    /// Queues a notification for subscription `subscription` (0: a final one, always queued).
    /// A subscription whose backlog is full is ended as a slow subscriber; the reactor never waits.
    func enqueueNotification(subscription: UInt64, producer: Int, _ c: ReactorCompletion) {
        let p = producers[producer]
        if subscription != 0 {
            guard var sub = subscriptions[subscription] else { return }
            if sub.queued >= limits.subscriptionBacklogMax {
                endSubscription(subscription, reason: .slowSubscriber)
                return
            }
            sub.queued += 1
            subscriptions[subscription] = sub
        }
        p.pending.append((subscription, c))
    }

    func endSubscription(_ id: UInt64, reason: ReactorError) {
        guard let sub = subscriptions.removeValue(forKey: id) else { return }
        if case .watch = sub.kind { watchIds.removeAll { $0 == id } }
        if case .follow(let name) = sub.kind { streams[name]?.followers.removeAll { $0 == id } }
        producers[sub.producer].subscriptionCount -= 1
        enqueueNotification(subscription: 0, producer: sub.producer, ReactorCompletion(token: sub.token, .subscriptionEnded(reason)))
    }

    /// Tells watchers of a prefix of `key` about a change (queued; delivered after the commit).
    @inline(__always)
    func notifyWatchers(key: [UInt8], value: [UInt8]?, revision: Revision) {
        guard !watchIds.isEmpty else { return }
        for id in watchIds {
            guard let sub = subscriptions[id], case .watch(let prefix) = sub.kind, key.starts(with: prefix) else { continue }
            enqueueNotification(subscription: id, producer: sub.producer,
                ReactorCompletion(token: sub.token, .change(KeyChange(key: key, value: value, revision: revision))))
        }
    }

    // MARK: - Timers

    func fire(_ timer: TimerKind, nowMs: Int64) {
        switch timer {
        case .expire(let key, let atMs):
            ttlTimersPending -= 1
            guard let entry = store.get(key), entry.expiresAtMs == atMs else { return }
            if let rev = try? store.delete(key, condition: .ifVersion(entry.version)) {
                mutatedThisRound = true
                notifyWatchers(key: key, value: nil, revision: rev)
            }
        case .idle(let name, let id):
            guard let stream = streams[name], stream.id == id else { return }
            stream.idleTimerPending = false
            idleCheck(stream, nowMs: nowMs)
        case .emitTick(let name, let id):
            guard let stream = streams[name], stream.id == id else { return }
            flushChangelog(stream)
            scheduleEmitTick(stream, nowMs: nowMs)
        case .resultRetry(let name, let id):
            guard let stream = streams[name], stream.id == id else { return }
            stream.retryTimerPending = false
            noteResultWork(stream)
        case .fsync:
            try? store.commit()
            timers.schedule(atMs: nowMs + limits.fsyncIntervalMs, .fsync)
        case .progress:
            sendProgress(nowMs: nowMs)
        }
    }

    func scheduleExpiry(key: [UInt8], atMs: Int64) {
        ttlTimersPending += 1
        timers.schedule(atMs: atMs, .expire(key: key, atMs: atMs))
    }
}
