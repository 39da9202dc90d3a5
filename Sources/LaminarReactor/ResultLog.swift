import LaminarStore

/// The retained results of one stream name: where its result slices are (`ResultSlice`, under
/// `_results/{name}/{first seq}`), the oldest row still retained, and the index of each window's
/// current row (`ResultIndex`). Kept by the reactor by name: rows stay retained when the stream
/// is deleted, and a stream defined again under the name takes them over.
///
/// Invariants: slices from `head` on ascend by first `seq` and do not overlap; `oldest` is in
/// the first of them or before it (rows before `oldest` have left: the index no longer holds
/// them, their slice goes once all its rows have); the index points only at rows of those slices.
final class ResultSet {
    let name: String
    /// `_results/{name}/`.
    let slicePrefix: [UInt8]
    private(set) var sliceFirst: [UInt64] = []
    private(set) var sliceCount: [Int] = []
    private(set) var head = 0
    var index = ResultIndex()

    /// Runs `body` on the index in place: a method called on `index` through the class may copy
    /// the whole index for the call (retaining and releasing each of its arrays), per row.
    @inline(__always)
    func withIndex<R>(_ body: (inout ResultIndex) throws -> R) rethrows -> R { try body(&index) }
    /// The oldest retained row: a later one than the head slice's first when rows of it left.
    /// The index takes the windows of older rows as gone (`ResultIndex.retainedFrom`).
    var oldest: UInt64 = 1 {
        didSet { index.retainedFrom = oldest }
    }
    /// Rows before this had left when the reactor started (`_resulthead/{name}`): a replay that
    /// emits some of them again lets them leave again at once.
    var leftBefore: UInt64 = 0

    init(name: String) {
        self.name = name
        slicePrefix = ReservedKeys.resultSlicePrefix(name)
    }

    var sliceCountRetained: Int { sliceFirst.count - head }

    func sliceKey(_ first: UInt64) -> [UInt8] {
        var key = slicePrefix
        ReservedKeys.appendHex16(first, to: &key)
        return key
    }

    func appendSlice(first: UInt64, count: Int) {
        precondition(sliceFirst.last.map { $0 < first } ?? true, "slices ascend")
        sliceFirst.append(first)
        sliceCount.append(count)
    }

    /// The retained slice holding `seq` (its position), `nil` for a hole or a row that left.
    func slice(holding seq: UInt64) -> Int? {
        var lo = head, hi = sliceFirst.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if sliceFirst[mid] <= seq { lo = mid + 1 } else { hi = mid }
        }
        guard lo > head else { return nil }
        let i = lo - 1
        return seq < sliceFirst[i] + UInt64(sliceCount[i]) ? i : nil
    }

    func first(ofSlice i: Int) -> UInt64 { sliceFirst[i] }
    func count(ofSlice i: Int) -> Int { sliceCount[i] }
    var headSlice: Int? { head < sliceFirst.count ? head : nil }

    /// The head slice left whole (its last row expired).
    func dropHeadSlice() {
        head += 1
        if head == sliceFirst.count || head >= 1024 && head * 2 >= sliceFirst.count {
            sliceFirst.removeFirst(head)
            sliceCount.removeFirst(head)
            head = 0
        }
    }

    /// Reads row `seq` (which must be in slice `i`) in place.
    func withRow<R>(_ store: any StateStore, slice i: Int, seq: UInt64, _ body: (ResultSlice.Reader, Int) -> R?) -> R? {
        store.withValue(sliceKey(sliceFirst[i])) { bytes, _ in
            ResultSlice.Reader(bytes).flatMap { body($0, Int(seq - sliceFirst[i])) }
        } ?? nil
    }
}

