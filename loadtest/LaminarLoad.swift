import ArgumentParser
import Foundation
import Glibc

extension Scenario: ExpressibleByArgument {}
extension EventWireFormat: ExpressibleByArgument {}

@main
struct LaminarLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "laminar-load",
        abstract: "HTTP/2 (h2c prior knowledge) load generator for Laminar.",
        discussion: """
            Scenarios: get (GET --path, to compare with h2load against any h2c server), kv, scan, ingest, mixed;
            verify (no load: check a --ledger FILE written by an earlier --verify --ledger run, e.g. after the
            server was killed during that run and restarted).
            Closed loop by default (every free stream sends the next request); --rate makes it open loop
            (requests scheduled at fixed intervals, latency measured from the scheduled time).

            Exit codes:
              0  ok
              1  --verify found a lost or mismatched key (or could not read one back), or a stream whose
                 event count misses acknowledged events or counts some twice
              2  bad flags
              3  server unreachable (one-line message on stderr)
              4  errors above --error-threshold: the fraction of measured requests that failed
                 (transport errors: stream reset, refused stream, timeout, protocol, connection
                 closed; or an unexpected status: anything but 2xx, except 404 for a kv GET or
                 DELETE) exceeds the threshold (default 0: any error); also a failed stream
                 set-up or no request completed at all
            """)

    @Argument(help: "get | kv | scan | ingest | mixed | verify")
    var scenario: Scenario = .kv

    @Option(help: "Server URL (h2c prior knowledge).") var url = "http://127.0.0.1:7070"
    @Option(name: [.customShort("c"), .long], help: "Connections (spread over the threads).") var connections = 16
    @Option(name: [.customShort("m"), .long], help: "Concurrent streams per connection.") var streams = 32
    @Option(name: [.customShort("t"), .long], help: "Threads, one event loop each.") var threads = 1
    @Option(name: [.customShort("D"), .long], help: "Measured duration (30s, 500ms, 2m) unless --requests.") var duration = "10s"
    @Option(name: [.customShort("n"), .long], help: "Measured requests instead of a duration.") var requests: Int?
    @Option(help: "Warm-up before measuring.") var warmup = "0s"
    @Option(help: "Open loop: requests per second over all threads.") var rate: Double?
    @Option(help: "Request timeout (the stream is reset).") var timeout = "10s"
    @Option(help: "Operation weights: get=N,put=N,delete=N (also scan=N, ingest=N). Default: get=90,put=10; mixed: get=80,put=10,ingest=10.") var mix: String?
    @Option(help: "Key space size.") var keys = 10_000
    @Option(help: "Key distribution: uniform | zipf:S (e.g. zipf:0.99).") var dist = "uniform"
    @Option(help: "PUT value bytes.") var valueSize = 100
    @Flag(help: "PUT every key before the measured run (implied by scan).") var preload = false
    @Option(help: "Scan: keys per prefix group and the scan limit.") var scanSize = 100
    @Option(help: "GET scenario: the path to request.") var path = "/"
    @Option(help: "Ingest: the stream name (created with PUT /streams/NAME first).") var stream = "load"
    @Option(help: "Ingest: the stream definition JSON sent on creation.")
    var streamDefinition = #"{"key_field":"key","time_field":"ts","value_field":"value","window":"1s","aggregates":["count","sum","max"]}"#
    @Option(help: "Ingest: events per POST.") var batch = 100
    @Option(help: "Ingest: binary | ndjson.") var format: EventWireFormat = .binary
    @Option(help: "Ingest: event times spread uniformly ± this many ms around now.") var skewMs: Int64 = 0
    @Option(help: "Ingest: fraction of events stamped an hour in the past (late).") var lateFraction = 0.0
    @Flag(help: "Record acknowledged writes (and event batches, sent with Idempotency-Keys) and check them all at the end.") var verify = false
    @Option(help: "With --verify: write the ledger to FILE after the load instead of checking; `verify --ledger FILE` checks it later.") var ledger: String?
    @Option(help: "Written before every KV key (A-Z a-z 0-9 . _ -), so that runs on one server use disjoint keys.") var keyPrefix = ""
    @Option(help: "Spread KV keys over N partition tags: keys t0/… to t{N-1}/… (a scan group stays within a tag), for a cluster behind HAProxy.") var tags: Int?

    @Option(help: "Exit 4 when the failed fraction of requests exceeds this.") var errorThreshold = 0.0
    @Flag(help: "Print the final report as one JSON object on stdout.") var json = false
    @Option(help: "Write the HdrHistogram percentile distribution (.hgrm, ms) to this file.") var hgrm: String?

    func makeConfig() throws(FlagError) -> LoadConfig {
        var c = LoadConfig(target: try Target(parsing: url))
        c.scenario = scenario
        c.runID = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        if scenario == .verify {
            guard let ledger else { throw FlagError("verify needs --ledger FILE (written by a run with --verify --ledger FILE)") }
            c.ledgerPath = ledger
            c.verify = true
            guard connections >= 1, connections <= 100_000, streams >= 1, streams <= 10_000 else { throw FlagError("--connections 1...100000, --streams 1...10000") }
            c.connections = connections
            c.streams = streams
            return c
        }
        guard connections >= 1, connections <= 100_000 else { throw FlagError("--connections must be 1...100000") }
        guard streams >= 1, streams <= 10_000 else { throw FlagError("--streams must be 1...10000") }
        guard threads >= 1, threads <= 256 else { throw FlagError("--threads must be 1...256") }
        c.connections = connections
        c.streams = streams
        c.threads = min(threads, connections)
        if let requests {
            guard requests >= 1 else { throw FlagError("--requests must be positive") }
            c.requests = requests
            c.durationNs = nil
        } else {
            c.durationNs = try DurationParser.nanoseconds(duration)
            guard c.durationNs! > 0 else { throw FlagError("--duration must be positive") }
        }
        c.warmupNs = try DurationParser.nanoseconds(warmup)
        c.timeoutNs = try DurationParser.nanoseconds(timeout)
        guard c.timeoutNs > 0 else { throw FlagError("--timeout must be positive") }
        if let rate {
            guard rate > 0, rate.isFinite else { throw FlagError("--rate must be positive") }
            c.ratePerSecond = rate
        }
        switch scenario {
        case .get: c.mix = Mix(weights: [.get: 1])
        case .kv: c.mix = try mix.map { m throws(FlagError) in try Mix(parsing: m) } ?? Mix(weights: [.get: 90, .put: 10])
        case .scan: c.mix = try mix.map { m throws(FlagError) in try Mix(parsing: m) } ?? Mix(weights: [.scan: 1])
        case .ingest: c.mix = Mix(weights: [.ingest: 1])
        case .mixed: c.mix = try mix.map { m throws(FlagError) in try Mix(parsing: m) } ?? Mix(weights: [.get: 80, .put: 10, .ingest: 10])
        case .verify: break
        }
        if scenario == .kv && (c.mix.weight(.scan) > 0 || c.mix.weight(.ingest) > 0) {
            throw FlagError("kv mixes take get, put and delete; use the mixed scenario for scan and ingest")
        }
        guard keys >= 1, keys <= 1_000_000_000 else { throw FlagError("--keys must be 1...1000000000") }
        c.keys = keys
        c.distribution = try KeyDistribution(parsing: dist)
        guard valueSize >= 0, valueSize <= 64 << 20 else { throw FlagError("--value-size must be 0...67108864") }
        c.valueBytes = valueSize
        guard scanSize >= 1, scanSize <= 10_000 else { throw FlagError("--scan-size must be 1...10000") }
        c.scanSize = scanSize
        c.preload = preload || c.mix.weight(.scan) > 0
        guard path.hasPrefix("/") else { throw FlagError("--path must start with /") }
        c.path = path
        guard !stream.isEmpty, stream.utf8.allSatisfy({ $0 < 128 && ($0 == 45 || $0 == 46 || $0 == 95 || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0)) }) else {
            throw FlagError("--stream: 1 or more of A-Z a-z 0-9 . _ -")
        }
        c.streamName = stream
        c.streamDefinition = streamDefinition
        guard batch >= 1, batch <= 1_000_000 else { throw FlagError("--batch must be 1...1000000") }
        c.batch = batch
        c.format = format
        guard skewMs >= 0 else { throw FlagError("--skew-ms must be >= 0") }
        c.skewMs = skewMs
        guard lateFraction >= 0, lateFraction <= 1 else { throw FlagError("--late-fraction must be 0...1") }
        c.lateFraction = lateFraction
        c.verify = verify
        if verify && c.mix.weight(.put) + c.mix.weight(.delete) + c.mix.weight(.ingest) == 0 && !c.preload {
            throw FlagError("--verify needs writes: a mix with put, delete or ingest, or --preload")
        }
        if ledger != nil && !verify { throw FlagError("--ledger needs --verify") }
        c.ledgerPath = ledger
        guard keyPrefix.utf8.allSatisfy({ $0 == 45 || $0 == 46 || $0 == 95 || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }) else {
            throw FlagError("--key-prefix: only A-Z a-z 0-9 . _ -")
        }
        c.keyPrefix = keyPrefix
        if let tags {
            guard tags >= 1, tags <= 1_000_000 else { throw FlagError("--tags must be 1...1000000") }
            c.tags = tags
        }
        guard errorThreshold >= 0, errorThreshold <= 1 else { throw FlagError("--error-threshold must be 0...1") }
        c.errorThreshold = errorThreshold
        return c
    }

    func execute() -> LoadExit {
        let config: LoadConfig
        do { config = try makeConfig() } catch {
            FileHandle.standardError.write(Data("laminar-load: \(error.message)\n".utf8))
            return .badFlags
        }
        let result: RunResult
        do { result = try Runner.run(config) } catch {
            FileHandle.standardError.write(Data("laminar-load: \(error.message)\n".utf8))
            return error.exit
        }
        let report = Report(config: config, result: result)
        FileHandle.standardOutput.write(Data((json ? report.json() : report.table()).utf8))
        if let hgrm {
            do { try report.hgrm().write(toFile: hgrm, atomically: true, encoding: .utf8) } catch {
                FileHandle.standardError.write(Data("laminar-load: cannot write \(hgrm): \(error)\n".utf8))
            }
        }
        let s = result.stats
        if config.verify && (s.verifyLost + s.verifyMismatch + s.verifyErrors > 0) {
            FileHandle.standardError.write(Data("laminar-load: verify failed: \(s.verifyLost) lost, \(s.verifyMismatch) mismatched, \(s.verifyErrors) unreadable\n".utf8))
            return .verifyFailed
        }
        if let check = result.eventCheck, check.failed {
            FileHandle.standardError.write(Data("laminar-load: verify failed: stream \(check.stream): \(Report.describe(check))\n".utf8))
            return .verifyFailed
        }
        if config.scenario == .verify { return .ok }
        if s.requests == 0 {
            FileHandle.standardError.write(Data("laminar-load: no request completed\n".utf8))
            return .errorsAboveThreshold
        }
        if report.errorFraction > config.errorThreshold {
            FileHandle.standardError.write(Data(String(format: "laminar-load: %d of %d requests failed (%.4f > --error-threshold %.4f)\n",
                                                       s.requestErrors, s.requests, report.errorFraction, config.errorThreshold).utf8))
            return .errorsAboveThreshold
        }
        return .ok
    }

    /// ArgumentParser's own usage errors exit 64; the documented code is 2.
    static func main() {
        let command: LaminarLoad
        do {
            command = try parse()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            FileHandle.standardError.write(Data("laminar-load: \(message(for: error))\n".utf8))
            Glibc.exit(LoadExit.badFlags.rawValue)
        }
        Glibc.exit(command.execute().rawValue)
    }

    func run() throws {}
}
