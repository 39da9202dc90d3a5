/// A compaction in progress, as the owner sees it.
enum CompactionState {
    /// The compaction thread copies the live records as of its snapshot into the new file.
    case copyingLive(CompactionJob)
    /// The owner copies the records appended since the snapshot, a slice per step, then swaps.
    case copyingTail(CompactionOutput)
}

/// Compaction off the writer's path. When garbage reaches the threshold, the owner notes a
/// snapshot (the log's end; the bytes below it never change) and starts a `CompactionJob`
/// thread, which writes the live records as of the snapshot into `data.lmnr.compact` in key
/// order, builds their hash table and ordered index, fsyncs the file and writes its hint
/// (`index.hint.compact`). The owner goes on appending to the old file meanwhile, publishing the
/// log's end to the thread at each commit; the thread copies (and fsyncs) those records too, in
/// rounds, until little is left. Then, at each `commit()` / `endSync` (between the reactor's
/// rounds, no sync in flight), the owner copies at most `compactionSliceBytes` of the rest into
/// the new file as they are (batches and tombstones included) and applies them to the new
/// index; once the new
/// file has caught up, it fsyncs it, renames it over `data.lmnr`, switches region, table and
/// ordered index (assignments; the old ones are freed on a thread of their own, `Retirement`),
/// renames the hint and fsyncs the directory.
///
/// Crash safety: until the data rename, `data.lmnr` is the old file, complete, and the `.compact`
/// files are leftovers that open removes; the new file has every record of the old one when it is
/// renamed, fsynced first, so either name holds every acknowledged write. A hint that does not
/// match the data file's generation is ignored.
///
/// Failures: a full disk while writing the new file or its hint abandons that compaction (files
/// removed, the store goes on; the next try waits until the log has grown by an eighth); a failed
/// sync or rename is fail-stop (`noteFailure`).
extension LogStore {
    /// Whether a compaction is in progress.
    public var compactionInProgress: Bool { compaction != nil }

    /// Whether the compaction thread is still copying the live records (tests).
    public var compactionThreadRunning: Bool {
        if case .copyingLive(let job) = compaction { return !job.isFinished }
        return false
    }

    /// Compacts now, waiting for it: starts a compaction unless one is in progress, waits for its
    /// thread, copies the whole tail and swaps the new file in. On failure the store keeps the
    /// old file (or, for a storage failure, is failed).
    public func compact() throws {
        assert(checkOwnerThread())
        try checkWritable()
        if compaction == nil { startCompaction() }
        if case .copyingLive(let job) = compaction { try takeOutput(of: job) }
        while case .copyingTail(let output) = compaction { try advance(output, bytesMax: Int.max) }
    }

