import CLinux
import Glibc
import Synchronization

/// One epoll loop on one thread: its own SO_REUSEPORT listener, its connections, its handler and
/// an eventfd that any thread may ring (`HTTPLoopWaker`). Level-triggered; a connection asks for
/// EPOLLOUT only while it has bytes to write and for EPOLLIN only while it may read.
///
/// Thread ownership: everything here belongs to the loop thread, except `wakeFD` (rung from any
/// thread) and `shared` (the server's stop flag).
final class EventLoop {
    let index: Int
    let limits: HTTPLimits
    let shared: HTTPServerShared
    private let epfd: Int32
    /// Rung by `HTTPLoopWaker`s; it lives as long as any waker does, so a late ring after the
    /// loop stopped never writes to a reused descriptor.
    let wakeSignal: LoopWakeSignal
    var wakeFD: Int32 { wakeSignal.fd }
    /// One SO_REUSEPORT listener per address listened on; emptied when draining starts.
    private var listenFDs: [Int32]
    private(set) var handler: HTTPHandler!

    /// Connections by slot; the epoll data of a connection is slot | generation << 32, so an event
    /// for a connection closed earlier in the same batch is recognised and dropped.
    private var slots: [Connection?] = []
    /// `slots` again, unretained (a trivial element): what answers look connections up in, with
    /// no retain and release of the connection per lookup.
    private var unretainedSlots: [Unmanaged<Connection>?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    private(set) var connectionCount = 0
    private var nextConnectionID: UInt64 = 1
    /// Connections with output to flush or parsing to resume at the end of this iteration.
    private var dirty: [Connection] = []
    /// The memory nghttp2 allocates for this loop's server sessions (deleted before the loop is).
    let nghttp2Allocator = NGHTTP2Allocator()
    /// One read buffer for every connection of the loop.
    let readBuffer: UnsafeMutableRawBufferPointer
    /// Monotonic milliseconds, refreshed once per iteration.
    private(set) var nowMs: Int64
    private var nextSweepMs: Int64
    private var drainDeadlineMs: Int64?

    private static let wakeToken: UInt64 = .max
    /// Listener i has token `listenerTokenBase - i` (connection tokens are slot | generation << 32
    /// with slots far below 2^32 - 16, so they never reach these).
    private static let listenerTokenBase: UInt64 = .max - 1
    /// Addresses one loop listens on at most (`HTTPServer` binds no more of a name's addresses).
    static let listenersMax = 16
    private static let sweepIntervalMs: Int64 = 250
    /// A connection whose last input was at most this many bytes (a few requests) is served
    /// before the others in an iteration (`run`).
    static let smallInputBytes = 1024

    init(index: Int, listenFDs: [Int32], limits: HTTPLimits, shared: HTTPServerShared) throws(SystemError) {
        precondition(!listenFDs.isEmpty && listenFDs.count <= Self.listenersMax, "1 to \(Self.listenersMax) listeners per loop")
        self.index = index
        self.limits = limits
        self.shared = shared
        self.listenFDs = listenFDs
        epfd = try System.checked("epoll_create1") { CLinux_epoll_create() }
        wakeSignal = LoopWakeSignal(fd: try System.checked("eventfd") { CLinux_eventfd() })
        readBuffer = .allocate(byteCount: limits.readBufferBytes, alignment: 16)
        nowMs = System.monotonicMs()
        nextSweepMs = nowMs + Self.sweepIntervalMs
        for (i, fd) in listenFDs.enumerated() {
            try System.epollControl(epfd, CLinux_EPOLL_CTL_ADD, fd, events: CLinux_EPOLLIN, data: Self.listenerTokenBase - UInt64(i))
        }
        try System.epollControl(epfd, CLinux_EPOLL_CTL_ADD, wakeFD, events: CLinux_EPOLLIN, data: Self.wakeToken)
    }

    deinit {
        readBuffer.deallocate()
        System.close(epfd)
        listenFDs.forEach(System.close)
    }

    var context: HTTPLoopContext {
        let signal = wakeSignal
        return HTTPLoopContext(loopIndex: index, waker: HTTPLoopWaker { signal.ring() })
    }

    /// Runs until the server stops and every connection has drained (or the drain deadline passed).
    func run(makeHandler: (HTTPLoopContext) -> HTTPHandler) {
        handler = makeHandler(context)
        shared.loopStarted()
        var events = [UInt32](repeating: 0, count: 256)
        var datas = [UInt64](repeating: 0, count: 256)
        // Indices into an iteration's events of the connections served after the small ones.
        var deferred = [Int32](repeating: 0, count: 256)
        while true {
            let timeout = Int32(clamping: max(0, nextSweepMs - nowMs))
            let n = events.withUnsafeMutableBufferPointer { ev in
                datas.withUnsafeMutableBufferPointer { da in
                    CLinux_epoll_wait(epfd, ev.baseAddress, da.baseAddress, 256, timeout)
                }
            }
            nowMs = System.monotonicMs()
            handler.iterationDidBegin()
            if n < 0 {
                precondition(errno == EINTR, "epoll_wait failed: errno \(errno)")
            }
            let ready = max(0, Int(n))
            // Answers first: completions that woke the loop are answered and written before this
            // iteration's input is parsed, so that an answer does not wait behind a burst of
            // requests read from other connections.
            for i in 0..<ready where datas[i] == Self.wakeToken {
                CLinux_eventfd_drain(wakeFD)
                handler.didWake()
                flushDirty()
                handler.didFlush(endOfIteration: false)
            }
            // Shortest input first: connections whose last input was small (a few requests, such
            // as reads) are served before those that brought a burst (a batch of PUTs), so that a
            // read does not wait behind the burst's parsing; the bursts follow in this iteration.
            var later = 0
            for i in 0..<ready {
                let data = datas[i]
                switch data {
                case (Self.listenerTokenBase - UInt64(Self.listenersMax - 1))...Self.listenerTokenBase:
                    let i = Int(Self.listenerTokenBase - data)
                    if i < listenFDs.count { acceptAll(listenFDs[i]) }
                case Self.wakeToken:
                    continue
                default:
                    guard let connection = connection(token: data) else { continue }
                    if connection.lastInputBytes > Self.smallInputBytes {
                        deferred[later] = Int32(i)
                        later += 1
                        continue
                    }
                    serve(connection, events[i])
                }
            }
            for k in 0..<later {
                let i = Int(deferred[k])
                if let connection = connection(token: datas[i]) { serve(connection, events[i]) }
            }
            handler.roundDidEnd()
            flushDirty()  // may resume parsing paused connections: more requests
            handler.didFlush(endOfIteration: true)
            handler.roundDidEnd()
            if nowMs >= nextSweepMs {
                nextSweepMs = nowMs + Self.sweepIntervalMs
                sweep()
                flushDirty()
            }
            if shared.isStopping {
                if drainDeadlineMs == nil { startDrain() }
                if connectionCount == 0 { break }
                if let deadline = drainDeadlineMs, nowMs >= deadline {
                    for case let connection? in slots { connection.close(reason: "shutdown deadline") }
                    break
                }
                nextSweepMs = min(nextSweepMs, nowMs + 50)
            }
        }
        handler.loopWillStop()
        handler = nil
    }

    /// The connection an epoll token names, if it still holds that slot (one closed earlier in
    /// the same batch does not).
    @inline(__always)
    private func connection(token data: UInt64) -> Connection? {
        let slot = Int(data & 0xFFFF_FFFF)
        guard slot < slots.count, generations[slot] == UInt32(data >> 32) else { return nil }
        return slots[slot]
    }

    /// Handles one connection's events; then answers that came back meanwhile are written
    /// before the next connection's input, not after the rest of the round's input.
    @inline(__always)
    private func serve(_ connection: Connection, _ events: UInt32) {
        connection.handleEvents(events)
        if handler.betweenConnections() {
            flushDirty()
            handler.didFlush(endOfIteration: false)
        }
    }

    /// Marks `connection` for a flush (and resumed parsing) at the end of the iteration.
    func markDirty(_ connection: Connection) {
        if !connection.isDirty {
            connection.isDirty = true
            dirty.append(connection)
        }
    }

    private func flushDirty() {
        var i = 0
        while i < dirty.count {  // flushing may dirty more connections (handlers answering others)
            let connection = dirty[i]
            connection.isDirty = false
            connection.flush()
            i += 1
        }
        dirty.removeAll(keepingCapacity: true)
    }

    private func acceptAll(_ listenFD: Int32) {
        while true {
            let fd: Int32
            do {
                switch try System.accept(listenFD) {
                case .wouldBlock: return
                case .done(let accepted): fd = accepted
                }
            } catch {
                // EMFILE/ENFILE/ENOBUFS: leave the rest in the backlog until descriptors free up.
                shared.acceptErrors.add(1, ordering: .relaxed)
                return
            }
            if connectionCount >= limits.connectionsPerLoopMax || shared.isStopping {
                System.close(fd)
                shared.connectionsRefused.add(1, ordering: .relaxed)
                continue
            }
            try? System.setIntOption(fd, Int32(IPPROTO_TCP), CLinux_TCP_NODELAY, 1)
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
            } else {
                slot = slots.count
                slots.append(nil)
                unretainedSlots.append(nil)
                generations.append(0)
            }
            generations[slot] &+= 1
            let connection = Connection(loop: self, fd: fd, id: nextConnectionID, slot: slot, generation: generations[slot])
            nextConnectionID += 1
            do {
                try System.epollControl(epfd, CLinux_EPOLL_CTL_ADD, fd, events: connection.interest, data: token(slot))
            } catch {
                System.close(fd)
                freeSlots.append(slot)
                continue
            }
            slots[slot] = connection
            unretainedSlots[slot] = Unmanaged.passUnretained(connection)
            connectionCount += 1
            shared.connectionsOpen.add(1, ordering: .relaxed)
            shared.connectionsAccepted.add(1, ordering: .relaxed)
        }
    }

