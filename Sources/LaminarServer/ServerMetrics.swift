import LaminarReactor
import Synchronization

/// The routes of the HTTP contract, as metric labels.
public enum Route: Int, CaseIterable, Sendable {
    case kvGet, kvHead, kvPut, kvDelete, kvScan, kvWatch, kvBatch
    case streamDefine, streamGet, streamList, streamDelete, eventsPost, results, resultsFollow, late
    case metrics, health, status, console, other
    case sourceDefine, sourceGet, sourceList, sourceDelete, sourceEvents, sql

    public var label: String {
        switch self {
        case .kvGet: "kv_get"
        case .kvHead: "kv_head"
        case .kvPut: "kv_put"
        case .kvDelete: "kv_delete"
        case .kvScan: "kv_scan"
        case .kvWatch: "kv_watch"
        case .kvBatch: "kv_batch"
        case .streamDefine: "stream_define"
        case .streamGet: "stream_get"
        case .streamList: "stream_list"
        case .streamDelete: "stream_delete"
        case .eventsPost: "events_post"
        case .results: "results"
        case .resultsFollow: "results_follow"
        case .late: "late"
        case .metrics: "metrics"
        case .health: "health"
        case .status: "status"
        case .console: "console"
        case .other: "other"
        case .sourceDefine: "source_define"
        case .sourceGet: "source_get"
        case .sourceList: "source_list"
        case .sourceDelete: "source_delete"
        case .sourceEvents: "source_events"
        case .sql: "sql"
        }
    }
}

/// One I/O thread's counters. Only the owning thread writes them (a relaxed load and store: no
/// lock, no read-modify-write); a scrape on any thread reads them with relaxed loads and sums the
/// threads. Counts are exact per thread; a scrape may see one thread a few requests ahead of
/// another, as any Prometheus scrape does.
public final class ThreadMetrics: @unchecked Sendable {
    /// Status codes counted individually; anything else counts under `other`.
    public static let statusCodes = [200, 202, 204, 304, 400, 401, 404, 405, 408, 409, 410, 412, 413, 415, 429, 431, 500, 503, 507]
    /// Upper bounds of the latency histogram buckets, in nanoseconds (+Inf is implicit).
    public static let latencyBucketsNs: [UInt64] = [
        50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000,
        50_000_000, 100_000_000, 250_000_000, 1_000_000_000,
    ]

    static let codeSlots = statusCodes.count + 1
    /// Latency buckets per route, the last one +Inf (the Prometheus histogram sums the routes).
    static let bucketSlots = latencyBucketsNs.count + 1
    static let requestsBase = 0
    static let bucketsBase = Route.allCases.count * codeSlots
    static let latencySumSlot = bucketsBase + Route.allCases.count * bucketSlots
    /// Event bodies decoded as they arrived, then those that arrived whole first.
    static let eventBodiesStreamedSlot = latencySumSlot + 1
    static let eventBodiesBufferedSlot = latencySumSlot + 2
    /// Events accepted into windows, and events refused as late, by the acks of event batches.
    static let eventsAcceptedSlot = latencySumSlot + 3
    static let eventsLateSlot = latencySumSlot + 4
    /// Single-key GETs (and HEADs) answered on the I/O thread (`ConcurrentReader`), and those
    /// that went to the reactor.
    static let kvGetsIOThreadSlot = latencySumSlot + 5
    static let kvGetsReactorSlot = latencySumSlot + 6
    static let slotCount = latencySumSlot + 7

    private let storage: UnsafeMutablePointer<Atomic<UInt64>>

