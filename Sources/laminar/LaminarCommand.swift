import ArgumentParser
import Glibc
import LaminarServer
import LaminarStore
import Logging

extension AccessPolicy.Scope: ExpressibleByArgument {}

/// `laminar`: the state-store server's command line.
struct LaminarCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "laminar",
        abstract: "Laminar: a state store and stream processor over HTTP/2.",
        subcommands: [Serve.self, Cluster.self, SQLCommand.self],
        defaultSubcommand: Serve.self)
}

/// `laminar serve`: runs the server until SIGTERM or SIGINT, then drains and exits 0 (1 if the
/// store failed while it ran).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server (HTTP/2 with prior knowledge, h2c Upgrade and HTTP/1.1 on one port).")

    @Option(help: "Where to listen: an IPv4 or IPv6 address (:: or 0.0.0.0 for every address; :: is dual-stack where the system allows), or a host name resolved at start (every address it names is bound: localhost is ::1 and 127.0.0.1).")
    var host = "127.0.0.1"

    @Option(help: "TCP port to listen on (0: any free port; the chosen one is logged).")
    var port: UInt16 = 7070

    @Option(name: .customLong("data-dir"), help: "Directory of the data file (created if missing).")
    var dataDirectory = "./laminar-data"

    @Flag(help: "Keep everything in memory: nothing survives a restart.")
    var memory = false

    @Option(help: "When writes are fsynced: always (before each acknowledgement, group commit), interval (every 100 ms), never.")
    var fsync: FsyncChoice = .always

    @Option(name: .customLong("io-threads"), help: "I/O threads, each with its own listener (default: cores minus one for the reactor, at least 1).")
    var ioThreads: Int?

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes (413 above).")
    var maxBody = ServerLimits.default.bodyBytesMax

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Flag(name: .customLong("auto-create-streams"), help: "Posting events to an unknown stream creates it with the default definition.")
    var autoCreateStreams = false

    @Option(name: .customLong("drain-timeout-ms"), help: "On SIGTERM/SIGINT, how long in-flight requests may take to finish.")
    var drainTimeoutMs: Int64 = 5_000

    @Option(name: .customLong("auth-token-file"), help: "File holding a bearer token; requests must then send 'Authorization: Bearer <token>' (see --auth). /health and the web console's files stay open.")
    var authTokenFile: String?

    @Option(help: "With --auth-token-file: which requests need the token: read (every request, the default) or write (all but GET and HEAD).")
    var auth: AccessPolicy.Scope?

    @Option(name: .customLong("idle-timeout-ms"), help: "Close a connection with no request in progress and no bytes moving after this long.")
    var idleTimeoutMs = ServerLimits.default.idleTimeoutMs

    @Option(name: .customLong("request-timeout-ms"), help: "A request's headers and body (and an HTTP/2 client's preface) must arrive within this long of its first byte.")
    var requestTimeoutMs = ServerLimits.default.requestTimeoutMs

    @Option(name: .customLong("subscriber-backlog-bytes"), help: "A watch or follow whose client leaves this many bytes unread gets a final slow_consumer line and its response ends.")
    var subscriberBacklogBytes = ServerLimits.default.subscriberBacklogBytesMax

    @Flag(help: "This node is one partition of a cluster behind HAProxy (see 'laminar cluster'): refuse, with 400 cross_partition, what would span partition tags.")
    var cluster = false

    @Option(name: .customLong("progress-interval-ms"), help: "A results follower gets a progress line (watermark and seq) when nothing else was sent to it for this long; 0: never.")
    var progressIntervalMs = ServerLimits.default.followProgressIntervalMs

    @Option(name: .customLong("results-retained-max"), help: "Result rows a stream retains at most (for GET …/results and since); the oldest leave first.")
    var resultsRetainedMax = ServerLimits.default.resultsRetainedPerStreamMax

    @Option(name: .customLong("thread-slice-us"), help: "The time slice, in microseconds, the I/O threads, the reactor and its commit syncer ask the scheduler for (Linux 6.12+: a thread with a shorter slice gets the CPU sooner when it wakes, not more of it); 0 keeps the kernel's default.")
    var threadSliceUs = Int(ServerConfiguration().threadSliceNs / 1000)

    enum FsyncChoice: String, ExpressibleByArgument, CaseIterable {
        case always, interval, never
    }

    func validate() throws {
        if let n = ioThreads, n < 1 || n > 256 { throw ValidationError("--io-threads must be 1...256") }
        if maxBody < 0 { throw ValidationError("--max-body must be >= 0") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
        if drainTimeoutMs < 0 { throw ValidationError("--drain-timeout-ms must be >= 0") }
        if auth != nil && authTokenFile == nil { throw ValidationError("--auth needs --auth-token-file") }
        if idleTimeoutMs < 1 { throw ValidationError("--idle-timeout-ms must be >= 1") }
        if requestTimeoutMs < 1 { throw ValidationError("--request-timeout-ms must be >= 1") }
        let backlog = ServerLimits.subscriberBacklogBytesRange
        if !backlog.contains(subscriberBacklogBytes) {
            throw ValidationError("--subscriber-backlog-bytes must be \(backlog.lowerBound)...\(backlog.upperBound)")
        }
        if progressIntervalMs < 0 || progressIntervalMs > 3_600_000 { throw ValidationError("--progress-interval-ms must be 0...3600000") }
        if resultsRetainedMax < 1 { throw ValidationError("--results-retained-max must be >= 1") }
        if threadSliceUs != 0 && !(100...100_000).contains(threadSliceUs) { throw ValidationError("--thread-slice-us must be 0 or 100...100000") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "laminar")

        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = dataDirectory
        configuration.inMemory = memory
        configuration.fsync = switch fsync {
        case .always: .always
        case .interval: .interval
        case .never: .never
        }
        configuration.ioThreads = ioThreads ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1)
        configuration.limits.bodyBytesMax = maxBody
        configuration.autoCreateStreams = autoCreateStreams
        configuration.drainTimeoutMs = drainTimeoutMs
        if let authTokenFile {
            do {
                configuration.access = try AccessPolicy.load(tokenFile: authTokenFile, scope: auth ?? .everything)
            } catch {
                logger.critical("cannot start", metadata: ["error": "--auth-token-file \(error.description)"])
                throw ExitCode(1)
            }
        }
        configuration.limits.idleTimeoutMs = idleTimeoutMs
        configuration.limits.requestTimeoutMs = requestTimeoutMs
        configuration.limits.subscriberBacklogBytesMax = subscriberBacklogBytes
        configuration.cluster = cluster
        configuration.limits.followProgressIntervalMs = progressIntervalMs
        configuration.limits.resultsRetainedPerStreamMax = resultsRetainedMax
        configuration.threadSliceNs = UInt64(threadSliceUs) * 1000
        raiseDescriptorLimit(logger)

        // Every thread started from here on inherits the blocked signals; this thread takes them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let server: ServerRuntime
        do {
            server = try ServerRuntime(configuration: configuration, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        // The readiness line tests and scripts wait for (stdout, flushed).
        print("laminar listening on \(server.url)")
        fflush(nil)  // all streams: stdout is a C global Swift 6 will not touch

        var received: Int32 = 0
        sigwait(&signals, &received)
        logger.info("stopping", metadata: ["signal": "\(received == SIGTERM ? "SIGTERM" : "SIGINT")"])
        // After a storage failure (fail-stop) the server stayed up for reads; it exits 1 so a
        // supervisor sees the failure.
        if !server.stop() { throw ExitCode(1) }
    }
}

/// Each connection is a descriptor: raise the soft RLIMIT_NOFILE to the hard limit (often 1024
/// soft against far more hard), so the server can hold the connections `HTTPLimits` allows.
private func raiseDescriptorLimit(_ logger: Logger) {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    let previous = limit.rlim_cur
    limit.rlim_cur = limit.rlim_max
    if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
        logger.warning("cannot raise the descriptor limit", metadata: ["soft": "\(previous)", "errno": "\(errno)"])
    }
}
