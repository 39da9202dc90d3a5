import LaminarStore

/// The retained-results log of a stream, `_resultlog/{name}/{seq}` (`ReservedKeys`): one small
/// entry per emitted row, `[i64 window end][the row's key after _streams/{name}/]`, pointing at
/// the row itself (`_streams/{name}/…`, JSON, `"seq"` first). Rows are stored once; the log
/// orders them by sequence number for `since` and for retention, which both walk it from an
/// exact sequence number (no scan). An entry whose row was replaced by a later row of the same
/// window (the row then carries another seq) is skipped: a resume sees the current row once,
/// under its own seq.
///
/// A `delete` row (`emit: changes`/`every`, a session merged away) removes its window's row, so
/// its entry keeps the row itself after the key: `[i64 window end][row key suffix][delete row
/// JSON]`. The suffix ends where it can be found again: its escaped key ends at the first
/// `00 01`, then 16 hex digits of the start.
enum ResultLog {
    /// An entry pointing at a stored row, or (`row` given) one holding a `delete` row.
    static func entry(endMs: Int64, rowKeySuffix: ArraySlice<UInt8>, row: [UInt8]? = nil) -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(8 + rowKeySuffix.count + (row?.count ?? 0))
        w.i64(endMs)
        w.bytes.append(contentsOf: rowKeySuffix)
        if let row { w.bytes.append(contentsOf: row) }
        return w.bytes
    }

    /// The window end, row key suffix and (a `delete`) kept row of an entry; `nil` if it is not one.
    static func decode(_ bytes: [UInt8]) -> (endMs: Int64, rowKeySuffix: ArraySlice<UInt8>, row: ArraySlice<UInt8>?)? {
        var r = ByteReader(bytes)
        guard let end = try? r.i64() else { return nil }
        var i = 8
        while i + 1 < bytes.count, !(bytes[i] == 0 && bytes[i + 1] == 1) { i += 1 }
        let suffixEnd = i + ReservedKeys.keyTerminator.count + 16
        guard suffixEnd <= bytes.count else { return nil }
        return (end, bytes[8..<suffixEnd], suffixEnd < bytes.count ? bytes[suffixEnd...] : nil)
    }

    /// The sequence number a stored row begins with (`{"seq":N,…`), `nil` if none.
    static func storedSeq(_ row: [UInt8]) -> UInt64? {
        let head: [UInt8] = Array(#"{"seq":"#.utf8)
        guard row.count > head.count, row.starts(with: head) else { return nil }
        var v: UInt64 = 0
        var i = head.count
        while i < row.count, row[i] >= 0x30, row[i] <= 0x39 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(row[i] - 0x30))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        return i > head.count ? v : nil
    }

    /// A key prefix as it begins the escaped keys of result keys (`00` → `00 FF`, no terminator):
    /// a row's key begins with `prefix` exactly when its escaped form begins with this.
    static func escapedKeyPrefix(_ prefix: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        ReservedKeys.appendEscapedKey(prefix, to: &out)
        out.removeLast(ReservedKeys.keyTerminator.count)
        return out
    }
}

extension Reactor {
    // MARK: - Closing windows in slices

    /// Notes the rows the operator queued (closed windows; changelog rows): rounds emit them in
    /// bounded slices (`emitResultSlices`), in the operator's order, building a closed window's
    /// rows only as they go out.
    func queueRows(_ stream: StreamRuntime) {
        noteResultWork(stream)
    }

    /// Lists the stream for the coming rounds if it has rows pending or retention may be due.
    func noteResultWork(_ stream: StreamRuntime) {
        guard !stream.inResultWork,
              stream.rowsPending > 0 || stream.expiryDue(retainedMax: limits.resultsRetainedPerStreamMax) else { return }
        stream.inResultWork = true
        resultWork.append(stream)
    }

    /// One round's share of result work: at most `resultRowsPerRoundMax` rows emitted and
    /// `resultExpiriesPerRoundMax` rows expired, all streams together. Returns whether it did any.
    func emitResultSlices() -> Bool {
        guard !resultWork.isEmpty else { return false }
        var rows = limits.resultRowsPerRoundMax
        var expiries = limits.resultExpiriesPerRoundMax
        var did = false
        var i = 0
        while i < resultWork.count {
            let stream = resultWork[i]
            var stuck = false
            if stream.rowsPending > 0 && rows > 0 {
                let n = emitRows(stream, max: rows)
                rows -= n
                did = true
            }
            if stream.rowsPending > 0 && checkpointOverdue(stream) {
                // Closes come faster than slices drain them and the checkpoint waits: a quarter of
                // the queue per round on top, so the queue and the log stay bounded.
                emitRows(stream, max: Swift.max(stream.rowsPending / 4, limits.resultRowsPerRoundMax))
                did = true
            }
            if expiries > 0 {
                let (n, failed) = expireRows(stream, max: expiries)
                expiries -= n
                if n > 0 { did = true }
                stuck = failed
            }
            if stream.rowsPending == 0 && (stuck || !stream.expiryDue(retainedMax: limits.resultsRetainedPerStreamMax)) {
                stream.inResultWork = false
                resultWork.remove(at: i)
            } else {
                i += 1
            }
        }
        return did
    }

