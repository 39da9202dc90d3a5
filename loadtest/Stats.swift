import Histogram
import Synchronization

/// Errors by kind, counted per thread and summed for the report.
enum ErrorKind: Int, CaseIterable, Sendable {
    case connectRefused, connectFailed, streamReset, refusedStream, timeout, protocolError, connectionClosed, unexpectedStatus

    var name: String {
        ["connect refused", "connect failed", "stream reset", "refused stream", "timeout", "protocol",
         "connection closed", "unexpected status"][rawValue]
    }
    var jsonName: String {
        ["connect_refused", "connect_failed", "stream_reset", "refused_stream", "timeout", "protocol",
         "connection_closed", "unexpected_status"][rawValue]
    }
    /// Connection-level kinds count connect attempts, not requests.
    var isPerConnection: Bool { self == .connectRefused || self == .connectFailed }
}

/// The measurements of one load thread (owned by it; merged on the main thread at the end).
struct ThreadStats: Sendable {
    /// Latency in microseconds, 1 µs to 1 h at 3 significant digits.
    var latencyUs = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    /// Open loop: how late each measured request was handed to its connection after its scheduled
    /// time, in microseconds (the client's own share of `latencyUs`: its timer, its other work,
    /// its thread waiting for a core, or no free stream).
    var sendLagUs = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    var statusCounts = [Int](repeating: 0, count: 600)
    var errors = [Int](repeating: 0, count: ErrorKind.allCases.count)
    var operations = [Int](repeating: 0, count: Operation.allCases.count)
    /// Measured requests that ended (any outcome).
    var requests = 0
    /// Measured requests answered with an expected status.
    var succeeded = 0
    /// Events in accepted ingest batches; events sent with a late timestamp.
    var events = 0
    var lateEvents = 0
    /// Late events as the server counted them (`"late"` of its acknowledgements).
    var lateReported = 0
    var bytesSent = 0
    var bytesReceived = 0
    var verifyChecked = 0
    var verifyLost = 0
    var verifyMismatch = 0
    var verifyErrors = 0
    /// Open loop: most requests waiting for a free stream at once.
    var backlogMax = 0

    mutating func add(_ o: ThreadStats) {
        latencyUs.add(o.latencyUs)
        sendLagUs.add(o.sendLagUs)
        for i in statusCounts.indices { statusCounts[i] += o.statusCounts[i] }
        for i in errors.indices { errors[i] += o.errors[i] }
        for i in operations.indices { operations[i] += o.operations[i] }
        requests += o.requests
        succeeded += o.succeeded
        events += o.events
        lateEvents += o.lateEvents
        lateReported += o.lateReported
        bytesSent += o.bytesSent
        bytesReceived += o.bytesReceived
        verifyChecked += o.verifyChecked
        verifyLost += o.verifyLost
        verifyMismatch += o.verifyMismatch
        verifyErrors += o.verifyErrors
        backlogMax = max(backlogMax, o.backlogMax)
    }

    var requestErrors: Int { ErrorKind.allCases.filter { !$0.isPerConnection }.reduce(0) { $0 + errors[$1.rawValue] } }
}

/// Counters a load thread publishes for the progress line (relaxed: a display, not a result).
final class ThreadProgress: Sendable {
    let completed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
}