enum ResultLog {
    /// The event key and window start of a result cursor (`_streams/{name}/{escaped key}` `00 01`
    /// `{start}`, what `GET …/results` pages end with); `nil` if `cursor` is not one.
    static func parseCursor(_ cursor: [UInt8], prefix: [UInt8]) -> (key: [UInt8], startMs: Int64)? {
        guard cursor.count >= prefix.count + 18, cursor.starts(with: prefix) else { return nil }
        var key: [UInt8] = []
        var i = prefix.count
        let end = cursor.count - 16
        while i < end {
            if cursor[i] == 0 {
                guard i + 1 < end + 16 else { return nil }
                if cursor[i + 1] == 0xFF { key.append(0); i += 2; continue }
                if cursor[i + 1] == 1 && i + 2 == end { break }
                return nil
            }
            key.append(cursor[i])
            i += 1
        }
        guard i == end - 2 || (i < end && cursor[i] == 0) else { return nil }
        var v: UInt64 = 0
        for b in cursor[end...] {
            switch b {
            case 0x30...0x39: v = v << 4 | UInt64(b - 0x30)
            case 0x41...0x46: v = v << 4 | UInt64(b - 0x37)
            default: return nil
            }
        }
        return (key, Int64(bitPattern: v ^ (1 << 63)))
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
              stream.rowsPending > 0 || !stream.pendingSlices.isEmpty
                || stream.expiryDue(retainedMax: limits.resultsRetainedPerStreamMax) else { return }
        stream.inResultWork = true
        resultWork.append(stream)
    }

    /// One round's share of result work: at most `resultRowsPerRoundMax` rows emitted and
    /// `resultExpiriesPerRoundMax` rows expired, all streams together, or each as many as the
    /// events the round ingested: a tumbling window closes at most one row per event, so the rows keep
    /// pace with the events however slow rounds get under load (a fixed share fell behind, and
    /// the checkpoint waiting for the queue then forced a quarter of it into one round), and a
    /// round's share stays proportional to its commands, never to a window's rows. Within that
    /// share, a close's rows are spread over the time until the next close (`EmitPace`), so that
    /// the rounds after a close are no longer than the others. A stream
    /// whose slices the store refused writes them first (`retryPendingSlices`) and emits nothing
    /// more until they are stored; while the store keeps refusing it leaves the list and comes
    /// back at its retry timer (or its next rows), so a full disk costs no busy rounds. Returns
    /// whether it did any.
    func emitResultSlices() -> Bool {
        guard !resultWork.isEmpty else { return false }
        var rows = Swift.max(limits.resultRowsPerRoundMax, eventsThisRound)
        var expiries = Swift.max(limits.resultExpiriesPerRoundMax, eventsThisRound)
        let now = RoundTiming.nowNs()
        var did = false
        var i = 0
        while i < resultWork.count {
            let stream = resultWork[i]
            var stuck = false
            if !stream.pendingSlices.isEmpty && retryPendingSlices(stream) { did = true }
            // Slices of at most `resultRowsPerRoundMax` rows (a follower's notification each),
            // a big close's spread until the next (`EmitPace`).
            var quota = stream.emitPace.allowance(pending: stream.rowsPending, nowNs: now, roundHadEvents: eventsThisRound > 0) ?? rows
            while stream.rowsPending > 0 && rows > 0 && quota > 0 && stream.pendingSlices.isEmpty {
                let n = emitRows(stream, max: Swift.min(rows, quota, limits.resultRowsPerRoundMax))
                did = true
                if n == 0 { break }
                rows -= n
                quota -= n
            }
            if stream.rowsPending > 0 && stream.pendingSlices.isEmpty && checkpointOverdue(stream) && !stream.op.checkpointable {
                // Built rows come faster than slices drain them and the checkpoint waits: a quarter of
                // the queue per round on top, so the queue and the log stay bounded (in emits of
                // `resultRowsPerRoundMax` rows, so that a refused write holds back one emit's rows),
                // but at most four times the round's share, so that the round stays short (a
                // quarter of a million-row window took 400 ms).
                let share = Swift.max(limits.resultRowsPerRoundMax, eventsThisRound)
                var extra = Swift.min(Swift.max(stream.rowsPending / 4, limits.resultRowsPerRoundMax), 4 * share)
                while extra > 0 && stream.pendingSlices.isEmpty {
                    let n = emitRows(stream, max: Swift.min(extra, limits.resultRowsPerRoundMax))
                    if n == 0 { break }
                    extra -= n
                }
                did = true
            }
            stream.emitPace.emitted(remaining: stream.rowsPending)
            if expiries > 0 {
                let (n, failed) = expireRows(stream, max: expiries)
                roundNotes.rowsExpired += n
                expiries -= n
                if n > 0 { did = true }
                stuck = failed
            }
            if !stream.pendingSlices.isEmpty {
                stream.inResultWork = false
                resultWork.remove(at: i)
                scheduleResultRetry(stream)
            } else if stream.rowsPending == 0 && (stuck || !stream.expiryDue(retainedMax: limits.resultsRetainedPerStreamMax)) {
                stream.inResultWork = false
                resultWork.remove(at: i)
            } else {
                i += 1
            }
        }
        return did
    }

