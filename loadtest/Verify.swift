/// What `--verify` remembers of the writes of one load thread, and what it accepts when reading
/// the keys back. A thread owns the keys it writes (key % threads == thread index), so a ledger is
/// never shared.
///
/// Ordering is by the thread's own logical clock (`tick`), which orders issues and acknowledgements
/// as this client observed them. A write acknowledged before another was issued is overwritten
/// by it (last write wins); writes that overlapped may land in either order, so both stay
/// acceptable. A write whose outcome is unknown (timeout, reset, connection lost) may land at any
/// time, so it stays acceptable forever.
struct VerifyLedger {
    struct Write: Equatable {
        var seq: UInt32
        var isDelete: Bool
        /// Logical time of the acknowledgement; `.max` when the outcome is unknown.
        var ackTick: UInt64
    }

    struct Pending {
        var seq: UInt32
        var isDelete: Bool
        var issueTick: UInt64
    }

    struct KeyRecord {
        var acceptable: [Write] = []
        var inFlight: [Pending] = []
        /// At least one write was acknowledged: the key's final state is known.
        var hasAck = false
    }

    enum Verdict: Equatable {
        case ok
        /// 404 where only values were acceptable.
        case lost
        /// A value that no acceptable write produced.
        case mismatch
    }

    private(set) var records: [Int: KeyRecord] = [:]
    private(set) var tick: UInt64 = 0
    private var nextSeq: UInt32 = 1

    /// A write is sent: returns its sequence number (the value carries it).
    mutating func issue(key: Int, isDelete: Bool) -> UInt32 {
        tick += 1
        let seq = nextSeq
        nextSeq &+= 1
        records[key, default: KeyRecord()].inFlight.append(Pending(seq: seq, isDelete: isDelete, issueTick: tick))
        return seq
    }

    /// The write was acknowledged (2xx; 404 for a delete).
    mutating func acknowledge(key: Int, seq: UInt32) {
        tick += 1
        guard var record = records[key], let i = record.inFlight.firstIndex(where: { $0.seq == seq }) else { return }
        let pending = record.inFlight.remove(at: i)
        record.acceptable.removeAll { $0.ackTick <= pending.issueTick }
        record.acceptable.append(Write(seq: seq, isDelete: pending.isDelete, ackTick: tick))
        record.hasAck = true
        records[key] = record
    }

    /// The write's outcome is unknown: it may or may not have been applied.
    mutating func unknown(key: Int, seq: UInt32) {
        tick += 1
        guard var record = records[key], let i = record.inFlight.firstIndex(where: { $0.seq == seq }) else { return }
        let pending = record.inFlight.remove(at: i)
        record.acceptable.append(Write(seq: seq, isDelete: pending.isDelete, ackTick: .max))
        records[key] = record
    }

    /// The write was rejected (a 4xx other than a delete's 404): it was not applied.
    mutating func rejected(key: Int, seq: UInt32) {
        tick += 1
        records[key]?.inFlight.removeAll { $0.seq == seq }
    }

    /// A key read from a ledger file (or another thread's ledger): its acceptable writes, at least
    /// one of them acknowledged.
    mutating func restore(key: Int, writes: [Write]) {
        records[key, default: KeyRecord()].acceptable += writes
        records[key]!.hasAck = true
    }

    /// Keys whose final state is known, to read back.
    var keysToCheck: [Int] { records.filter { $0.value.hasAck }.map(\.key).sorted() }

    /// Judges a read-back: `observedSeq` nil for 404, else the sequence number parsed from the
    /// value (or nil parse → pass `.max`, which matches nothing).
    func check(key: Int, observedSeq: UInt32?) -> Verdict {
        guard let record = records[key] else { return .ok }
        guard let seq = observedSeq else {
            return record.acceptable.contains { $0.isDelete } ? .ok : .lost
        }
        return record.acceptable.contains { !$0.isDelete && $0.seq == seq } ? .ok : .mismatch
    }
}

/// The value of a PUT: `<key>:<seq>:` padded with `x` to the value size; reading it back gives
/// the sequence number.
enum ValueCodec {
    static func append(key: UnsafeRawBufferPointer, seq: UInt32, valueBytes: Int, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: key)
        out.append(UInt8(ascii: ":"))
        KeyNamer.appendInteger(Int64(seq), to: &out)
        out.append(UInt8(ascii: ":"))
        let written = out.count - start
        if written < valueBytes { out.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: valueBytes - written)) }
    }

    /// The sequence number of a value written for `key`, or nil if it is not one of ours.
    static func seq(of value: [UInt8], key: [UInt8]) -> UInt32? {
        guard value.count > key.count + 2, value.starts(with: key), value[key.count] == UInt8(ascii: ":") else { return nil }
        var seq: UInt64 = 0
        var i = key.count + 1
        var digits = 0
        while i < value.count, value[i] >= UInt8(ascii: "0"), value[i] <= UInt8(ascii: "9"), digits < 10 {
            seq = seq * 10 + UInt64(value[i] - UInt8(ascii: "0"))
            i += 1
            digits += 1
        }
        guard digits > 0, i < value.count, value[i] == UInt8(ascii: ":"), seq <= UInt64(UInt32.max) else { return nil }
        return UInt32(seq)
    }
}