    public init() {
        storage = .allocate(capacity: ThreadMetrics.slotCount)
        for i in 0..<ThreadMetrics.slotCount { (storage + i).initialize(to: Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: ThreadMetrics.slotCount)
        storage.deallocate()
    }

    @inline(__always)
    private func add(_ slot: Int, _ delta: UInt64) {
        let a = storage + slot
        a.pointee.store(a.pointee.load(ordering: .relaxed) &+ delta, ordering: .relaxed)
    }

    @inline(__always)
    func load(_ slot: Int) -> UInt64 {
        (storage + slot).pointee.load(ordering: .relaxed)
    }

    @inline(__always)
    static func codeIndex(_ status: Int) -> Int {
        statusCodes.firstIndex(of: status) ?? statusCodes.count
    }

    /// Counts one answered request (owner thread only).
    @inline(__always)
    public func recordRequest(route: Route, status: Int, durationNs: UInt64) {
        add(ThreadMetrics.requestsBase + route.rawValue * ThreadMetrics.codeSlots + ThreadMetrics.codeIndex(status), 1)
        var bucket = 0
        while bucket < ThreadMetrics.latencyBucketsNs.count && durationNs > ThreadMetrics.latencyBucketsNs[bucket] { bucket += 1 }
        add(ThreadMetrics.bucketsBase + route.rawValue * ThreadMetrics.bucketSlots + bucket, 1)
        add(ThreadMetrics.latencySumSlot, durationNs)
    }

    /// Counts an event batch's outcome (owner thread only).
    public func recordEvents(accepted: Int, late: Int) {
        add(ThreadMetrics.eventsAcceptedSlot, UInt64(accepted))
        add(ThreadMetrics.eventsLateSlot, UInt64(late))
    }

    /// Counts one single-key GET by where it was answered (owner thread only).
    @inline(__always)
    public func recordKVGet(onIOThread: Bool) {
        add(onIOThread ? ThreadMetrics.kvGetsIOThreadSlot : ThreadMetrics.kvGetsReactorSlot, 1)
    }

    /// Counts one event body by how it was decoded (owner thread only).
    public func recordEventBody(streamed: Bool) {
        add(streamed ? ThreadMetrics.eventBodiesStreamedSlot : ThreadMetrics.eventBodiesBufferedSlot, 1)
    }
}

/// A metric from elsewhere (the reactor, the store) to add to a scrape.
public struct MetricSample: Sendable, Hashable {
    public enum Kind: String, Sendable { case counter, gauge }
    public var name: String
    public var help: String
    public var kind: Kind
    public var labels: String
    public var value: Double

    public init(name: String, help: String, kind: Kind, labels: String = "", value: Double) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labels = labels
        self.value = value
    }
}

