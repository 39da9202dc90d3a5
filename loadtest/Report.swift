import Foundation
import Histogram

/// The final report: a table for people, one JSON object for machines, an .hgrm file.
struct Report {
    let config: LoadConfig
    let result: RunResult

    var stats: ThreadStats { result.stats }
    var seconds: Double { result.seconds }

    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    func latencyMs(_ percentile: Double) -> Double {
        stats.latencyUs.totalCount == 0 ? 0 : Double(stats.latencyUs.valueAtPercentile(percentile)) / 1000
    }
    var maxLatencyMs: Double { stats.latencyUs.totalCount == 0 ? 0 : Double(stats.latencyUs.max) / 1000 }

    var errorFraction: Double { Double(stats.requestErrors) / Double(max(1, stats.requests)) }

    var statuses: [(Int, Int)] { stats.statusCounts.enumerated().filter { $0.element > 0 }.map { ($0.offset, $0.element) } }

    var modeText: String {
        let load = config.ratePerSecond.map { String(format: "open loop at %.0f req/s", $0) } ?? "closed loop"
        let length = config.requests.map { "\($0) requests" } ?? String(format: "%.1f s", seconds)
        return "\(config.connections) connections × \(config.streams) streams, \(config.threads) thread(s), \(length), \(load)"
    }

    static func describe(_ c: EventCheck) -> String {
        var text = "\(c.counted) events counted; \(c.ackedEvents) acknowledged in \(c.ackedBatches) batches, \(c.unknownBatches) batches of unknown outcome (\(c.retriedBatches) sent again, \(c.resolvedEvents) events)"
        if c.duplicateBatches > 0 { text += ", \(c.duplicateBatches) acknowledged as duplicates during the load" }
        if let error = c.error { return text + ": cannot read the stream: \(error)" }
        switch c.verdict {
        case .ok: text += ": ok"
        case .lost(let n): text += ": \(n) acknowledged events missing"
        case .duplicated(let n): text += ": \(n) events counted twice"
        }
        return text
    }

    var verifyLines: [String] {
        var lines: [String] = []
        if let path = result.ledgerWritten {
            lines.append("  ledger        written to \(path) (check it with: laminar-load verify --ledger \(path) --url URL)")
            return lines
        }
        let writesKeys = config.scenario == .verify || config.preload || config.mix.weight(.put) + config.mix.weight(.delete) > 0
        if writesKeys || result.eventCheck == nil {
            lines.append("  verify        \(stats.verifyChecked) keys read back: \(stats.verifyLost) lost, \(stats.verifyMismatch) mismatched, \(stats.verifyErrors) unreadable")
        }
        if let c = result.eventCheck { lines.append("  verify events stream \(c.stream): \(Self.describe(c))") }
        return lines
    }

    func table() -> String {
        if config.scenario == .verify {
            return "laminar-load verify --ledger \(config.ledgerPath ?? "") against http://\(config.target.authority)\n" + verifyLines.joined(separator: "\n") + "\n"
        }
        var lines: [String] = []
        lines.append("laminar-load \(config.scenario.rawValue) against http://\(config.target.authority): \(modeText)")
        if config.scenario != .get && config.scenario != .ingest { lines.append("  mix           \(config.mix.description)") }
        lines.append(String(format: "  requests      %d in %.2f s = %.1f req/s (%d succeeded)", stats.requests, seconds, Double(stats.requests) / seconds, stats.succeeded))
        if stats.events > 0 || config.scenario == .ingest {
            lines.append(String(format: "  events        %d accepted = %.1f events/s (%d sent late, %d counted late by the server)",
                                stats.events, Double(stats.events) / seconds, stats.lateEvents, stats.lateReported))
        }
        lines.append(String(format: "  bytes         %.2f MB/s received, %.2f MB/s sent (bodies)",
                            Double(stats.bytesReceived) / seconds / 1e6, Double(stats.bytesSent) / seconds / 1e6))
        lines.append("  status        " + (statuses.isEmpty ? "none" : statuses.map { "\($0.0): \($0.1)" }.joined(separator: "  ")))
        lines.append("  errors        " + ErrorKind.allCases.map { "\($0.name) \(stats.errors[$0.rawValue])" }.joined(separator: ", "))
        let latency = Self.percentiles.map { String(format: "%@ %.3f", $0.0, latencyMs($0.1)) }.joined(separator: "  ")
        lines.append("  latency (ms)  \(latency)  max \(String(format: "%.3f", maxLatencyMs))")
        if config.ratePerSecond != nil {
            let lag = Self.percentiles.map { String(format: "%@ %.3f", $0.0, Double(stats.sendLagUs.valueAtPercentile($0.1)) / 1000) }.joined(separator: "  ")
            lines.append("  send lag (ms) \(lag)  max \(String(format: "%.3f", Double(stats.sendLagUs.max) / 1000))")
            lines.append("  backlog max   \(stats.backlogMax) requests waiting for a stream")
        }
        if result.preloadErrors > 0 { lines.append("  preload       \(result.preloadErrors) PUTs failed") }
        if config.verify { lines += verifyLines }
        return lines.joined(separator: "\n") + "\n"
    }

