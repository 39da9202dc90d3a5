import Foundation

/// What `--verify` remembers of the event batches of one load thread. Every batch carries an
/// `Idempotency-Key`; a batch is acknowledged (`202`, not a duplicate: its events are counted
/// once), rejected (a 4xx: not applied), or of unknown outcome (timeout, reset,
/// connection lost, 5xx: it may or may not have been applied). Unknown batches keep their body, so
/// that verification can send them again with the same key: the server counts a remembered key
/// once, so after the retry every unknown batch is counted exactly once too.
struct EventLedger: Equatable {
    struct Batch: Equatable {
        var idempotencyKey: String
        var format: EventWireFormat
        var events: Int
        var body: [UInt8]
    }

    var ackedBatches = 0
    var ackedEvents = 0
    /// `202` with `"duplicate":true` during the load: a key was reused (a bug of the client).
    var duplicateBatches = 0
    var rejectedBatches = 0
    var unknown: [Batch] = []

    mutating func acknowledged(events: Int, duplicate: Bool) {
        if duplicate {
            duplicateBatches += 1
        } else {
            ackedBatches += 1
            ackedEvents += events
        }
    }

    mutating func rejected() { rejectedBatches += 1 }
    mutating func unknownOutcome(_ batch: Batch) { unknown.append(batch) }

    mutating func merge(_ other: EventLedger) {
        ackedBatches += other.ackedBatches
        ackedEvents += other.ackedEvents
        duplicateBatches += other.duplicateBatches
        rejectedBatches += other.rejectedBatches
        unknown += other.unknown
    }

    var unknownEvents: Int { unknown.reduce(0) { $0 + $1.events } }

    enum Verdict: Equatable {
        case ok
        /// Fewer events counted than were acknowledged (or resolved by a retry).
        case lost(Int)
        /// More events counted than could have been sent: some counted twice.
        case duplicated(Int)
    }

    /// Judges the stream's count (`events + late_events` minus the count before the run):
    /// acknowledged events, plus those of unknown batches a retry resolved (`resolvedEvents`), must
    /// each be counted once; unknown batches not resolved may be counted once or not at all.
    func check(counted: Int, resolvedEvents: Int) -> Verdict {
        let low = ackedEvents + resolvedEvents
        let high = low + max(0, unknownEvents - resolvedEvents)
        if counted < low { return .lost(low - counted) }
        if counted > high { return .duplicated(counted - high) }
        return .ok
    }
}

extension VerifyLedger {
    /// Writes still in flight (the run was cut short) become of unknown outcome.
    mutating func settlePending() {
        for key in Array(records.keys) {
            for pending in records[key]!.inFlight { unknown(key: key, seq: pending.seq) }
        }
    }

    /// The keys whose final state is known, with their acceptable writes (for a ledger file).
    var checkable: [(key: Int, writes: [Write])] {
        keysToCheck.map { ($0, records[$0]!.acceptable) }
    }

    /// Adds the keys of another thread's ledger (threads own disjoint keys).
    mutating func merge(_ other: VerifyLedger) {
        for (key, writes) in other.checkable { restore(key: key, writes: writes) }
    }
}

/// A ledger written by `--verify --ledger FILE` after the load, and read by `laminar-load verify
/// --ledger FILE`, so that a server killed during the load can be checked after its restart.
/// Text, one record a line:
///
///     laminar-load-ledger 1
///     keys <group size, 0 for none> <key prefix or -> [<partition tags>]
///     stream <name or -> <count before the run>
///     kv <key index> <seq><p|d>,<seq><p|d>,...      acceptable writes of a key with an acknowledged one
///     events <acked batches> <acked events> <duplicates> <rejected>
///     unknown <idempotency key> <binary|ndjson> <events> <body as hex>
struct LedgerFile: Equatable {
    var groupSize: Int?
    var keyPrefix = ""
    var tags: Int?
    var streamName: String?
    var baseline = 0
    var kv = VerifyLedger()
    var events = EventLedger()

    static let magic = "laminar-load-ledger 1"

    static func == (a: LedgerFile, b: LedgerFile) -> Bool {
        a.groupSize == b.groupSize && a.keyPrefix == b.keyPrefix && a.tags == b.tags && a.streamName == b.streamName && a.baseline == b.baseline
            && a.events == b.events
            && a.kv.checkable.elementsEqual(b.kv.checkable) { x, y in
                // What a file keeps of a write: its sequence number and kind (not its logical time).
                x.key == y.key && x.writes.elementsEqual(y.writes) { $0.seq == $1.seq && $0.isDelete == $1.isDelete }
            }
    }

    func encoded() -> String {
        var out = Self.magic + "\n"
        out += "keys \(groupSize ?? 0) \(keyPrefix.isEmpty ? "-" : keyPrefix)" + (tags.map { " \($0)" } ?? "") + "\n"
        out += "stream \(streamName ?? "-") \(baseline)\n"
        for (key, writes) in kv.checkable {
            out += "kv \(key) " + writes.map { "\($0.seq)\($0.isDelete ? "d" : "p")" }.joined(separator: ",") + "\n"
        }
        out += "events \(events.ackedBatches) \(events.ackedEvents) \(events.duplicateBatches) \(events.rejectedBatches)\n"
        for b in events.unknown {
            out += "unknown \(b.idempotencyKey) \(b.format.rawValue) \(b.events) \(Self.hex(b.body))\n"
        }
        return out
    }

    init() {}

    init(parsing text: String) throws(FlagError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first.map(String.init) == Self.magic else { throw FlagError("not a laminar-load ledger (first line is not '\(Self.magic)')") }
        for (number, line) in lines.enumerated().dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            func bad() -> FlagError { FlagError("ledger line \(number + 1): cannot read '\(line.prefix(80))'") }
            switch f.first {
            case "keys":
                guard f.count == 3 || f.count == 4, let g = Int(f[1]), g >= 0 else { throw bad() }
                groupSize = g == 0 ? nil : g
                keyPrefix = f[2] == "-" ? "" : f[2]
                if f.count == 4 {
                    guard let t = Int(f[3]), t >= 1 else { throw bad() }
                    tags = t
                }
            case "stream":
                guard f.count == 3, let b = Int(f[2]) else { throw bad() }
                streamName = f[1] == "-" ? nil : f[1]
                baseline = b
            case "kv":
                guard f.count == 3, let key = Int(f[1]) else { throw bad() }
                var writes: [VerifyLedger.Write] = []
                for w in f[2].split(separator: ",") {
                    guard let kind = w.last, kind == "p" || kind == "d", let seq = UInt32(w.dropLast()) else { throw bad() }
                    writes.append(VerifyLedger.Write(seq: seq, isDelete: kind == "d", ackTick: .max))
                }
                kv.restore(key: key, writes: writes)
            case "events":
                guard f.count == 5, let a = Int(f[1]), let e = Int(f[2]), let d = Int(f[3]), let r = Int(f[4]) else { throw bad() }
                events.ackedBatches = a
                events.ackedEvents = e
                events.duplicateBatches = d
                events.rejectedBatches = r
            case "unknown":
                guard f.count == 5, let format = EventWireFormat(rawValue: f[2]), let n = Int(f[3]), let body = Self.unhex(f[4]) else { throw bad() }
                events.unknown.append(EventLedger.Batch(idempotencyKey: f[1], format: format, events: n, body: body))
            default:
                throw bad()
            }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }
}