    /// Whether the stream logged twice the write-ahead entries a checkpoint is due after (it
    /// waits for built rows queued to go out). Not while a checkpoint is being
    /// stored in parts: its snapshot was taken, and it covers the entries logged before it.
    func checkpointOverdue(_ stream: StreamRuntime) -> Bool {
        stream.checkpointJob == nil && stream.entriesSinceCheckpoint >= 2 * checkpointEntries(stream)
    }

    /// Takes up to `max` queued rows of `stream`, emits them (through the stream's projection,
    /// which may drop rows that fail `having`), stores them, sends them to its followers in one
    /// notification, and checkpoints when due and no built rows are left (checkpoints wait for
    /// them). Returns the rows taken.
    @discardableResult
    func emitRows(_ stream: StreamRuntime, max: Int) -> Int {
        let taken = takeAndEmitRows(stream, max: max)
        roundNotes.rowsEmitted += taken
        return taken
    }

    private func takeAndEmitRows(_ stream: StreamRuntime, max: Int) -> Int {
        guard stream.pendingSlices.isEmpty else { return 0 }
        stream.pendingWatermarkMs = stream.emittedWatermarkMs
        if stream.projection == nil && stream.followers.isEmpty && stream.op.headIsClosedFinalWindow {
            let taken = emitClosedRows(stream, max: max)
            stream.resultSlices += 1
            checkpointIfDue(stream)  // (it checks that no built row waits)
            return taken
        }
        var sent = stream.op.takeRows(max: max)
        let taken = sent.count
        guard taken > 0 else { return 0 }
        if let projection = stream.projection { sent = projection.apply(sent) }
        let stored = storeRows(stream, &sent)
        stream.resultSlices += 1
        // Followers get only stored rows (those of a refused slice once it is written): a
        // follower never sees a row that a resume would not return.
        notifyFollowers(stream, stored == sent.count ? sent : Array(sent[..<stored]))
        checkpointIfDue(stream)  // (it checks that no built row waits)
        return taken
    }

    private func notifyFollowers(_ stream: StreamRuntime, _ rows: [WindowResult]) {
        guard !rows.isEmpty else { return }
        for id in stream.followers {
            guard let sub = subscriptions[id] else { continue }
            enqueueNotification(subscription: id, producer: sub.producer, ReactorCompletion(token: sub.token, .windowsClosed(rows)))
        }
    }

    /// Writes the stream's refused slices again, oldest first, until the store refuses one:
    /// each stored one joins the index and goes to the followers as `emitRows` would have
    /// sent it. Once none waits, the stream checkpoints if due. Returns whether any was stored.
    @discardableResult
    func retryPendingSlices(_ stream: StreamRuntime) -> Bool {
        var stored = 0
        for pending in stream.pendingSlices {
            guard putSlice(stream, first: pending.firstSeq, pending.bytes) else { break }
            stored += 1
            let set = stream.results
            set.appendSlice(first: pending.firstSeq, count: pending.count)
            var rows: [WindowResult] = []
            pending.bytes.withUnsafeBytes { bytes in
                guard let reader = ResultSlice.Reader(bytes) else { return }
                for i in 0..<pending.count {
                    guard let row = reader.head(i) else { continue }
                    let seq = pending.firstSeq + UInt64(i)
                    let key = row.key ?? UnsafeRawBufferPointer(start: nil, count: 0)
                    let replaced = row.isDelete ? set.index.remove(key: key, startMs: row.startMs, ifSeq: nil)
                                                : set.index.set(key: key, startMs: row.startMs, seq: seq)
                    if replaced == 0 {
                        _ = try? store.delete(ReservedKeys.result(stream: set.name, key: Array(key), startMs: row.startMs), condition: .always)
                    }
                    if i == 0 && stream.oldestRetainedSeq == seq { stream.oldestRetainedEndMs = row.endMs }
                    if pending.rows == nil && !stream.followers.isEmpty, let r = reader.result(i, seq: seq) { rows.append(r) }
                }
            }
            notifyFollowers(stream, pending.rows ?? rows)
        }
        guard stored > 0 else { return false }
        stream.pendingSlices.removeFirst(stored)
        checkpointIfDue(stream)  // (it checks that no slice and no built row waits)
        return true
    }