    func json() -> String {
        func number(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "null" }
        var fields: [String] = []
        fields.append(#""scenario":"\#(config.scenario.rawValue)""#)
        fields.append(#""url":"http://\#(config.target.authority)""#)
        fields.append(#""connections":\#(config.connections),"streams":\#(config.streams),"threads":\#(config.threads)"#)
        fields.append(#""rate":\#(config.ratePerSecond.map { number($0) } ?? "null")"#)
        fields.append(#""mix":"\#(config.mix.description)""#)
        fields.append(#""seconds":\#(number(seconds))"#)
        fields.append(#""requests":\#(stats.requests),"succeeded":\#(stats.succeeded)"#)
        fields.append(#""requests_per_second":\#(number(Double(stats.requests) / seconds))"#)
        fields.append(#""events":\#(stats.events),"late_events_sent":\#(stats.lateEvents),"late_events_reported":\#(stats.lateReported),"events_per_second":\#(number(Double(stats.events) / seconds))"#)
        fields.append(#""bytes_received":\#(stats.bytesReceived),"bytes_sent":\#(stats.bytesSent)"#)
        fields.append(#""bytes_received_per_second":\#(number(Double(stats.bytesReceived) / seconds))"#)
        fields.append(#""status":{\#(statuses.map { #""\#($0.0)":\#($0.1)"# }.joined(separator: ","))}"#)
        fields.append(#""errors":{\#(ErrorKind.allCases.map { #""\#($0.jsonName)":\#(stats.errors[$0.rawValue])"# }.joined(separator: ","))}"#)
        let latency = Self.percentiles.map { #""\#($0.0)":\#(number(latencyMs($0.1)))"# }.joined(separator: ",")
        fields.append(#""latency_ms":{\#(latency),"max":\#(number(maxLatencyMs)),"mean":\#(number(stats.latencyUs.totalCount == 0 ? 0 : stats.latencyUs.mean / 1000))}"#)
        if config.ratePerSecond != nil {
            let lag = Self.percentiles.map { #""\#($0.0)":\#(number(Double(stats.sendLagUs.valueAtPercentile($0.1)) / 1000))"# }.joined(separator: ",")
            fields.append(#""send_lag_ms":{\#(lag),"max":\#(number(Double(stats.sendLagUs.max) / 1000))}"#)
        }
        fields.append(#""operations":{\#(Operation.allCases.map { #""\#($0.name)":\#(stats.operations[$0.rawValue])"# }.joined(separator: ","))}"#)
        fields.append(#""backlog_max":\#(stats.backlogMax),"preload_errors":\#(result.preloadErrors)"#)
        if config.verify {
            var events = ""
            if let c = result.eventCheck {
                let verdict: String
                switch c.verdict {
                case .ok: verdict = #""ok""#
                case .lost(let n): verdict = #"{"lost":\#(n)}"#
                case .duplicated(let n): verdict = #"{"duplicated":\#(n)}"#
                }
                events = #","events":{"stream":"\#(c.stream)","counted":\#(c.counted),"acked_events":\#(c.ackedEvents),"acked_batches":\#(c.ackedBatches),"unknown_batches":\#(c.unknownBatches),"retried_batches":\#(c.retriedBatches),"resolved_events":\#(c.resolvedEvents),"duplicate_batches":\#(c.duplicateBatches),"verdict":\#(c.error == nil ? verdict : #""unreadable""#)}"#
            }
            let ledger = result.ledgerWritten.map { #","ledger":"\#($0)""# } ?? ""
            fields.append(#""verify":{"checked":\#(stats.verifyChecked),"lost":\#(stats.verifyLost),"mismatch":\#(stats.verifyMismatch),"unreadable":\#(stats.verifyErrors)\#(events)\#(ledger)}"#)
        }
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    /// The classic HdrHistogram percentile distribution, values in milliseconds.
    func hgrm() -> String {
        var out = ""
        stats.latencyUs.outputPercentileDistribution(to: &out, outputValueUnitScalingRatio: 1000)
        return out
    }
}
