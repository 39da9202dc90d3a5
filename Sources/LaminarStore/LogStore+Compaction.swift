/// A compaction in progress, as the owner sees it.
enum CompactionState {
    /// The compaction thread copies the live records as of its snapshot into the new file.
    case copyingLive(CompactionJob)
    /// The owner copies the records appended since the snapshot, a slice per step, then swaps.
    case copyingTail(CompactionOutput)
    /// The store runs on the new file; the next sync job renames it into place (`switchOver`).
    case publishing(PendingPublication)
}

/// A compaction switched to (`LogStore.switchOver`) but not yet published: the publication for
/// the next sync job, and what the switch replaced, released once it is published.
final class PendingPublication {
    let publication: CompactionPublication
    let oldRegion: MappedRegion
    let oldTable: KeyHashTable
    let oldOrdered: OrderedKeyIndex

    init(publication: CompactionPublication, oldRegion: MappedRegion, oldTable: KeyHashTable, oldOrdered: OrderedKeyIndex) {
        self.publication = publication
        self.oldRegion = oldRegion
        self.oldTable = oldTable
        self.oldOrdered = oldOrdered
    }
}

/// Compaction off the writer's path. When garbage reaches the threshold, the owner notes a
/// snapshot (the log's end; the bytes below it never change) and starts a `CompactionJob`
/// thread, which writes the live records as of the snapshot into `data.lmnr.compact` in key
/// order, builds their hash table and ordered index, fsyncs the file and writes its hint
/// (`index.hint.compact`). The owner goes on appending to the old file meanwhile, publishing the
/// log's end to the thread at each commit; the thread copies (and fsyncs) those records too, in
/// rounds, until little is left. Then, at each `commit()` / `endSync` (between the reactor's
/// rounds, no sync in flight), the owner copies a slice of the rest — `compactionSliceBytes`, or
/// twice what was appended since its previous step if that is more, so that the rest shrinks
/// however fast the writer appends — into the new file as they are (batches and tombstones
/// included) and applies them to the new
/// index. Once the new file has caught up, at `fsync always`, the owner switches region, table
/// and ordered index to it (assignments: `switchOver`), and the next sync job, on the syncer's
/// thread, fsyncs it, renames it over `data.lmnr`, renames the hint and fsyncs the directory
/// (`CompactionPublication`); the old file and indexes are then freed by `Retirement`. Under the
/// other policies the owner does those steps itself at the switch (`swap`).
///
/// Crash safety: until the data rename, `data.lmnr` is the old file, holding every acknowledged
/// write (nothing written to the new file is acknowledged before its publication), and the
/// `.compact` files are leftovers that open removes; the new file has every record of the old one
/// when it is renamed, fsynced first, so either name holds every acknowledged write. A hint that
/// does not match the data file's generation is ignored.
///
/// Failures: a full disk while writing the new file or its hint abandons that compaction (files
/// removed, the store goes on; the next try waits until the log has grown by an eighth); a failed
/// sync or rename is fail-stop (`noteFailure`), and so is any failure of a sync job once the store
/// runs on the new file.
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
        try finishPendingPublication()
        if compaction == nil { startCompaction() }
        if case .copyingLive(let job) = compaction { try takeOutput(of: job) }
        while case .copyingTail(let output) = compaction { try advance(output, bytesMax: Int.max) }
        try finishPendingPublication()
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
                // At least twice what was appended since the previous step: the rest shrinks at
                // every step however fast the writer appends (a fixed slice smaller than a
                // round's writes never caught up), and a step's work stays proportional to the
                // round's own writes, never to the data.
                let appended = logicalEnd - output.endAtLastStep
                output.endAtLastStep = logicalEnd
                try advance(output, bytesMax: max(options.compactionSliceBytes, 2 * appended))
            case .publishing:
                return  // the next sync job publishes it
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
                keyCount: count, tableCapacity: table.capacity, hasher: hasher, directory: directory, options: options))
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
            output.endAtLastStep = logicalEnd
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

    /// The new file holds everything: switch to it. At `fsync always` (write-behind) the switch
    /// is all the owner does, O(1) (`switchOver`); the next sync job publishes the file. Otherwise
    /// (`interval`, `never`, in memory) the owner makes it durable, renames it over the data file
    /// and fsyncs the directory itself, then switches.
    private func swap(to output: CompactionOutput) throws {
        let writer = output.writer
        if let directory, usesWriteBehind(writer.region) {
            try switchOver(to: output, directory: directory)
            return
        }
        if let directory, let tempPath = writer.tempPath {
            try writer.region.sync()
            let e = options.fileIO.rename(tempPath, directory + "/" + LogStore.dataFileName)
            if e != 0 { throw StoreError.storageFailed(operation: "rename", path: tempPath, errno: e) }
        }
        let old = switchMemory(to: output)
        durableEnd = writer.end
        durableRevision = revision
        dirty = false
        stats.compactions += 1
        Retirement.release(old.region, old.table, old.ordered, after: concurrent.gracePeriod())
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

    /// At `fsync always`: the new file (every record of the old one in it, the last slices not
    /// yet fsynced) becomes the store's memory: appends go to its write-behind tail from now on.
    /// No system call but one `mmap` of the tail's page. It is still `data.lmnr.compact`: the
    /// next sync job (`beginSync`, or `flush`) fsyncs it, renames it and its hint into place and
    /// fsyncs the directory (`CompactionPublication`), and no write made from now on is durable
    /// (`durableRevision`) or acknowledged before that job returned. Until then a crash brings
    /// back the old file, which holds every write acknowledged so far. The old region and indexes
    /// are kept until then, and released off the owner's thread after (`finishPublication`).
    private func switchOver(to output: CompactionOutput, directory: String) throws {
        let writer = output.writer
        writer.region.inUse = true
        try writer.region.startWriteBehind(end: writer.end)
        let old = switchMemory(to: output)
        // `durableEnd` stays the old file's: it is what a crash keeps until the publication.
        dirty = true  // the publication rides on the next sync job, writes or not
        compaction = .publishing(
            PendingPublication(
                publication: CompactionPublication(directory: directory, hasHint: output.wroteHint, observer: options.compactionObserver),
                oldRegion: old.region, oldTable: old.table, oldOrdered: old.ordered))
        options.compactionObserver?(.switchedFile)
    }

    /// Points the store at the output's file and indexes; returns the old ones.
    private func switchMemory(to output: CompactionOutput) -> (region: MappedRegion, table: KeyHashTable, ordered: OrderedKeyIndex) {
        let writer = output.writer
        compaction = nil
        writer.region.inUse = true
        let old = (region: region, table: table, ordered: ordered)
        adopt(table: output.table, region: writer.region)
        output.ownsTable = false
        ordered = output.ordered
        liveBytes = output.liveBytes
        generation = writer.generation
        logicalEnd = writer.end
        return old
    }

    /// The publication to attach to the sync job being made, if one is due (`beginSync`, `flush`).
    var publicationDue: CompactionPublication? {
        if case .publishing(let pending) = compaction { return pending.publication }
        return nil
    }

    /// After a sync job that carried the publication succeeded: the new file is `data.lmnr`,
    /// durable; the compaction is complete. The old file, unlinked now, and the old indexes are
    /// released off the owner's thread (`Retirement`, which shrinks the file gradually).
    func finishPublication() {
        guard case .publishing(let pending) = compaction else { preconditionFailure("no publication pending") }
        compaction = nil
        stats.compactions += 1
        Retirement.release(pending.oldRegion, pending.oldTable, pending.oldOrdered, after: concurrent.gracePeriod())
        logger.info("compacted", metadata: ["keys": "\(count)", "bytes": "\(logicalEnd)", "tail_bytes": "\(stats.compactionTailBytes)"])
    }

    /// Runs the publication pending, if any, now on this thread (a `flush`: nothing in flight).
    func finishPendingPublication() throws {
        guard publicationDue != nil else { return }
        dirty = true
        try flush()
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
        var output: CompactionOutput?
        switch state {
        case .publishing:
            // The store runs on the new file already: its publication is not abandoned (a close
            // completes it; a crash leaves the old file, which has every acknowledged write).
            return
        case .copyingLive(let job):
            compaction = nil
            job.cancel()
            if case .success(let o) = job.join() { output = o }
        case .copyingTail(let o):
            compaction = nil
            output = o
        }
        if removeFiles {
            output?.writer.discard()
            if let directory { FileSystem.removeIfPresent(directory + "/" + LogStore.compactHintFileName) }
        }
    }
}
