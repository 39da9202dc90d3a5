#if canImport(Glibc)
import Glibc
#endif

/// Transparent huge pages for the process's large allocations: the reactor's key tables, panes
/// and result index, and the store's hash table, are looked up at random over tens or hundreds of
/// megabytes, and with 4 KiB pages nearly every such lookup also misses the TLB (a page walk
/// before the cache miss). On 2 MiB pages the whole of them fits the TLB: in process, 1M keys in
/// 1 s windows took 13 % less CPU per event (`laminar-bench-reactor --only keys1m`, 994-1001 ->
/// 857-883 ns, alternating runs).
///
/// Most Linux systems give huge pages only to memory that asks for them (`madvise` mode), and
/// glibc's malloc asks for all it maps only under the tunable `glibc.malloc.hugetlb=1`, read
/// once, when the process starts. So `useForMallocByReexecuting` starts the program again, once,
/// with that tunable added to `GLIBC_TUNABLES` (same process id, arguments and descriptors).
public enum HugePages {
    static let tunable = "glibc.malloc.hugetlb"

    /// Call first thing in `main`, before any thread starts. Returns (doing nothing) when the
    /// system gives huge pages to every mapping already or to none (`enabled` is not
    /// `madvise`), when `GLIBC_TUNABLES` names the tunable already (this is the run started
    /// again, or the user chose: `GLIBC_TUNABLES=glibc.malloc.hugetlb=0` turns this off), under
    /// valgrind (`/proc/self/exe` is its tool there, and a program started again would run
    /// outside it), or when the program cannot be started again (it then goes on as it is).
    public static func useForMallocByReexecuting() {
        #if os(Linux)
        guard systemMode() == "madvise" else { return }
        if let preload = getenv("LD_PRELOAD"), String(cString: preload).contains("vgpreload") { return }
        let current = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
        guard !current.contains(tunable) else { return }
        setenv("GLIBC_TUNABLES", current.isEmpty ? "\(tunable)=1" : "\(current):\(tunable)=1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Not started again: go on with 4 KiB pages, and without the variable it did not get.
        if current.isEmpty { unsetenv("GLIBC_TUNABLES") } else { setenv("GLIBC_TUNABLES", current, 1) }
        #endif
    }

    /// The bracketed word of `/sys/kernel/mm/transparent_hugepage/enabled`
    /// (`always [madvise] never`), or nil.
    static func systemMode() -> String? {
        guard let f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), f) != nil else { return nil }
        let text = String(cString: line)
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        return String(text[text.index(after: open)..<close])
    }
}
