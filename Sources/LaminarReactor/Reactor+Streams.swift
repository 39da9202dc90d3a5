import LaminarFormats
import LaminarStore

extension Reactor {
    /// `emit: {"every": D}`: the processing-time timer of the stream's changelog flushes.
    func scheduleEmitTick(_ stream: StreamRuntime, nowMs: Int64) {
        guard case .every(let ms) = stream.definition.emit else { return }
        timers.schedule(atMs: nowMs + ms, .emitTick(stream: stream.definition.name, id: stream.id))
    }

    func takeStreamId() -> UInt64 {
        defer { nextStreamId += 1 }
        return nextStreamId
    }

    func appendEvents(stream name: String, batch: EventBatch, idempotencyKey: UInt64?, nowMs: Int64) -> ReactorResult {
        guard let stream = streams[name] else { return .failure(.unknownStream(name)) }
        if let source = stream.definition.source {
            return .failure(.conflict("stream \(name) reads source \(source): post its events to /sources/\(source)/events"))
        }
        if batch.count > limits.batchEventsMax { return .failure(.batchTooLarge(events: batch.count, max: limits.batchEventsMax)) }
        if let idempotencyKey, stream.idempotency.contains(idempotencyKey) {
            return .eventsAccepted(EventsAck(accepted: 0, late: 0, watermarkMs: stream.op.watermarkMs, duplicate: true))
        }
        if let problem = batchProblem(batch, fields: stream.definition.fields) { return .failure(problem) }
        if !stream.op.wouldFit(events: batch.count, keysMax: limits.streamKeysMax) { return .failure(.tooManyKeys) }
        // Log before applying; the completion waits for this round's commit. The entry is one
        // store value (`ReactorLimits.walEntryBytesMax`); a store configured with a smaller value
        // bound refuses the batch by its size, never with an internal error.
        let entry = WALEntry.batch(batch, idempotencyKey: idempotencyKey).encoded()
        if entry.count > store.limits.valueBytesMax {
            return .failure(.batchBytesTooLarge(bytes: entry.count, max: store.limits.valueBytesMax))
        }
        do {
            try store.put(ReservedKeys.wal(name, sequence: stream.nextSequence), entry, condition: .always, expiresAtMs: nil)
        } catch {
            return .failure(ReactorError(error))
        }
        stream.nextSequence += 1
        mutatedThisRound = true
        let r = ingest(stream, batch: batch, idempotencyKey: idempotencyKey)
        stream.lastEventAtMs = nowMs
        if !stream.idleTimerPending {
            stream.idleTimerPending = true
            timers.schedule(atMs: nowMs + stream.definition.idleTimeoutMs, .idle(stream: name, id: stream.id))
        }
        checkpointIfDue(stream)
        return .eventsAccepted(EventsAck(accepted: r.accepted, late: r.late, watermarkMs: stream.op.watermarkMs, duplicate: false))
    }

    /// Applies a logged batch to the operator and queues the rows it produced (live and
    /// replay; `emitResultSlices` stores and sends them); keeps its late events
    /// (`late_data: keep`); an `emit: changes` stream is flushed at the end of the round
    /// (`flushChangelogs`).
    ///
    /// `sourceKeys`: the source's key id of each event of `batch` (`SourceRuntime.internKeys`), so
    /// the operator need not look each key up again; `nil` when the batch is not a source's
    /// shared by several readers (then the operator hashes the keys itself).
    func ingest(_ stream: StreamRuntime, batch: EventBatch, idempotencyKey: UInt64?, sourceKeys: [UInt32]? = nil) -> (accepted: Int, late: Int) {
        if let idempotencyKey { stream.idempotency.remember(idempotencyKey, max: limits.idempotencyKeysPerStreamMax) }
        eventsThisRound += batch.count
        let input = stream.stage.map { $0.project(batch) } ?? batch
        let keysMax = limits.streamKeysMax
        let r: (accepted: Int, late: Int)
        if let sourceKeys {
            let ids = stream.stage.flatMap { $0.keptKeyIds(sourceKeys, of: batch.count) } ?? sourceKeys
            r = ids.withUnsafeBufferPointer { ids in
                input.withEvents { stream.op.ingest($0, keysMax: keysMax, sourceKeys: UnsafeBufferPointer(rebasing: ids[..<$0.count])) }
            }
        } else {
            r = input.withEvents { stream.op.ingest($0, keysMax: keysMax) }
        }
        if stream.op.keepLate { stream.keepLate(batch, max: limits.lateEventsPerStreamMax) }
        if r.accepted > 0, stream.definition.emit == .changes, !stream.flushPending {
            stream.flushPending = true
            changelogPending.append(stream)
        }
        queueRows(stream)
        return r
    }

