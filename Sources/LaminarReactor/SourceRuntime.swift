import LaminarFormats

/// A named source's live state (reactor thread only): the streams reading it, its write-ahead
/// sequence numbers and its idempotency memory.
///
/// A batch posted to the source is one write-ahead entry `_srcwal/{name}/{seq}`, applied to
/// every reader; each reader records in its checkpoint the next source entry it has not taken
/// (`StreamRuntime.sourceNext`), so recovery replays each reader from its own point. Entries
/// below every reader's checkpointed point are deleted (`Reactor.trimSource`), with the source
/// checkpoint `_sourcecp/{name}` keeping the numbering and the idempotency keys.
///
/// Invariants: `firstRetained <= nextSequence`; entries `firstRetained..<nextSequence` are
/// stored; every reader's `checkpointSourceNext >= firstRetained`.
final class SourceRuntime {
    let definition: SourceDefinition
    var readers: [StreamRuntime] = []
    var nextSequence: UInt64 = 1
    var firstRetained: UInt64 = 1
    var idempotency = IdempotencyMemory()
    /// The keys of the source's batches, interned once per batch for all its readers (only with
    /// two readers or more): each reader's operator maps these ids to its own groups. Never
    /// persisted (the ids are the readers' business for as long as the process lives); at most
    /// the stream key limit, beyond which a key gets `noKeyId` and each reader looks it up itself.
    private var keys: KeyInterner? = KeyInterner()  // taken out while a batch is interned
    /// The key id of each event of the last batch (`internKeys`).
    private var keyIds: [UInt32] = []
    private var keyHashes: [UInt64] = []

    /// An event whose key the source did not intern (its interner is full).
    static let noKeyId = UInt32.max

    init(definition: SourceDefinition) {
        self.definition = definition
    }

    /// The source key id of each event of `batch` (`noKeyId` past `limit` keys), valid until the
    /// next call: hashed a column at a time, each lookup prefetching its slot a few events ahead.
    func internKeys(_ batch: EventBatch, limit: Int) -> [UInt32] {
        let n = batch.count
        if keyIds.count < n {
            keyIds = Array(repeating: 0, count: n)
            keyHashes = Array(repeating: 0, count: n)
        }
        // Locals, moved out and back: a class's stored properties would cost an exclusivity
        // check per access, per event.
        var keys = self.keys.take()!, ids: [UInt32] = [], hashes: [UInt64] = []
        swap(&ids, &keyIds)
        swap(&hashes, &keyHashes)
        hashes.withUnsafeMutableBufferPointer { h in
            ids.withUnsafeMutableBufferPointer { ids in
                batch.withEvents { keys.internAll($0, hashes: h.baseAddress!, ids: ids.baseAddress!, limit: limit) }
            }
        }
        self.keys = keys
        swap(&hashes, &keyHashes)
        swap(&ids, &keyIds)
        return keyIds
    }

    var info: SourceInfo {
        SourceInfo(definition: definition, streams: readers.map(\.definition.name).sorted())
    }

    /// Source checkpoint, version 1: first retained entry, next sequence number, idempotency
    /// keys (oldest first).
    func encodeCheckpoint(firstRetained: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.u8(1)
        w.u64(firstRetained)
        w.u64(nextSequence)
        w.u32(UInt32(idempotency.count))
        for k in idempotency.oldestFirst { w.u64(k) }
        return w.bytes
    }

    func decodeCheckpoint(_ bytes: [UInt8], keysMax: Int) throws {
        var r = ByteReader(bytes)
        guard try r.u8() == 1 else { throw ByteReader.DecodeError() }
        firstRetained = try r.u64()
        nextSequence = try r.u64()
        let n = Int(try r.u32())
        for _ in 0..<n { idempotency.remember(try r.u64(), max: keysMax) }
        guard r.atEnd, firstRetained <= nextSequence else { throw ByteReader.DecodeError() }
    }
}

extension KeyInterner {
    /// The id of every event's key into `ids` (`SourceRuntime.noKeyId` past `limit` keys), the
    /// keys hashed first into `hashes` (a column at a time), each lookup prefetching its slot a
    /// few events ahead.
    mutating func internAll(_ events: EventBatch.EventView, hashes: UnsafeMutablePointer<UInt64>, ids: UnsafeMutablePointer<UInt32>, limit: Int) {
        let n = events.count, ahead = WindowOperator.prefetchDistance
        for i in 0..<n { hashes[i] = hash(events.key(i)) }
        for i in 0..<min(n, ahead) { prefetch(hashes[i]) }
        for i in 0..<n {
            if i + ahead < n { prefetch(hashes[i + ahead]) }
            ids[i] = intern(events.key(i), hash: hashes[i], limit: limit) ?? SourceRuntime.noKeyId
        }
    }
}

extension SourceDefinition {
    /// `nil` if valid (the invariants of the type), else why not, naming the member.
    public func validate(limits: ReactorLimits) -> String? {
        if name.isEmpty || name.utf8.count > limits.streamNameBytesMax { return "name must be 1...\(limits.streamNameBytesMax) bytes" }
        if name.utf8.contains(UInt8(ascii: "/")) { return "name must not contain '/'" }
        if keyField.isEmpty { return "key_field must not be empty" }
        if timeField.isEmpty || timeField == keyField { return "time_field must be non-empty and differ from key_field" }
        if fields.isEmpty || fields.count > EventBatch.fieldsMax { return "fields: 1 to \(EventBatch.fieldsMax) fields" }
        if Set(fields).count != fields.count { return "fields: a field is named twice" }
        if fields.contains(where: { $0.isEmpty || $0 == keyField || $0 == timeField }) {
            return "fields: names must be non-empty and differ from key_field and time_field"
        }
        if watermarkDelayMs < 0 || watermarkDelayMs > ReactorLimits.eventTimeAbsMaxMs { return "watermark_delay must be >= 0" }
        if idleTimeoutMs <= 0 { return "idle_timeout must be positive" }
        return nil
    }

    /// Version 1: name, key field, time field, fields, watermark delay, idle timeout.
    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(1)
        w.string(name); w.string(keyField); w.string(timeField)
        w.u32(UInt32(fields.count))
        for f in fields { w.string(f) }
        w.i64(watermarkDelayMs); w.i64(idleTimeoutMs)
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        guard try r.u8() == 1 else { throw ByteReader.DecodeError() }
        let name = try r.string(), key = try r.string(), time = try r.string()
        let n = Int(try r.u32())
        guard n >= 1 && n <= EventBatch.fieldsMax else { throw ByteReader.DecodeError() }
        let fields = try (0..<n).map { _ in try r.string() }
        self.init(name: name, keyField: key, timeField: time, fields: fields, watermarkDelayMs: try r.i64(), idleTimeoutMs: try r.i64())
        guard r.atEnd else { throw ByteReader.DecodeError() }
    }
}