    /// The connection in `slot` if it is still the one that held it at `generation`.
    @inline(__always)
    func connection(slot: Int, generation: UInt32) -> Connection? {
        guard slot < slots.count, generations[slot] == generation else { return nil }
        return slots[slot]
    }

    /// `connection(slot:generation:)` without a retain, for `_withUnsafeGuaranteedRef` around
    /// an answer (nothing in it closes the connection: closing waits for the flush).
    @inline(__always)
    func unretainedConnection(slot: Int, generation: UInt32) -> Unmanaged<Connection>? {
        guard slot < slots.count, generations[slot] == generation else { return nil }
        return unretainedSlots[slot]
    }

    private func token(_ slot: Int) -> UInt64 { UInt64(slot) | UInt64(generations[slot]) << 32 }

    /// Changes what epoll reports for `connection`.
    func updateInterest(_ connection: Connection, _ events: UInt32) {
        try? System.epollControl(epfd, CLinux_EPOLL_CTL_MOD, connection.fd, events: events, data: token(connection.slot))
    }

    /// Forgets a connection whose descriptor is about to be closed.
    func remove(_ connection: Connection) {
        _ = CLinux_epoll_ctl(epfd, CLinux_EPOLL_CTL_DEL, connection.fd, 0, 0)
        slots[connection.slot] = nil
        unretainedSlots[connection.slot] = nil
        generations[connection.slot] &+= 1
        freeSlots.append(connection.slot)
        connectionCount -= 1
        shared.connectionsOpen.subtract(1, ordering: .relaxed)
    }

    private func sweep() {
        for case let connection? in slots { connection.checkTimeouts(nowMs: nowMs) }
    }

    private func startDrain() {
        drainDeadlineMs = nowMs + shared.drainTimeoutMs
        for fd in listenFDs {
            _ = CLinux_epoll_ctl(epfd, CLinux_EPOLL_CTL_DEL, fd, 0, 0)
            System.close(fd)
        }
        listenFDs = []
        handler.drainStarted()
        for case let connection? in slots { connection.startDrain() }
    }
}

/// A loop's eventfd, shared by every waker handed out; closed when the last holder lets go.
final class LoopWakeSignal: Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { System.close(fd) }
    func ring() { CLinux_eventfd_signal(fd) }
}