/// Renders the Prometheus text exposition format (version 0.0.4).
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A label value as the exposition format writes it: `\`, `"` and newline escaped.
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `laminar_debug_read_stage_seconds`, the stages of single-key reads (`ReadStageTrace`),
    /// summed over the I/O threads' traces.
    static func renderReadStages(_ traces: [ReadStageTrace]) -> [UInt8] {
        var out = "# HELP laminar_debug_read_stage_seconds Debug (LAMINAR_DEBUG_READ_STAGES=1): where single-key reads spend their time in the server, by stage.\n"
        out += "# TYPE laminar_debug_read_stage_seconds histogram\n"
        for stage in ReadStageTrace.Stage.allCases {
            var counts = [UInt64](repeating: 0, count: DurationHistogram.bucketCount)
            var sumNs: UInt64 = 0
            for t in traces {
                let (c, s) = t.histograms[stage.rawValue].snapshot()
                for i in counts.indices { counts[i] &+= c[i] }
                sumNs &+= s
            }
            var cumulative: UInt64 = 0
            for i in counts.indices {
                cumulative &+= counts[i]
                let le = DurationHistogram.upperBoundNs(i).map { String(Double($0) / 1e9) } ?? "+Inf"
                out += "laminar_debug_read_stage_seconds_bucket{stage=\"\(stage.label)\",le=\"\(le)\"} \(cumulative)\n"
            }
            out += "laminar_debug_read_stage_seconds_sum{stage=\"\(stage.label)\"} \(Double(sumNs) / 1e9)\n"
            out += "laminar_debug_read_stage_seconds_count{stage=\"\(stage.label)\"} \(cumulative)\n"
        }
        return Array(out.utf8)
    }

    public static func render(threads: [ThreadMetrics], samples: [MetricSample]) -> [UInt8] {
        var out = ""
        func sum(_ slot: Int) -> UInt64 { threads.reduce(0) { $0 &+ $1.load(slot) } }

        out += "# HELP laminar_http_requests_total Requests answered, by route and status code.\n"
        out += "# TYPE laminar_http_requests_total counter\n"
        for route in Route.allCases {
            for c in 0..<ThreadMetrics.codeSlots {
                let n = sum(ThreadMetrics.requestsBase + route.rawValue * ThreadMetrics.codeSlots + c)
                guard n > 0 else { continue }
                let code = c < ThreadMetrics.statusCodes.count ? String(ThreadMetrics.statusCodes[c]) : "other"
                out += "laminar_http_requests_total{route=\"\(route.label)\",code=\"\(code)\"} \(n)\n"
            }
        }
        out += "# HELP laminar_http_request_duration_seconds Time from a complete request to its response.\n"
        out += "# TYPE laminar_http_request_duration_seconds histogram\n"
        func bucket(_ i: Int) -> UInt64 {
            Route.allCases.reduce(0) { $0 &+ sum(ThreadMetrics.bucketsBase + $1.rawValue * ThreadMetrics.bucketSlots + i) }
        }
        var cumulative: UInt64 = 0
        for (i, bound) in ThreadMetrics.latencyBucketsNs.enumerated() {
            cumulative &+= bucket(i)
            out += "laminar_http_request_duration_seconds_bucket{le=\"\(Double(bound) / 1e9)\"} \(cumulative)\n"
        }
        cumulative &+= bucket(ThreadMetrics.latencyBucketsNs.count)
        out += "laminar_http_request_duration_seconds_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "laminar_http_request_duration_seconds_sum \(Double(sum(ThreadMetrics.latencySumSlot)) / 1e9)\n"
        out += "laminar_http_request_duration_seconds_count \(cumulative)\n"
        out += "# HELP laminar_event_bodies_total Event batch bodies, by whether they were decoded as they arrived or buffered first.\n"
        out += "# TYPE laminar_event_bodies_total counter\n"
        out += "laminar_event_bodies_total{decoding=\"streamed\"} \(sum(ThreadMetrics.eventBodiesStreamedSlot))\n"
        out += "laminar_event_bodies_total{decoding=\"buffered\"} \(sum(ThreadMetrics.eventBodiesBufferedSlot))\n"
        out += "# HELP laminar_kv_gets_total Single-key GETs and HEADs of /kv/{key}, by where they were answered: on the I/O thread that read them (a durable key), or by the reactor.\n"
        out += "# TYPE laminar_kv_gets_total counter\n"
        out += "laminar_kv_gets_total{answered_by=\"io_thread\"} \(sum(ThreadMetrics.kvGetsIOThreadSlot))\n"
        out += "laminar_kv_gets_total{answered_by=\"reactor\"} \(sum(ThreadMetrics.kvGetsReactorSlot))\n"
        out += "# HELP laminar_events_total Events of acknowledged batches: accepted into windows, or late.\n"
        out += "# TYPE laminar_events_total counter\n"
        out += "laminar_events_total{outcome=\"accepted\"} \(sum(ThreadMetrics.eventsAcceptedSlot))\n"
        out += "laminar_events_total{outcome=\"late\"} \(sum(ThreadMetrics.eventsLateSlot))\n"
        var described = Set<String>()  // samples of one name are adjacent (callers append family by family)
        for s in samples {
            if described.insert(s.name).inserted {
                out += "# HELP \(s.name) \(s.help)\n# TYPE \(s.name) \(s.kind.rawValue)\n"
            }
            let value = s.value == s.value.rounded() && abs(s.value) < 1e15 ? String(Int64(s.value)) : String(s.value)
            out += s.labels.isEmpty ? "\(s.name) \(value)\n" : "\(s.name){\(s.labels)} \(value)\n"
        }
        return Array(out.utf8)
    }
}
