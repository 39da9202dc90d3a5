import Glibc
import LaminarFormats
import LaminarHTTP

/// State a load thread keeps across its phases (preload, load, read-back).
final class ThreadState {
    let index: Int
    let count: Int
    var stats = ThreadStats()
    var ledger = VerifyLedger()
    /// Under --verify with ingest: the event batches' outcomes.
    var events = EventLedger()
    /// Event batches sent, numbering their Idempotency-Keys.
    var batchesSent = 0
    let progress: ThreadProgress

    init(index: Int, count: Int, progress: ThreadProgress) {
        self.index = index
        self.count = count
        self.progress = progress
    }

    /// Under --verify a thread writes only its own keys (key % threads == index), so that one
    /// ledger sees every write of a key.
    func ownKey(_ key: Int, keys: Int) -> Int {
        guard count > 1 else { return key }
        var k = key - key % count + index
        if k >= keys { k -= count }
        return max(k, 0)
    }
}

/// Builds request paths and bodies into reused buffers (no allocation once they have grown).
struct RequestBuilder {
    let config: LoadConfig
    let namer: KeyNamer
    var path: [UInt8] = []
    var body: [UInt8] = []
    var key: [UInt8] = []
    private let eventsPath: [UInt8]
    private let fixedPath: [UInt8]

    init(config: LoadConfig) {
        self.config = config
        namer = config.keyNamer
        eventsPath = Array("/streams/\(config.streamName)/events".utf8)
        fixedPath = Array(config.path.utf8)
        path.reserveCapacity(256)
        body.reserveCapacity(max(config.valueBytes, 64) + 64)
    }

    mutating func fixedGet() {
        path.removeAll(keepingCapacity: true)
        path.append(contentsOf: fixedPath)
    }

    mutating func kv(_ index: Int) {
        key.removeAll(keepingCapacity: true)
        namer.appendKey(index, to: &key)
        path.removeAll(keepingCapacity: true)
        path.append(contentsOf: "/kv/".utf8)
        path.append(contentsOf: key)
    }

    mutating func value(seq: UInt32) {
        body.removeAll(keepingCapacity: true)
        key.withUnsafeBytes { ValueCodec.append(key: $0, seq: seq, valueBytes: config.valueBytes, to: &body) }
    }

    mutating func scan(group: Int) {
        path.removeAll(keepingCapacity: true)
        path.append(contentsOf: "/kv?prefix=".utf8)
        namer.appendGroupPrefix(group, to: &path)
        path.append(contentsOf: "&limit=".utf8)
        KeyNamer.appendInteger(Int64(config.scanSize), to: &path)
    }

