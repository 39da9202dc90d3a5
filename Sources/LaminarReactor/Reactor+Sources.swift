import LaminarFormats
import LaminarStore

extension Reactor {
    func readersDetail(_ source: SourceRuntime) -> String {
        "source \(source.definition.name) is read by " + source.info.streams.joined(separator: ", ") + "; drop those streams first"
    }

    /// What is wrong with a batch whatever it is posted to, or `nil`.
    func batchProblem(_ batch: EventBatch, fields: [String]) -> ReactorError? {
        if batch.count > limits.batchEventsMax { return .batchTooLarge(events: batch.count, max: limits.batchEventsMax) }
        let bad: String? = batch.withEvents { events in
            let bound = ReactorLimits.eventTimeAbsMaxMs
            if Reactor.eventsAreValid(events, timeBound: bound) { return nil }
            for i in 0..<events.count {
                let ts = events.timestamp(i)
                // The decoders refuse these first; a batch from elsewhere is held to the same rules.
                if ts < -bound || ts > bound { return "event \(i + 1): time out of range" }
                for j in 0..<events.fieldCount where !events.field(i, j).isFinite { return "event \(i + 1): value is not finite" }
                if events.key(i).isEmpty { return "event \(i + 1): empty key" }
            }
            return nil
        }
        if let bad { return .invalidEvents(bad) }
        if batch.fieldCount != fields.count {
            return .invalidEvents("the events have \(fields.count) fields (\(fields.joined(separator: ", "))), the batch's \(batch.fieldCount)")
        }
        return nil
    }

    /// Whether every event has a time within `±bound`, finite fields and a non-empty key: a
    /// column at a time with no early exit (a few instructions per event, no branch to
    /// mispredict); `batchProblem` walks a batch that fails again to name the first fault.
    @inline(__always)
    static func eventsAreValid(_ events: EventBatch.EventView, timeBound bound: Int64) -> Bool {
        precondition(bound > 0 && bound <= Int64.max / 2)
        let span = UInt64(2 * bound)
        let exponent: UInt64 = 0x7FF0_0000_0000_0000
        // Typed columns (not a byte offset per element) so that the loops vectorize.
        let bad: UInt64 = events.withColumns { times, values, ends in
            var bad: UInt64 = 0
            for t in times {
                // ts in -bound...bound ⇔ ts + bound in 0...2·bound, as an unsigned number.
                bad |= UInt64(bitPattern: Int64(littleEndian: t) &+ bound) > span ? 1 : 0
            }
            for v in values {
                // All exponent bits set: ±inf, NaN.
                bad |= UInt64(littleEndian: v) & exponent == exponent ? 1 : 0
            }
            var previousEnd: UInt32 = 0
            for e in ends {
                let end = UInt32(littleEndian: e)
                bad |= end == previousEnd ? 1 : 0
                previousEnd = end
            }
            return bad
        }
        return bad == 0
    }

    /// A batch posted to a source: checked against every reader (keys), logged once, applied to
    /// each reader. The answer: `late` is the fewest late events of any reader, `watermark` the
    /// lowest (both 0 / `Int64.min` when no stream reads the source: the batch is not kept).
    func appendSourceEvents(source name: String, batch: EventBatch, idempotencyKey: UInt64?, nowMs: Int64) -> ReactorResult {
        guard let source = sources[name] else { return .failure(.unknownSource(name)) }
        let lowestWatermark = { source.readers.map(\.op.watermarkMs).min() ?? .min }
        if let idempotencyKey, source.idempotency.contains(idempotencyKey) {
            return .eventsAccepted(EventsAck(accepted: 0, late: 0, watermarkMs: lowestWatermark(), duplicate: true))
        }
        if let problem = batchProblem(batch, fields: source.definition.fields) { return .failure(problem) }
        for stream in source.readers where !stream.op.wouldFit(events: batch.count, keysMax: limits.streamKeysMax) {
            return .failure(.tooManyKeys)
        }
        if source.readers.isEmpty {
            if let idempotencyKey { source.idempotency.remember(idempotencyKey, max: limits.idempotencyKeysPerStreamMax) }
            return .eventsAccepted(EventsAck(accepted: batch.count, late: 0, watermarkMs: .min, duplicate: false))
        }
        let entry = WALEntry.batch(batch, idempotencyKey: idempotencyKey).encoded()
        if entry.count > store.limits.valueBytesMax {
            return .failure(.batchBytesTooLarge(bytes: entry.count, max: store.limits.valueBytesMax))
        }
        let seq = source.nextSequence
        do {
            try store.put(ReservedKeys.sourceWAL(name, sequence: seq), entry, condition: .always, expiresAtMs: nil)
        } catch {
            return .failure(ReactorError(error))
        }
        source.nextSequence += 1
        mutatedThisRound = true
        if let idempotencyKey { source.idempotency.remember(idempotencyKey, max: limits.idempotencyKeysPerStreamMax) }
        var fewestLate = Int.max
        // Several readers: the keys are looked up once, here, and each reader maps their ids.
        let keyIds = source.readers.count > 1 ? source.internKeys(batch, limit: limits.streamKeysMax) : nil
        for stream in source.readers {
            precondition(stream.sourceNext == seq, "a reader takes every entry of its source in order")
            let r = ingest(stream, batch: batch, idempotencyKey: nil, sourceKeys: keyIds)
            stream.sourceNext = seq + 1
            fewestLate = min(fewestLate, r.late)
            stream.lastEventAtMs = nowMs
            if !stream.idleTimerPending {
                stream.idleTimerPending = true
                timers.schedule(atMs: nowMs + stream.definition.idleTimeoutMs, .idle(stream: stream.definition.name, id: stream.id))
            }
            checkpointIfDue(stream)
        }
        return .eventsAccepted(EventsAck(accepted: batch.count - fewestLate, late: fewestLate, watermarkMs: lowestWatermark(), duplicate: false))
    }

