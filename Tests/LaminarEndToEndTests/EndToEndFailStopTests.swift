import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A failed fsync with the real server: an `LD_PRELOAD` shim makes libc's `fdatasync` fail once
/// with EIO. The PUT whose sync failed and every later write get `503 storage_failed`, reads go
/// on, `/health` is 503, the log says why, SIGTERM exits 1, and a restart without the shim has
/// every acknowledged write.
@Suite("EndToEnd fail-stop", .serialized)
struct EndToEndFailStopTests {
    /// The shim: the Nth `fdatasync` of the process (`LAMINAR_TEST_FAIL_FDATASYNC_AT`) fails with
    /// EIO; the others go to libc.
    static let shimSource = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <stdatomic.h>
        #include <stdlib.h>

        static atomic_long calls;

        int fdatasync(int fd) {
            static int (*real)(int);
            if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
            long n = atomic_fetch_add(&calls, 1) + 1;
            const char *at = getenv("LAMINAR_TEST_FAIL_FDATASYNC_AT");
            if (at && n == atol(at)) { errno = EIO; return -1; }
            return real(fd);
        }
        """

    /// Compiles the shim with `cc` into `dir`; returns the library's path.
    static func buildShim(in dir: TempDir) throws -> String {
        let source = try dir.write("fail_fdatasync.c", Data(shimSource.utf8))
        let library = dir.file("fail_fdatasync.so")
        let r = try run("cc", ["-shared", "-fPIC", "-O1", "-o", library, source, "-ldl"], timeout: 60)
        guard r.status == 0 else { throw TimedOut(description: "cc failed: \(r)") }
        return library
    }

    static func isStorageFailed(_ answer: HTTPAnswer) -> Bool {
        guard answer.status == 503, let json = try? answer.json() else { return false }
        let detail = json["detail"] as? String ?? ""
        return json["error"] as? String == "storage_failed" && detail.contains("fdatasync") && detail.contains("errno 5")
    }

    @Test func failedFdatasyncStopsWritesKeepsReadsAndRestartRecovers() throws {
        let tools = try TempDir()
        let shim = try Self.buildShim(in: tools)
        let data = try TempDir()
        let args = ["--data-dir", data.path, "--fsync", "always", "--io-threads", "1"]
        // fdatasync #1 writes the new data file's header; each PUT then syncs once: #9 is the 8th PUT's.
        var environment = ["LD_PRELOAD": shim, "LAMINAR_TEST_FAIL_FDATASYNC_AT": "9"]
        // Under `make test-sanitize` with a shared ASan runtime, the shim would come before it.
        if let asan = ProcessInfo.processInfo.environment["ASAN_OPTIONS"] {
            environment["ASAN_OPTIONS"] = asan + ":verify_asan_link_order=0"
        }
        let server = try Server(args, environment: environment)
        var acknowledged: [String: String] = [:]
        var firstFailure: Int?
        for i in 0..<20 {
            let put = try request("--http1.1", "PUT", server.url("/kv/key\(i)"), ["--data-binary", "value \(i)"])
            if put.status == 204 {
                #expect(firstFailure == nil, "PUT \(i) acknowledged after PUT \(firstFailure ?? -1) failed")
                acknowledged["key\(i)"] = "value \(i)"
            } else {
                #expect(Self.isStorageFailed(put), "PUT \(i): \(put.status) \(put.text)")
                if firstFailure == nil { firstFailure = i }
            }
        }
        let failedAt = try #require(firstFailure, "no PUT failed: the shim did not take effect")
        #expect(acknowledged.count == failedAt && failedAt >= 3, "failed at PUT \(failedAt)")

        // Every kind of write is refused; reads are served from memory.
        let delete = try request("--http2-prior-knowledge", "DELETE", server.url("/kv/key0"))
        #expect(Self.isStorageFailed(delete), "DELETE: \(delete.status) \(delete.text)")
        let batch = try request("--http2-prior-knowledge", "POST", server.url("/kv/_batch"),
                                ["--data-binary", #"{"op":"put","key":"b","value":"v"}"#])
        #expect(Self.isStorageFailed(batch), "batch: \(batch.status) \(batch.text)")
        let define = try request("--http1.1", "PUT", server.url("/streams/s"), ["-d", #"{"window_ms":1000}"#])
        #expect(Self.isStorageFailed(define), "stream definition: \(define.status) \(define.text)")
        let get = try request("--http2-prior-knowledge", "GET", server.url("/kv/key0"))
        #expect(get.status == 200 && get.text == "value 0", "GET after the failure: \(get.status) \(get.text)")
        let scan = try request("--http1.1", "GET", server.url("/kv?prefix=key&limit=100"))
        #expect(scan.status == 200)

        // Health and metrics say so; the log says why.
        let health = try request("--http1.1", "GET", server.url("/health"))
        #expect(health.status == 503, "\(health.status) \(health.text)")
        let status = try health.json()
        #expect(status["status"] as? String == "storage_failed")
        #expect((status["detail"] as? String)?.contains("fdatasync") == true, "\(health.text)")
        #expect(try server.metric("laminar_store_failed") == 1)
        let log = try String(contentsOfFile: server.child.errPath, encoding: .utf8)
        let line = log.split(separator: "\n").first { $0.contains("storage failed") }
        #expect(line?.contains("error") == true && line?.contains("errno 5") == true, "no error line for the failure:\n\(log)")

        // SIGTERM: drains and exits 1 (the store failed while it ran).
        server.child.signal(SIGTERM)
        let stopped = try server.child.wait(20)
        #expect(server.child.process.terminationReason == .exit && stopped.status == 1, "\(stopped)")

        // A restart without the shim: every acknowledged write is there; the store takes writes.
        let again = try Server(args)
        for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let r = try request("--http2-prior-knowledge", "GET", again.url("/kv/\(key)"))
            #expect(r.status == 200 && r.text == value, "\(key) after the restart: \(r.status) \(r.text)")
        }
        #expect(try request("--http1.1", "GET", again.url("/health")).status == 200)
        #expect(try request("--http1.1", "PUT", again.url("/kv/after"), ["-d", "x"]).status == 204)
        #expect(try again.metric("laminar_store_failed") == 0)
        try again.stop(within: 20)
        print("[fail-stop] fdatasync failed at PUT \(failedAt); \(acknowledged.count) acknowledged writes recovered")
    }
}