    /// Logs a changelog flush and queues the rows of the windows that changed since the last one.
    func flushChangelog(_ stream: StreamRuntime) {
        stream.flushPending = false
        guard stream.op.hasPendingChanges, streams[stream.definition.name] === stream else { return }
        do {
            try store.put(ReservedKeys.wal(stream.definition.name, sequence: stream.nextSequence), WALEntry.flush.encoded(tag: stream.sourceNext),
                condition: .always, expiresAtMs: nil)
        } catch {
            return  // the store refused (full disk): the changes go out with the next flush
        }
        stream.nextSequence += 1
        mutatedThisRound = true
        stream.op.flushChanges(showing: stream.projection)
        queueRows(stream)
        checkpointIfDue(stream)
    }

    /// End of a round: flushes the `emit: changes` streams that took events in it.
    func flushChangelogs() {
        guard !changelogPending.isEmpty else { return }
        let pending = changelogPending
        changelogPending.removeAll(keepingCapacity: true)
        for stream in pending { flushChangelog(stream) }
    }

    /// Processing-time watermark advance: when no event came for `idleTimeoutMs`, event time is
    /// taken to move with processing time since the last event. The advance is logged so replay
    /// after a crash classifies later events exactly as they were acknowledged.
    func idleCheck(_ stream: StreamRuntime, nowMs: Int64) {
        let idleFor = nowMs - stream.lastEventAtMs
        let timeout = stream.definition.idleTimeoutMs
        if idleFor < timeout {
            stream.idleTimerPending = true
            timers.schedule(atMs: stream.lastEventAtMs + timeout, .idle(stream: stream.definition.name, id: stream.id))
            return
        }
        guard stream.op.openWindowCount > 0, stream.op.maxEventTimeMs > .min else { return }
        let target = stream.op.maxEventTimeMs - stream.definition.allowedLatenessMs + idleFor
        if target > stream.op.watermarkMs {
            do {
                try store.put(ReservedKeys.wal(stream.definition.name, sequence: stream.nextSequence),
                    WALEntry.watermark(target).encoded(tag: stream.sourceNext), condition: .always, expiresAtMs: nil)
                stream.nextSequence += 1
                mutatedThisRound = true
                stream.op.advanceWatermark(toMs: target)
                queueRows(stream)
                checkpointIfDue(stream)
            } catch {
                // The store refused (full disk): keep the watermark; retry at the next tick.
            }
        }
        if let end = stream.op.oldestOpenWindowEndMs {
            stream.idleTimerPending = true
            let wait = max(1, end - stream.op.watermarkMs)
            timers.schedule(atMs: nowMs + wait, .idle(stream: stream.definition.name, id: stream.id))
        }
    }

    /// The write-ahead entries after which the stream's checkpoint is due: `walEntriesPerCheckpointMax`,
    /// or one per `checkpointGroupsPerEntry` keys of the stream or groups of its open windows
    /// (whichever is more) when that is more. A checkpoint writes every key and every open
    /// group, so with a million keys a fixed interval would spend most of the writer's time
    /// writing checkpoints; this keeps the checkpoint's cost per logged event bounded whatever
    /// the number of keys, and the replay after a crash proportional to it. (Counting only open
    /// groups, 1M keys and 1 s windows checkpointed 25 MB every 0.85 s: its encoding, storing
    /// and compaction took a third of the two cores.)
    ///
    /// The groups of the window closed last count too (`WindowOperator.lastClosedGroups`): at
    /// a window close the open groups fall to a handful, and counting only those made the
    /// checkpoint look overdue at every close of a big window (so the rest of its rows went out
    /// in a few huge rounds, stalling event batches). A backlog of closed windows does not count.
    func checkpointEntries(_ stream: StreamRuntime) -> UInt64 {
        let groups = Swift.max(stream.op.checkpointGroups, stream.op.lastClosedGroups, stream.op.keyCount)
        return UInt64(Swift.max(limits.walEntriesPerCheckpointMax, groups / limits.checkpointGroupsPerEntry))
    }