    /// One bounded step (after a commit or a sync, on the owner's thread, nothing in flight):
    /// start a compaction when worth it, take the thread's output when it is done, or copy one
    /// slice of the tail (and swap once caught up). Failures are logged (and a storage failure
    /// has failed the store); the writer's own operations never see them.
    func stepCompaction() {
        guard failure == nil, !closed else { return }
        do {
            switch compaction {
            case nil:
                guard logicalEnd >= options.compactionBytesMin, logicalEnd >= compactionRetryEnd,
                    garbageRatio >= options.compactionGarbageRatio
                else { return }
                startCompaction()
            case .copyingLive(let job):
                job.publish(end: logicalEnd)
                if job.isFinished { try takeOutput(of: job) }
            case .copyingTail(let output):
                try advance(output, bytesMax: options.compactionSliceBytes)
            }
        } catch {
            if failure == nil {
                logger.error("compaction failed, keeping the current data file", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Starts a compaction thread with the log as it is now as its snapshot.
    func startCompaction() {
        precondition(compaction == nil)
        stats.compactionsStarted += 1
        compaction = .copyingLive(
            CompactionJob(
                source: UnsafeRawPointer(region.base), snapshotEnd: logicalEnd, baseRevision: revision, liveBytes: liveBytes,
                keyCount: count, hasher: hasher, directory: directory, options: options))
    }

    /// Waits for the compaction thread, if one runs, and takes its output (tests).
    func waitForCompactionThread() throws {
        if case .copyingLive(let job) = compaction { try takeOutput(of: job) }
    }

    private func takeOutput(of job: CompactionJob) throws {
        compaction = nil
        switch job.join() {
        case .success(let output):
            stats.compactionTailBytes += UInt64(output.tailBytesCopied)
            compaction = .copyingTail(output)
        case .failure(let error): throw compactionFailed(error)
        }
    }

    /// Copies up to `bytesMax` of the tail (at least one record), then swaps if caught up.
    private func advance(_ output: CompactionOutput, bytesMax: Int) throws {
        do {
            if output.copiedTo < logicalEnd {
                try copyTail(output, bytesMax: bytesMax)
                options.compactionObserver?(.copiedTail)
            }
            if output.copiedTo == logicalEnd { try swap(to: output) }
        } catch {
            throw compactionFailed(error)
        }
    }

    private func copyTail(_ output: CompactionOutput, bytesMax: Int) throws {
        let start = output.copiedTo
        var end = start
        while end < logicalEnd && end - start < bytesMax { end += RecordFormat.paddedSize(record(at: end)) }
        let writer = output.writer
        var at = writer.end
        try writer.appendRaw(UnsafeRawBufferPointer(start: record(at: start), count: end - start))
        while at < writer.end {
            Self.applyRecord(
                at: at, base: writer.region.base, hasher: hasher, table: &output.table, ordered: &output.ordered,
                liveBytes: &output.liveBytes, maintainOrder: true)
            at += RecordFormat.paddedSize(writer.region.base + at)
        }
        output.copiedTo = end
        stats.compactionTailBytes += UInt64(end - start)
    }

    /// The new file holds everything: make it durable, rename it over the data file, switch to
    /// it, then its hint and the directory.
    private func swap(to output: CompactionOutput) throws {
        let writer = output.writer
        if let directory, let tempPath = writer.tempPath {
            try writer.region.sync()
            let e = options.fileIO.rename(tempPath, directory + "/" + LogStore.dataFileName)
            if e != 0 { throw StoreError.storageFailed(operation: "rename", path: tempPath, errno: e) }
        }
        compaction = nil
        writer.region.inUse = true
        // Everything is in the new file, durable; its appends from now on go to a write-behind tail.
        if usesWriteBehind(writer.region) { try writer.region.startWriteBehind(end: writer.end) }
        let oldRegion = region, oldTable = table, oldOrdered = ordered
        region = writer.region
        table = output.table
        output.ownsTable = false
        ordered = output.ordered
        Retirement.release(oldRegion, oldTable, oldOrdered)
        liveBytes = output.liveBytes
        generation = writer.generation
        logicalEnd = writer.end
        durableEnd = writer.end
        durableRevision = revision
        dirty = false
        stats.compactions += 1
        options.compactionObserver?(.renamedData)
        if let directory {
            // Until the directory fsync returns the rename may not be durable: a crash could bring
            // back the old file, without the writes made to the new one. A failure is fail-stop.
            if output.wroteHint {
                let from = directory + "/" + LogStore.compactHintFileName
                let e = options.fileIO.rename(from, directory + "/" + LogStore.hintFileName)
                if e != 0 { throw StoreError.storageFailed(operation: "rename", path: from, errno: e) }
            }
            options.compactionObserver?(.renamedHint)
            try FileSystem.syncDirectory(directory, io: options.fileIO)
        }
        options.compactionObserver?(.finished)
        logger.info("compacted", metadata: ["keys": "\(count)", "bytes": "\(logicalEnd)", "tail_bytes": "\(stats.compactionTailBytes)"])
    }

    /// Abandons the compaction in progress after `error` (its files removed); a storage failure
    /// fails the store. Returns the error to throw.
    private func compactionFailed(_ error: any Error) -> any Error {
        abandonCompaction(removeFiles: true)
        compactionRetryEnd = logicalEnd + logicalEnd / 8
        return noteFailure(error)
    }

    /// Stops the compaction in progress, if any: cancels and joins its thread, drops its output
    /// and, with `removeFiles`, its files (a crash leaves them: `abandon()`; open removes them).
    func abandonCompaction(removeFiles: Bool) {
        guard let state = compaction else { return }
        compaction = nil
        var output: CompactionOutput?
        switch state {
        case .copyingLive(let job):
            job.cancel()
            if case .success(let o) = job.join() { output = o }
        case .copyingTail(let o):
            output = o
        }
        if removeFiles {
            output?.writer.discard()
            if let directory { FileSystem.removeIfPresent(directory + "/" + LogStore.compactHintFileName) }
        }
    }
}
