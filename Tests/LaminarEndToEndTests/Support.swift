import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where the `laminar` executable is: next to the test bundle (SwiftPM puts both in the build
/// products directory), else `.build/debug/laminar` from the package root.
enum Paths {
    static let laminar: String = {
        let fm = FileManager.default
        var candidates: [String] = []
        if let exe = ProcessInfo.processInfo.arguments.first {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            // Walk up out of a `.xctest` bundle if there is one.
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("laminar").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        for bundle in Bundle.allBundles {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("laminar").path)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/laminar").path)
        for c in candidates {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: c, isDirectory: &isDir), !isDir.boolValue, fm.isExecutableFile(atPath: c) { return c }
        }
        return root.appendingPathComponent(".build/debug/laminar").path
    }()

    static func tool(_ name: String) -> String {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return name
    }
}

/// A fresh temporary directory, removed by `remove()`.
final class TempDir {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("laminar-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ data: Data) throws -> String {
        let p = file(name)
        try data.write(to: URL(fileURLWithPath: p))
        return p
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
    deinit { remove() }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass (a bounded wait on an observable
/// condition, not a sleep standing in for synchronisation).
func waitUntil(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if try condition() { return }
        if Date() > deadline { throw TimedOut(description: "timed out after \(seconds) s waiting for \(what)") }
        usleep(10_000)
    }
}

/// The result of a command run to completion.
struct CommandResult: CustomStringConvertible {
    var status: Int32
    var stdout: Data
    var stderr: Data
    var seconds: Double
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
    var description: String { "exit \(status) after \(seconds) s\n--- stdout\n\(out.prefix(4000))\n--- stderr\n\(err.prefix(4000))" }
}

/// A child process whose stdout and stderr go to files (no pipe can fill and block it).
final class Child {
    let process = Process()
    let dir: TempDir
    let outPath: String
    let errPath: String
    let started = Date()

    /// `environment`: variables added to this process's environment for the child.
    init(_ executable: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:]) throws {
        dir = try TempDir()
        outPath = dir.file("stdout")
        errPath = dir.file("stderr")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        if let stdin {
            let inPath = try dir.write("stdin", stdin)
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
    }

    var stdoutSoFar: Data { (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data() }
    var stdoutText: String { String(decoding: stdoutSoFar, as: UTF8.self) }

    func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }

    /// Waits for the exit; SIGKILLs and throws past `seconds`.
    @discardableResult
    func wait(_ seconds: Double) throws -> CommandResult {
        do {
            try waitUntil(seconds, "\(process.executableURL?.lastPathComponent ?? "?") to exit") { !process.isRunning }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw error
        }
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: stdoutSoFar,
            stderr: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data(),
            seconds: Date().timeIntervalSince(started))
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Runs a tool (`curl`, `nghttp`, `h2load`, …) to completion.
@discardableResult
func run(_ tool: String, _ arguments: [String], stdin: Data? = nil, timeout: Double = 30) throws -> CommandResult {
    try Child(Paths.tool(tool), arguments, stdin: stdin).wait(timeout)
}

/// `curl -s` with the given arguments; `-w` output lands at the end of stdout.
@discardableResult
func curl(_ arguments: [String], stdin: Data? = nil, timeout: Double = 20) throws -> CommandResult {
    try run("curl", ["-sS"] + arguments, stdin: stdin, timeout: timeout)
}

/// The parts of a `curl -i` / `-D -` answer: status line, headers (lower-cased names), body.
struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }

    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw TimedOut(description: "not a JSON object: \(text)")
        }
        return object
    }

    /// Splits curl's output with `-D -` (headers then body; 1xx and 101 heads are skipped).
    static func parse(_ data: Data) throws -> HTTPAnswer {
        var rest = data[...]
        let separator = Data("\r\n\r\n".utf8)
        while true {
            guard let r = rest.range(of: separator) else {
                throw TimedOut(description: "no header block in: \(String(decoding: data.prefix(500), as: UTF8.self))")
            }
            let head = String(decoding: rest[rest.startIndex..<r.lowerBound], as: UTF8.self)
            rest = rest[r.upperBound...]
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ")
            guard parts.count >= 2, let status = Int(parts[1]) else {
                throw TimedOut(description: "bad status line \(statusLine)")
            }
            if status < 200 { continue }  // 100 Continue, 101 Switching Protocols
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[name] = headers[name].map { "\($0), \(value)" } ?? value
            }
            return HTTPAnswer(status: status, headers: headers, body: Data(rest))
        }
    }
}

/// One request with curl; `proto` is `--http1.1`, `--http2` or `--http2-prior-knowledge`.
func request(
    _ proto: String, _ method: String, _ url: String, _ extra: [String] = [], stdin: Data? = nil
) throws -> HTTPAnswer {
    // With -D - and -o -, headers and body share stdout in order; -I alone prints the headers.
    var args = [proto]
    if method == "HEAD" { args += ["-I"] } else { args += ["-D", "-", "-o", "-", "-X", method] }
    let r = try curl(args + extra + [url], stdin: stdin)
    guard r.status == 0 else { throw TimedOut(description: "curl failed: \(r)") }
    return try HTTPAnswer.parse(r.stdout)
}

/// A running `laminar serve` on an ephemeral port.
final class Server {
    let child: Child
    let port: Int
    let arguments: [String]
    /// `http://HOST:PORT` from the readiness line (`127.0.0.1` unless `--host` said otherwise).
    let base: String
    private var stopped = false