    /// Whether the stream logged twice the write-ahead entries a checkpoint is due after (it
    /// waits for the queue of closed-window rows to empty).
    func checkpointOverdue(_ stream: StreamRuntime) -> Bool {
        stream.entriesSinceCheckpoint >= 2 * UInt64(limits.walEntriesPerCheckpointMax)
    }

    /// Takes up to `max` queued rows of `stream`, emits them (through the stream's projection,
    /// which may drop rows that fail `having`), sends them to its followers in one notification,
    /// and checkpoints when the queue is empty (checkpoints wait for it). Returns the rows taken.
    @discardableResult
    func emitRows(_ stream: StreamRuntime, max: Int) -> Int {
        var sent = stream.op.takeRows(max: max)
        let taken = sent.count
        guard taken > 0 else { return 0 }
        if let projection = stream.projection { sent = projection.apply(sent) }
        let n = sent.count
        for i in 0..<n { emitRow(stream, &sent[i]) }
        stream.resultSlices += 1
        if n > 0 && !stream.followers.isEmpty {
            for id in stream.followers {
                guard let sub = subscriptions[id] else { continue }
                enqueueNotification(subscription: id, producer: sub.producer, ReactorCompletion(token: sub.token, .windowsClosed(sent)))
            }
        }
        if stream.rowsPending == 0 { checkpointIfDue(stream) }
        return taken
    }

    /// Stores one row: the one place a row gets its sequence number. The row goes under
    /// `_streams/{name}/…` (its stored JSON, `"seq"` first; `group_by: all` rows under the empty
    /// key) and into the retained-results log; a `delete` row removes the window's row and is
    /// kept in its log entry instead. Replay after a crash emits the same rows in the same order
    /// from the same checkpointed `nextResultSeq`, so a row gets the same number however often it
    /// is emitted.
    func emitRow(_ stream: StreamRuntime, _ row: inout WindowResult) {
        row.seq = stream.nextResultSeq
        stream.nextResultSeq += 1
        var key = stream.resultKeyPrefix
        key.reserveCapacity(key.count + (row.key?.count ?? 0) + 18)
        let prefixCount = key.count
        ReservedKeys.appendEscapedKey(row.key ?? [], to: &key)
        ReservedKeys.appendOrderedStart(row.startMs, to: &key)
        mutatedThisRound = true
        do {
            if row.op == .delete {
                let rev = try store.delete(key, condition: .always)
                try store.put(stream.resultLogKey(row.seq),
                    ResultLog.entry(endMs: row.endMs, rowKeySuffix: key[prefixCount...], row: row.json(columns: stream.columns)),
                    condition: .always, expiresAtMs: nil)
                if let rev { notifyWatchers(key: key, value: nil, revision: rev) }
            } else {
                let value = row.json(columns: stream.columns, stored: true)
                let rev = try store.put(key, value, condition: .always, expiresAtMs: nil)
                try store.put(stream.resultLogKey(row.seq),
                    ResultLog.entry(endMs: row.endMs, rowKeySuffix: key[prefixCount...]), condition: .always, expiresAtMs: nil)
                notifyWatchers(key: key, value: value, revision: rev)
            }
        } catch {
            // The store refused (full disk): the row is lost, as a failed write is; its seq stays a
            // hole that resumes and retention step over.
        }
        if stream.oldestRetainedSeq == row.seq { stream.oldestRetainedEndMs = row.endMs }
    }

    // MARK: - Retention

    /// Removes up to `max` rows from the head of the retained log while the oldest is past its
    /// retention (or more rows than `resultsRetainedPerStreamMax` are retained): its log entry,
    /// and its row unless a later row of the same window replaced it. Returns the rows removed,
    /// and whether the store refused (then the stream waits for its next close).
    func expireRows(_ stream: StreamRuntime, max: Int) -> (Int, failed: Bool) {
        let retainedMax = limits.resultsRetainedPerStreamMax
        var n = 0
        while n < max, stream.expiryDue(retainedMax: retainedMax) {
            let seq = stream.oldestRetainedSeq
            let logKey = stream.resultLogKey(seq)
            if let entry = store.get(logKey), let (end, suffix, _) = ResultLog.decode(entry.value) {
                if stream.oldestRetainedEndMs != end {
                    stream.oldestRetainedEndMs = end
                    if !stream.expiryDue(retainedMax: retainedMax) { break }
                }
                let rowKey = stream.resultKeyPrefix + suffix
                do {
                    if let row = store.get(rowKey), ResultLog.storedSeq(row.value) == seq,
                       let rev = try store.delete(rowKey, condition: .ifVersion(row.version)) {
                        notifyWatchers(key: rowKey, value: nil, revision: rev)
                    }
                    _ = try store.delete(logKey, condition: .always)
                } catch {
                    return (n, true)
                }
                mutatedThisRound = true
            }
            stream.oldestRetainedSeq = seq + 1
            stream.oldestRetainedEndMs = nil
            n += 1
        }
        return (n, false)
    }

