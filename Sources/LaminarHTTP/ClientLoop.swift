import CLinux
import Glibc

// The client side of the HTTP layer (the load-test client): one epoll loop per thread driving
// many HTTP/2 (h2c, prior knowledge) connections, each with a fixed number of stream slots.
// Level-triggered; EPOLLOUT is armed only while a connection has bytes it could not write.
//
// Thread ownership: a ClientLoop, its connections and their sessions belong to the thread that
// calls `run`; nothing here is shared.

/// Why a connection (and the requests in flight on it) failed.
public enum ClientFailure: Sendable, Equatable {
    /// connect() was refused (nothing listens on the port).
    case connectRefused
    /// connect() failed otherwise (unreachable, timed out): errno.
    case connectFailed(Int32)
    /// nghttp2 rejected the peer's bytes, or the peer sent GOAWAY with an error code.
    case protocolError(String)
    /// The peer closed or reset the TCP connection.
    case connectionClosed
    /// The loop stopped with the request still open.
    case cancelled
}

/// How one request ended.
public enum ClientOutcome: Sendable, Equatable {
    /// A complete response with this status.
    case response(status: Int)
    /// The stream was reset (RST_STREAM) with this HTTP/2 error code before a full response;
    /// REFUSED_STREAM (7) when the server did not process it.
    case reset(errorCode: UInt32)
    case failed(ClientFailure)
}

/// What a load generator plugs into a ClientLoop. Called on the loop thread, never from inside an
/// nghttp2 call, so `ClientConnection.submit` may be called from any of these.
public protocol ClientLoopDriver: AnyObject {
    /// A connection has become ready (connected, or reconnected): submit requests on it.
    func connected(_ connection: ClientConnection)
    /// A request ended; its slot is free again when this is called.
    func completed(_ connection: ClientConnection, slot: Int, outcome: ClientOutcome)
    /// A connection failed; its in-flight requests were reported first. It reconnects later
    /// unless the driver is finished.
    func connectionFailed(_ connection: ClientConnection, failure: ClientFailure)
    /// Called every loop iteration with the current time: schedule work, time out requests.
    /// Returns the latest monotonic time (ns) the loop may sleep until.
    func tick(nowNs: Int64) -> Int64
    /// The loop returns when this is true (after the current iteration).
    var isFinished: Bool { get }
}

/// Bounds of the client loop, with units.
public struct ClientLimits: Sendable {
    /// Bytes of one read() (one buffer per loop, shared by its connections).
    public var readBufferBytes = 64 << 10
    /// Output bytes buffered per connection before nghttp2 is asked for no more frames.
    public var outputBufferedBytesMax = 256 << 10
    /// The HTTP/2 stream and connection windows the client advertises (as h2load's -w/-W 30).
    public var windowBytes: UInt32 = (1 << 30) - 1
    /// Delay before a failed connection is dialled again.
    public var reconnectDelayMs: Int64 = 100
    /// Reads per readiness event before other connections get a turn.
    public var readsPerEventMax = 8

    public init() {}
}

/// One HTTP/2 connection of a ClientLoop with `slotCount` stream slots.
public final class ClientConnection {
    /// Index in the loop's connection list (stable across reconnects).
    public let index: Int
    public let slotCount: Int
    unowned let loop: ClientLoop
    var fd: Int32 = -1
    var generation: UInt32 = 0
    enum State { case idle, connecting, open }
    var state: State = .idle
    var session: HTTP2ClientSession?
    var out = OutputBuffer()
    var outArmed = false
    var dirty = false
    var reconnectAtNs: Int64 = 0
    private var freeSlots: [Int]
    private var busy: [Bool]
    public private(set) var inFlight = 0
    /// Connects made and failed over the run (for reports).
    public private(set) var connectsSucceeded = 0

    init(index: Int, slotCount: Int, loop: ClientLoop) {
        self.index = index
        self.slotCount = slotCount
        self.loop = loop
        freeSlots = Array((0..<slotCount).reversed())
        busy = Array(repeating: false, count: slotCount)
    }

    /// Connected and able to open streams.
    public var isOpen: Bool {
        guard state == .open, let session else { return false }
        return !session.goAwayReceived
    }

