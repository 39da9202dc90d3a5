// System calls, with their errors sorted in one place (as SwiftNIO's System.swift):
// EINTR is retried here, EAGAIN/EWOULDBLOCK is a value (`.wouldBlock`), a bad file descriptor is
// a bug (precondition), everything else is a typed `SystemError` for the caller to handle.
import CLinux
import Glibc

/// A failed system call: which call and its errno. Thrown for a peer's or the kernel's failure.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: StaticString
    public let errno: Int32

    public var description: String {
        "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The result of a non-blocking I/O call that may have nothing to do.
enum IOResult<T> {
    case done(T)
    case wouldBlock
}

enum System {
    /// Runs `body` until it does not fail with EINTR. Returns `.wouldBlock` on EAGAIN.
    @inline(__always)
    static func retrying<T: BinaryInteger>(
        _ call: StaticString, _ body: () -> T
    ) throws(SystemError) -> IOResult<T> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            let err = Glibc.errno
            switch err {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EBADF, EFAULT:
                preconditionFailure("\(call): \(String(cString: strerror(err))): a bug, not a peer failure")
            default: throw SystemError(call: call, errno: err)
            }
        }
    }

    /// A call that must not return EAGAIN (setup calls): any failure throws.
    @inline(__always)
    static func checked<T: BinaryInteger>(_ call: StaticString, _ body: () -> T) throws(SystemError) -> T {
        switch try retrying(call, body) {
        case .done(let value): return value
        case .wouldBlock: throw SystemError(call: call, errno: EAGAIN)
        }
    }

    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try retrying("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try retrying("send") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    static func accept(_ listenFD: Int32) throws(SystemError) -> IOResult<Int32> {
        while true {
            let fd = CLinux_accept4(listenFD, nil, nil, CLinux_SOCK_NONBLOCK | CLinux_SOCK_CLOEXEC)
            if fd >= 0 { return .done(fd) }
            let err = Glibc.errno
            switch err {
            case EINTR, ECONNABORTED, EPROTO: continue  // the peer left before we accepted: try the next
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EBADF: preconditionFailure("accept4 on a bad descriptor")
            default: throw SystemError(call: "accept4", errno: err)
            }
        }
    }

    static func close(_ fd: Int32) {
        // Linux closes the descriptor even when close returns EINTR: never retry.
        let result = Glibc.close(fd)
        precondition(result == 0 || Glibc.errno != EBADF, "close of a bad descriptor")
    }

    /// Shuts down the sending side (FIN after what is queued). A peer already gone (ENOTCONN) is
    /// not an error here: the caller closes anyway.
    static func shutdownWriting(_ fd: Int32) {
        let result = Glibc.shutdown(fd, Int32(SHUT_WR))
        precondition(result == 0 || Glibc.errno != EBADF, "shutdown of a bad descriptor")
    }

    static func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var value = value
        _ = try checked("setsockopt") {
            setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Fails with EADDRINUSE when another socket already listens on `address`. Our listeners set
    /// SO_REUSEPORT (one per I/O thread), which would also let a second server process share the
    /// port silently and split the connections; a probe bound without SO_REUSEPORT cannot.
    static func checkPortFree(_ address: SocketAddress) throws(SystemError) {
        let fd = try checked("socket") {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | CLinux_SOCK_CLOEXEC, 0)
        }
        defer { close(fd) }
        try setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)  // TIME_WAIT leftovers are not a server
        if address.isIPv6Unspecified { try? setIntOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0) }
        _ = try checked("bind") { address.withSockaddr { bind(fd, $0, $1) } }
    }

    /// Creates a non-blocking listener with SO_REUSEADDR and SO_REUSEPORT, bound and listening;
    /// on `::` dual-stack (IPV6_V6ONLY off) where the system allows it. Returns the descriptor and
    /// the bound port (the kernel's choice when the address's port is 0).
    static func makeListener(_ address: SocketAddress, backlog: Int32) throws(SystemError) -> (fd: Int32, port: UInt16) {
        let fd = try checked("socket") {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | CLinux_SOCK_NONBLOCK | CLinux_SOCK_CLOEXEC, 0)
        }
        do throws(SystemError) {
            try setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try setIntOption(fd, SOL_SOCKET, CLinux_SO_REUSEPORT, 1)
            if address.isIPv6Unspecified { try? setIntOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0) }
            _ = try checked("bind") { address.withSockaddr { bind(fd, $0, $1) } }
            _ = try checked("listen") { listen(fd, backlog) }
            var bound = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = try checked("getsockname") {
                withUnsafeMutablePointer(to: &bound) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
                }
            }
            let port = withUnsafePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress($0, length: length).port }
            }
            return (fd, port)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Milliseconds of CLOCK_MONOTONIC.
    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

extension System {
    /// Adds, changes or removes `fd` in an epoll set.
    static func epollControl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        _ = try checked("epoll_ctl") { CLinux_epoll_ctl(epfd, op, fd, events, data) }
    }
}

extension System {
    /// Starts a non-blocking TCP connect to `address`. Returns the descriptor; completion is
    /// reported by EPOLLOUT and read with `socketError`. Refusals detected at once are thrown.
    static func connectNonBlocking(_ address: SocketAddress) throws(SystemError) -> Int32 {
        let fd = try checked("socket") {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | CLinux_SOCK_NONBLOCK | CLinux_SOCK_CLOEXEC, 0)
        }
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if rc < 0 {
            let err = Glibc.errno
            if err != EINPROGRESS && err != EINTR {
                close(fd)
                throw SystemError(call: "connect", errno: err)
            }
        }
        return fd
    }

    /// Of `addresses`, the first that accepts a TCP connection within `timeoutMs` (a blocking probe,
    /// closed at once); nil when none does. For a name with several addresses (`localhost`: `::1`
    /// and `127.0.0.1`) of which the server may listen on one.
    static func firstAccepting(_ addresses: [SocketAddress], timeoutMs: Int32) -> SocketAddress? {
        for address in addresses {
            guard let fd = try? connectNonBlocking(address) else { continue }
            defer { close(fd) }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&poller, 1, timeoutMs) == 1 && socketError(fd) == 0 { return address }
        }
        return nil
    }

    /// The pending error of a socket (SO_ERROR): 0 once a non-blocking connect succeeded.
    static func socketError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) < 0 { return Glibc.errno }
        return value
    }

    /// Nanoseconds of CLOCK_MONOTONIC.
    static func monotonicNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