    /// Sets where a new or recovered stream's result numbering stands: after a deleted stream of
    /// the same name (`_resultnext/{name}`) unless a checkpoint said more, and the oldest row of
    /// the log (rows of a deleted stream stay retained under the new definition). `deletedNext`:
    /// that of a stream deleted earlier in the same store batch (`CatalogOverlay`).
    func restoreResultRange(_ stream: StreamRuntime, checkpointed: Bool, deletedNext: UInt64? = nil) {
        let name = stream.definition.name
        if let deletedNext {
            stream.nextResultSeq = Swift.max(stream.nextResultSeq, deletedNext)
        } else if !checkpointed, let next = store.get(ReservedKeys.resultNext(name)), next.value.count == 8 {
            var r = ByteReader(next.value)
            stream.nextResultSeq = Swift.max(stream.nextResultSeq, (try? r.u64()) ?? 1)
        }
        let prefix = ReservedKeys.resultLogPrefix(name)
        if let head = store.prefixScan(prefix, after: nil, limit: 1).first,
           let seq = UInt64(String(decoding: head.key[prefix.count...], as: UTF8.self), radix: 16), seq < stream.nextResultSeq {
            stream.oldestRetainedSeq = seq
        } else {
            stream.oldestRetainedSeq = stream.nextResultSeq
        }
        stream.oldestRetainedEndMs = nil
    }

    // MARK: - Resuming

    /// A page of retained rows after `after` for `resumeResults`; subscribes the command's token
    /// when the page reaches the newest row (same round: nothing emitted in between).
    func resumeResults(_ stream: StreamRuntime, after: UInt64, keyPrefix: [UInt8], token: UInt64, producer p: ReactorProducer) -> ReactorResult {
        let last = stream.nextResultSeq - 1
        if after > last { return .failure(.sinceAhead(lastSeq: last)) }
        if after + 1 < stream.oldestRetainedSeq { return .failure(.resultsGone(oldestSeq: stream.oldestRetainedSeq)) }
        let stop = min(stream.nextResultSeq, after + 1 + UInt64(limits.resultPageRowsMax))
        let live = stop == stream.nextResultSeq
        if live && p.subscriptionCount >= limits.subscriptionsPerProducerMax { return .failure(.tooManySubscriptions) }
        let escaped = ResultLog.escapedKeyPrefix(keyPrefix)
        var rows: [RetainedRow] = []
        var seq = after + 1
        while seq < stop {
            defer { seq += 1 }
            guard let entry = store.get(stream.resultLogKey(seq)),
                  let (_, suffix, kept) = ResultLog.decode(entry.value), suffix.starts(with: escaped) else { continue }
            if let kept {
                rows.append(RetainedRow(seq: seq, json: Array(kept)))
                continue
            }
            guard let row = store.get(stream.resultKeyPrefix + suffix), ResultLog.storedSeq(row.value) == seq else { continue }
            rows.append(RetainedRow(seq: seq, json: row.value))
        }
        if live {
            let id = addSubscription(Subscription(kind: .follow(stream.definition.name), producer: p.index, token: token))
            stream.followers.append(id)
            armProgressTimer()
        }
        return .retainedResults(rows: rows, lastSeq: stop - 1, live: live)
    }

    // MARK: - Progress

    /// Starts the progress timer if followers may need it and it is not running.
    func armProgressTimer() {
        guard limits.followProgressIntervalMs > 0, !progressTimerPending else { return }
        progressTimerPending = true
        timers.schedule(atMs: clock.nowMs() + limits.followProgressIntervalMs, .progress)
    }

    /// Tells every follower how far its stream's results are complete; stops when none follows.
    func sendProgress(nowMs: Int64) {
        progressTimerPending = false
        var any = false
        for stream in streams.values where !stream.followers.isEmpty {
            any = true
            let note = ReactorResult.progress(watermarkMs: stream.emittedWatermarkMs, seq: stream.nextResultSeq - 1)
            for id in stream.followers {
                guard let sub = subscriptions[id] else { continue }
                enqueueNotification(subscription: id, producer: sub.producer, ReactorCompletion(token: sub.token, note))
            }
        }
        if any {
            progressTimerPending = true
            timers.schedule(atMs: nowMs + limits.followProgressIntervalMs, .progress)
        }
    }
}
