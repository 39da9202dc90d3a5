import Synchronization

/// A producer's side of the reactor (one per I/O thread): a submission ring, a completion ring,
/// and the wake closure the reactor calls once per round after pushing completions to it.
///
/// Thread ownership: `submit`, `wakeReactorIfParked` and `poll` belong to the producer's thread;
/// the fields marked "reactor" belong to the reactor thread. Accounting: `submit` refuses when
/// `commandsInFlightMax` commands await completion, so normal completions always fit in the
/// completion ring; notifications use the `notificationSlotsPerProducer` slots left over.
public final class ReactorProducer: @unchecked Sendable {
    public let index: Int
    let submissions: SPSCRing<ReactorCommand>
    let completions: SPSCRing<ReactorCompletion>
    let wake: @Sendable () -> Void
    let inFlightMax: Int
    unowned let parking: ReactorParking
    /// Producer thread: commands submitted whose completion has not been polled.
    public private(set) var inFlight = 0
    /// Written by the producer thread (it alone), read by the reactor.
    let notificationsConsumed = Atomic<Int>(0)

    // Reactor thread:
    /// Completions that need no sync (reads of durable keys), delivered at the end of the round.
    var immediate: CompletionQueue
    /// Completions in command order, delivered once the commit that covers them returned; those
    /// marked as mutations (and reads that may show one not yet durable) a failed commit turns
    /// into `storageFailed`.
    var outbox: CompletionQueue
    var pending: [(subscription: UInt64, completion: ReactorCompletion)] = []
    var pendingHead = 0
    /// `outbox[..<releasedOutbox]` and `pending[..<releasedPending]` may be delivered: what the
    /// last completed commit covers (everything, without a pipelined commit).
    var releasedOutbox = 0
    var releasedPending = 0
    /// The same bounds at the start of the commit in flight (pipelined commit).
    var snapshotOutbox = 0
    var snapshotPending = 0
    var notificationsPushed = 0
    var subscriptionCount = 0
    /// The debug trace of this producer's single-key reads (`ReadStageTrace`), set before the
    /// reactor starts; the reactor stamps it, the producer's thread records it.
    public var readTrace: ReadStageTrace?

    init(index: Int, limits: ReactorLimits, parking: ReactorParking, wake: @escaping @Sendable () -> Void) {
        self.index = index
        self.submissions = SPSCRing(capacity: limits.submissionRingCapacity)
        self.completions = SPSCRing(capacity: limits.completionRingCapacity)
        self.wake = wake
        self.inFlightMax = limits.commandsInFlightMax
        self.parking = parking
        self.immediate = CompletionQueue(capacity: limits.commandsInFlightMax)
        self.outbox = CompletionQueue(capacity: limits.commandsInFlightMax)
    }

    /// Queues a command; `false` is backpressure (ring full or too many in flight): stop reading
    /// requests until completions come back. Call `wakeReactorIfParked()` after a burst.
    @inline(__always)
    public func submit(_ command: consuming ReactorCommand) -> Bool {
        guard inFlight < inFlightMax, submissions.push(command) else { return false }
        inFlight += 1
        return true
    }

    /// Commands waiting in the submission ring (any thread; approximate, for metrics).
    public var submissionsQueued: Int { submissions.approximateCount }

    /// Wakes the reactor if it is parked (the fence pairs with the reactor's: a command pushed
    /// before it is either seen by the reactor's last check or the reactor is seen parked).
    @inline(__always)
    public func wakeReactorIfParked() { parking.wakeIfParked() }

    /// Whether completions or notifications wait to be polled (producer thread).
    @inline(__always)
    public var hasCompletions: Bool { !completions.isEmpty }

    /// Pops up to `max` completions and notifications, oldest first. Returns how many.
    @discardableResult
    public func poll(max: Int = .max, _ body: (ReactorCompletion) -> Void) -> Int {
        var notifications = 0
        let n = completions.pop(max: max) { c in
            if c.result.isNotification { notifications += 1 }
            body(c)
        }
        inFlight -= n - notifications
        if notifications > 0 {
            notificationsConsumed.store(notificationsConsumed.load(ordering: .relaxed) + notifications, ordering: .releasing)
            wakeReactorIfParked()  // it may hold notifications waiting for these slots
        }
        return n
    }
}

/// The reactor's parked flag and doorbell, shared with producers.
final class ReactorParking: @unchecked Sendable {
    let parked = Atomic<Bool>(false)
    let doorbell = Doorbell()
    let wakeUps = Atomic<Int>(0)

    @inline(__always)
    func wakeIfParked() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if parked.load(ordering: .relaxed), parked.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged {
            wakeUps.add(1, ordering: .relaxed)
            doorbell.ring()
        }
    }
}
