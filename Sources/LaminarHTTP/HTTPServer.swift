import Glibc
import Synchronization

/// How the HTTP server listens: address, threads and limits.
public struct HTTPServerConfiguration: Sendable {
    /// Where to listen: an IPv4 or IPv6 literal (brackets optional), `0.0.0.0` or `::` (every
    /// address; `::` dual-stack where the system allows), or a name resolved at start, whose every
    /// address is bound (`localhost`: `::1` and `127.0.0.1`; one the machine lacks is skipped).
    public var host: String = "127.0.0.1"
    /// TCP port; 0 lets the kernel choose (read it back from `HTTPServer.port`).
    public var port: UInt16 = 7070
    /// Event loop threads, each with its own SO_REUSEPORT listener.
    public var ioThreads: Int = 1
    /// After `stop()`, in-flight requests get this long to finish before connections are cut.
    public var drainTimeoutMs: Int64 = 5_000
    public var listenBacklog: Int32 = 1024
    public var limits = HTTPLimits()
    /// The time slice each loop thread asks the scheduler for (`CLinux_set_sched_slice_ns`), in
    /// nanoseconds; 0 keeps the kernel's default.
    public var threadSliceNs: UInt64 = 0

    public init() {}
}

/// Counters of the HTTP layer, shared by every loop (relaxed atomics: read at scrape time).
public final class HTTPServerShared: Sendable {
    let stopping = Atomic<Bool>(false)
    let startedLoops = Atomic<Int>(0)
    public let drainTimeoutMs: Int64
    public let connectionsOpen = Atomic<Int>(0)
    public let connectionsAccepted = Atomic<Int>(0)
    public let connectionsRefused = Atomic<Int>(0)
    public let acceptErrors = Atomic<Int>(0)
    public let streamsOpen = Atomic<Int>(0)
    /// Connections ended for abuse: floods, too many server-side resets, bad preface.
    public let protocolErrors = Atomic<Int>(0)
    public let timeouts = Atomic<Int>(0)

    init(drainTimeoutMs: Int64) { self.drainTimeoutMs = drainTimeoutMs }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }
    func loopStarted() { startedLoops.add(1, ordering: .releasing) }
}

