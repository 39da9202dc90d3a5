import Glibc
import Synchronization

/// 128 bytes of padding: one cache line plus the adjacent line the prefetcher pairs with it.
@usableFromInline
typealias CacheLinePad = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
    UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

@usableFromInline
let cacheLinePadZero: CacheLinePad = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

/// A bounded single-producer/single-consumer queue: a power-of-two array of slots allocated once,
/// a `tail` only the producer writes and a `head` only the consumer writes, each on its own cache
/// line with the other side's index cached next to it (so a side touches the shared line only when
/// its cached view says full or empty).
///
/// Invariants: `0 <= tail - head <= capacity`; slots `[head, tail)` (mod capacity) are initialised,
/// the rest are not. A full ring is backpressure: `push` returns `false`; the ring never grows and
/// never drops. Ordering: the producer publishes slots with a releasing store of `tail`, the
/// consumer acquires them with an acquiring load (and the reverse for `head`), so an element is
/// fully written before the consumer can read it.
///
/// Thread ownership: `push*` and `producerCount` from one producer thread, `pop*` and `isEmpty`
/// from one consumer thread; debug builds assert both (the first caller of a side owns it until
/// `releaseOwnership()`).
public final class SPSCRing<Element>: @unchecked Sendable {
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    @usableFromInline let mask: Int
    public let capacity: Int
    @usableFromInline let _pad0: CacheLinePad = cacheLinePadZero
    // -- producer line --
    /// Next slot to write; written by the producer only.
    @usableFromInline let tail = Atomic<Int>(0)
    /// The producer's last view of `head`. Owned by the producer.
    @usableFromInline var cachedHead = 0
    @usableFromInline var producerThread: pthread_t = 0
    @usableFromInline let _pad1: CacheLinePad = cacheLinePadZero
    // -- consumer line --
    /// Next slot to read; written by the consumer only.
    @usableFromInline let head = Atomic<Int>(0)
    /// The consumer's last view of `tail`. Owned by the consumer.
    @usableFromInline var cachedTail = 0
    @usableFromInline var consumerThread: pthread_t = 0
    @usableFromInline let _pad2: CacheLinePad = cacheLinePadZero

