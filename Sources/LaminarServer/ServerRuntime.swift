import Glibc
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
    /// Every bound a client can meet (`--max-body`, the timeouts and `--subscriber-backlog-bytes`
    /// among them); the layers' limits are derived from it.
    public var limits = ServerLimits()
    /// Posting events to an unknown stream creates it with the default definition.
    public var autoCreateStreams = false
    public var drainTimeoutMs: Int64 = 5_000
    /// Bearer-token access control; nil: everything is open.
    public var access: AccessPolicy?
    /// `--cluster`: this node is one partition of several behind HAProxy; requests that would
    /// span partition tags are refused (`Partition`, `proto-docs/cluster.md`).
    public var cluster = false
    /// `--thread-slice-us`: the time slice (ns) the I/O threads, the reactor and its commit syncer
    /// ask the scheduler for (`CLinux_set_sched_slice_ns`); 0 keeps the kernel's default. An
    /// experiment: on Linux 6.18 with HZ=250, a thread sleeping 500 us between bursts beside a
    /// busy loop on its core was woken no sooner with a 100 us slice than with the default.
    public var threadSliceNs: UInt64 = 0

    public init() {}
}

/// A running Laminar server: the store, the reactor thread that owns it, and the HTTP loops
/// that feed the reactor through one ring each. `start` recovers and listens; `stop` drains the
/// HTTP side, then stops the reactor (which flushes) and closes the store.
public final class ServerRuntime: @unchecked Sendable {
    public let configuration: ServerConfiguration
    /// `configuration.limits` and the parts of it the handlers use, derived once.
    let limits: ServerLimits
    let router: Router
    let reactorLimits: ReactorLimits
    let eventLimits: EventDecodeLimits
    let producers: [ReactorProducer]
    let threadMetrics: [ThreadMetrics]
    private let reactor: Reactor
    private let store: LogStore
    /// Reads of the store on the I/O threads (GETs of durable keys; `ConcurrentReader`), or nil
    /// with `LAMINAR_DEBUG_IO_READS=0` in the environment (every GET then goes to the reactor:
    /// tests compare both paths, benchmarks measure them).
    let storeReader: ConcurrentReader?
    private let http: HTTPServer
    private let logger: Logger
    private var stopped = false
    /// When the server started (CLOCK_MONOTONIC, ns): `/status` reports the uptime.
    private let startedNs = RequestHandler.nowNs()

    /// The port the server listens on (the kernel's choice when configured as 0).
    public var port: UInt16 { http.port }

    /// `http://HOST:PORT` with the host as configured (`[::1]` for an IPv6 literal).
    public var url: String { "http://\(SocketAddress.urlHost(configuration.host)):\(http.port)" }