/// The HTTP/1.1 + HTTP/2 (prior knowledge and h2c Upgrade) server: `ioThreads` epoll loops on
/// one port. `init` binds (so the port is known and wakers exist before any handler does),
/// `start` runs the loops, `stop` drains and joins them.
///
/// Thread ownership: `start` and `stop` are called by the owner's thread, `start` once.
public final class HTTPServer: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    /// The bound port (the kernel's choice when the configuration said 0).
    public let port: UInt16
    /// The addresses listened on (with `port`).
    public let addresses: [SocketAddress]
    public let shared: HTTPServerShared
    /// One per loop, in loop order: hand a loop's waker to whoever completes its requests.
    public let loopContexts: [HTTPLoopContext]
    private var loops: [EventLoop]
    private var threads: [pthread_t] = []
    private let wakeSignals: [LoopWakeSignal]

    /// Binds one listener per I/O thread and address (all on the same port). Throws, saying why in
    /// plain words, if the host is unknown or an address cannot be listened on.
    public init(configuration: HTTPServerConfiguration) throws(ListenError) {
        if let problem = configuration.limits.validate() { preconditionFailure("HTTPLimits: \(problem)") }
        precondition(configuration.ioThreads >= 1, "ioThreads must be >= 1")
        self.configuration = configuration
        shared = HTTPServerShared(drainTimeoutMs: configuration.drainTimeoutMs)
        signal(SIGPIPE, SIG_IGN)
        let resolved: [SocketAddress]
        do throws(AddressError) {
            resolved = try SocketAddress.resolve(configuration.host, port: configuration.port)
        } catch {
            throw .unknownHost(error)
        }
        // listeners[thread] holds that thread's socket for each address bound.
        var listeners = [[Int32]](repeating: [], count: configuration.ioThreads)
        var bound: [SocketAddress] = []
        var port = configuration.port
        var firstFailure: ListenError?
        for var address in resolved.prefix(EventLoop.listenersMax) {
            address.port = port
            var fds: [Int32] = []
            do throws(SystemError) {
                if port != 0 { try System.checkPortFree(address) }
                for _ in 0..<configuration.ioThreads {
                    let (fd, boundPort) = try System.makeListener(address, backlog: configuration.listenBacklog)
                    fds.append(fd)
                    port = boundPort
                    address.port = boundPort  // the next threads' listeners share the port chosen
                }
            } catch {
                fds.forEach(System.close)
                let failure = ListenError.cannotListen(address: address, error)
                // A name's address the machine lacks (`localhost` → `::1` without IPv6) is skipped;
                // anything else (in use, permission) fails the start.
                if resolved.count > 1 && [EADDRNOTAVAIL, EAFNOSUPPORT].contains(error.errno) {
                    firstFailure = firstFailure ?? failure
                    continue
                }
                listeners.joined().forEach(System.close)
                throw failure
            }
            address.port = port
            bound.append(address)
            for t in fds.indices { listeners[t].append(fds[t]) }
        }
        guard !bound.isEmpty, let first = listeners.first, !first.isEmpty else {
            throw firstFailure ?? .unknownHost(.unknownHost(host: configuration.host, reason: "no address"))
        }
        self.port = port
        addresses = bound
        var loops: [EventLoop] = []
        for (index, fds) in listeners.enumerated() {
            do throws(SystemError) {
                loops.append(try EventLoop(index: index, listenFDs: fds, limits: configuration.limits, shared: shared))
            } catch {
                listeners[index...].joined().forEach(System.close)
                throw .system(error)
            }
        }
        self.loops = loops
        wakeSignals = loops.map(\.wakeSignal)
        loopContexts = loops.map(\.context)
    }

    /// Starts the loop threads; `makeHandler` is called once on each loop thread with its context.
    /// Returns once every loop is running.
    public func start(makeHandler: @escaping @Sendable (HTTPLoopContext) -> HTTPHandler) {
        precondition(threads.isEmpty && !loops.isEmpty, "start is called once")
        for loop in loops {
            let box = LoopStart(loop: loop, sliceNs: configuration.threadSliceNs, makeHandler: makeHandler)
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<LoopStart>.fromOpaque(raw!).takeRetainedValue()
                _ = CLinux_set_thread_name("laminar-io-\(start.loop.index)")
                if start.sliceNs > 0 { _ = CLinux_set_sched_slice_ns(start.sliceNs) }
                start.loop.run(makeHandler: start.makeHandler)
                return nil
            }, Unmanaged.passRetained(box).toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
        let count = loops.count
        loops = []  // the threads own them now
        while shared.startedLoops.load(ordering: .acquiring) < count { sched_yield() }
    }

    /// Stops accepting, tells HTTP/2 clients GOAWAY, lets in-flight requests finish within the
    /// drain timeout, then closes every connection and joins the loop threads. Idempotent.
    public func stop() {
        shared.stopping.store(true, ordering: .relaxed)
        for signal in wakeSignals { signal.ring() }
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }
}

/// Why the server cannot listen, in plain words.
public enum ListenError: Error, CustomStringConvertible, Sendable {
    /// `--host` names no address.
    case unknownHost(AddressError)
    /// Binding or listening on `address` failed.
    case cannotListen(address: SocketAddress, SystemError)
    /// A system call of the loops' setup failed (epoll, eventfd).
    case system(SystemError)

    public var description: String {
        switch self {
        case .unknownHost(let error): return "cannot listen: \(error)"
        case .cannotListen(let address, let error):
            let why = switch error.errno {
            case EADDRINUSE: "the address is already in use (another process listens on this port)"
            case EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            case EADDRNOTAVAIL: "no network interface of this machine has this address"
            case EAFNOSUPPORT: "this machine has no IPv6"
            default: "\(error)"
            }
            return "cannot listen on \(address): \(why)"
        case .system(let error): return "cannot start the I/O loops: \(error)"
        }
    }
}

/// What a new loop thread needs, passed through pthread_create's argument.
private final class LoopStart: @unchecked Sendable {
    let loop: EventLoop
    let sliceNs: UInt64
    let makeHandler: @Sendable (HTTPLoopContext) -> HTTPHandler
    init(loop: EventLoop, sliceNs: UInt64, makeHandler: @escaping @Sendable (HTTPLoopContext) -> HTTPHandler) {
        self.loop = loop
        self.sliceNs = sliceNs
        self.makeHandler = makeHandler
    }
}

import CLinux