    /// Deletes the source's entries every reader's checkpoint covers (all of them when none
    /// reads it), with the source checkpoint, in one batch.
    func trimSource(_ source: SourceRuntime) {
        let bound = source.readers.map(\.checkpointSourceNext).min() ?? source.nextSequence
        guard bound > source.firstRetained else { return }
        let name = source.definition.name
        var batch: [StoreMutation] = [.put(key: ReservedKeys.sourceCheckpoint(name), value: source.encodeCheckpoint(firstRetained: bound))]
        for seq in source.firstRetained..<bound { batch.append(.delete(key: ReservedKeys.sourceWAL(name, sequence: seq))) }
        if (try? store.apply(batch)) != nil {
            source.firstRetained = bound
            mutatedThisRound = true
        }
    }

    /// Whether a stream definition fits its source: same key, time and value fields (`nil`), or why not.
    func sourceMismatch(_ d: StreamDefinition, _ source: SourceDefinition) -> String? {
        if d.keyField != source.keyField { return "key_field must be the source's (\(source.keyField))" }
        if d.timeField != source.timeField { return "time_field must be the source's (\(source.timeField))" }
        if d.fields != source.fields { return "fields must be the source's (\(source.fields.joined(separator: ", ")))" }
        return nil
    }

    // MARK: - Recovery

    /// Reads the named sources, their checkpoints and the numbering and idempotency keys of
    /// their entries (before the streams that read them are recovered).
    func recoverSources() throws {
        var after: [UInt8]? = nil
        while true {
            let page = store.prefixScan(ReservedKeys.sourcePrefix, after: after, limit: 1024)
            for entry in page {
                let source = SourceRuntime(definition: try SourceDefinition(decoding: entry.value))
                let name = source.definition.name
                if let cp = store.get(ReservedKeys.sourceCheckpoint(name)) {
                    try source.decodeCheckpoint(cp.value, keysMax: limits.idempotencyKeysPerStreamMax)
                }
                let prefix = ReservedKeys.sourceWALPrefix(name)
                var walAfter: [UInt8]? = nil
                while true {
                    let wal = store.prefixScan(prefix, after: walAfter, limit: 256)
                    for e in wal {
                        guard let seq = UInt64(String(decoding: e.key[prefix.count...], as: UTF8.self), radix: 16) else { continue }
                        source.nextSequence = max(source.nextSequence, seq + 1)
                        if e.value.count >= WALEntry.headerBytes, e.value[1] == 1 {
                            source.idempotency.remember(try WALEntry.tag(of: e.value), max: limits.idempotencyKeysPerStreamMax)
                        }
                    }
                    guard wal.count == 256 else { break }
                    walAfter = wal.last!.key
                }
                sources[name] = source
            }
            guard page.count == 1024 else { break }
            after = page.last!.key
        }
    }

    /// Applies the source's entries from the stream's `sourceNext` up to `end` (replay).
    func replaySource(_ stream: StreamRuntime, _ source: SourceRuntime, upTo end: UInt64) throws {
        while stream.sourceNext < end {
            guard let e = store.get(ReservedKeys.sourceWAL(source.definition.name, sequence: stream.sourceNext)),
                  case .batch(let batch, _) = try WALEntry(decoding: e.value) else { throw ByteReader.DecodeError() }
            _ = ingest(stream, batch: batch, idempotencyKey: nil)
            stream.sourceNext += 1
        }
    }
}