    /// Puts a finished slice; `false` when the store refused (counted in the stream's stats).
    private func putSlice(_ stream: StreamRuntime, first: UInt64, _ value: [UInt8]) -> Bool {
        do {
            try store.put(stream.results.sliceKey(first), value, condition: .always, expiresAtMs: nil)
        } catch {
            stream.resultWritesRefused += 1
            return false
        }
        mutatedThisRound = true
        return true
    }

    /// Brings a stream whose slices wait back to the result work after
    /// `ReactorLimits.resultRetryIntervalMs` (once: its timer is pending until it fires).
    func scheduleResultRetry(_ stream: StreamRuntime) {
        guard !stream.retryTimerPending else { return }
        stream.retryTimerPending = true
        timers.schedule(atMs: clock.nowMs() + limits.resultRetryIntervalMs, .resultRetry(stream: stream.definition.name, id: stream.id))
    }

    /// Numbers rows and stores them as result slices (`ResultSlice`, one store write per
    /// `ResultSlice.bytesMax` of rows): the one place a row gets its sequence number. Replay after
    /// a crash emits the same rows in the same order from the same checkpointed `nextResultSeq`,
    /// so a row gets the same number however often it is emitted (recovery first drops the
    /// slices at or after that number). The index learns each row once its slice is written.
    /// A slice the store refuses, and those after it, wait in `pendingSlices`. Returns how many
    /// of the rows (from the first) are stored.
    @discardableResult
    func storeRows(_ stream: StreamRuntime, _ rows: inout [WindowResult]) -> Int {
        guard !rows.isEmpty else { return 0 }
        var builder = ResultSlice.Builder(firstSeq: stream.nextResultSeq)
        var from = 0
        var stored = 0
        for i in rows.indices {
            rows[i].seq = stream.nextResultSeq
            stream.nextResultSeq += 1
            builder.append(rows[i])
            if builder.isFull || i == rows.count - 1 {
                if writeSlice(stream, builder, rows[from...i]) { stored = i + 1 }
                from = i + 1
                builder = ResultSlice.Builder(firstSeq: stream.nextResultSeq)
            }
        }
        return stored
    }

    /// `emitRows` for closed windows of `emit: final` when nobody needs the rows as values (no
    /// projection, no follower): rows go from the operator's panes straight into the slice
    /// (`WindowOperator.takeClosedRows`), numbered and stored as `storeRows` does, with no
    /// `WindowResult` per row. Returns the rows taken.
    private func emitClosedRows(_ stream: StreamRuntime, max: Int) -> Int {
        var builder = ResultSlice.Builder(firstSeq: 0)
        swap(&builder, &sliceBuilder)
        defer { swap(&builder, &sliceBuilder) }
        builder.reset(firstSeq: stream.nextResultSeq)
        // The operator's group of each row's key: `writeClosedSlice` finds the key's id in the
        // index through it (`ResultIndex.set(key:group:…)`), loaded a few rows ahead.
        var groups: [UInt32] = []
        swap(&groups, &groupScratch)
        defer { swap(&groups, &groupScratch) }
        groups.removeAll(keepingCapacity: true)
        var taken = 0
        while taken < max && stream.op.headIsClosedFinalWindow {
            taken += stream.op.takeClosedRows(max: max - taken) { key, group, start, end, values in
                stream.nextResultSeq += 1
                builder.append(key: key, startMs: start, endMs: end, values: values)
                groups.append(group)
                if builder.isFull {
                    writeClosedSlice(stream, builder, groups: groups)
                    builder.reset(firstSeq: stream.nextResultSeq)
                    groups.removeAll(keepingCapacity: true)
                }
            }
        }
        if !builder.isEmpty { writeClosedSlice(stream, builder, groups: groups) }
        return taken
    }

