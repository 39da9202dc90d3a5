import Foundation
import Testing

/// Runs the laminar-load executable against nghttpd (h2c prior knowledge) serving a 10-byte file.
@Suite struct EndToEndTests {
    static let nghttpd = "/usr/sbin/nghttpd"

    static var loadPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        var dir = String(decoding: buffer[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        while !dir.isEmpty && dir != "/" && !FileManager.default.fileExists(atPath: dir + "/laminar-load") {
            dir = (dir as NSString).deletingLastPathComponent
        }
        return dir + "/laminar-load"
    }

    /// A port the kernel just handed out (bound and released: a small race, acceptable here).
    static func freePort() -> UInt16 {
        let (fd, port) = loopbackSocket(listening: false)
        close(fd)
        return port
    }

    /// A TCP socket bound to 127.0.0.1 on a port the kernel picks (listening if asked, backlog 16)
    /// and that port; the caller closes it. Port 0 when a call failed.
    static func loopbackSocket(listening: Bool) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && (!listening || listen(fd, 16) == 0) && getsockname(fd, $0, &length) == 0
            }
        }
        return (fd, ok ? UInt16(bigEndian: address.sin_port) : 0)
    }

    static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    static func runLoad(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: loadPath)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: EndToEndTests.nghttpd), "nghttpd is not installed (apt-get install nghttp2-server)"))
    func shortGetRunAgainstNghttpd() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("laminar-load-e2e-\(getpid())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try Data("0123456789".utf8).write(to: root.appendingPathComponent("file"))
        let port = Self.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.nghttpd)
        server.arguments = ["--no-tls", "-d", root.path, "\(port)"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: nghttpd started from a test process may inherit SIGTERM blocked.
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        // Readiness: poll-connect, bounded at 20 s (generous for a loaded machine).
        var ready = false
        for _ in 0..<2000 {
            if Self.accepts(port) { ready = true; break }
            usleep(10_000)
        }
        try #require(ready, "nghttpd did not listen on \(port)")

        let run = try Self.runLoad(["get", "--url", "http://127.0.0.1:\(port)", "--path", "/file", "-c", "2", "-m", "4", "-D", "1s", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "stdout: \(run.stdout)")
        let requests = try #require(report["requests"] as? Int)
        #expect(requests > 0)
        let errors = try #require(report["errors"] as? [String: Int])
        #expect(errors.values.allSatisfy { $0 == 0 }, "errors: \(errors)")
        #expect((report["status"] as? [String: Int])?["200"] == requests)

        // --requests: the run ends at its count with requests still in flight (this overflowed
        // the end-time arithmetic, a crash, when there is no --duration).
        let counted = try Self.runLoad(["get", "--url", "http://127.0.0.1:\(port)", "--path", "/file", "-c", "1", "-m", "8", "-n", "403", "--json"])
        #expect(counted.status == 0, "stderr: \(counted.stderr)")
        let countedReport = try #require(try JSONSerialization.jsonObject(with: Data(counted.stdout.utf8)) as? [String: Any], "stdout: \(counted.stdout)")
        #expect(countedReport["requests"] as? Int == 403)

        // --rate: the open loop reports its send lag, a part of each request's latency (both
        // count from the scheduled time), so no percentile of it exceeds the latency's.
        let paced = try Self.runLoad(["get", "--url", "http://127.0.0.1:\(port)", "--path", "/file", "-c", "2", "-m", "4", "--rate", "2000", "-D", "1s", "--json"])
        #expect(paced.status == 0, "stderr: \(paced.stderr)")
        let pacedReport = try #require(try JSONSerialization.jsonObject(with: Data(paced.stdout.utf8)) as? [String: Any], "stdout: \(paced.stdout)")
        let lag = try #require(pacedReport["send_lag_ms"] as? [String: Double], "stdout: \(paced.stdout)")
        let latency = try #require(pacedReport["latency_ms"] as? [String: Double])
        for key in ["p50", "p90", "p99", "p99.9", "max"] {
            let l = try #require(lag[key]), t = try #require(latency[key])
            #expect(l >= 0 && l <= t, "\(key): send lag \(l) ms, latency \(t) ms")
        }
        #expect(report["send_lag_ms"] == nil, "a closed loop has no schedule")
    }

    /// An open loop whose streams are all busy (a server that never answers) waits for I/O: it
    /// used to wake for the request already due and spin on a core until a stream freed.
    @Test func openLoopWithEveryStreamBusyDoesNotSpin() throws {
        // A listener that never accepts: connects succeed (the kernel's backlog), nothing answers.
        let (fd, port) = Self.loopbackSocket(listening: true)
        defer { close(fd) }
        try #require(port != 0)
        // One stream, 2000 requests/s for 2 s, each request given up after 1 s: all but a few wait
        // for the stream. The shell's `times` prints its children's user and system CPU seconds.
        let script = #""$0" "$@" >/dev/null 2>&1; times"#
        let run = try Self.runShell(script, [Self.loadPath, "get", "--url", "http://127.0.0.1:\(port)", "-c", "1", "-m", "1",
                                             "--rate", "2000", "-D", "2s", "--timeout", "1s"])
        let children = try #require(run.split(separator: "\n").last, "times printed: \(run)")
        let seconds = children.split(separator: " ").map { field -> Double in
            let parts = field.dropLast().split(separator: "m")  // "0m0.120s"
            return (Double(parts.first ?? "") ?? 99) * 60 + (Double(parts.last ?? "") ?? 99)
        }
        try #require(seconds.count == 2, "times printed: \(run)")
        #expect(seconds[0] + seconds[1] < 0.5, "laminar-load used \(seconds) s of CPU over a 2-3 s run")
    }

    static func runShell(_ script: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func unreachableServerExitsThree() throws {
        let port = Self.freePort()  // released: nothing listens
        let run = try Self.runLoad(["get", "--url", "http://127.0.0.1:\(port)", "-D", "1s"])
        #expect(run.status == 3)
        #expect(run.stderr.contains("cannot connect") && run.stderr.split(separator: "\n").count == 1)
    }

    @Test func badFlagsExitTwo() throws {
        #expect(try Self.runLoad(["kv", "--mix", "get=x"]).status == 2)
        #expect(try Self.runLoad(["nonsense"]).status == 2)
        #expect(try Self.runLoad(["--help"]).status == 0)
    }
}
