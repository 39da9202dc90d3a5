import Foundation
import LaminarHTTP

// The pure parts of the command line: durations, mixes, key distributions, the target URL, and
// the whole run's configuration as one Sendable value handed to every load thread.

/// A malformed flag value; the command exits 2 with this message.
struct FlagError: Error, CustomStringConvertible, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

enum DurationParser {
    /// `30s`, `500ms`, `2m`, `1h`, `1.5s`, or a bare number of seconds → nanoseconds.
    static func nanoseconds(_ text: String) throws(FlagError) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(t)
        var scale = 1e9
        for (suffix, s) in units where t.hasSuffix(suffix) {
            number = t.dropLast(suffix.count)
            scale = s
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(number), value >= 0, value.isFinite else {
            throw FlagError("bad duration '\(text)': use e.g. 30s, 500ms, 2m, 1h")
        }
        return Int64(value * scale)
    }
}

/// Request kinds of a load run.
enum Operation: Int, CaseIterable, Sendable {
    case get, put, delete, scan, ingest
    var name: String { ["get", "put", "delete", "scan", "ingest"][rawValue] }
}

/// Weights of the operations, e.g. `get=90,put=10`; sampling maps a uniform number to an op.
struct Mix: Equatable, Sendable {
    var weights: [Int] = Array(repeating: 0, count: Operation.allCases.count)

    init(weights: [Operation: Int]) {
        for (op, w) in weights { self.weights[op.rawValue] = w }
    }

    init(parsing text: String) throws(FlagError) {
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, let op = Operation.allCases.first(where: { $0.name == pieces[0].trimmingCharacters(in: .whitespaces) }) else {
                throw FlagError("bad mix entry '\(part)': use get=N,put=N,delete=N (also scan=N, ingest=N)")
            }
            guard let w = Int(pieces[1].trimmingCharacters(in: .whitespaces)), w >= 0 else {
                throw FlagError("bad mix weight in '\(part)': a non-negative integer")
            }
            guard weights[op.rawValue] == 0 else { throw FlagError("mix names \(op.name) twice") }
            weights[op.rawValue] = w
        }
        guard total > 0 else { throw FlagError("mix '\(text)' has no positive weight") }
    }

    var total: Int { weights.reduce(0, +) }
    func weight(_ op: Operation) -> Int { weights[op.rawValue] }

    /// The operation for `r` uniform in 0..<total.
    func operation(for r: Int) -> Operation {
        var r = r
        for (i, w) in weights.enumerated() {
            if r < w { return Operation(rawValue: i)! }
            r -= w
        }
        preconditionFailure("mix sample out of range")
    }

    var description: String {
        Operation.allCases.filter { weights[$0.rawValue] > 0 }.map { "\($0.name)=\(weights[$0.rawValue])" }.joined(separator: ",")
    }
}

enum KeyDistribution: Equatable, Sendable {
    case uniform
    case zipf(Double)

    init(parsing text: String) throws(FlagError) {
        if text == "uniform" { self = .uniform; return }
        if text == "zipf" { self = .zipf(0.99); return }
        if text.hasPrefix("zipf:"), let s = Double(text.dropFirst(5)), s > 0, s < 1 || s > 1, s.isFinite {
            self = .zipf(s)
            return
        }
        throw FlagError("bad distribution '\(text)': uniform or zipf:S with S > 0 and S != 1 (e.g. zipf:0.99)")
    }
}

/// `http://host:port[/]`: h2c with prior knowledge. The host is an IPv4 literal, an IPv6 literal
/// in brackets (`[::1]`) or a name (`localhost`), resolved when the run starts (`Runner`).
struct Target: Equatable, Sendable {
    /// Without brackets (`::1`).
    var host: String
    var port: UInt16

    /// `host:port` as in a URL (`[::1]:7070`).
    var authority: String { "\(SocketAddress.urlHost(host)):\(port)" }

    init(parsing url: String) throws(FlagError) {
        guard url.hasPrefix("http://") else {
            throw FlagError("bad --url '\(url)': only http:// (h2c prior knowledge) is supported")
        }
        var rest = url.dropFirst(7)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        let portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw FlagError("bad --url '\(url)': no ']' after the IPv6 address") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { throw FlagError("bad --url '\(url)': bad port") }
            portText = after.isEmpty ? nil : after.dropFirst()
        } else {
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw FlagError("bad --url '\(url)': an IPv6 address goes in brackets (http://[::1]:7070)") }
            host = String(parts[0])
            portText = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty else { throw FlagError("bad --url '\(url)': no host") }
        if let portText {
            guard let p = UInt16(portText), p > 0 else { throw FlagError("bad --url '\(url)': bad port") }
            port = p
        } else {
            port = 80
        }
    }
}

enum Scenario: String, CaseIterable, Sendable {
    /// GET of one fixed path (`--path`), for comparing with h2load against any h2c server.
    case get
    case kv, scan, ingest, mixed
    /// No load: reads a `--ledger` file written by an earlier run and checks it against the server.
    case verify
}

enum EventWireFormat: String, Sendable {
    case binary, ndjson
}

/// Everything a load thread needs, decided once on the main thread.
struct LoadConfig: Sendable {
    var scenario: Scenario = .kv
    var target: Target
    var connections = 16
    var streams = 32
    var threads = 1
    var durationNs: Int64? = 10_000_000_000
    var requests: Int?
    var warmupNs: Int64 = 0
    var ratePerSecond: Double?
    var timeoutNs: Int64 = 10_000_000_000
    var mix = Mix(weights: [.get: 90, .put: 10])
    var keys = 10_000
    var distribution = KeyDistribution.uniform
    var valueBytes = 100
    var preload = false
    var scanSize = 100
    var path = "/"
    var streamName = "load"
    var streamDefinition = ""
    var batch = 100
    var format = EventWireFormat.binary
    var skewMs: Int64 = 0
    var lateFraction = 0.0
    var verify = false
    /// `--ledger FILE`: under --verify, write the ledger there after the load instead of reading back.
    var ledgerPath: String?
    /// `--key-prefix`: written before every KV key, so that runs on one server use disjoint keys.
    var keyPrefix = ""
    /// `--tags N`: keys start with a partition tag `t0/` … `t{N-1}/` (for a cluster behind HAProxy).
    var tags: Int?
    /// Names this run's Idempotency-Keys (`<runID>-<thread>-<n>`), unique per run.
    var runID = ""
    var errorThreshold = 0.0

    /// Keys are grouped by a common prefix per `scanSize` keys in the scan scenario (and mixed
    /// runs that scan), so that a prefix scan returns a full group.
    var groupedKeys: Bool { scenario == .scan || mix.weight(.scan) > 0 }

    var keyNamer: KeyNamer { KeyNamer(groupSize: groupedKeys ? scanSize : nil, prefix: Array(keyPrefix.utf8), tags: tags) }

    /// Under --verify, event batches carry an Idempotency-Key and are recorded in the ledger.
    var verifiesEvents: Bool { verify && mix.weight(.ingest) > 0 }
}
