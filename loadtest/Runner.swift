import CLinux
import Foundation
import LaminarHTTP
import Synchronization

/// The documented exit codes (README.md, `--help`).
enum LoadExit: Int32 {
    case ok = 0
    case verifyFailed = 1
    case badFlags = 2
    case unreachable = 3
    case errorsAboveThreshold = 4
}

/// A run that cannot go on: a one-line message and an exit code.
struct LoadAbort: Error {
    let exit: LoadExit
    let message: String
}

/// Answers whether anything accepts connections at the target (one connect, no request).
final class ProbeDriver: ClientLoopDriver {
    private(set) var failure: ClientFailure?
    private(set) var reachable = false
    var isFinished: Bool { reachable || failure != nil }
    func connected(_ connection: ClientConnection) { reachable = true }
    func completed(_ connection: ClientConnection, slot: Int, outcome: ClientOutcome) {}
    func connectionFailed(_ connection: ClientConnection, failure: ClientFailure) { self.failure = failure }
    func tick(nowNs: Int64) -> Int64 { nowNs + 100_000_000 }
}

struct RunResult {
    var stats = ThreadStats()
    /// Seconds of the measured window.
    var seconds = 0.0
    var preloadErrors = 0
    /// `--verify --ledger FILE`: where the ledger went (nothing was read back).
    var ledgerWritten: String?
    /// `--verify` with ingest, or `verify` of a ledger with events: the events check.
    var eventCheck: EventCheck?
}

/// The events part of a verification: the stream's count against the ledger.
struct EventCheck {
    var stream: String
    var ackedBatches = 0
    var ackedEvents = 0
    var unknownBatches = 0
    /// Unknown batches sent again with their Idempotency-Key and acknowledged; their events.
    var retriedBatches = 0
    var resolvedEvents = 0
    var duplicateBatches = 0
    /// `events + late_events` of the stream minus the count before the run.
    var counted = 0
    var verdict = EventLedger.Verdict.ok
    /// The stream's stats could not be read.
    var error: String?

    var failed: Bool { verdict != .ok || error != nil || duplicateBatches > 0 }
}

/// What one load thread hands back.
struct ThreadResult {
    var index: Int
    var stats: ThreadStats
    var seconds: Double
    var preloadErrors: Int
    var ledger: VerifyLedger
    var events: EventLedger
}

/// What the load threads hand back to the main thread.
final class SharedResults: Sendable {
    let results = LockedValue<[ThreadResult]>([])
    let failures = LockedValue<[String]>([])
    let finishedThreads = Atomic<Int>(0)
}

/// A value behind an NSLock (a pthread mutex, which ThreadSanitizer understands). Not the
/// Synchronization Mutex: on Linux its lock and unlock run inside the uninstrumented Swift runtime,
/// so under `make test-sanitize` every hand-over between threads showed as a data race.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

enum Runner {
    static func describe(_ failure: ClientFailure) -> String {
        switch failure {
        case .connectRefused: "connection refused"
        case .connectFailed(let errno): String(cString: strerror(errno))
        case .protocolError(let reason): "HTTP/2 protocol error: \(reason)"
        case .connectionClosed: "connection closed by the server"
        case .cancelled: "cancelled"
        }
    }

