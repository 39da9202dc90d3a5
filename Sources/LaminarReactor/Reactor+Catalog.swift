import LaminarStore

/// A change to the catalog (a source or stream created or deleted), prepared on the reactor
/// thread: the store mutations that make it durable, and what changes in memory once the store
/// has taken them. A SQL script, or a definition that replaces another, stores all of its
/// changes in one batch: a refused write (a full disk) applies none of them.
struct CatalogChange {
    var mutations: [StoreMutation]
    var install: () -> Void
}

/// The sources and streams as the earlier changes of one batch leave them, before any is
/// installed: `.some(nil)` is deleted. `resultNext` is the next result sequence number of a
/// stream deleted earlier in the batch (its `_resultnext` key is not in the store yet).
struct CatalogOverlay {
    var sources: [String: SourceRuntime?] = [:]
    var streams: [String: StreamRuntime?] = [:]
    var resultNext: [String: UInt64] = [:]
}

extension Reactor {
    // MARK: - One definition or deletion

    func defineSource(_ definition: SourceDefinition) -> ReactorResult {
        if let problem = definition.validate(limits: limits) { return .failure(.invalidSource(problem)) }
        if streams[definition.name] != nil { return .failure(.conflict("a stream is named \(definition.name)")) }
        var overlay = CatalogOverlay()
        var changes: [CatalogChange] = []
        if let existing = sources[definition.name] {
            if existing.definition == definition { return .ok }
            if !existing.readers.isEmpty { return .failure(.conflict(readersDetail(existing))) }
            changes.append(prepareDeleteSource(definition.name, &overlay)!)
        } else if sources.count >= limits.streamsMax {
            return .failure(.tooManyStreams)
        }
        changes.append(prepareCreateSource(definition, &overlay))
        do { try commit(changes) } catch { return .failure(ReactorError(error)) }
        return .ok
    }

    func defineStream(_ definition: StreamDefinition) -> ReactorResult {
        if let problem = definition.validate(limits: limits) { return .failure(.invalidStream(problem)) }
        if sources[definition.name] != nil { return .failure(.conflict("a source is named \(definition.name)")) }
        if let name = definition.source {
            guard let s = sources[name] else { return .failure(.invalidStream("source: no such source: \(name)")) }
            if let problem = sourceMismatch(definition, s.definition) { return .failure(.invalidStream(problem)) }
        }
        var overlay = CatalogOverlay()
        var changes: [CatalogChange] = []
        if let existing = streams[definition.name] {
            if existing.definition == definition { return .ok }
            changes.append(prepareDeleteStream(definition.name, &overlay)!)
        } else if streams.count >= limits.streamsMax {
            return .failure(.tooManyStreams)
        }
        changes.append(prepareCreateStream(definition, &overlay))
        do { try commit(changes) } catch { return .failure(ReactorError(error)) }
        return .ok
    }

    /// Forgets a source nobody reads: its definition, checkpoint and entries in one batch.
    func deleteSource(_ name: String) throws {
        precondition(sources[name]?.readers.isEmpty ?? true, "callers refuse to delete a source that streams read")
        var overlay = CatalogOverlay()
        guard let change = prepareDeleteSource(name, &overlay) else { return }
        try commit([change])
    }

    /// Forgets a stream: its definition, checkpoint and write-ahead entries go in one atomic batch
    /// (its results stay readable under `_streams/`, and retained, with its next result sequence
    /// number kept for a stream defined again under the name); followers get a final notification.
    /// Like its open windows, rows of closed windows not yet stored (`rows_pending`: at most a few
    /// rounds' worth) are dropped, so that a delete takes no time that grows with a window's rows.
    /// If the store refuses the batch (a full disk, a storage failure), the stream stays as it was.
    func deleteStream(_ name: String) throws {
        var overlay = CatalogOverlay()
        guard let change = prepareDeleteStream(name, &overlay) else { return }
        try commit([change])
    }

    /// Stores the changes' mutations in one batch, then installs them in order.
    func commit(_ changes: [CatalogChange]) throws {
        try store.apply(changes.flatMap(\.mutations))
        mutatedThisRound = true
        for change in changes { change.install() }
    }

    // MARK: - Prepared changes

    func source(_ name: String, _ overlay: CatalogOverlay) -> SourceRuntime? {
        if let pending = overlay.sources[name] { return pending }
        return sources[name]
    }

