import LaminarFormats
import LaminarHTTP
import LaminarReactor
import LaminarStore
import Logging

/// Everything `laminar serve` is configured with (the command line's flags).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 7070
    public var dataDirectory = "./laminar-data"
    /// Keep everything in memory (nothing survives a restart).
    public var inMemory = false
    public var fsync: FsyncPolicy = .always
    public var ioThreads = 1
    public var bodyBytesMax = 64 * 1024 * 1024
    /// Posting events to an unknown stream creates it with the default definition.
    public var autoCreateStreams = false
    public var drainTimeoutMs: Int64 = 5_000
    /// Bearer-token access control; nil: everything is open.
    public var access: AccessPolicy?
    /// `HTTPLimits.idleTimeoutMs` and `HTTPLimits.slowRequestTimeoutMs`.
    public var idleTimeoutMs: Int64 = 60_000
    public var requestTimeoutMs: Int64 = 10_000
    /// A watch or follow whose client leaves this many bytes unread gets a final `slow_consumer`
    /// line and its response ends (the reactor never waits for a reader). Lines written at once
    /// (one wake of the I/O thread) may reach `ServerRuntime.streamingBytesMax`, four times this.
    public var subscriberBacklogBytesMax = 1 << 20
    /// Bounds of `subscriberBacklogBytesMax`.
    public static let subscriberBacklogBytesRange = 4096...(1 << 28)
    /// How often a follower is told how far results are complete (a progress line when nothing
    /// else was sent since the last one), in milliseconds; 0: never (`ReactorLimits`).
    public var followProgressIntervalMs = ReactorLimits.default.followProgressIntervalMs
    /// Result rows a stream retains at most (`ReactorLimits.resultsRetainedPerStreamMax`).
    public var resultsRetainedPerStreamMax = ReactorLimits.default.resultsRetainedPerStreamMax

    public init() {}
}

/// A running Laminar server: the store, the reactor thread that owns it, and the HTTP loops
/// that feed the reactor through one ring each. `start` recovers and listens; `stop` drains the
/// HTTP side, then stops the reactor (which flushes) and closes the store.
public final class ServerRuntime: @unchecked Sendable {
    public let configuration: ServerConfiguration
    let router = Router()
    let reactorLimits: ReactorLimits
    let eventLimits: EventDecodeLimits
    /// Unsent bytes a watch or follow response may hold (`subscriberBacklogBytesMax` unread plus
    /// the lines of one wake); the HTTP layer's cap is 64 KiB above it, for the last line.
    let streamingBytesMax: Int
    let producers: [ReactorProducer]
    let threadMetrics: [ThreadMetrics]
    private let reactor: Reactor
    private let store: LogStore
    private let http: HTTPServer
    private let logger: Logger
    private var stopped = false

    /// The port the server listens on (the kernel's choice when configured as 0).
    public var port: UInt16 { http.port }