    public var freeSlotCount: Int { isOpen ? freeSlots.count : 0 }

    /// Submits a request; returns its slot, or nil when no slot is free or the connection cannot
    /// open streams now. `path` and `body` are copied before this returns.
    public func submit(
        method: HTTPClientMethod, path: UnsafeRawBufferPointer, contentType: HTTPClientContentType? = nil,
        body: UnsafeRawBufferPointer? = nil, captureBody: Bool = false, idempotencyKey: UnsafeRawBufferPointer? = nil
    ) -> Int? {
        guard isOpen, let slot = freeSlots.last, let session else { return nil }
        guard session.submit(slot: slot, method: method, path: path, contentType: contentType, body: body, captureBody: captureBody,
                             idempotencyKey: idempotencyKey) != nil else {
            return nil
        }
        freeSlots.removeLast()
        busy[slot] = true
        inFlight += 1
        loop.markDirty(self)
        return slot
    }

    /// Resets the stream of `slot` (a timeout); its completion follows as `.reset(CANCEL)`.
    public func cancel(slot: Int) {
        guard busy[slot], let session else { return }
        session.cancel(slot: slot)
        loop.markDirty(self)
    }

    public func isBusy(_ slot: Int) -> Bool { busy[slot] }

    /// The response body of `slot` (only when submitted with `captureBody`); valid in `completed`.
    public func responseBody(_ slot: Int) -> [UInt8] { session?.responseBodies[slot] ?? [] }

    /// Response body bytes received on `slot`; valid in `completed`.
    public func responseBytes(_ slot: Int) -> Int { session?.responseBytes[slot] ?? 0 }

    func release(_ slot: Int) {
        precondition(busy[slot], "slot released twice")
        busy[slot] = false
        freeSlots.append(slot)
        inFlight -= 1
    }

    /// Slots still busy (for failing them when the connection dies).
    func busySlots() -> [Int] { (0..<slotCount).filter { busy[$0] } }

    func connectedOnce() { connectsSucceeded += 1 }
}

public final class ClientLoop {
    /// The server's address (resolved by the caller: `SocketAddress.resolve`, `preferred`).
    public let address: SocketAddress
    public let limits: ClientLimits
    public private(set) var connections: [ClientConnection] = []
    private let epfd: Int32
    private let readBuffer: UnsafeMutableRawBufferPointer
    private var dirtyList: [ClientConnection] = []
    private var dirtySpare: [ClientConnection] = []
    private let authority: String
    /// Monotonic ns, refreshed after every wait and every connection's reads.
    public private(set) var nowNs: Int64

    public init(address: SocketAddress, connections count: Int, slotsPerConnection: Int, limits: ClientLimits = ClientLimits()) throws(SystemError) {
        precondition(count > 0 && slotsPerConnection > 0, "a loop needs connections and slots")
        self.address = address
        self.limits = limits
        authority = address.description
        epfd = try System.checked("epoll_create1") { CLinux_epoll_create() }
        readBuffer = .allocate(byteCount: limits.readBufferBytes, alignment: 16)
        nowNs = System.monotonicNs()
        for i in 0..<count { connections.append(ClientConnection(index: i, slotCount: slotsPerConnection, loop: self)) }
    }

    deinit {
        for c in connections where c.fd >= 0 { System.close(c.fd) }
        readBuffer.deallocate()
        System.close(epfd)
    }

    func markDirty(_ c: ClientConnection) {
        if !c.dirty {
            c.dirty = true
            dirtyList.append(c)
        }
    }