    /// Takes the stream's checkpoint when due. Closed windows whose rows are still going out
    /// are in it (each from its next row: replay after a crash emits the rest under the same
    /// sequence numbers), but not built rows (changelogs, sessions): the checkpoint then waits
    /// for the last slice (`emitRows` calls again). Nor while a slice the store refused waits
    /// (`pendingSlices`): a checkpoint past its rows would make a crash lose them
    /// (`retryPendingSlices` calls again). A tumbling stream whose open pane holds more than
    /// `checkpointOpenGroupsCopyMax` groups waits for the next close, when the pane is nearly
    /// empty (the snapshot copies it on the reactor: 1M groups took 60 to 190 ms), unless the
    /// checkpoint is overdue (twice its entries). A small one is written at once; a big one is
    /// taken as a snapshot, encoded off the reactor and stored in parts (`CheckpointJob`,
    /// `advanceCheckpoints`), one checkpoint at a time per stream.
    func checkpointIfDue(_ stream: StreamRuntime) {
        guard stream.checkpointJob == nil, stream.pendingSlices.isEmpty else { return }
        let due = checkpointEntries(stream)
        guard stream.entriesSinceCheckpoint >= due, stream.op.checkpointable else { return }
        if stream.entriesSinceCheckpoint < 2 * due && stream.op.checkpointWaitsForClose(groupsMax: limits.checkpointOpenGroupsCopyMax) { return }
        let snapshot = stream.checkpointSnapshot(atMs: clock.nowMs())
        if snapshot.op.checkpointBytesEstimate > limits.checkpointInlineBytesMax {
            stream.checkpointJob = CheckpointJob(streamId: stream.id, generation: stream.checkpointGeneration + 1, snapshot: snapshot,
                                                 sourceNext: stream.sourceNext, wake: parking.doorbell)
            checkpointJobs.append(stream)
            roundNotes.checkpointsStarted += 1
            return
        }
        let value = snapshot.encode()
        roundNotes.checkpointBytesInline += value.count
        finishCheckpoint(stream, value: value, coversSequence: snapshot.nextSequence, sourceNext: stream.sourceNext,
                         atMs: snapshot.atMs, parts: 0)
    }

    /// Makes a checkpoint current in one atomic batch: its value (or the head naming its
    /// `parts`, stored already), the deletion of the write-ahead entries it covers (those before
    /// `coversSequence`) and of the parts of the checkpoint it replaces. `parts`, `generation`:
    /// those of the new one (0 parts: `value` is the checkpoint). Returns whether the store took
    /// it (if not, the previous checkpoint and the log after it stay as they were).
    @discardableResult
    func finishCheckpoint(_ stream: StreamRuntime, value: [UInt8], coversSequence: UInt64, sourceNext: UInt64, atMs: Int64,
                          parts: Int, generation: UInt64 = 0) -> Bool {
        let name = stream.definition.name
        var batch: [StoreMutation] = [.put(key: ReservedKeys.checkpoint(name), value: value)]
        batch.reserveCapacity(Int(coversSequence - stream.firstUncheckpointed) + stream.checkpointParts + 1)
        for seq in stream.firstUncheckpointed..<coversSequence { batch.append(.delete(key: ReservedKeys.wal(name, sequence: seq))) }
        for i in 0..<stream.checkpointParts {
            batch.append(.delete(key: ReservedKeys.checkpointPart(name, generation: stream.checkpointGeneration, index: i)))
        }
        guard (try? store.apply(batch)) != nil else { return false }
        stream.firstUncheckpointed = coversSequence
        stream.lastCheckpointAtMs = atMs
        stream.checkpointParts = parts
        if parts > 0 { stream.checkpointGeneration = generation }
        mutatedThisRound = true
        if sourceNext > stream.checkpointSourceNext, let source = stream.definition.source.flatMap({ sources[$0] }) {
            stream.checkpointSourceNext = sourceNext
            trimSource(source)
        }
        return true
    }

    /// One round's share of the checkpoints being written in parts: for each whose encoding is
    /// done, one part (`ReactorLimits.checkpointPartBytes`); after its last part, the head
    /// (`finishCheckpoint`). Returns whether it did any.
    func advanceCheckpoints() -> Bool {
        guard !checkpointJobs.isEmpty else { return false }
        var did = false
        var i = 0
        while i < checkpointJobs.count {
            let stream = checkpointJobs[i]
            guard let job = stream.checkpointJob, streams[stream.definition.name] === stream else {
                stream.checkpointJob = nil  // the stream was deleted (its parts with it)
                checkpointJobs.remove(at: i)
                continue
            }
            guard job.isEncoded else { i += 1; continue }
            if let snapshot = job.takeSnapshot() { stream.op.recycleCheckpointCopy(snapshot.op) }
            did = true
            if writeCheckpointPart(stream, job) {
                stream.checkpointJob = nil
                checkpointJobs.remove(at: i)
                checkpointIfDue(stream)  // the entries logged meanwhile may make the next one due
            } else {
                i += 1
            }
        }
        return did
    }