    func stream(_ name: String, _ overlay: CatalogOverlay) -> StreamRuntime? {
        if let pending = overlay.streams[name] { return pending }
        return streams[name]
    }

    func prepareCreateSource(_ definition: SourceDefinition, _ overlay: inout CatalogOverlay) -> CatalogChange {
        let source = SourceRuntime(definition: definition)
        overlay.sources[definition.name] = .some(source)
        return CatalogChange(mutations: [.put(key: ReservedKeys.source(definition.name), value: definition.encoded()),
                                         .delete(key: ReservedKeys.sourceCheckpoint(definition.name))]) {
            self.sources[definition.name] = source
        }
    }

    /// `nil` when there is no such source. The caller has checked that nobody reads it by then.
    func prepareDeleteSource(_ name: String, _ overlay: inout CatalogOverlay) -> CatalogChange? {
        guard let source = source(name, overlay) else { return nil }
        overlay.sources[name] = .some(nil)
        var batch: [StoreMutation] = [.delete(key: ReservedKeys.source(name)), .delete(key: ReservedKeys.sourceCheckpoint(name))]
        for seq in source.firstRetained..<source.nextSequence { batch.append(.delete(key: ReservedKeys.sourceWAL(name, sequence: seq))) }
        return CatalogChange(mutations: batch) {
            precondition(source.readers.isEmpty, "a source is deleted once nobody reads it")
            self.sources[name] = nil
        }
    }

    /// The caller has checked the definition, its source and the name.
    func prepareCreateStream(_ definition: StreamDefinition, _ overlay: inout CatalogOverlay) -> CatalogChange {
        let stream = StreamRuntime(id: takeStreamId(), definition: definition, nowMs: clock.nowMs())
        restoreResultRange(stream, checkpointed: false, deletedNext: overlay.resultNext[definition.name])
        var batch: [StoreMutation] = [.put(key: ReservedKeys.definition(definition.name), value: definition.encoded())]
        let source = definition.source.map { s in
            guard let source = self.source(s, overlay) else { preconditionFailure("the caller checked the source") }
            return source
        }
        if let source {
            // It reads the source's batches from the next one on; the checkpoint says so.
            stream.sourceNext = source.nextSequence
            stream.checkpointSourceNext = source.nextSequence
            batch.append(.put(key: ReservedKeys.checkpoint(definition.name), value: stream.checkpointSnapshot(atMs: clock.nowMs()).encode()))
        }
        overlay.streams[definition.name] = .some(stream)
        return CatalogChange(mutations: batch) {
            source?.readers.append(stream)
            self.streams[definition.name] = stream
            self.scheduleEmitTick(stream, nowMs: self.clock.nowMs())
            self.noteResultWork(stream)
        }
    }

    /// `nil` when there is no such stream.
    func prepareDeleteStream(_ name: String, _ overlay: inout CatalogOverlay) -> CatalogChange? {
        guard let stream = stream(name, overlay) else { return nil }
        overlay.streams[name] = .some(nil)
        overlay.resultNext[name] = stream.nextResultSeq
        var next = ByteWriter()
        next.u64(stream.nextResultSeq)
        var batch: [StoreMutation] = [.delete(key: ReservedKeys.definition(name)), .delete(key: ReservedKeys.checkpoint(name)),
                                      .put(key: ReservedKeys.resultNext(name), value: next.bytes)]
        for seq in stream.firstUncheckpointed..<stream.nextSequence { batch.append(.delete(key: ReservedKeys.wal(name, sequence: seq))) }
        // The current checkpoint's parts, and those a checkpoint being stored has written.
        for i in 0..<stream.checkpointParts {
            batch.append(.delete(key: ReservedKeys.checkpointPart(name, generation: stream.checkpointGeneration, index: i)))
        }
        if let job = stream.checkpointJob {
            for i in 0..<job.partsWritten { batch.append(.delete(key: ReservedKeys.checkpointPart(name, generation: job.generation, index: i))) }
        }
        return CatalogChange(mutations: batch) {
            stream.checkpointJob = nil
            stream.op.dropQueuedRows()
            stream.pendingSlices = []
            self.streams[name] = nil
            if let source = stream.definition.source.flatMap({ self.sources[$0] }) {
                source.readers.removeAll { $0 === stream }
                self.trimSource(source)
            }
            if stream.inResultWork {
                stream.inResultWork = false
                self.resultWork.removeAll { $0 === stream }
            }
            for id in stream.followers { self.endSubscription(id, reason: .streamDeleted) }
        }
    }

