#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Maps in, on a thread of its own, the pages a region's writer is about to store into, so that
/// the writer itself takes no page fault on them (`MappedRegion.write` asks for the next few MiB
/// past each MiB it writes).
///
/// Why: a store into a page of the data file not yet in memory faults, and the kernel reads the
/// page first — for a freshly allocated (`posix_fallocate`) range, zero-fills a whole large folio.
/// Profiled under `make bench-reactor`'s KV case (puts of 100-byte values, 30 records a page):
/// those faults, mostly the zeroing, were ~30 % of the reactor thread's time. Anonymous memory
/// (the write-behind tail, the in-memory store) faults the same way.
///
/// How: `MADV_POPULATE_WRITE` (Linux 5.14) on the range, a step at a time (each call holds the
/// process's memory-map lock for reading; the writer's own `mmap`s wait for it). It faults the
/// pages in writable as a store would, and changes no byte: a page it maps in is what the
/// writer's own fault would have mapped (zeros beyond the data, the file's bytes below), so the
/// file's content and every crash-safety argument are unchanged; at most the pages of the range
/// ahead are written back as zeros once more. Races with the writer are benign for the same
/// reason: a request for a range the writer has since written, remapped (write-behind) or grown
/// past faults in what is there; a range cut from the file makes the call fail (`EFAULT`, never
/// `SIGBUS`), which is ignored. Advice only: where the kernel lacks it, the thread stops trying.
///
/// One thread per process, started at the first request; a request holds its region until done
/// (`Retirement` waits for that before unmapping a replaced one). At most `pendingMax` requests
/// wait; more are dropped (the writer then faults those pages itself).
final class PageFaultAhead: @unchecked Sendable {
    static let shared = PageFaultAhead()

    /// Bytes populated per `madvise` call.
    static let stepBytes = 256 << 10
    /// Requests waiting at most; a request beyond them is dropped.
    static let pendingMax = 64
    /// `MADV_POPULATE_WRITE` (Linux 5.14).
    static let populateWrite: Int32 = 23

    private struct Request {
        let region: MappedRegion
        let from: Int
        let to: Int
    }

    // Protected by `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private var pending: [Request] = []
    private var started = false
    private var unsupported = false

    private init() {
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pending.reserveCapacity(Self.pendingMax)
    }

    /// Asks for `[from, to)` of `region` (page-aligned offsets inside its capacity) to be mapped in.
    func request(_ region: MappedRegion, from: Int, to: Int) {
        precondition(from % MappedRegion.pageBytes == 0 && from < to && to <= region.capacity)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if unsupported || pending.count >= Self.pendingMax { return }
        if !started {
            started = true
            if !startThread() {
                unsupported = true
                return
            }
        }
        pending.append(Request(region: region, from: from, to: to))
        pthread_cond_signal(wake)
    }

    private func startThread() -> Bool {
        ServerThread.start(name: "laminar-fault", detached: true) { PageFaultAhead.shared.run() } != nil
    }

    private func run() {
        while true {
            pthread_mutex_lock(mutex)
            while pending.isEmpty { pthread_cond_wait(wake, mutex) }
            let next = pending.removeFirst()
            pthread_mutex_unlock(mutex)
            if !populate(next) {
                pthread_mutex_lock(mutex)
                unsupported = true
                pending.removeAll()
                pthread_mutex_unlock(mutex)
                return
            }
        }
    }

    /// Populates one request; false when the kernel does not know the advice.
    private func populate(_ request: Request) -> Bool {
        var at = request.from
        while at < request.to {
            let n = min(Self.stepBytes, request.to - at)
            if madvise(request.region.base + at, n, Self.populateWrite) != 0 {
                return errno != EINVAL
            }
            at += n
        }
        return true
    }
}