    /// Opens (and recovers) the store, binds the port, starts the reactor and the I/O loops.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var options = LogStoreOptions()
        options.fsync = configuration.fsync
        options.logger = logger
        if configuration.inMemory {
            store = try LogStore.inMemory(options: options)
        } else {
            store = try LogStore.open(directory: configuration.dataDirectory, options: options)
        }
        var httpConfiguration = HTTPServerConfiguration()
        httpConfiguration.host = configuration.host
        httpConfiguration.port = configuration.port
        httpConfiguration.ioThreads = configuration.ioThreads
        httpConfiguration.drainTimeoutMs = configuration.drainTimeoutMs
        httpConfiguration.limits.bodyBytesMax = configuration.bodyBytesMax
        httpConfiguration.limits.idleTimeoutMs = configuration.idleTimeoutMs
        httpConfiguration.limits.slowRequestTimeoutMs = configuration.requestTimeoutMs
        precondition(ServerConfiguration.subscriberBacklogBytesRange.contains(configuration.subscriberBacklogBytesMax))
        streamingBytesMax = max(4 << 20, 4 * configuration.subscriberBacklogBytesMax)
        // 64 KiB above what handlers write before they end a subscription: its last line fits.
        httpConfiguration.limits.streamingBufferedBytesMax = streamingBytesMax + 64 * 1024
        var reactorLimits = ReactorLimits.default
        reactorLimits.followProgressIntervalMs = configuration.followProgressIntervalMs
        reactorLimits.resultsRetainedPerStreamMax = configuration.resultsRetainedPerStreamMax
        self.reactorLimits = reactorLimits
        var eventLimits = EventDecodeLimits()
        eventLimits.eventsMax = reactorLimits.batchEventsMax
        self.eventLimits = eventLimits
        do {
            http = try HTTPServer(configuration: httpConfiguration)
        } catch {
            try? store.close()
            throw error
        }
        let reactor: Reactor
        do {
            reactor = try Reactor(store: store, limits: reactorLimits)
        } catch {
            try? store.close()
            throw error
        }
        self.reactor = reactor
        producers = http.loopContexts.map { context in reactor.makeProducer(wake: context.waker.wake) }
        threadMetrics = http.loopContexts.map { _ in ThreadMetrics() }
        reactor.start()
        let http = self.http
        http.start { [unowned self] context in RequestHandler(runtime: self, context: context) }
        logger.info("laminar listening", metadata: [
            "address": "\(configuration.host):\(http.port)", "io_threads": "\(configuration.ioThreads)",
            "fsync": "\(configuration.fsync)", "data": "\(configuration.inMemory ? "memory" : configuration.dataDirectory)",
            "keys": "\(store.count)",
        ])
    }

    /// Graceful stop: GOAWAY and drain (bounded by `drainTimeoutMs`), then the reactor finishes
    /// its last round and flushes, then the store closes. Idempotent.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        http.stop()
        reactor.stop()
        do { try store.close() } catch { logger.error("closing the store failed", metadata: ["error": "\(error)"]) }
        logger.info("laminar stopped")
    }

    /// `/metrics`: the HTTP loops' counters summed, plus the shared gauges and the store's figures.
    func renderMetrics(store s: StoreStatsSnapshot) -> [UInt8] {
        let h = http.shared
        var samples: [MetricSample] = [
            MetricSample(name: "laminar_http_open_connections", help: "Connections open now.", kind: .gauge,
                         value: Double(h.connectionsOpen.load(ordering: .relaxed))),
            MetricSample(name: "laminar_http_connections_total", help: "Connections accepted.", kind: .counter,
                         value: Double(h.connectionsAccepted.load(ordering: .relaxed))),
            MetricSample(name: "laminar_http_connections_refused_total", help: "Connections closed at accept (limit or shutdown).",
                         kind: .counter, value: Double(h.connectionsRefused.load(ordering: .relaxed))),
            MetricSample(name: "laminar_http_open_streams", help: "HTTP/2 streams open now.", kind: .gauge,
                         value: Double(h.streamsOpen.load(ordering: .relaxed))),
            MetricSample(name: "laminar_http_protocol_errors_total", help: "Connections ended for protocol errors or abuse.",
                         kind: .counter, value: Double(h.protocolErrors.load(ordering: .relaxed))),
            MetricSample(name: "laminar_http_timeouts_total", help: "Connections ended by the idle or slow-request timeout.",
                         kind: .counter, value: Double(h.timeouts.load(ordering: .relaxed))),
            MetricSample(name: "laminar_reactor_rounds_total", help: "Reactor rounds (one group commit each at most).",
                         kind: .counter, value: Double(reactor.roundCount.load(ordering: .relaxed))),
            MetricSample(name: "laminar_reactor_parks_total", help: "Times the reactor parked with nothing to do.",
                         kind: .counter, value: Double(reactor.parkCount.load(ordering: .relaxed))),
            MetricSample(name: "laminar_store_keys", help: "Live keys.", kind: .gauge, value: Double(s.keys)),
            MetricSample(name: "laminar_store_bytes", help: "Bytes of the data file (live and garbage).", kind: .gauge, value: Double(s.bytes)),
            MetricSample(name: "laminar_store_garbage_ratio", help: "Fraction of the data file held by dead records.", kind: .gauge, value: s.garbageRatio),
            MetricSample(name: "laminar_store_fsyncs_total", help: "fsync calls.", kind: .counter, value: Double(s.fsyncCount)),
            MetricSample(name: "laminar_store_fsync_seconds_total", help: "Time spent in fsync.", kind: .counter, value: Double(s.fsyncNanosTotal) / 1e9),
            MetricSample(name: "laminar_store_compactions_total", help: "Compactions done.", kind: .counter, value: Double(s.compactions)),
            MetricSample(name: "laminar_streams", help: "Streams defined.", kind: .gauge, value: Double(s.streams)),
            MetricSample(name: "laminar_subscriptions", help: "Live watches and follows.", kind: .gauge, value: Double(s.subscriptions)),
        ]
        for (i, p) in producers.enumerated() {
            samples.append(MetricSample(name: "laminar_ring_occupancy", help: "Commands waiting in an I/O thread's ring to the reactor.",
                                        kind: .gauge, labels: "thread=\"\(i)\"", value: Double(p.submissionsQueued)))
        }
        return PrometheusText.render(threads: threadMetrics, samples: samples)
    }
}