    /// Runs until `driver.isFinished`; then closes every connection (requests still open are
    /// reported as `.failed(.cancelled)`).
    public func run(_ driver: ClientLoopDriver) {
        signal(SIGPIPE, SIG_IGN)
        // Timed waits end within 1 us of their deadline instead of the default 50 us slack.
        _ = CLinux_set_timer_slack_ns(1_000)
        nowNs = System.monotonicNs()
        for c in connections { dial(c, driver) }
        var events = [UInt32](repeating: 0, count: 256)
        var datas = [UInt64](repeating: 0, count: 256)
        while !driver.isFinished {
            flushDirty(driver)
            nowNs = System.monotonicNs()
            var wakeNs = driver.tick(nowNs: nowNs)
            if driver.isFinished { break }
            flushDirty(driver)
            for c in connections where c.state == .idle {
                if c.reconnectAtNs <= nowNs { dial(c, driver) } else { wakeNs = min(wakeNs, c.reconnectAtNs) }
            }
            flushDirty(driver)
            // To the nanosecond (epoll_pwait2): an open-loop driver's requests leave on time, not
            // up to a millisecond late as a timeout in whole milliseconds rounded up would make them.
            let timeoutNs = max(0, wakeNs - nowNs)
            let n = events.withUnsafeMutableBufferPointer { ev in
                datas.withUnsafeMutableBufferPointer { da in
                    CLinux_epoll_wait_ns(epfd, ev.baseAddress, da.baseAddress, 256, timeoutNs)
                }
            }
            nowNs = System.monotonicNs()
            if n < 0 { continue }  // EINTR
            for i in 0..<Int(n) {
                let token = datas[i]
                let index = Int(token & 0xffff_ffff)
                guard index < connections.count else { continue }
                let c = connections[index]
                guard c.generation == UInt32(token >> 32), c.fd >= 0 else { continue }  // stale: closed in this batch
                handle(c, events[i], driver)
            }
        }
        for c in connections where c.state != .idle { close(c, failure: .cancelled, driver, notify: false) }
    }

    // MARK: - Connections

    private func dial(_ c: ClientConnection, _ driver: ClientLoopDriver) {
        do throws(SystemError) {
            c.fd = try System.connectNonBlocking(address)
        } catch {
            c.reconnectAtNs = nowNs + limits.reconnectDelayMs * 1_000_000
            driver.connectionFailed(c, failure: error.errno == ECONNREFUSED ? .connectRefused : .connectFailed(error.errno))
            return
        }
        c.generation &+= 1
        c.state = .connecting
        c.outArmed = true
        do throws(SystemError) {
            try System.epollControl(epfd, CLinux_EPOLL_CTL_ADD, c.fd, events: CLinux_EPOLLOUT | CLinux_EPOLLIN | CLinux_EPOLLRDHUP, data: token(c))
        } catch {
            System.close(c.fd)
            c.fd = -1
            c.state = .idle
            c.reconnectAtNs = nowNs + limits.reconnectDelayMs * 1_000_000
            driver.connectionFailed(c, failure: .connectFailed(error.errno))
        }
    }

    private func token(_ c: ClientConnection) -> UInt64 { UInt64(c.index) | UInt64(c.generation) << 32 }

    private func handle(_ c: ClientConnection, _ events: UInt32, _ driver: ClientLoopDriver) {
        if c.state == .connecting {
            let err = System.socketError(c.fd)
            if err != 0 {
                close(c, failure: err == ECONNREFUSED ? .connectRefused : .connectFailed(err), driver, notify: true)
                return
            }
            guard events & (CLinux_EPOLLOUT | CLinux_EPOLLIN) != 0 else { return }
            c.state = .open
            c.connectedOnce()
            try? System.setIntOption(c.fd, Int32(IPPROTO_TCP), CLinux_TCP_NODELAY, 1)
            c.session = HTTP2ClientSession(slotCount: c.slotCount, authority: authority, windowBytes: limits.windowBytes)
            c.out.removeAll()
            c.outArmed = true  // still registered with EPOLLOUT: the flush below settles it
            markDirty(c)
            driver.connected(c)
            return
        }
        if events & CLinux_EPOLLIN != 0 || events & (CLinux_EPOLLHUP | CLinux_EPOLLERR | CLinux_EPOLLRDHUP) != 0 {
            readAll(c, driver)
            if c.state == .idle { return }
        }
        if events & CLinux_EPOLLOUT != 0 { markDirty(c) }
    }