    /// Opens (and recovers) the store, binds the port, starts the reactor and the I/O loops.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        limits = configuration.limits
        if let problem = limits.validate() { preconditionFailure("ServerLimits: \(problem)") }
        var router = limits.router
        router.cluster = configuration.cluster
        self.router = router
        var reactorLimits = limits.reactor
        reactorLimits.threadSliceNs = configuration.threadSliceNs
        self.reactorLimits = reactorLimits
        eventLimits = limits.eventDecode
        var options = LogStoreOptions()
        options.fsync = configuration.fsync
        options.logger = logger
        options.limits = limits.store
        // Address space the data file may reserve (default 64 GiB): valgrind cannot reserve that
        // much, so a profiling run under callgrind sets a smaller bound.
        if let gib = getenv("LAMINAR_DEBUG_DATA_GIB").flatMap({ Int(String(cString: $0)) }), gib > 0 {
            options.dataBytesMax = gib << 30
        }
        if configuration.inMemory {
            store = try LogStore.inMemory(options: options)
        } else {
            store = try LogStore.open(directory: configuration.dataDirectory, options: options)
        }
        storeReader = getenv("LAMINAR_DEBUG_IO_READS").map { String(cString: $0) } == "0" ? nil : store.concurrentReader
        var httpConfiguration = HTTPServerConfiguration()
        httpConfiguration.host = configuration.host
        httpConfiguration.port = configuration.port
        httpConfiguration.ioThreads = configuration.ioThreads
        httpConfiguration.drainTimeoutMs = configuration.drainTimeoutMs
        httpConfiguration.limits = limits.http
        httpConfiguration.threadSliceNs = configuration.threadSliceNs
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
        for p in producers { p.readTrace = ReadStageTrace.fromEnvironment() }
        threadMetrics = http.loopContexts.map { _ in ThreadMetrics() }
        // Read before the reactor starts: from then on only its thread touches the store.
        let keys = store.count
        reactor.start()
        let http = self.http
        http.start { [unowned self] context in RequestHandler(runtime: self, context: context) }
        logger.info("laminar listening", metadata: [
            "address": "\(http.addresses.map(\.description).joined(separator: " "))", "io_threads": "\(configuration.ioThreads)",
            "fsync": "\(configuration.fsync)", "data": "\(configuration.inMemory ? "memory" : configuration.dataDirectory)",
            "keys": "\(keys)",
        ])
    }

    /// Why the store failed (fail-stop), or nil while it takes writes; any thread.
    public var storageFailureDetail: String? { reactor.storageFailureDetail }

    /// Graceful stop: GOAWAY and drain (bounded by `drainTimeoutMs`), then the reactor finishes
    /// its last round and flushes, then the store closes. Idempotent. Returns false when the
    /// store had failed (fail-stop) while the server ran: the caller exits non-zero.
    @discardableResult
    public func stop() -> Bool {
        guard !stopped else { return storageFailureDetail == nil }
        stopped = true
        http.stop()
        reactor.stop()
        do { try store.close() } catch { logger.error("closing the store failed", metadata: ["error": "\(error)"]) }
        if let failure = storageFailureDetail {
            logger.error("laminar stopped after a storage failure; the next start recovers what was acknowledged", metadata: ["error": "\(failure)"])
            return false
        }
        logger.info("laminar stopped")
        return true
    }

    /// `/status`: the console's snapshot (`ServerStatus`).
    func renderStatus(store s: StoreStatsSnapshot) -> [UInt8] {
        let h = http.shared
        return ServerStatus.render(
            uptimeMs: Int64((RequestHandler.nowNs() &- startedNs) / 1_000_000), nowMs: RequestHandler.wallClockMs(),
            store: s, storageFailure: storageFailureDetail,
            connections: .init(open: h.connectionsOpen.load(ordering: .relaxed), accepted: h.connectionsAccepted.load(ordering: .relaxed),
                               streamsOpen: h.streamsOpen.load(ordering: .relaxed)),
            threads: threadMetrics)
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
            MetricSample(name: "laminar_reactor_round_max_seconds", help: "The longest reactor round since start.",
                         kind: .gauge, value: Double(reactor.roundTiming.maxNs.load(ordering: .relaxed)) / 1e9),
            MetricSample(name: "laminar_reactor_slow_rounds_total", help: "Reactor rounds longer than 5 ms.",
                         kind: .counter, value: Double(reactor.roundTiming.slowRounds.load(ordering: .relaxed))),
            MetricSample(name: "laminar_reactor_parks_total", help: "Times the reactor parked with nothing to do.",
                         kind: .counter, value: Double(reactor.parkCount.load(ordering: .relaxed))),
            MetricSample(name: "laminar_store_keys", help: "Live keys.", kind: .gauge, value: Double(s.keys)),
            MetricSample(name: "laminar_store_bytes", help: "Bytes of the data file (live and garbage).", kind: .gauge, value: Double(s.bytes)),
            MetricSample(name: "laminar_store_garbage_ratio", help: "Fraction of the data file held by dead records.", kind: .gauge, value: s.garbageRatio),
            MetricSample(name: "laminar_store_fsyncs_total", help: "fsync calls.", kind: .counter, value: Double(s.fsyncCount)),
            MetricSample(name: "laminar_store_fsync_seconds_total", help: "Time spent in fsync.", kind: .counter, value: Double(s.fsyncNanosTotal) / 1e9),
            MetricSample(name: "laminar_store_failed", help: "1 once the store has failed (fail-stop: writes refused until a restart), else 0.",
                         kind: .gauge, value: storageFailureDetail == nil ? 0 : 1),
            MetricSample(name: "laminar_store_compactions_total", help: "Compactions done.", kind: .counter, value: Double(s.compactions)),
            MetricSample(name: "laminar_streams", help: "Streams defined.", kind: .gauge, value: Double(s.streams)),
            MetricSample(name: "laminar_subscriptions", help: "Live watches and follows.", kind: .gauge, value: Double(s.subscriptions)),
        ]
        samples.append(MetricSample(name: "laminar_store_revision", help: "The store revision (grows by one with every mutation).",
                                    kind: .gauge, value: Double(s.revision)))
        // Each family's samples together, as the exposition format requires.
        let label = { (m: StreamMetrics) in "stream=\"\(PrometheusText.escapeLabelValue(m.name))\"" }
        for m in s.perStream {
            samples.append(MetricSample(name: "laminar_stream_events_total", help: "Events accepted, by stream.", kind: .counter,
                                        labels: label(m), value: Double(m.eventsAccepted)))
        }
        for m in s.perStream {
            samples.append(MetricSample(name: "laminar_stream_late_events_total", help: "Late events (dropped, or kept for /late), by stream.",
                                        kind: .counter, labels: label(m), value: Double(m.eventsLate)))
        }
        for m in s.perStream where m.watermarkMs != .min {
            samples.append(MetricSample(name: "laminar_stream_watermark_seconds", help: "The stream's watermark (Unix time in seconds); absent before its first event.",
                                        kind: .gauge, labels: label(m), value: Double(m.watermarkMs) / 1000))
        }
        for m in s.perStream {
            samples.append(MetricSample(name: "laminar_stream_open_windows", help: "Windows open, by stream.", kind: .gauge,
                                        labels: label(m), value: Double(m.openWindows)))
        }
        for (i, p) in producers.enumerated() {
            samples.append(MetricSample(name: "laminar_ring_occupancy", help: "Commands waiting in an I/O thread's ring to the reactor.",
                                        kind: .gauge, labels: "thread=\"\(i)\"", value: Double(p.submissionsQueued)))
        }
        let traces = producers.compactMap(\.readTrace)
        return PrometheusText.render(threads: threadMetrics, samples: samples) + (traces.isEmpty ? [] : PrometheusText.renderReadStages(traces))
    }
}
