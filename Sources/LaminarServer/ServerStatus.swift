import Glibc
import LaminarFormats
import LaminarReactor

/// `GET /status`: one compact JSON object for the web console's overview — what `/metrics` says,
/// plus the version and uptime, with per-route request counts and latency buckets (not
/// cumulative) so a client computes rates and percentiles from the difference of two snapshots.
/// Pure: figures in, bytes out (`proto-docs/http-api.md#status`).
enum ServerStatus {
    /// The server's version, as `/status` reports it.
    static let version = "0.1.0"

    /// The HTTP layer's gauges and counters at the time of the snapshot.
    struct Connections {
        var open: Int
        var accepted: Int
        var streamsOpen: Int
    }

    static func render(uptimeMs: Int64, nowMs: Int64, store s: StoreStatsSnapshot, storageFailure: String?,
                       connections: Connections, threads: [ThreadMetrics]) -> [UInt8] {
        func sum(_ slot: Int) -> UInt64 { threads.reduce(0) { $0 &+ $1.load(slot) } }
        var out: [UInt8] = [0x7B]
        func member(_ name: StaticString, _ value: some BinaryInteger) {
            JSONWriter.appendName(name, to: &out)
            JSONWriter.appendInteger(value, to: &out)
            out.append(0x2C)
        }
        JSONWriter.appendName("version", to: &out)
        JSONWriter.appendString(version, to: &out)
        out.append(0x2C)
        member("uptime_ms", uptimeMs)
        member("time_ms", nowMs)
        JSONWriter.appendName("store", to: &out)
        out.append(0x7B)
        member("keys", s.keys)
        member("bytes", s.bytes)
        JSONWriter.appendName("garbage_ratio", to: &out)
        JSONWriter.appendNumber(s.garbageRatio, to: &out)
        out.append(0x2C)
        member("fsyncs", s.fsyncCount)
        member("fsync_ns", s.fsyncNanosTotal)
        member("compactions", s.compactions)
        JSONWriter.appendName("failed", to: &out)
        if let storageFailure { JSONWriter.appendString(storageFailure, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: "},".utf8)
        member("streams", s.streams)
        member("subscriptions", s.subscriptions)
        JSONWriter.appendName("connections", to: &out)
        out.append(0x7B)
        member("open", connections.open)
        member("accepted", connections.accepted)
        member("http2_streams_open", connections.streamsOpen)
        out[out.count - 1] = 0x7D
        out.append(0x2C)
        JSONWriter.appendName("events", to: &out)
        out.append(0x7B)
        member("accepted", sum(ThreadMetrics.eventsAcceptedSlot))
        member("late", sum(ThreadMetrics.eventsLateSlot))
        out[out.count - 1] = 0x7D
        out.append(0x2C)
        JSONWriter.appendName("latency_bounds_ms", to: &out)
        JSONWriter.appendArray(ThreadMetrics.latencyBucketsNs, to: &out) { JSONWriter.appendNumber(Double($0) / 1e6, to: &$1) }
        out.append(0x2C)
        JSONWriter.appendName("routes", to: &out)
        out.append(0x7B)
        var first = true
        for route in Route.allCases {
            var requests: UInt64 = 0
            var errors: UInt64 = 0
            for c in 0..<ThreadMetrics.codeSlots {
                let n = sum(ThreadMetrics.requestsBase + route.rawValue * ThreadMetrics.codeSlots + c)
                requests &+= n
                if c == ThreadMetrics.statusCodes.count || ThreadMetrics.statusCodes[c] >= 400 { errors &+= n }
            }
            guard requests > 0 else { continue }
            if !first { out.append(0x2C) }
            first = false
            JSONWriter.appendString(route.label, to: &out)
            out.append(contentsOf: #":{"requests":"#.utf8)
            JSONWriter.appendInteger(requests, to: &out)
            out.append(contentsOf: #","errors":"#.utf8)
            JSONWriter.appendInteger(errors, to: &out)
            out.append(contentsOf: #","buckets":["#.utf8)
            for b in 0..<ThreadMetrics.bucketSlots {
                if b > 0 { out.append(0x2C) }
                JSONWriter.appendInteger(sum(ThreadMetrics.bucketsBase + route.rawValue * ThreadMetrics.bucketSlots + b), to: &out)
            }
            out.append(contentsOf: "]}".utf8)
        }
        out.append(contentsOf: "}}\n".utf8)
        return out
    }
}