    /// Stores a slice built by `emitClosedRows`; the index learns its rows (read back from the
    /// builder; `groups`: the operator's group of each row's key) once it is written. Refused
    /// (or after a refused one): it waits in `pendingSlices`, its rows read back from its bytes
    /// when it is stored.
    private func writeClosedSlice(_ stream: StreamRuntime, _ builder: ResultSlice.Builder, groups rowGroups: [UInt32]) {
        let set = stream.results
        builder.finish(columns: stream.columns, into: &sliceValue)
        guard stream.pendingSlices.isEmpty, putSlice(stream, first: builder.firstSeq, sliceValue) else {
            stream.pendingSlices.append(PendingSlice(firstSeq: builder.firstSeq, count: builder.count, bytes: sliceValue, rows: nil))
            return
        }
        set.appendSlice(first: builder.firstSeq, count: builder.count)
        precondition(rowGroups.count == builder.count, "a group per row")
        var seq = builder.firstSeq
        var firstEndMs: Int64? = nil
        var i = 0
        var unnumbered: [(key: [UInt8], startMs: Int64)] = []
        rowGroups.withUnsafeBufferPointer { groups in
            set.withIndex { index in
                builder.forEachHead { key, start, end in
                    let k = key ?? UnsafeRawBufferPointer(start: nil, count: 0)
                    if firstEndMs == nil { firstEndMs = end }
                    if i + 16 < groups.count { index.prefetch(group: groups[i + 16], entry: false) }
                    if i + 8 < groups.count { index.prefetch(group: groups[i + 8], entry: true) }
                    let g = groups[i]
                    i += 1
                    if index.set(key: k, group: g, startMs: start, seq: seq) == 0 { unnumbered.append((Array(k), start)) }
                    seq += 1
                }
            }
        }
        // An unnumbered row of an earlier version (`indexUnnumberedRow`) is replaced.
        for (key, start) in unnumbered { _ = try? store.delete(ReservedKeys.result(stream: set.name, key: key, startMs: start), condition: .always) }
        if stream.oldestRetainedSeq == builder.firstSeq, let firstEndMs { stream.oldestRetainedEndMs = firstEndMs }
    }

    /// Stores a slice of `storeRows`; `false` when it waits in `pendingSlices` (refused, or
    /// after a refused one).
    private func writeSlice(_ stream: StreamRuntime, _ builder: ResultSlice.Builder, _ rows: ArraySlice<WindowResult>) -> Bool {
        let set = stream.results
        let value = builder.finish(columns: stream.columns)
        guard stream.pendingSlices.isEmpty, putSlice(stream, first: builder.firstSeq, value) else {
            stream.pendingSlices.append(PendingSlice(firstSeq: builder.firstSeq, count: builder.count, bytes: value, rows: Array(rows)))
            return false
        }
        set.appendSlice(first: builder.firstSeq, count: builder.count)
        for row in rows {
            let replaced: UInt64?
            if row.op == .delete {
                replaced = set.index.remove(key: row.key ?? [], startMs: row.startMs, ifSeq: nil)
            } else {
                replaced = set.index.set(key: row.key ?? [], startMs: row.startMs, seq: row.seq)
            }
            if replaced == 0 {
                // An unnumbered row of an earlier version (`indexUnnumberedRow`) is replaced.
                _ = try? store.delete(ReservedKeys.result(stream: set.name, key: row.key ?? [], startMs: row.startMs), condition: .always)
            }
        }
        if stream.oldestRetainedSeq == builder.firstSeq, let first = rows.first { stream.oldestRetainedEndMs = first.endMs }
        return true
    }

    // MARK: - Retention