    /// A batch of events with keys from the sampler; returns how many carry a late timestamp.
    mutating func events(rng: inout SplitMix64, sampler: KeySampler) -> Int {
        path.removeAll(keepingCapacity: true)
        path.append(contentsOf: eventsPath)
        body.removeAll(keepingCapacity: true)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let nowMs = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        if config.format == .binary { return binaryEvents(rng: &rng, sampler: sampler, nowMs: nowMs) }
        var late = 0
        for _ in 0..<config.batch {
            key.removeAll(keepingCapacity: true)
            key.append(UInt8(ascii: "u"))
            KeyNamer.appendInteger(Int64(sampler.sample(&rng)), to: &key)
            let t = Self.eventTime(config, rng: &rng, nowMs: nowMs, late: &late)
            let value = Double(rng.below(10_000)) / 100
            body.append(contentsOf: #"{"key":""#.utf8)
            body.append(contentsOf: key)
            body.append(contentsOf: #"","ts":"#.utf8)
            KeyNamer.appendInteger(t, to: &body)
            body.append(contentsOf: #","value":"#.utf8)
            JSONWriter.appendNumber(value, to: &body)
            body.append(contentsOf: "}\n".utf8)
        }
        return late
    }

    /// An event's time (`nowMs`, skewed; or late, counted in `late`), from `rng` in the same
    /// draws for both formats.
    @inline(__always)
    private static func eventTime(_ config: LoadConfig, rng: inout SplitMix64, nowMs: Int64, late: inout Int) -> Int64 {
        var t = nowMs
        if config.skewMs > 0 { t += Int64(rng.below(Int(2 * config.skewMs + 1))) - config.skewMs }
        if config.lateFraction > 0 && rng.unit() < config.lateFraction {
            t = nowMs - Self.lateByMs
            late += 1
        }
        return t
    }

    /// The batch in `LEV1` (`proto-docs/event-formats.md`), written in place: on a machine the
    /// client shares with the server, the client's CPU per event is taken from the server it
    /// measures (built through arrays and a second encoding pass, it took a third of a core at
    /// 1.5 M events/s).
    private mutating func binaryEvents(rng: inout SplitMix64, sampler: KeySampler, nowMs: Int64) -> Int {
        let n = config.batch, config = self.config
        // Room for the longest events ("u" + 19 digits), trimmed to what was written.
        let room = BinaryEventFormat.headerBytes + n * (2 + 20 + 16)
        body.append(contentsOf: repeatElement(0, count: room))
        var late = 0
        let used = body.withUnsafeMutableBytes { out -> Int in
            var p = out.baseAddress!
            for b in BinaryEventFormat.magic { p.storeBytes(of: b, as: UInt8.self); p += 1 }
            p.storeBytes(of: UInt32(n).littleEndian, toByteOffset: 0, as: UInt32.self)
            p += 4
            for _ in 0..<n {
                let keyBytes = Self.writeKey(sampler.sample(&rng), to: p + 2)
                p.storeBytes(of: UInt16(keyBytes).littleEndian, toByteOffset: 0, as: UInt16.self)
                p += 2 + keyBytes
                let t = Self.eventTime(config, rng: &rng, nowMs: nowMs, late: &late)
                let value = Double(rng.below(10_000)) / 100
                p.storeBytes(of: t.littleEndian, toByteOffset: 0, as: Int64.self)
                p.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 8, as: UInt64.self)
                p += 16
            }
            return p - out.baseAddress!
        }
        body.removeLast(room - used)
        return late
    }

    /// Writes key `u<index>` (decimal) at `p`; returns its length.
    @inline(__always)
    static func writeKey(_ index: Int, to p: UnsafeMutableRawPointer) -> Int {
        var digits = 1
        var bound = 10
        while digits < 19 && index >= bound { digits += 1; bound &*= 10 }
        p.storeBytes(of: UInt8(ascii: "u"), as: UInt8.self)
        var v = index
        var i = digits
        while i > 0 {
            p.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
            i -= 1
        }
        return 1 + digits
    }

    /// How far behind "now" a late event is stamped: well past any sane window plus lateness.
    static let lateByMs: Int64 = 3_600_000
}

/// The measured load of one thread: a closed loop (every free stream slot immediately sends the
/// next request) or, with a rate, an open loop (requests scheduled at fixed intervals; latency
/// counted from the scheduled time, so a slow server cannot hide its queueing — no coordinated
/// omission).
final class LoadDriver: ClientLoopDriver {
    let config: LoadConfig
    let state: ThreadState
    private var rng: SplitMix64
    private let sampler: KeySampler
    private var builder: RequestBuilder
    private let slotsPerConnection: Int
    private unowned let loop: ClientLoop

    // Per request slot (connection index × streams + slot).
    private var startNs: [Int64]
    private var opOf: [Operation]
    private var keyOf: [Int]
    private var seqOf: [UInt32]
    private var timedOut: [Bool]
    private var eventsOf: [Int]
    /// Under --verify with ingest: each slot's Idempotency-Key and body (kept for a retry).
    private var idempotencyKeyOf: [[UInt8]]
    private var bodyOf: [[UInt8]]
    private var idempotencyKey: [UInt8] = []

    /// The schedule starts at the first connection (connect time is not load).
    private var beginNs: Int64
    private var warmupEndNs: Int64
    private var endNs: Int64
    private var started = false
    private var quota: Int?
    private var counted = 0
    private var stopping = false
    private(set) var isFinished = false
    private var inFlight = 0

    private let intervalNs: Int64?
    private var scheduled: Int64 = 0
    private var roundRobin = 0
    private var nextTimeoutScanNs: Int64 = 0

    init(config: LoadConfig, state: ThreadState, loop: ClientLoop, requestsQuota: Int?) {
        self.config = config
        self.state = state
        self.loop = loop
        rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(state.index) &* 0x1_0001)
        sampler = KeySampler(keys: config.keys, distribution: config.distribution)
        builder = RequestBuilder(config: config)
        slotsPerConnection = config.streams
        let slots = loop.connections.count * config.streams
        startNs = Array(repeating: 0, count: slots)
        opOf = Array(repeating: .get, count: slots)
        keyOf = Array(repeating: 0, count: slots)
        seqOf = Array(repeating: 0, count: slots)
        timedOut = Array(repeating: false, count: slots)
        eventsOf = Array(repeating: 0, count: slots)
        idempotencyKeyOf = Array(repeating: [], count: config.verifiesEvents ? slots : 0)
        bodyOf = Array(repeating: [], count: config.verifiesEvents ? slots : 0)
        let begin = loop.nowNs
        beginNs = begin
        warmupEndNs = begin + config.warmupNs
        endNs = config.durationNs.map { begin + config.warmupNs + $0 } ?? .max
        quota = requestsQuota
        if let rate = config.ratePerSecond {
            intervalNs = max(1, Int64(1e9 * Double(state.count) / rate))
        } else {
            intervalNs = nil
        }
    }

    // MARK: - Issuing

    /// Sends one request on `c` (if it has a free slot); `scheduledNs` is the open-loop schedule.
    @discardableResult
    private func issue(on c: ClientConnection, scheduledNs: Int64?) -> Bool {
        guard !stopping, c.freeSlotCount > 0 else { return false }
        let now = loop.nowNs
        if let q = quota, now >= warmupEndNs {
            if counted >= q { stopping = true; return false }
        }
        let op: Operation = config.scenario == .get ? .get : config.mix.operation(for: rng.below(config.mix.total))
        var key = 0
        var seq: UInt32 = 0
        var events = 0
        var method = HTTPClientMethod.get
        var contentType: HTTPClientContentType?
        var hasBody = false
        var capture = false
        switch op {
        case .get where config.scenario == .get:
            builder.fixedGet()
        case .get:
            key = sampler.sample(&rng)
            builder.kv(key)
        case .put, .delete:
            key = sampler.sample(&rng)
            if config.verify { key = state.ownKey(key, keys: config.keys) }
            builder.kv(key)
            if config.verify { seq = state.ledger.issue(key: key, isDelete: op == .delete) }
            if op == .put {
                builder.value(seq: seq)
                method = .put
                contentType = .octetStream
                hasBody = true
            } else {
                method = .delete
            }
        case .scan:
            builder.scan(group: sampler.sample(&rng) / config.scanSize)
        case .ingest:
            state.stats.lateEvents += builder.events(rng: &rng, sampler: sampler)
            events = config.batch
            method = .post
            contentType = config.format == .binary ? .laminarEvents : .ndjson
            hasBody = true
            capture = true
        }
        let idempotent = op == .ingest && config.verifiesEvents
        if idempotent {
            idempotencyKey.removeAll(keepingCapacity: true)
            idempotencyKey.append(contentsOf: "\(config.runID)-\(state.index)-\(state.batchesSent)".utf8)
            state.batchesSent += 1
        }
        let slot: Int? = builder.path.withUnsafeBytes { path in
            if hasBody {
                return builder.body.withUnsafeBytes { body in
                    idempotencyKey.withUnsafeBytes { key in
                        c.submit(method: method, path: path, contentType: contentType, body: body, captureBody: capture,
                                 idempotencyKey: idempotent ? key : nil)
                    }
                }
            }
            return c.submit(method: method, path: path, contentType: contentType)
        }
        guard let slot else {
            if config.verify && (op == .put || op == .delete) { state.ledger.rejected(key: key, seq: seq) }
            return false
        }
        let i = c.index * slotsPerConnection + slot
        startNs[i] = scheduledNs ?? now
        opOf[i] = op
        keyOf[i] = key
        seqOf[i] = seq
        timedOut[i] = false
        eventsOf[i] = events
        if idempotent {
            idempotencyKeyOf[i] = idempotencyKey
            bodyOf[i] = builder.body
        }
        if startNs[i] >= warmupEndNs && startNs[i] < endNs {
            counted += 1
            if let scheduledNs { state.stats.sendLagUs.record(UInt64(max(1, (now - scheduledNs) / 1000))) }
            if hasBody { state.stats.bytesSent += builder.body.count }
        }
        inFlight += 1
        return true
    }

    private func fill(_ c: ClientConnection) {
        guard intervalNs == nil else { return }
        while c.freeSlotCount > 0 && issue(on: c, scheduledNs: nil) {}
    }

    /// Open loop: sends every request whose scheduled time has come, while streams are free.
    private func sendDue() {
        guard let intervalNs, !stopping else { return }
        let due = (loop.nowNs - beginNs) / intervalNs + 1
        let connections = loop.connections
        var triedWithoutSlot = 0
        while scheduled < due && triedWithoutSlot < connections.count {
            let c = connections[roundRobin]
            roundRobin = (roundRobin + 1) % connections.count
            if issue(on: c, scheduledNs: beginNs + scheduled * intervalNs) {
                scheduled += 1
                triedWithoutSlot = 0
            } else {
                triedWithoutSlot += 1
                if stopping { return }
            }
        }
        state.stats.backlogMax = max(state.stats.backlogMax, Int(due - scheduled))
    }

    // MARK: - ClientLoopDriver

    func connected(_ connection: ClientConnection) {
        if !started {
            started = true
            let begin = loop.nowNs
            beginNs = begin
            warmupEndNs = begin + config.warmupNs
            endNs = config.durationNs.map { begin + config.warmupNs + $0 } ?? .max
        }
        fill(connection)
        sendDue()
    }

    func completed(_ c: ClientConnection, slot: Int, outcome: ClientOutcome) {
        inFlight -= 1
        let i = c.index * slotsPerConnection + slot
        let op = opOf[i]
        let now = loop.nowNs
        let measured = startNs[i] >= warmupEndNs && startNs[i] < endNs
        var error: ErrorKind?
        var ok = false
        switch outcome {
        case .response(let status):
            let expected = (200..<300).contains(status)
                || (status == 404 && config.scenario != .get && (op == .get || op == .delete))
            ok = expected
            if !expected { error = .unexpectedStatus }
            if measured {
                state.stats.statusCounts[min(status, 599)] += 1
                state.stats.bytesReceived += c.responseBytes(slot)
                state.stats.latencyUs.record(UInt64(max(1, (now - startNs[i]) / 1000)))
                if expected && op == .ingest {
                    let answer = AckParser(c.responseBody(slot))
                    state.stats.events += answer.accepted ?? eventsOf[i]
                    state.stats.lateReported += answer.late ?? 0
                }
            }
            if config.verify && (op == .put || op == .delete) {
                if expected {
                    state.ledger.acknowledge(key: keyOf[i], seq: seqOf[i])
                } else if status >= 400 && status < 500 {
                    state.ledger.rejected(key: keyOf[i], seq: seqOf[i])
                } else {
                    state.ledger.unknown(key: keyOf[i], seq: seqOf[i])
                }
            }
            if op == .ingest && config.verifiesEvents {
                if expected {
                    state.events.acknowledged(events: eventsOf[i], duplicate: AckParser.isDuplicate(c.responseBody(slot)))
                } else if status >= 400 && status < 500 {
                    state.events.rejected()
                } else {
                    unknownBatch(i)
                }
            }
        case .reset(let code):
            error = timedOut[i] ? .timeout : code == 7 ? .refusedStream : .streamReset
            // Any reset leaves the outcome unknown, REFUSED_STREAM included: RFC 9113 §8.7 says
            // the peer did not process the request, but a proxy is that peer, and HAProxy resets a
            // stream it had already forwarded with REFUSED_STREAM when the server dies before
            // answering ("so that the client may retry"): the server may have applied it.
            if config.verify && (op == .put || op == .delete) { state.ledger.unknown(key: keyOf[i], seq: seqOf[i]) }
            if op == .ingest && config.verifiesEvents { unknownBatch(i) }
        case .failed(let failure):
            switch failure {
            case .protocolError: error = .protocolError
            case .cancelled: error = stopping ? nil : .connectionClosed
            default: error = .connectionClosed
            }
            if config.verify && (op == .put || op == .delete) { state.ledger.unknown(key: keyOf[i], seq: seqOf[i]) }
            if op == .ingest && config.verifiesEvents { unknownBatch(i) }
        }
        if measured {
            state.stats.requests += 1
            state.stats.operations[op.rawValue] += 1
            if ok { state.stats.succeeded += 1 }
            if let error { state.stats.errors[error.rawValue] += 1 }
            state.progress.completed.add(1, ordering: .relaxed)
            if error != nil { state.progress.errors.add(1, ordering: .relaxed) }
        }
        if intervalNs == nil { fill(c) } else { sendDue() }
        if stopping && inFlight == 0 { isFinished = true }
    }

    private func unknownBatch(_ i: Int) {
        state.events.unknownOutcome(EventLedger.Batch(
            idempotencyKey: String(decoding: idempotencyKeyOf[i], as: UTF8.self), format: config.format, events: eventsOf[i], body: bodyOf[i]))
    }

    func connectionFailed(_ connection: ClientConnection, failure: ClientFailure) {
        switch failure {
        case .connectRefused: state.stats.errors[ErrorKind.connectRefused.rawValue] += 1
        case .connectFailed: state.stats.errors[ErrorKind.connectFailed.rawValue] += 1
        default: break  // the requests it carried were counted
        }
        state.progress.errors.add(1, ordering: .relaxed)
    }

    func tick(nowNs now: Int64) -> Int64 {
        if now >= endNs { stopping = true }
        if let q = quota, counted >= q { stopping = true }
        // With --requests there is no end time (endNs is .max): only the timeouts end the wait.
        let giveUpNs = endNs.addingReportingOverflow(config.timeoutNs + 1_000_000_000)
        if stopping && (inFlight == 0 || (!giveUpNs.overflow && now >= giveUpNs.partialValue)) {
            isFinished = true
            return now
        }
        sendDue()
        if now >= nextTimeoutScanNs {
            nextTimeoutScanNs = now + Self.timeoutScanIntervalNs
            let limit = now - config.timeoutNs
            for c in loop.connections where c.inFlight > 0 {
                for slot in 0..<c.slotCount where c.isBusy(slot) {
                    let i = c.index * slotsPerConnection + slot
                    if !timedOut[i] && startNs[i] < limit {
                        timedOut[i] = true
                        c.cancel(slot: slot)
                    }
                }
            }
        }
        var wake = min(nextTimeoutScanNs, endNs)
        if let intervalNs, !stopping {
            // The next request's time, if it is still to come. A request already due waits for a
            // stream (sendDue sent every one it could): the response that frees one wakes the loop.
            // Waking for it now would spin, taking the CPU from the server that is behind.
            let next = beginNs + scheduled * intervalNs
            if next > now { wake = min(wake, next) }
        }
        if !stopping && quota == nil && now < warmupEndNs { wake = min(wake, warmupEndNs) }
        return wake
    }

    static let timeoutScanIntervalNs: Int64 = 50_000_000
}

/// Reads `"accepted":N` and `"late":M` from an events acknowledgement
/// (`{"accepted":3,"late":0,"watermark":1999,"duplicate":false}`) without a JSON parse.
struct AckParser {
    var accepted: Int?
    var late: Int?

    init(_ body: [UInt8]) {
        accepted = Self.integer(after: Array(#""accepted":"#.utf8), in: body)
        late = Self.integer(after: Array(#""late":"#.utf8), in: body)
    }

    /// `"duplicate":true` in an acknowledgement: the batch's Idempotency-Key was seen before.
    static func isDuplicate(_ body: [UInt8]) -> Bool {
        let needle = Array(#""duplicate":true"#.utf8)
        guard body.count >= needle.count else { return false }
        for i in 0...(body.count - needle.count) where body[i] == needle[0] && body[i..<(i + needle.count)].elementsEqual(needle) { return true }
        return false
    }

    static func integer(after name: [UInt8], in body: [UInt8]) -> Int? {
        guard body.count > name.count else { return nil }
        var i = 0
        while i + name.count < body.count {
            if body[i] == name[0] && body[i..<(i + name.count)].elementsEqual(name) {
                var j = i + name.count
                var value = 0
                var digits = 0
                while j < body.count, body[j] >= 48, body[j] <= 57, digits < 18 {
                    value = value * 10 + Int(body[j] - 48)
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}