    /// Starts the server and waits for its readiness line on stdout. `environment` is added to
    /// the server's (e.g. an `LD_PRELOAD` fault shim).
    init(_ extra: [String] = ["--memory"], environment: [String: String] = [:]) throws {
        let arguments = ["serve", "--port", "0"] + extra
        self.arguments = arguments
        let child = try Child(Paths.laminar, arguments, environment: environment)
        self.child = child
        var found: (String, Int)?
        try waitUntil(60, "the readiness line of laminar \(arguments)") {
            let text = child.stdoutText
            if let line = text.split(separator: "\n").first, text.contains("\n") {
                let prefix = "laminar listening on "
                guard line.hasPrefix(prefix), let colon = line.lastIndex(of: ":"), let p = Int(line[line.index(after: colon)...]) else {
                    throw TimedOut(description: "unexpected first stdout line: \(line)")
                }
                found = (String(line.dropFirst(prefix.count)), p)
                return true
            }
            if !child.process.isRunning {
                throw TimedOut(description: "laminar exited early (\(child.process.terminationStatus)): \((try? String(contentsOfFile: child.errPath, encoding: .utf8)) ?? "")")
            }
            return false
        }
        (base, port) = found!
    }

    func url(_ path: String) -> String { base + path }

    /// SIGTERM (or `signal`), then the exit: asserts status 0 within `seconds`.
    @discardableResult
    func stop(within seconds: Double = 10, signal: Int32 = SIGTERM, sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
        stopped = true
        child.signal(signal)
        let r = try child.wait(seconds)
        #expect(child.process.terminationReason == .exit, "laminar ended by a signal: \(r)", sourceLocation: sourceLocation)
        #expect(r.status == 0, "laminar exit status: \(r)", sourceLocation: sourceLocation)
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 1, "stdout should hold exactly the readiness line: \(r.out)", sourceLocation: sourceLocation)
        return r
    }

    /// One sample of `/metrics` (the first whose line starts with `name` followed by a space or `{`).
    func metric(_ name: String) throws -> Double? {
        let r = try curl(["--http1.1", url("/metrics")])
        for line in r.out.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    deinit {
        if !stopped { child.signal(SIGKILL) }
    }
}

/// Random bytes (not cryptographic; reproducible enough for a round trip).
func randomBytes(_ count: Int) -> Data {
    var g = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count { bytes[i] = UInt8.random(in: 0...255, using: &g) }
    return Data(bytes)
}

/// NDJSON lines as JSON objects.
func ndjson(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { line in
        guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TimedOut(description: "not a JSON object line: \(line)")
        }
        return o
    }
}

/// A TCP connection to 127.0.0.1:`port` whose reads time out after `seconds`; `receiveBufferBytes`
/// (set before connecting) keeps the kernel from absorbing much of what a client does not read.
func connectLoopback(port: Int, seconds: Int, receiveBufferBytes: Int32? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TimedOut(description: "socket: \(errno)") }
    if var bytes = receiveBufferBytes { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size)) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        close(fd)
        throw TimedOut(description: "connect: \(errno)")
    }
    var tv = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// Reads until the server closes or a read times out.
func readAll(_ fd: Int32) -> (answer: Data, closedByServer: Bool) {
    var answer = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { answer.append(contentsOf: buffer[0..<n]); continue }
        if n == 0 { return (answer, true) }
        if errno == ECONNRESET { return (answer, true) }
        return (answer, false)  // timeout: the connection stayed open
    }
}

/// Sends raw bytes over a fresh TCP connection and reads until the server closes or `seconds` pass.
func rawExchange(port: Int, _ bytes: [UInt8], seconds: Int = 5) throws -> (answer: Data, closedByServer: Bool) {
    let fd = try connectLoopback(port: port, seconds: seconds)
    defer { close(fd) }
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the server may close before reading everything
        sent += n
    }
    return readAll(fd)
}

/// A raw HTTP/1.1 client that sends `head` (a follow of results) and never reads, with a receive
/// buffer of 4 KiB; returned once the server counts its subscription. The caller closes it.
func subscribeWithoutReading(_ server: Server, _ head: String) throws -> Int32 {
    let fd = try connectLoopback(port: server.port, seconds: 3, receiveBufferBytes: 4096)
    let ask = Array(head.utf8)
    #expect(ask.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == ask.count)
    try waitUntil(10, "the follow to be subscribed") { try server.metric("laminar_subscriptions") == 1 }
    return fd
}

/// Posts up to 40 NDJSON batches of 5000 events 1 ms apart over 50 keys to `stream`: with 1 ms
/// windows every event closes one, ~16 MB of result lines, far past the kernel's socket buffers.
/// Stops early once no subscription is left if `untilDropped`.
func postOneMillisecondWindows(_ server: Server, stream: String, untilDropped: Bool) throws {
    let dir = try TempDir()
    defer { dir.remove() }
    var ts = 1
    for batch in 0..<40 {
        var body = ""
        for i in 0..<5000 {
            body += #"{"key":"k\#(i % 50)","ts":\#(ts),"value":1}"# + "\n"
            ts += 1
        }
        let file = try dir.write("batch\(batch).ndjson", Data(body.utf8))
        let answer = try request("--http2-prior-knowledge", "POST", server.url("/streams/\(stream)/events"),
                                 ["--data-binary", "@\(file)", "-H", "content-type: application/x-ndjson"])
        #expect(answer.status == 202, "batch \(batch): \(answer.text)")
        if untilDropped, try server.metric("laminar_subscriptions") == 0 { break }
    }
}
