import Foundation
import Testing

/// The server asks glibc for transparent huge pages by starting itself again with
/// `glibc.malloc.hugetlb=1` in `GLIBC_TUNABLES` (proto-docs/architecture.md, "Huge pages"),
/// where the system gives them on request only; a user's own value of that tunable is kept, and
/// other tunables stay. Read from the running server's `/proc/PID/environ` (the same process).
@Suite("EndToEnd huge pages", .serialized)
struct EndToEndHugePagesTests {
    /// The system's transparent huge page mode (`always [madvise] never` → `madvise`).
    static var systemMode: String? {
        guard let text = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
            let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]")
        else { return nil }
        return String(text[text.index(after: open)..<close])
    }

    /// The tunables of the running server's `GLIBC_TUNABLES`, in order (nil when unset). glibc
    /// parses the variable in place, cutting it at each `:` with a NUL: the tunables after the
    /// first are the entries that follow it in `/proc/PID/environ`.
    static func tunables(_ server: Server) throws -> [String]? {
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(server.child.process.processIdentifier)/environ"))
        let entries = environ.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let prefix = "GLIBC_TUNABLES="
        guard let i = entries.firstIndex(where: { $0.hasPrefix(prefix) }) else { return nil }
        var out = entries[i].dropFirst(prefix.count).split(separator: ":").map(String.init)
        for e in entries[(i + 1)...] {
            guard e.hasPrefix("glibc.") else { break }
            out.append(e)
        }
        return out
    }

    static func check(environment: [String: String], expected: [String]?) throws {
        let server = try Server(environment: environment)
        let got = try tunables(server)
        #expect(got == expected, "GLIBC_TUNABLES of the server: \(got ?? [])")
        #expect(try request("--http2-prior-knowledge", "PUT", server.url("/kv/k"), ["-d", "v"]).status == 204)
        #expect(try request("--http2-prior-knowledge", "GET", server.url("/kv/k")).body == Data("v".utf8))
        try server.stop()
    }

    @Test func theServerRunsWithHugePagesForMalloc() throws {
        let madvise = Self.systemMode == "madvise"
        try Self.check(environment: ["GLIBC_TUNABLES": ""], expected: madvise ? ["glibc.malloc.hugetlb=1"] : [])
        try Self.check(environment: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=2"],
                       expected: madvise ? ["glibc.malloc.arena_max=2", "glibc.malloc.hugetlb=1"] : ["glibc.malloc.arena_max=2"])
    }

    /// Under valgrind (its preload library named in `LD_PRELOAD`) the server does not start again:
    /// `/proc/self/exe` is valgrind's tool there. (A preload that does not exist is ignored by
    /// the loader with a warning, which is all this needs.)
    @Test func underValgrindTheServerIsNotStartedAgain() throws {
        try Self.check(environment: ["GLIBC_TUNABLES": "", "LD_PRELOAD": "/nonexistent/vgpreload_core-amd64-linux.so"], expected: [])
    }

    @Test func aUsersChoiceOfTheTunableIsKept() throws {
        try Self.check(environment: ["GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"], expected: ["glibc.malloc.hugetlb=0"])
    }
}