    /// Stores the job's next part, and after the last one makes it current. Returns whether the
    /// job is over (made current, or given up when the store refused a write: its parts are
    /// deleted and the next checkpoint is due again at once).
    private func writeCheckpointPart(_ stream: StreamRuntime, _ job: CheckpointJob) -> Bool {
        let name = stream.definition.name
        let partBytes = Swift.max(1, Swift.min(limits.checkpointPartBytes, store.limits.valueBytesMax))
        let parts = job.partCount(partBytes: partBytes)
        if job.partsWritten < parts {
            let lo = job.partsWritten * partBytes, hi = Swift.min(lo + partBytes, job.bytes.count)
            do {
                _ = try store.put(ReservedKeys.checkpointPart(name, generation: job.generation, index: job.partsWritten),
                                  Array(job.bytes[lo..<hi]), condition: .always, expiresAtMs: nil)
            } catch {
                abandon(stream, job)
                return true
            }
            job.partsWritten += 1
            roundNotes.checkpointPartBytes += hi - lo
            mutatedThisRound = true
            if job.partsWritten < parts { return false }
        }
        if !finishCheckpoint(stream, value: job.head(partBytes: partBytes), coversSequence: job.coversSequence,
                             sourceNext: job.sourceNext, atMs: job.atMs, parts: parts, generation: job.generation) {
            abandon(stream, job)
        }
        return true
    }

    /// Deletes what a job stored of its parts (best effort: recovery deletes parts no head names).
    private func abandon(_ stream: StreamRuntime, _ job: CheckpointJob) {
        let name = stream.definition.name
        let deletes = (0..<job.partsWritten).map { StoreMutation.delete(key: ReservedKeys.checkpointPart(name, generation: job.generation, index: $0)) }
        if !deletes.isEmpty, (try? store.apply(deletes)) != nil { mutatedThisRound = true }
    }

    /// The stream's checkpoint value from its stored `head`: the head itself, or (version 5) the
    /// parts it names put together.
    func checkpointValue(_ stream: StreamRuntime, head: [UInt8]) throws -> [UInt8] {
        guard head.first == 5 else { return head }
        var r = ByteReader(head)
        _ = try r.u8()
        let generation = try r.u64(), parts = Int(try r.u32()), total = Int(try r.u64())
        guard r.atEnd, parts >= 1, total >= 0 else { throw ByteReader.DecodeError() }
        var value: [UInt8] = []
        value.reserveCapacity(total)
        for i in 0..<parts {
            guard let part = store.get(ReservedKeys.checkpointPart(stream.definition.name, generation: generation, index: i)) else {
                throw ByteReader.DecodeError()
            }
            value.append(contentsOf: part.value)
        }
        guard value.count == total else { throw ByteReader.DecodeError() }
        stream.checkpointGeneration = generation
        stream.checkpointParts = parts
        return value
    }

    /// Deletes the stream's checkpoint parts that its current head does not name (left by a
    /// crash while a checkpoint was being stored in parts). Recovery only.
    func deleteOrphanCheckpointParts(_ stream: StreamRuntime) throws {
        let name = stream.definition.name
        let current = stream.checkpointParts > 0 ? ReservedKeys.checkpointPartPrefix(name, generation: stream.checkpointGeneration) : nil
        var after: [UInt8]? = nil
        while true {
            let page = store.prefixScan(ReservedKeys.checkpointPartPrefix(name), after: after, limit: 1024)
            let deletes = page.filter { e in current.map { !e.key.starts(with: $0) } ?? true }.map { StoreMutation.delete(key: $0.key) }
            if !deletes.isEmpty {
                _ = try store.apply(deletes)
                mutatedThisRound = true
            }
            guard page.count == 1024 else { break }
            after = page.last!.key
        }
    }

    // MARK: - Recovery

