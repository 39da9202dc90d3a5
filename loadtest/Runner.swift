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
}

/// What the load threads hand back to the main thread.
final class SharedResults: Sendable {
    let results = Mutex<[(Int, ThreadStats, Double, Int)]>([])
    let failures = Mutex<[String]>([])
    let finishedThreads = Atomic<Int>(0)
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
        try probe(config)
        if config.scenario == .ingest || config.mix.weight(.ingest) > 0 { try defineStream(config) }

        let threads = config.threads
        let shared = SharedResults()
        let progress = (0..<threads).map { _ in ThreadProgress() }
        for t in 0..<threads {
            let threadProgress = progress[t]
            let thread = Thread {
                do {
                    let (stats, seconds, preloadErrors) = try runThread(config, index: t, progress: threadProgress)
                    shared.results.withLock { $0.append((t, stats, seconds, preloadErrors)) }
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
        for (_, stats, seconds, preloadErrors) in shared.results.withLock({ $0 }) {
            result.stats.add(stats)
            result.seconds = max(result.seconds, seconds)
            result.preloadErrors += preloadErrors
        }
        return result
    }

    private static func probe(_ config: LoadConfig) throws(LoadAbort) {
        let loop: ClientLoop
        do { loop = try ClientLoop(host: config.target.host, port: config.target.port, connections: 1, slotsPerConnection: 1) } catch {
            throw LoadAbort(exit: .unreachable, message: "cannot create a socket: \(error)")
        }
        let driver = ProbeDriver()
        loop.run(driver)
        if let failure = driver.failure {
            throw LoadAbort(exit: .unreachable, message: "cannot connect to \(config.target.host):\(config.target.port): \(describe(failure))")
        }
    }

    /// PUT /streams/NAME with the definition; anything but 2xx aborts the run.
    private static func defineStream(_ config: LoadConfig) throws(LoadAbort) {
        let loop: ClientLoop
        do { loop = try ClientLoop(host: config.target.host, port: config.target.port, connections: 1, slotsPerConnection: 1) } catch {
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
            throw LoadAbort(exit: .unreachable, message: "cannot connect to \(config.target.host):\(config.target.port): \(describe(failure))")
        }
        guard case .response(let status) = outcome, (200..<300).contains(status) else {
            throw LoadAbort(
                exit: .errorsAboveThreshold,
                message: "creating stream \(config.streamName) failed: \(outcome) \(String(decoding: answer.prefix(300), as: UTF8.self))")
        }
    }

    /// One load thread: preload (its share of the keys), the measured load, the read-back.
    private static func runThread(_ config: LoadConfig, index t: Int, progress: ThreadProgress) throws -> (ThreadStats, Double, Int) {
        let threads = config.threads
        let connections = config.connections / threads + (t < config.connections % threads ? 1 : 0)
        let loop = try ClientLoop(host: config.target.host, port: config.target.port, connections: connections, slotsPerConnection: config.streams)
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

        if config.verify {
            let keys = state.ledger.keysToCheck
            let namer = KeyNamer(groupSize: config.groupedKeys ? config.scanSize : nil)
            let script = ScriptDriver(
                loop: loop, config: config, count: keys.count,
                build: { i, b in
                    b.kv(keys[i])
                    return ScriptRequest(method: .get, captureBody: true)
                },
                finish: { i, outcome, body in
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
                        state.stats.verifyErrors += 1
                        return
                    }
                    state.stats.verifyChecked += 1
                    switch state.ledger.check(key: key, observedSeq: observed) {
                    case .ok: break
                    case .lost: state.stats.verifyLost += 1
                    case .mismatch: state.stats.verifyMismatch += 1
                    }
                })
            loop.run(script)
            if let failure = script.unreachable {
                throw LoadAbort(exit: .unreachable, message: "verify: cannot connect: \(describe(failure))")
            }
        }
        return (state.stats, max(seconds, 1e-9), preloadErrors)
    }
}

extension LoadAbort: CustomStringConvertible {
    var description: String { message }
}