    /// Removes up to `max` rows from the head of the retained results while the oldest is past
    /// its retention (or more rows than `resultsRetainedPerStreamMax` are retained): from the
    /// index lazily (their windows are stale once `oldest` passes them; `ResultIndex.sweep`
    /// drops them, in proportion to the rows removed), and its slice once all its rows have
    /// left; `_resulthead/{name}` then says where the retained rows begin. Returns the rows
    /// removed, and whether the store refused (then the stream waits for its next close).
    func expireRows(_ stream: StreamRuntime, max: Int) -> (Int, failed: Bool) {
        let retainedMax = limits.resultsRetainedPerStreamMax
        let set = stream.results
        var n = 0
        var deletes: [StoreMutation] = []
        while n < max, stream.expiryDue(retainedMax: retainedMax) {
            let seq = stream.oldestRetainedSeq
            guard let i = set.headSlice else {
                stream.oldestRetainedSeq = stream.storedResultEnd  // the rest are holes
                break
            }
            let first = set.first(ofSlice: i)
            if seq < first {
                stream.oldestRetainedSeq = first  // a hole (a failed write) before the slice
                stream.oldestRetainedEndMs = nil
                continue
            }
            // The rows of the head slice from `seq` on, in one read of the slice.
            let end = first + UInt64(set.count(ofSlice: i))
            if seq >= end {  // every row of the head slice has left
                deletes.append(.delete(key: set.sliceKey(first)))
                set.dropHeadSlice()
                continue
            }
            var notDue = false
            // The rows of the head slice in order, each looked at only for its window end (time
            // retention): the index drops their windows lazily (`ResultIndex.retainedFrom`).
            let read: Void? = store.withValue(set.sliceKey(first)) { bytes, _ in
                let reader = ResultSlice.Reader(bytes)
                var s = seq
                var endMs = stream.oldestRetainedEndMs
                defer {
                    stream.oldestRetainedSeq = s
                    stream.oldestRetainedEndMs = endMs
                }
                // Rows before this leave whatever their window end (the retained-rows bound, or
                // they had left before a restart): passed without reading them.
                let stored = stream.storedResultEnd
                let dueBefore = Swift.max(set.leftBefore, stored > UInt64(retainedMax) ? stored - UInt64(retainedMax) : 0)
                while n < max {
                    if s < dueBefore {
                        let k = Swift.min(UInt64(max - n), end - s, dueBefore - s)
                        s += k
                        n += Int(k)
                        endMs = nil
                        if s == end { return }
                        continue
                    }
                    if let row = reader?.head(Int(s - first)), endMs != row.endMs {
                        endMs = row.endMs
                        if !stream.expiryDue(seq: s, endMs: endMs, retainedMax: retainedMax) { notDue = true; return }
                    }
                    s += 1
                    endMs = nil
                    n += 1
                    if s == end || !stream.expiryDue(seq: s, endMs: nil, retainedMax: retainedMax) { return }
                }
            }
            if read == nil {
                // The slice is gone (never expected): its rows are missing.
                n += Int(end - seq)
                stream.oldestRetainedSeq = end
                stream.oldestRetainedEndMs = nil
            }
            if notDue { break }
            if stream.oldestRetainedSeq == end {
                deletes.append(.delete(key: set.sliceKey(first)))
                set.dropHeadSlice()
            }
        }
        guard n > 0 else { return (0, false) }
        set.index.sweep(max: n / 2 + 64)
        set.index.purge(max: n + 64)
        var head = ByteWriter()
        head.u64(stream.oldestRetainedSeq)
        deletes.append(.put(key: ReservedKeys.resultHead(set.name), value: head.bytes))
        do {
            try store.apply(deletes)
        } catch {
            return (n, true)  // the slices stay (recovery drops them by `_resulthead`) or come back
        }
        mutatedThisRound = true
        return (n, false)
    }