    /// Rebuilds streams from definitions, checkpoints and the write-ahead entries after them, and
    /// re-arms TTL timers. Runs on the caller's thread before `start`.
    func recover() throws {
        let now = clock.nowMs()
        try migrateEarlierResults()
        try recoverSources()
        var after: [UInt8]? = nil
        while true {
            let page = store.prefixScan(ReservedKeys.definitionPrefix, after: after, limit: 1024)
            for entry in page {
                let definition = try StreamDefinition(decoding: entry.value)
                let source = try definition.source.map { name in
                    guard let s = sources[name] else { throw ByteReader.DecodeError() }
                    return s
                }
                let stream = StreamRuntime(id: takeStreamId(), definition: definition, nowMs: now)
                var checkpointed = false
                if let cp = store.get(ReservedKeys.checkpoint(definition.name)) {
                    let value = try checkpointValue(stream, head: cp.value)
                    try stream.decodeCheckpoint(value, limits: limits)
                    checkpointed = value.first.map { $0 >= 3 } ?? false
                }
                try deleteOrphanCheckpointParts(stream)
                // The results replay emits again (from the checkpointed next seq on) leave first.
                restoreResultRange(stream, checkpointed: checkpointed, dropReplayed: true)
                try replay(stream, source: source)
                source?.readers.append(stream)
                // Rows closed by the replay (again, or for the first time) are stored now, under
                // the numbers they had: the same rows in the same order from the same start.
                // (If the store refuses a slice, the rest wait for the first rounds: `pendingSlices`.)
                while stream.rowsPending > 0, emitRows(stream, max: limits.resultRowsPerRoundMax) > 0 {}
                restoreResultRange(stream, checkpointed: true)
                while stream.oldestRetainedSeq < stream.results.leftBefore, expireRows(stream, max: limits.resultExpiriesPerRoundMax).0 > 0 {}
                streams[definition.name] = stream
                scheduleEmitTick(stream, nowMs: now)
                if stream.inResultWork { stream.inResultWork = false; resultWork.removeAll { $0 === stream } }
                noteResultWork(stream)
                if stream.op.openWindowCount > 0 {
                    stream.idleTimerPending = true
                    timers.schedule(atMs: now + definition.idleTimeoutMs, .idle(stream: definition.name, id: stream.id))
                }
            }
            guard page.count == 1024 else { break }
            after = page.last!.key
        }
        loadOrphanResults()
        // TTLs: every key with an expiry gets its timer back (a full scan, at start-up only).
        // The same scan moves window results stored by earlier versions to the current key
        // layout (`ReservedKeys.resultKeyFromEarlierLayout`), one atomic batch per page.
        after = nil
        while true {
            let page = store.rangeScan(start: [0], end: nil, after: after, limit: 4096)
            var moves: [StoreMutation] = []
            for entry in page {
                if let at = entry.expiresAtMs { scheduleExpiry(key: entry.key, atMs: at) }
                if let current = ReservedKeys.resultKeyFromEarlierLayout(entry.key) {
                    moves.append(.put(key: current, value: entry.value))
                    moves.append(.delete(key: entry.key))
                    indexUnnumberedRow(current)
                } else {
                    indexUnnumberedRow(entry.key)
                }
            }
            if !moves.isEmpty {
                _ = try store.apply(moves)
                mutatedThisRound = true
            }
            guard page.count == 4096 else { break }
            after = page.last!.key
        }
        if mutatedThisRound {
            mutatedThisRound = false
            try store.commit()
        }
    }

    /// Replays the stream's write-ahead entries after its checkpoint; for a stream reading a
    /// named source, interleaved with the source's entries from its `sourceNext` on (each entry
    /// of its own carries the source point it was logged at).
    private func replay(_ stream: StreamRuntime, source: SourceRuntime?) throws {
        let name = stream.definition.name
        let prefix = ReservedKeys.walPrefix(name)
        var after: [UInt8]? = nil
        while true {
            let page = store.prefixScan(prefix, after: after, limit: 256)
            for entry in page {
                guard let seq = UInt64(String(decoding: entry.key[prefix.count...], as: UTF8.self), radix: 16) else { continue }
                if seq < stream.firstUncheckpointed { continue }  // covered by the checkpoint
                if let source { try replaySource(stream, source, upTo: try WALEntry.tag(of: entry.value)) }
                switch try WALEntry(decoding: entry.value) {
                case .batch(let batch, let key): _ = ingest(stream, batch: batch, idempotencyKey: key)
                case .watermark(let ms):
                    stream.op.advanceWatermark(toMs: ms)
                    queueRows(stream)
                case .flush:
                    stream.op.flushChanges(showing: stream.projection)
                    queueRows(stream)
                }
                stream.nextSequence = seq + 1
            }
            guard page.count == 256 else { break }
            after = page.last!.key
        }
        if let source { try replaySource(stream, source, upTo: source.nextSequence) }
        if stream.firstUncheckpointed > stream.nextSequence { stream.firstUncheckpointed = stream.nextSequence }
        // firstUncheckpointed stays: the replayed entries are still in the log until the next checkpoint.
    }
}
