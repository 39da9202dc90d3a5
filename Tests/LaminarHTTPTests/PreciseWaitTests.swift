import CLinux
import Glibc
import Testing

/// The open-loop client's wait (`CLinux_epoll_wait_ns`) and the thread tuning calls.
@Suite("Precise waits and thread tuning")
struct PreciseWaitTests {
    private static func nowNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// A 300 us wait never returns early, and is not rounded up to a whole millisecond: the
    /// shortest of 20 (the machine may delay any one of them) stays under 1 ms.
    @Test func subMillisecondTimeout() {
        _ = CLinux_set_timer_slack_ns(1_000)
        let epfd = CLinux_epoll_create()
        #expect(epfd >= 0)
        defer { close(epfd) }
        var events = [UInt32](repeating: 0, count: 4)
        var datas = [UInt64](repeating: 0, count: 4)
        var shortest = Int64.max
        for _ in 0..<20 {
            let t0 = Self.nowNs()
            let n = CLinux_epoll_wait_ns(epfd, &events, &datas, 4, 300_000)
            let waited = Self.nowNs() - t0
            #expect(n == 0)
            #expect(waited >= 300_000, "returned after \(waited) ns")
            shortest = min(shortest, waited)
        }
        #expect(shortest < 1_000_000, "shortest 300 us wait took \(shortest) ns")
    }

    /// The kernel takes a 100 us slice for a SCHED_OTHER thread (Linux 6.12+; EINVAL before) and
    /// keeps the thread's nice value.
    @Test func schedulerSlice() {
        var result: Int32 = 0
        var niceBefore: Int32 = 0, niceAfter: Int32 = 0
        var thread = pthread_t()
        let box = UnsafeMutablePointer<(Int32, Int32, Int32)>.allocate(capacity: 1)
        defer { box.deallocate() }
        let rc = pthread_create(&thread, nil, { arg in
            let out = arg!.assumingMemoryBound(to: (Int32, Int32, Int32).self)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 5)
            let before = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let r = CLinux_set_sched_slice_ns(100_000)
            out.pointee = (r, before, getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
            return nil
        }, box)
        #expect(rc == 0)
        pthread_join(thread, nil)
        (result, niceBefore, niceAfter) = box.pointee
        #expect(result == 0 || result == -EINVAL, "sched_setattr: \(result)")
        #expect(niceBefore == 5)
        #expect(niceAfter == 5)
    }
}