    /// Sets where a new or recovered stream's result numbering stands: after a deleted stream of
    /// the same name (`_resultnext/{name}`) unless a checkpoint said more, and the oldest row
    /// retained under the name (rows of a deleted stream stay retained under the new definition).
    /// `deletedNext`: that of a stream deleted earlier in the same store batch (`CatalogOverlay`).
    /// `dropReplayed` (recovery, before the replay): the slices from the next `seq` on are
    /// dropped, since the replay emits those rows again.
    func restoreResultRange(_ stream: StreamRuntime, checkpointed: Bool, deletedNext: UInt64? = nil, dropReplayed: Bool = false) {
        let name = stream.definition.name
        if let deletedNext {
            stream.nextResultSeq = Swift.max(stream.nextResultSeq, deletedNext)
        } else if !checkpointed, let next = store.get(ReservedKeys.resultNext(name)), next.value.count == 8 {
            var r = ByteReader(next.value)
            stream.nextResultSeq = Swift.max(stream.nextResultSeq, (try? r.u64()) ?? 1)
        }
        stream.results = resultSets[name] ?? loadResults(name, cutoff: dropReplayed ? stream.nextResultSeq : nil)
        resultSets[name] = stream.results
        if stream.results.headSlice == nil || stream.oldestRetainedSeq >= stream.storedResultEnd {
            stream.oldestRetainedSeq = stream.storedResultEnd
        }
        stream.oldestRetainedEndMs = nil
    }

    // MARK: - Recovery

    /// Reads the result slices of `name` into a new `ResultSet` (start-up: time in the retained
    /// rows). Slices at or after `cutoff` (the checkpointed next `seq`: replay emits those rows
    /// again) and slices whose rows have all left (`_resulthead/{name}`) are deleted; an
    /// unreadable slice is skipped (its rows are missing).
    func loadResults(_ name: String, cutoff: UInt64?) -> ResultSet {
        let set = ResultSet(name: name)
        var oldest: UInt64 = 0
        if let h = store.get(ReservedKeys.resultHead(name)), h.value.count == 8 {
            var r = ByteReader(h.value)
            oldest = (try? r.u64()) ?? 0
        }
        set.leftBefore = oldest
        var drop: [StoreMutation] = []
        var after: [UInt8]? = nil
        var firstRetained: UInt64? = nil
        while true {
            var last: [UInt8]? = nil
            let n = store.visitPrefix(set.slicePrefix, after: after, limit: 64) { entry in
                last = Array(entry.key)
                guard entry.key.count == set.slicePrefix.count + 16,
                      let first = UInt64(String(decoding: entry.key[set.slicePrefix.count...], as: UTF8.self), radix: 16),
                      let reader = ResultSlice.Reader(entry.value) else { return }
                var count = reader.count
                if let cutoff {
                    if first >= cutoff { drop.append(.delete(key: Array(entry.key))); return }
                    count = Swift.min(count, Int(cutoff - first))
                }
                if first + UInt64(count) <= oldest { drop.append(.delete(key: Array(entry.key))); return }
                guard count > 0, set.sliceFirst.last.map({ $0 + UInt64(set.sliceCount.last!) <= first }) ?? true else { return }
                set.appendSlice(first: first, count: count)
                if firstRetained == nil { firstRetained = Swift.max(first, oldest) }
                for i in 0..<count where first + UInt64(i) >= oldest {
                    guard let row = reader.head(i) else { continue }
                    let key = row.key ?? UnsafeRawBufferPointer(start: nil, count: 0)
                    if row.isDelete {
                        set.index.remove(key: key, startMs: row.startMs, ifSeq: nil)
                    } else {
                        set.index.set(key: key, startMs: row.startMs, seq: first + UInt64(i))
                    }
                }
            }
            guard n == 64, let last else { break }
            after = last
        }
        set.oldest = firstRetained ?? UInt64.max
        if !drop.isEmpty, (try? store.apply(drop)) != nil { mutatedThisRound = true }
        return set
    }

    /// The retained results of names no stream has (deleted streams), read at start-up.
    func loadOrphanResults() {
        let prefix = ReservedKeys.resultSlicePrefixAll
        var after: [UInt8]? = nil
        while true {
            var name: String? = nil
            store.visitPrefix(prefix, after: after, limit: 1) { entry in
                guard let slash = entry.key[prefix.count...].firstIndex(of: UInt8(ascii: "/")) else { return }
                name = String(decoding: entry.key[prefix.count..<slash], as: UTF8.self)
            }
            guard let name else { return }
            if resultSets[name] == nil {
                let set = loadResults(name, cutoff: nil)
                if set.headSlice == nil { set.oldest = 1 }
                resultSets[name] = set
            }
            after = ReservedKeys.resultSlicePrefix(name) + [0xFF]
        }
    }