    private func readAll(_ c: ClientConnection, _ driver: ClientLoopDriver) {
        for _ in 0..<limits.readsPerEventMax {
            let result: IOResult<Int>
            do throws(SystemError) {
                result = try System.read(c.fd, readBuffer)
            } catch {
                close(c, failure: .connectionClosed, driver, notify: true)
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                close(c, failure: .connectionClosed, driver, notify: true)
                return
            case .done(let n):
                guard let session = c.session else { return }
                if let reason = session.receive(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n])) {
                    close(c, failure: .protocolError(reason), driver, notify: true)
                    return
                }
                nowNs = System.monotonicNs()
                deliverCompletions(c, driver)
                markDirty(c)
                if n < readBuffer.count { return }
            }
        }
    }

    private func deliverCompletions(_ c: ClientConnection, _ driver: ClientLoopDriver) {
        guard let session = c.session else { return }
        // Drivers only submit here (no nghttp2 I/O call), so nothing is appended while iterating;
        // indexing instead of copying the array keeps this free of allocation.
        var i = 0
        while i < session.completions.count {
            let completion = session.completions[i]
            i += 1
            let slot = completion.slot
            guard c.isBusy(slot) else { continue }
            let status = Int(session.status[slot])
            let outcome: ClientOutcome =
                completion.errorCode == 0 && status != 0 ? .response(status: status) : .reset(errorCode: completion.errorCode)
            c.release(slot)
            driver.completed(c, slot: slot, outcome: outcome)
        }
        session.completions.removeAll(keepingCapacity: true)
    }

    private func flushDirty(_ driver: ClientLoopDriver) {
        while !dirtyList.isEmpty {
            swap(&dirtyList, &dirtySpare)  // no copy: the spare keeps its capacity
            for c in dirtySpare {
                c.dirty = false
                flush(c, driver)
            }
            dirtySpare.removeAll(keepingCapacity: true)
        }
    }

    private func flush(_ c: ClientConnection, _ driver: ClientLoopDriver) {
        guard c.state == .open, let session = c.session else { return }
        while true {
            if let reason = session.produceOutput(into: &c.out, limitBytes: limits.outputBufferedBytesMax) {
                close(c, failure: .protocolError(reason), driver, notify: true)
                return
            }
            deliverCompletions(c, driver)  // streams nghttp2 closed while sending (e.g. refused)
            if c.out.isEmpty { break }
            let fd = c.fd
            let attempt: Result<IOResult<Int>, SystemError> = c.out.withUnsentBytes { bytes in
                do throws(SystemError) { return .success(try System.send(fd, bytes)) } catch { return .failure(error) }
            }
            guard case .success(let result) = attempt else {
                close(c, failure: .connectionClosed, driver, notify: true)
                return
            }
            guard case .done(let n) = result else { break }
            c.out.consume(n)
            if !c.out.isEmpty { break }
        }
        if c.state != .open { return }
        // A session that wants nothing more (GOAWAY done) closes once its requests are over.
        if session.isFinished && c.out.isEmpty && c.inFlight == 0 {
            let failure: ClientFailure = session.goAwayErrorCode != 0
                ? .protocolError("GOAWAY error code \(session.goAwayErrorCode)") : .connectionClosed
            close(c, failure: failure, driver, notify: session.goAwayErrorCode != 0)
            return
        }
        let wantOut = !c.out.isEmpty
        if wantOut != c.outArmed {
            c.outArmed = wantOut
            let events = CLinux_EPOLLIN | CLinux_EPOLLRDHUP | (wantOut ? CLinux_EPOLLOUT : 0)
            try? System.epollControl(epfd, CLinux_EPOLL_CTL_MOD, c.fd, events: events, data: token(c))
        }
    }

    /// Closes the socket, fails the requests in flight, schedules a reconnect.
    private func close(_ c: ClientConnection, failure: ClientFailure, _ driver: ClientLoopDriver, notify: Bool) {
        guard c.fd >= 0 else { return }
        try? System.epollControl(epfd, CLinux_EPOLL_CTL_DEL, c.fd, events: 0, data: 0)
        System.close(c.fd)
        c.fd = -1
        c.state = .idle
        c.reconnectAtNs = nowNs + limits.reconnectDelayMs * 1_000_000
        if let session = c.session {
            // Streams nghttp2 already closed are reported as they ended; the rest failed with us.
            deliverCompletions(c, driver)
            session.teardown()
        }
        c.session = nil
        c.out.removeAll()
        for slot in c.busySlots() {
            c.release(slot)
            driver.completed(c, slot: slot, outcome: .failed(failure))
        }
        if notify { driver.connectionFailed(c, failure: failure) }
    }
}
