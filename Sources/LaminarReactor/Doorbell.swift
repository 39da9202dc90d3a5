import CLinux
import Glibc

/// An eventfd: one thread waits on it (with a timeout), any thread rings it. Rings that arrive
/// while nobody waits are remembered (the counter), so a ring is never lost; several rings before
/// one wait wake it once.
public final class Doorbell: @unchecked Sendable {
    /// The eventfd; closed on deinit. Safe to ring from any thread.
    public let fd: Int32

    public init() {
        let fd = CLinux_eventfd()
        precondition(fd >= 0, "eventfd failed: errno \(errno)")
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// Wakes the waiter (or the next wait).
    public func ring() {
        CLinux_eventfd_signal(fd)  // EAGAIN only at saturation, when it is signalled anyway
    }

    /// Waits until rung or `timeoutMs` passes (`-1`: forever). Returns whether it was rung.
    @discardableResult
    public func wait(timeoutMs: Int32) -> Bool {
        let rc = CLinux_eventfd_wait(fd, timeoutMs)
        precondition(rc >= 0, "eventfd wait failed: \(-rc)")
        return rc == 1
    }
}