    static func run(_ config: LoadConfig) throws(LoadAbort) -> RunResult {
        if config.scenario == .verify { return try verifyLedgerFile(config) }
        try probe(config)
        var baseline = 0
        if config.scenario == .ingest || config.mix.weight(.ingest) > 0 {
            try defineStream(config)
            if config.verifiesEvents { baseline = try streamCount(config, stream: config.streamName) }
        }

        let threads = config.threads
        let shared = SharedResults()
        let progress = (0..<threads).map { _ in ThreadProgress() }
        for t in 0..<threads {
            let threadProgress = progress[t]
            let thread = Thread {
                // Named for perf sched and top -H: "load-get-0" (Linux keeps 15 bytes).
                _ = CLinux_set_thread_name(String("load-\(config.scenario)-\(t)".utf8.prefix(15))!)
                do {
                    let result = try runThread(config, index: t, progress: threadProgress)
                    shared.results.withLock { $0.append(result) }
                } catch {
                    shared.failures.withLock { $0.append("\(error)") }
                }
                shared.finishedThreads.add(1, ordering: .releasing)
            }
            thread.stackSize = 1 << 22
            thread.start()
        }
        // Progress once per second on a terminal; otherwise just wait.
        let interactive = isatty(2) == 1
        let startNs = DispatchTime.now().uptimeNanoseconds
        var lastCompleted = 0
        var lastPrintNs = startNs
        while shared.finishedThreads.load(ordering: .acquiring) < threads {
            usleep(50_000)
            let now = DispatchTime.now().uptimeNanoseconds
            guard interactive, now - lastPrintNs >= 1_000_000_000 else { continue }
            let completed = progress.reduce(0) { $0 + $1.completed.load(ordering: .relaxed) }
            let errors = progress.reduce(0) { $0 + $1.errors.load(ordering: .relaxed) }
            let rate = Double(completed - lastCompleted) / (Double(now - lastPrintNs) / 1e9)
            let line = String(format: "\r[%5.0fs] %10d requests  %10.0f req/s  %6d errors ", Double(now - startNs) / 1e9, completed, rate, errors)
            FileHandle.standardError.write(Data(line.utf8))
            lastCompleted = completed
            lastPrintNs = now
        }
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        if let failure = shared.failures.withLock({ $0.first }) { throw LoadAbort(exit: .unreachable, message: failure) }
        var result = RunResult()
        var file = LedgerFile()
        file.groupSize = config.groupedKeys ? config.scanSize : nil
        file.keyPrefix = config.keyPrefix
        file.tags = config.tags
        if config.verifiesEvents {
            file.streamName = config.streamName
            file.baseline = baseline
        }
        for r in shared.results.withLock({ $0 }).sorted(by: { $0.index < $1.index }) {
            result.stats.add(r.stats)
            result.seconds = max(result.seconds, r.seconds)
            result.preloadErrors += r.preloadErrors
            file.kv.merge(r.ledger)
            file.events.merge(r.events)
        }
        guard config.verify else { return result }
        if let path = config.ledgerPath {
            do { try file.encoded().write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw LoadAbort(exit: .verifyFailed, message: "cannot write the ledger \(path): \(error)")
            }
            result.ledgerWritten = path
            return result
        }
        try verify(file, config: config, into: &result)
        return result
    }