    // MARK: - Reading

    /// A page of the current rows of `stream`'s windows, in key bytes then start order, as
    /// entries keyed by their cursors (`_streams/{name}/{escaped key}` `00 01` `{start}`) whose
    /// values are the rows' JSON lines: only `key`, or keys beginning with `keyPrefix`, after
    /// the cursor `after`.
    func resultPage(_ stream: StreamRuntime, key: [UInt8]?, keyPrefix: [UInt8]?, after: [UInt8]?, limit: Int) -> ScanPage {
        let set = stream.results
        let cursorPrefix = ReservedKeys.resultPrefix(stream: stream.definition.name)
        var from: (key: [UInt8], startMs: Int64)? = nil
        if let after {
            guard let parsed = ResultLog.parseCursor(after, prefix: cursorPrefix) else { return ScanPage() }
            from = parsed
        }
        var page = ScanPage(limit: limit)
        var cursor = cursorPrefix
        _ = set.index.visit(key: key ?? keyPrefix ?? [], exact: key != nil, after: from, limit: limit) { k, w in
            let json: [UInt8]
            if w.seq == 0 {  // a row stored before result numbering, at its own key
                guard let row = store.get(ReservedKeys.result(stream: set.name, key: k, startMs: w.startMs)) else { return }
                json = row.value
            } else {
                guard let i = set.slice(holding: w.seq),
                      let j = set.withRow(store, slice: i, seq: w.seq, { r, at in r.json(at, seq: w.seq) }) else { return }
                json = j
            }
            cursor.removeSubrange(cursorPrefix.count...)
            ReservedKeys.appendEscapedKey(k, to: &cursor)
            ReservedKeys.appendOrderedStart(w.startMs, to: &cursor)
            cursor.withUnsafeBytes { c in json.withUnsafeBytes { v in page.append(key: c, value: v, version: w.seq, expiresAtMs: 0) } }
        }
        return page
    }

    // MARK: - Resuming

    /// A page of retained rows after `after` for `resumeResults`; subscribes the command's token
    /// when the page reaches the newest row (same round: nothing emitted in between). A row
    /// replaced by a later row of its window is skipped (the later one comes under its own
    /// seq); a delete row is sent as followers got it.
    func resumeResults(_ stream: StreamRuntime, after: UInt64, keyPrefix: [UInt8], token: UInt64, producer p: ReactorProducer) -> ReactorResult {
        let storedEnd = stream.storedResultEnd  // rows of refused slices reach followers once stored
        let last = storedEnd - 1
        if after > last { return .failure(.sinceAhead(lastSeq: last)) }
        if after + 1 < stream.oldestRetainedSeq { return .failure(.resultsGone(oldestSeq: stream.oldestRetainedSeq)) }
        let stop = min(storedEnd, after + 1 + UInt64(limits.resultPageRowsMax))
        let live = stop == storedEnd
        if live && p.subscriptionCount >= limits.subscriptionsPerProducerMax { return .failure(.tooManySubscriptions) }
        let set = stream.results
        var rows: [RetainedRow] = []
        var seq = after + 1
        while seq < stop {
            guard let i = set.slice(holding: seq) else { seq += 1; continue }
            let first = set.first(ofSlice: i)
            let end = min(stop, first + UInt64(set.count(ofSlice: i)))
            _ = store.withValue(set.sliceKey(first)) { bytes, _ in
                guard let reader = ResultSlice.Reader(bytes) else { return }
                for s in seq..<end {
                    guard let row = reader.head(Int(s - first)) else { continue }
                    let key = row.key ?? UnsafeRawBufferPointer(start: nil, count: 0)
                    guard keyPrefix.isEmpty || key.starts(with: keyPrefix) else { continue }
                    if !row.isDelete && set.index.seq(key: key, startMs: row.startMs) != s { continue }
                    if let json = reader.json(Int(s - first), seq: s) { rows.append(RetainedRow(seq: s, json: json)) }
                }
            }
            seq = end
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
            let note = ReactorResult.progress(watermarkMs: stream.emittedWatermarkMs, seq: stream.storedResultEnd - 1)
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