    // MARK: - SQL catalog

    var catalogSnapshot: ReactorResult {
        .catalog(sources: sources.keys.sorted().map { sources[$0]!.info }, streams: streams.keys.sorted().map { streams[$0]!.stats })
    }

    /// Applies a script's steps in order after checking them all against the catalog as it will
    /// be at each step (names taken or missing, sources read), so a refused script changes
    /// nothing; its changes are stored in one batch, so a refused write changes nothing either.
    func applyCatalog(_ steps: [CatalogStep]) -> ReactorResult {
        var sourceNames = Set(sources.keys), streamNames = Set(streams.keys)
        var sourceDefinitions = sources.mapValues(\.definition)
        var readers: [String: Set<String>] = sources.mapValues { Set($0.readers.map(\.definition.name)) }
        for step in steps {
            switch step {
            case .createSource(let d):
                if let problem = d.validate(limits: limits) { return .failure(.invalidSource(problem)) }
                if sourceNames.contains(d.name) { return .failure(.conflict("source \(d.name) exists")) }
                if streamNames.contains(d.name) { return .failure(.conflict("a stream is named \(d.name)")) }
                if sourceNames.count >= limits.streamsMax { return .failure(.tooManyStreams) }
                sourceNames.insert(d.name); readers[d.name] = []; sourceDefinitions[d.name] = d
            case .createStream(let d):
                if streamNames.contains(d.name) { return .failure(.conflict("stream \(d.name) exists")) }
                if sourceNames.contains(d.name) { return .failure(.conflict("a source is named \(d.name)")) }
                if let problem = d.validate(limits: limits) { return .failure(.invalidStream(problem)) }
                if streamNames.count >= limits.streamsMax { return .failure(.tooManyStreams) }
                if let s = d.source {
                    guard sourceNames.contains(s), let source = sourceDefinitions[s] else { return .failure(.unknownSource(s)) }
                    if let problem = sourceMismatch(d, source) { return .failure(.invalidStream(problem)) }
                    readers[s, default: []].insert(d.name)
                }
                streamNames.insert(d.name)
            case .dropSource(let name, let ifExists):
                if !sourceNames.contains(name) {
                    if ifExists { continue }
                    return .failure(.unknownSource(name))
                }
                if let r = readers[name], !r.isEmpty {
                    return .failure(.conflict("source \(name) is read by \(r.sorted().joined(separator: ", ")); drop those streams first"))
                }
                sourceNames.remove(name); sourceDefinitions[name] = nil
            case .dropStream(let name, let ifExists):
                if !streamNames.contains(name) {
                    if ifExists { continue }
                    return .failure(.unknownStream(name))
                }
                streamNames.remove(name)
                for k in readers.keys { readers[k]!.remove(name) }
            case .showSources, .showStreams, .explain:
                break
            }
        }
        // Every change in one store batch, then installed step by step (a SHOW sees the steps
        // before it).
        var overlay = CatalogOverlay()
        let changes: [CatalogChange?] = steps.map { step in
            switch step {
            case .createSource(let d): prepareCreateSource(d, &overlay)
            case .createStream(let d): prepareCreateStream(d, &overlay)
            case .dropSource(let name, _): prepareDeleteSource(name, &overlay)
            case .dropStream(let name, _): prepareDeleteStream(name, &overlay)
            case .showSources, .showStreams, .explain: nil
            }
        }
        do { try store.apply(changes.flatMap { $0?.mutations ?? [] }) } catch { return .failure(ReactorError(error)) }
        mutatedThisRound = true
        var results: [CatalogStepResult] = []
        for (step, change) in zip(steps, changes) {
            change?.install()
            switch step {
            case .createSource, .createStream, .explain: results.append(.done)
            case .dropSource, .dropStream: results.append(.dropped(change != nil))
            case .showSources: results.append(.sources(sources.keys.sorted().map { sources[$0]!.info }))
            case .showStreams: results.append(.streams(streams.keys.sorted().map { streams[$0]!.stats }))
            }
        }
        return .catalogApplied(results)
    }
}
