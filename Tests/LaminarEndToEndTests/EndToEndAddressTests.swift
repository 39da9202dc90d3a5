import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `laminar serve --host` as people type it (an IPv6 literal, `::`, a host name) with curl and the
/// load client against it, and the plain-words errors for addresses that cannot be used.
@Suite("EndToEnd listen addresses")
struct EndToEndAddressTests {
    /// Why this machine cannot bind the IPv6 loopback, or nil when it can.
    static let noIPv6Loopback: String? = {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "no IPv6 sockets (errno \(errno))" }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        return rc == 0 ? nil : "cannot bind [::1] (errno \(errno))"
    }()

    /// GET /health, PUT and GET of a key with curl over each protocol at `base`.
    func roundTrip(_ base: String, key: String) throws {
        for proto in ["--http2-prior-knowledge", "--http2", "--http1.1"] {
            let health = try curl(["-g", proto, "-w", " %{http_code}", base + "/health"])
            #expect(health.status == 0 && health.out.hasSuffix(" 200"), "\(proto) \(base)/health: \(health)")
            let put = try curl(["-g", proto, "-X", "PUT", "-d", "v-\(proto)", "-o", "/dev/null", "-w", "%{http_code}", base + "/kv/\(key)"])
            #expect(put.out == "204", "\(proto) PUT: \(put)")
            let get = try curl(["-g", proto, base + "/kv/\(key)"])
            #expect(get.out == "v-\(proto)", "\(proto) GET: \(get)")
        }
    }

    @Test func ipv6Loopback() throws {
        if let why = Self.noIPv6Loopback {
            print("skipped ipv6Loopback: \(why)")
            return
        }
        for host in ["::1", "[::1]"] {
            let server = try Server(["--memory", "--host", host])
            #expect(server.base == "http://[::1]:\(server.port)")
            try roundTrip(server.base, key: "v6")
            let load = try Child(Paths.load, ["get", "--url", server.base, "--path", "/health", "-D", "1s", "-c", "1"]).wait(30)
            #expect(load.status == 0, "laminar-load against \(server.base): \(load)")
            try server.stop()
        }
    }

    @Test func hostName() throws {
        let server = try Server(["--memory", "--host", "localhost"])
        #expect(server.base == "http://localhost:\(server.port)")
        try roundTrip(server.base, key: "named")
        // localhost names 127.0.0.1 (and ::1 where /etc/hosts says so): every address is bound.
        try roundTrip("http://127.0.0.1:\(server.port)", key: "named4")
        let load = try Child(Paths.load, ["get", "--url", server.base, "--path", "/health", "-D", "1s", "-c", "1"]).wait(30)
        #expect(load.status == 0, "laminar-load against \(server.base): \(load)")
        try server.stop()
    }

    @Test func everyAddressDualStack() throws {
        if let why = Self.noIPv6Loopback {
            print("skipped everyAddressDualStack: \(why)")
            return
        }
        let server = try Server(["--memory", "--host", "::"])
        try roundTrip("http://127.0.0.1:\(server.port)", key: "dual4")
        try roundTrip("http://[::1]:\(server.port)", key: "dual6")
        try server.stop()
    }

    /// Sockets listening on `port` in /proc/net/tcp (or tcp6): state 0A, local port in hex.
    static func listeners(port: Int, file: String) throws -> Int {
        let hexPort = String(format: ":%04X", port)
        return try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1].hasSuffix(hexPort) && fields[3] == "0A"
        }.count
    }

    /// Every I/O thread's listener is on the port the first one got (port 0 asks the kernel once).
    @Test func everyThreadListensOnThePort() throws {
        let server = try Server(["--memory", "--io-threads", "3"])
        #expect(try Self.listeners(port: server.port, file: "/proc/net/tcp") == 3)
        try server.stop()
        if Self.noIPv6Loopback == nil {
            let v6 = try Server(["--memory", "--io-threads", "2", "--host", "::1"])
            #expect(try Self.listeners(port: v6.port, file: "/proc/net/tcp6") == 2)
            try v6.stop()
        }
    }

    /// The start fails (exit 1) with a message saying what is wrong, not an errno name.
    @Test func unusableAddressesSayWhy() throws {
        func start(_ arguments: [String]) throws -> CommandResult {
            try Child(Paths.laminar, ["serve", "--memory"] + arguments).wait(20)
        }
        let unknown = try start(["--host", "no-such-host.invalid", "--port", "0"])
        #expect(unknown.status == 1 && unknown.err.contains("unknown host 'no-such-host.invalid'"), "\(unknown)")
        let foreign = try start(["--host", "192.0.2.1", "--port", "0"])  // TEST-NET-1: not this machine's
        #expect(foreign.status == 1 && foreign.err.contains("no network interface of this machine has this address"), "\(foreign)")
        let running = try Server()
        let taken = try start(["--port", "\(running.port)"])
        #expect(taken.status == 1 && taken.err.contains("127.0.0.1:\(running.port): the address is already in use"), "\(taken)")
        try running.stop()
        if geteuid() == 0 {
            print("skipped the permission case: running as root, which may listen on port 1")
        } else {
            let denied = try start(["--port", "1"])
            #expect(denied.status == 1 && denied.err.contains("permission denied"), "\(denied)")
        }
    }
}