    /// A ring of `capacity` slots; `capacity` must be a power of two.
    public init(capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "ring capacity must be a power of two")
        self.capacity = capacity
        self.mask = capacity - 1
        self.slots = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
    }

    deinit {
        let h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .relaxed)
        var i = h
        while i != t {
            (slots + (i & mask)).deinitialize(count: 1)
            i &+= 1
        }
        slots.deallocate()
    }

    // MARK: - Producer side

    /// Appends `element`; `false` (and the element is dropped by the caller's choice) when full.
    @inlinable
    @inline(__always)
    public func push(_ element: consuming Element) -> Bool {
        assert(checkProducerThread())
        let t = tail.load(ordering: .relaxed)
        if t &- cachedHead == capacity {
            cachedHead = head.load(ordering: .acquiring)
            if t &- cachedHead == capacity { return false }
        }
        (slots + (t & mask)).initialize(to: element)
        tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Appends as many of `count` elements as fit, producing them with `make(i)` for
    /// `i` in `0..<n`, and publishes them with one store. Returns `n`, the number pushed.
    @inlinable
    @inline(__always)
    public func push(count: Int, _ make: (Int) -> Element) -> Int {
        assert(checkProducerThread())
        let t = tail.load(ordering: .relaxed)
        var free = capacity - (t &- cachedHead)
        if free < count {
            cachedHead = head.load(ordering: .acquiring)
            free = capacity - (t &- cachedHead)
        }
        let n = min(free, count)
        for i in 0..<n { (slots + ((t &+ i) & mask)).initialize(to: make(i)) }
        if n > 0 { tail.store(t &+ n, ordering: .releasing) }
        return n
    }

    /// Free slots as the producer sees them (a lower bound: the consumer may have freed more).
    @inlinable
    public var producerFreeCount: Int {
        assert(checkProducerThread())
        let t = tail.load(ordering: .relaxed)
        cachedHead = head.load(ordering: .acquiring)
        return capacity - (t &- cachedHead)
    }

    // MARK: - Consumer side

    /// Removes the oldest element, or `nil` when empty.
    @inlinable
    @inline(__always)
    public func pop() -> Element? {
        assert(checkConsumerThread())
        let h = head.load(ordering: .relaxed)
        if h == cachedTail {
            cachedTail = tail.load(ordering: .acquiring)
            if h == cachedTail { return nil }
        }
        let element = (slots + (h & mask)).move()
        head.store(h &+ 1, ordering: .releasing)
        return element
    }

    /// Removes up to `max` elements, oldest first, handing each to `body`, and frees their slots
    /// with one store. Returns how many were removed.
    @inlinable
    @inline(__always)
    public func pop(max: Int, _ body: (consuming Element) -> Void) -> Int {
        assert(checkConsumerThread())
        let h = head.load(ordering: .relaxed)
        var available = cachedTail &- h
        if available < max {
            cachedTail = tail.load(ordering: .acquiring)
            available = cachedTail &- h
        }
        let n = Swift.min(available, max)
        for i in 0..<n { body((slots + ((h &+ i) & mask)).move()) }
        if n > 0 { head.store(h &+ n, ordering: .releasing) }
        return n
    }

    /// `pop(max:_:)` that stops early: after each element `body` says whether to go on (the
    /// element it was handed is removed either way). Returns how many were removed.
    @inlinable
    @inline(__always)
    public func popWhile(max: Int, _ body: (consuming Element) -> Bool) -> Int {
        assert(checkConsumerThread())
        let h = head.load(ordering: .relaxed)
        var available = cachedTail &- h
        if available < max {
            cachedTail = tail.load(ordering: .acquiring)
            available = cachedTail &- h
        }
        let n = Swift.min(available, max)
        var taken = 0
        while taken < n {
            let more = body((slots + ((h &+ taken) & mask)).move())
            taken += 1
            if !more { break }
        }
        if taken > 0 { head.store(h &+ taken, ordering: .releasing) }
        return taken
    }

    /// Consumer: inside `pop(max:_:)`'s (or `popWhile`'s) body while it hands over its `i`-th element, the element
    /// `ahead` places after that one if this pop will hand it over too, for a look (a prefetch),
    /// not to take; nil past the end of the pop. `popped` is the `i` of the element in hand.
    @inlinable @inline(__always)
    public func peekDuringPop(max: Int, popped i: Int, ahead: Int) -> UnsafePointer<Element>? {
        assert(checkConsumerThread())
        let h = head.load(ordering: .relaxed)
        let j = i &+ ahead
        guard j < Swift.min(cachedTail &- h, max) else { return nil }
        return UnsafePointer(slots + ((h &+ j) & mask))
    }

    /// Whether the consumer would find nothing to pop now.
    @inlinable
    public var isEmpty: Bool {
        assert(checkConsumerThread())
        let h = head.load(ordering: .relaxed)
        if h != cachedTail { return false }
        cachedTail = tail.load(ordering: .acquiring)
        return h == cachedTail
    }

    /// Elements in the ring as any thread may estimate it (exact when both sides are quiet).
    public var approximateCount: Int {
        tail.load(ordering: .acquiring) &- head.load(ordering: .acquiring)
    }

    // MARK: - Ownership and invariants

    /// Lets other threads take over both sides (e.g. after a producer thread hands its handle on).
    public func releaseOwnership() {
        producerThread = 0
        consumerThread = 0
    }

    @usableFromInline
    func checkProducerThread() -> Bool {
        let me = pthread_self()
        if producerThread == 0 { producerThread = me }
        return producerThread == me
    }

    @usableFromInline
    func checkConsumerThread() -> Bool {
        let me = pthread_self()
        if consumerThread == 0 { consumerThread = me }
        return consumerThread == me
    }

    /// Checks the index invariants (tests call it when both sides are quiet).
    public func checkInvariants() {
        let h = head.load(ordering: .acquiring)
        let t = tail.load(ordering: .acquiring)
        precondition(t &- h >= 0 && t &- h <= capacity, "ring holds \(t &- h) of \(capacity) slots")
        precondition(capacity & mask == 0 && mask == capacity - 1)
    }
}
