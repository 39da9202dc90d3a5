import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Starts the server's own threads (the reactor, the commit syncer, compactions, retirements,
/// checkpoint encoders) in one way: named, so that `top -H`, `perf` and `gdb` tell them apart, and
/// at a lower CPU priority for background work.
///
/// Invariant: `body` runs exactly once — on the new thread, or not at all when `start` returns nil.
public enum ServerThread {
    /// Starts `body` on a new thread named `name` (cut to the 15 bytes Linux keeps) at the CPU
    /// priority `nice` (nil: the caller's), with scheduler time slices of `sliceNs` if not 0
    /// (`CLinux_set_sched_slice_ns`). A detached thread frees itself; otherwise the handle
    /// returned must be joined (`pthread_join`) or detached. Returns nil when the system refuses
    /// a new thread (resource limits): then `body` has not run.
    public static func start(name: String, nice: Int32? = nil, sliceNs: UInt64 = 0, detached: Bool = false,
                             _ body: @escaping () -> Void) -> pthread_t? {
        let start = Unmanaged.passRetained(Start(name: name, nice: nice, sliceNs: sliceNs, body: body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { arg in
            let start = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
            _ = CLinux_set_thread_name(String(decoding: start.name.utf8.prefix(15), as: UTF8.self))
            if let nice = start.nice { lowerThreadPriority(nice: nice) }
            if start.sliceNs > 0 { _ = CLinux_set_sched_slice_ns(start.sliceNs) }
            start.body()
            return nil
        }, start.toOpaque())
        guard rc == 0 else {
            start.release()
            return nil
        }
        return thread
    }

    /// What the new thread needs, handed over through `pthread_create`'s argument.
    private final class Start {
        let name: String
        let nice: Int32?
        let sliceNs: UInt64
        let body: () -> Void

        init(name: String, nice: Int32?, sliceNs: UInt64, body: @escaping () -> Void) {
            self.name = name
            self.nice = nice
            self.sliceNs = sliceNs
            self.body = body
        }
    }
}

/// Lowers the calling thread's CPU priority to `nice` (default 19, the lowest): background work
/// (a compaction, a retirement, a checkpoint's encoding) then only takes the CPU the writer and the
/// I/O threads leave. (On Linux the nice value is per thread, and `who` 0 is the calling thread.)
public func lowerThreadPriority(nice: Int32 = 19) {
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
}