    /// `laminar-load verify --ledger FILE`: the checks of --verify, against the ledger of an earlier run.
    private static func verifyLedgerFile(_ config: LoadConfig) throws(LoadAbort) -> RunResult {
        guard let path = config.ledgerPath else { throw LoadAbort(exit: .badFlags, message: "verify needs --ledger FILE") }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LoadAbort(exit: .badFlags, message: "cannot read the ledger \(path): \(error)")
        }
        let file: LedgerFile
        do { file = try LedgerFile(parsing: text) } catch { throw LoadAbort(exit: .badFlags, message: "\(path): \(error.message)") }
        try probe(config)
        var result = RunResult()
        try verify(file, config: config, into: &result)
        return result
    }

    /// Reads back every key of the ledger; sends unknown event batches again (same
    /// Idempotency-Key) and compares the stream's count with the ledger.
    static func verify(_ file: LedgerFile, config: LoadConfig, into result: inout RunResult) throws(LoadAbort) {
        let namer = KeyNamer(groupSize: file.groupSize, prefix: Array(file.keyPrefix.utf8), tags: file.tags)
        let keys = file.kv.keysToCheck
        var stats = ThreadStats()
        try script(config, count: keys.count, what: "verify") { i, b in
            b.path = Array("/kv/".utf8) + namer.key(keys[i])
            return ScriptRequest(method: .get, captureBody: true)
        } finish: { i, outcome, body in
            let key = keys[i]
            var observed: UInt32?? = nil
            if case .response(let status) = outcome {
                if status == 200 {
                    observed = .some(ValueCodec.seq(of: body, key: namer.key(key)) ?? .max)
                } else if status == 404 {
                    observed = .some(nil)
                }
            }
            guard let observed else {
                stats.verifyErrors += 1
                return
            }
            stats.verifyChecked += 1
            switch file.kv.check(key: key, observedSeq: observed) {
            case .ok: break
            case .lost: stats.verifyLost += 1
            case .mismatch: stats.verifyMismatch += 1
            }
        }
        result.stats.verifyChecked += stats.verifyChecked
        result.stats.verifyLost += stats.verifyLost
        result.stats.verifyMismatch += stats.verifyMismatch
        result.stats.verifyErrors += stats.verifyErrors

        guard let stream = file.streamName else { return }
        let ledger = file.events
        var check = EventCheck(stream: stream, ackedBatches: ledger.ackedBatches, ackedEvents: ledger.ackedEvents,
                               unknownBatches: ledger.unknown.count, duplicateBatches: ledger.duplicateBatches)
        let eventsPath = Array("/streams/\(stream)/events".utf8)
        var retried = 0
        var resolved = 0
        try script(config, count: ledger.unknown.count, what: "verify") { i, b in
            let batch = ledger.unknown[i]
            b.path = eventsPath
            b.body = batch.body
            return ScriptRequest(method: .post, contentType: batch.format == .binary ? .laminarEvents : .ndjson, hasBody: true,
                                 captureBody: true, idempotencyKey: Array(batch.idempotencyKey.utf8))
        } finish: { i, outcome, _ in
            if case .response(let status) = outcome, (200..<300).contains(status) {
                retried += 1
                resolved += ledger.unknown[i].events
            }
        }
        check.retriedBatches = retried
        check.resolvedEvents = resolved
        do {
            check.counted = try streamCount(config, stream: stream) - file.baseline
            check.verdict = ledger.check(counted: check.counted, resolvedEvents: resolved)
        } catch {
            check.error = error.message
        }
        result.eventCheck = check
    }

    /// Runs `count` requests on a loop of its own (up to --connections × --streams at once).
    private static func script(
        _ config: LoadConfig, count: Int, what: String,
        build: @escaping (Int, inout RequestBuilder) -> ScriptRequest,
        finish: @escaping (Int, ClientOutcome, [UInt8]) -> Void
    ) throws(LoadAbort) {
        guard count > 0 else { return }
        let loop: ClientLoop
        let target = try address(config)
        do {
            loop = try ClientLoop(address: target, connections: min(config.connections, 8), slotsPerConnection: config.streams)
        } catch {
            throw LoadAbort(exit: .unreachable, message: "cannot create a socket: \(error)")
        }
        let driver = ScriptDriver(loop: loop, config: config, count: count, build: build, finish: finish)
        loop.run(driver)
        if let failure = driver.unreachable {
            throw LoadAbort(exit: .unreachable, message: "\(what): cannot connect to \(config.target.authority): \(describe(failure))")
        }
    }

    /// `events + late_events` of a stream (GET /streams/NAME): every event it was sent once.
    static func streamCount(_ config: LoadConfig, stream: String) throws(LoadAbort) -> Int {
        var outcome: ClientOutcome = .failed(.cancelled)
        var answer: [UInt8] = []
        let path = Array("/streams/\(stream)".utf8)
        var single = config
        single.connections = 1
        single.streams = 1
        try script(single, count: 1, what: "stream stats") { _, b in
            b.path = path
            return ScriptRequest(method: .get, captureBody: true)
        } finish: { _, o, body in
            outcome = o
            answer = body
        }
        guard case .response(200) = outcome,
              let object = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any],
              let stats = object["stats"] as? [String: Any],
              let events = (stats["events"] as? NSNumber)?.intValue, let late = (stats["late_events"] as? NSNumber)?.intValue
        else {
            throw LoadAbort(exit: .verifyFailed,
                            message: "GET /streams/\(stream): \(outcome) \(String(decoding: answer.prefix(300), as: UTF8.self))")
        }
        return events + late
    }

    /// The address of `--url`'s host: a literal as is; of a name's addresses the first that
    /// accepts a connection (`localhost`: `::1` or `127.0.0.1`, whichever the server listens on).
    private static func address(_ config: LoadConfig) throws(LoadAbort) -> SocketAddress {
        do {
            return SocketAddress.preferred(try SocketAddress.resolve(config.target.host, port: config.target.port))
        } catch {
            throw LoadAbort(exit: .unreachable, message: "cannot connect to \(config.target.authority): \(error)")
        }
    }

    private static func probe(_ config: LoadConfig) throws(LoadAbort) {
        let loop: ClientLoop
        let target = try address(config)
        do { loop = try ClientLoop(address: target, connections: 1, slotsPerConnection: 1) } catch {
            throw LoadAbort(exit: .unreachable, message: "cannot create a socket: \(error)")
        }
        let driver = ProbeDriver()
        loop.run(driver)
        if let failure = driver.failure {
            throw LoadAbort(exit: .unreachable, message: "cannot connect to \(config.target.authority): \(describe(failure))")
        }
    }

    /// PUT /streams/NAME with the definition; anything but 2xx aborts the run.
    private static func defineStream(_ config: LoadConfig) throws(LoadAbort) {
        let loop: ClientLoop
        let target = try address(config)
        do { loop = try ClientLoop(address: target, connections: 1, slotsPerConnection: 1) } catch {
            throw LoadAbort(exit: .unreachable, message: "cannot create a socket: \(error)")
        }
        var single = config
        single.streams = 1
        var outcome: ClientOutcome = .failed(.cancelled)
        var answer: [UInt8] = []
        let path = Array("/streams/\(config.streamName)".utf8)
        let definition = Array(config.streamDefinition.utf8)
        let driver = ScriptDriver(
            loop: loop, config: single, count: 1,
            build: { _, b in
                b.path = path
                b.body = definition
                return ScriptRequest(method: .put, contentType: .json, hasBody: true, captureBody: true)
            },
            finish: { _, o, body in outcome = o; answer = body })
        loop.run(driver)
        if let failure = driver.unreachable {
            throw LoadAbort(exit: .unreachable, message: "cannot connect to \(config.target.authority): \(describe(failure))")
        }
        guard case .response(let status) = outcome, (200..<300).contains(status) else {
            throw LoadAbort(
                exit: .errorsAboveThreshold,
                message: "creating stream \(config.streamName) failed: \(outcome) \(String(decoding: answer.prefix(300), as: UTF8.self))")
        }
    }

    /// One load thread: preload (its share of the keys), the measured load, the read-back.
    private static func runThread(_ config: LoadConfig, index t: Int, progress: ThreadProgress) throws -> ThreadResult {
        let threads = config.threads
        let connections = config.connections / threads + (t < config.connections % threads ? 1 : 0)
        let loop = try ClientLoop(address: try address(config), connections: connections, slotsPerConnection: config.streams)
        let state = ThreadState(index: t, count: threads, progress: progress)
        var preloadErrors = 0

        if config.preload {
            let count = (config.keys - t + threads - 1) / threads
            let verify = config.verify
            var seqs = [UInt32](repeating: 0, count: count)
            let script = ScriptDriver(
                loop: loop, config: config, count: count,
                build: { i, b in
                    let key = t + i * threads
                    b.kv(key)
                    if verify { seqs[i] = state.ledger.issue(key: key, isDelete: false) }
                    b.value(seq: seqs[i])
                    return ScriptRequest(method: .put, contentType: .octetStream, hasBody: true)
                },
                finish: { i, outcome, _ in
                    let key = t + i * threads
                    if case .response(let status) = outcome, (200..<300).contains(status) {
                        if verify { state.ledger.acknowledge(key: key, seq: seqs[i]) }
                    } else {
                        preloadErrors += 1
                        if verify { state.ledger.unknown(key: key, seq: seqs[i]) }
                    }
                })
            loop.run(script)
            if let failure = script.unreachable {
                throw LoadAbort(exit: .unreachable, message: "preload: cannot connect: \(describe(failure))")
            }
        }

        let quota = config.requests.map { $0 / threads + (t < $0 % threads ? 1 : 0) }
        let driver = LoadDriver(config: config, state: state, loop: loop, requestsQuota: quota)
        let beginNs = loop.nowNs
        loop.run(driver)
        let endNs = loop.nowNs
        let seconds = config.durationNs.map { Double($0) / 1e9 } ?? Double(endNs - beginNs - config.warmupNs) / 1e9

        if config.verify { state.ledger.settlePending() }
        return ThreadResult(index: t, stats: state.stats, seconds: max(seconds, 1e-9), preloadErrors: preloadErrors,
                            ledger: state.ledger, events: state.events)
    }
}

extension LoadAbort: CustomStringConvertible {
    var description: String { message }
}
