import LaminarStore

extension Reactor {
    /// Applies one command and queues its completion (reactor thread). The command is consumed:
    /// its arrays are borrowed by the store and released once, here, not retained for the call.
    /// `keyHash`: for a command with a key (`ReactorCommand.key`), `store.lookupHash` of it, so
    /// that a get or put does not hash it again; anything for other commands.
    ///
    /// Gets and puts run in small functions of their own, chosen by the command's `kind` (no look
    /// into the enum): inside the switch over every operation they paid for its frame (~1 KiB,
    /// with a stack protector) and its outlined destroys (~25 instructions a command, callgrind).
    @inline(__always)
    func execute(_ command: consuming ReactorCommand, producer p: ReactorProducer, keyHash: UInt64) {
        switch command.kind {
        case .get: executeGet(command, producer: p, keyHash: keyHash)
        case .put: executePut(command, producer: p, keyHash: keyHash)
        case .other: executeOther(command, producer: p)
        }
    }

    @inline(never)
    func executeGet(_ command: consuming ReactorCommand, producer p: ReactorProducer, keyHash: UInt64) {
        let token = command.token
        // Moved out of the command and matched as consumed: the binding owns the key and
        // releases it itself.
        guard case .get(let key) = (consume command).operation else { preconditionFailure("a get command's kind") }
        if ttlTimersPending > 0 {
            // Some key may have expired without its timer having fired yet.
            let result: ReactorResult
            if let e = store.get(key), !(e.expiresAtMs.map { $0 <= clock.nowMs() } ?? false) {
                result = .value(StoredValue(e.value), version: e.version)
            } else {
                result = .failure(.notFound)
            }
            return completeRead(token, result, durable: key.withUnsafeBytes { store.isDurable($0) }, producer: p)
        }
        // One lookup; the value stays in the store's mapping, pinned until the I/O thread has sent it.
        // The found value is moved into the result (taken out of the whole read result, it
        // was copied: a retain and a release of its mapping per get).
        let (found, durable) = store.read(key, hash: keyHash, durability: syncer != nil)
        switch consume found {
        case .some(let (value, version)):
            completeRead(token, .value(consume value, version: version), durable: durable, producer: p)
        case .none:
            completeRead(token, .failure(.notFound), durable: durable, producer: p)
        }
    }

    @inline(never)
    func executePut(_ command: consuming ReactorCommand, producer p: ReactorProducer, keyHash: UInt64) {
        let token = command.token
        guard case .put(let key, let value, let condition, let ttlMs) = (consume command).operation else {
            preconditionFailure("a put command's kind")
        }
        if ReservedKeys.isReserved(key) { return complete(token, .failure(.reservedKey), producer: p) }
        if value.count > limits.valueBytesMax {
            return complete(token, .failure(.valueTooLarge(bytes: value.count, max: limits.valueBytesMax)), producer: p)
        }
        let expiresAt = ttlMs.map { clock.nowMs() + max($0, 0) }
        do {
            let rev = try store.put(key, value, condition: condition, expiresAtMs: expiresAt, hash: keyHash)
            mutatedThisRound = true
            if let expiresAt { scheduleExpiry(key: key, atMs: expiresAt) }
            notifyWatchers(key: key, value: value, revision: rev)
            complete(token, .written(version: rev), producer: p, mutation: true)
        } catch {
            complete(token, .failure(ReactorError(error)), producer: p)
        }
    }

    /// Every command but gets and puts.
    func executeOther(_ command: consuming ReactorCommand, producer p: ReactorProducer) {
        let token = command.token
        // Moved out of the command and switched over as consumed: each case's bindings own the
        // payload and release it themselves (a switch over a copy destroyed the command, then the
        // operation, through outlined destroys that switch over every case: ~40 instructions).
        let operation = (consume command).operation
        switch consume operation {
        case .get, .put:
            preconditionFailure("gets and puts run in executeGet and executePut")

        case .delete(let key, let condition):
            if ReservedKeys.isReserved(key) { return complete(token, .failure(.reservedKey), producer: p) }
            do {
                guard let rev = try store.delete(key, condition: condition) else {
                    return complete(token, .failure(.notFound), producer: p)
                }
                mutatedThisRound = true
                notifyWatchers(key: key, value: nil, revision: rev)
                complete(token, .deleted(version: rev), producer: p, mutation: true)
            } catch {
                complete(token, .failure(ReactorError(error)), producer: p)
            }

        case .prefixScan(let prefix, let after, let limit):
            complete(token, .entries(store.prefixPage(prefix, after: after, limit: clampLimit(limit))), producer: p)

        case .rangeScan(let start, let end, let after, let limit):
            complete(token, .entries(store.rangePage(start: start, end: end, after: after, limit: clampLimit(limit))), producer: p)

        case .batch(let mutations):
            if mutations.contains(where: { ReservedKeys.isReserved($0.key) }) {
                return complete(token, .failure(.reservedKey), producer: p)
            }
            for case .put(_, let value, _, _) in mutations where value.count > limits.valueBytesMax {
                return complete(token, .failure(.valueTooLarge(bytes: value.count, max: limits.valueBytesMax)), producer: p)
            }
            do {
                // A delete of a key absent at its point in the batch writes nothing: no watch line.
                let writes = StoreMutation.writes(of: mutations, exists: { store.contains($0) })
                let rev = try store.apply(mutations)
                mutatedThisRound = true
                let now = clock.nowMs()
                for (m, writes) in zip(mutations, writes) {
                    switch m {
                    case .put(let key, let value, _, let expiry):
                        if let expiry { scheduleExpiry(key: key, atMs: expiry == 0 ? now : expiry) }
                        notifyWatchers(key: key, value: value, revision: rev)
                    case .delete(let key, _):
                        if writes { notifyWatchers(key: key, value: nil, revision: rev) }
                    }
                }
                complete(token, .batchApplied(revision: rev), producer: p, mutation: true)
            } catch {
                complete(token, .failure(ReactorError(error)), producer: p)
            }

        case .defineStream(let definition):
            complete(token, defineStream(definition), producer: p, mutation: true)

        case .deleteStream(let name):
            guard streams[name] != nil else { return complete(token, .failure(.unknownStream(name)), producer: p) }
            do {
                try deleteStream(name)
                complete(token, .ok, producer: p, mutation: true)
            } catch {
                complete(token, .failure(ReactorError(error)), producer: p)
            }

        case .streamStats(let name):
            guard let s = streams[name] else { return complete(token, .failure(.unknownStream(name)), producer: p) }
            complete(token, .streamStats(s.stats), producer: p)

        case .listStreams:
            complete(token, .streams(streams.keys.sorted()), producer: p)

        case .storeStats:
            let stats = store.stats
            complete(token, .storeStats(StoreStatsSnapshot(
                keys: store.count, bytes: store.sizeBytes, garbageRatio: store.garbageRatio,
                fsyncCount: stats.fsyncCount, fsyncNanosTotal: stats.fsyncNanosTotal,
                compactions: stats.compactions, streams: streams.count, subscriptions: subscriptions.count,
                revision: store.revision,
                perStream: streams.keys.sorted().map { name in
                    let op = streams[name]!.op
                    return StreamMetrics(name: name, eventsAccepted: UInt64(op.eventsAccepted), eventsLate: UInt64(op.eventsLate),
                        watermarkMs: op.watermarkMs, openWindows: op.openWindowCount)
                })),
                producer: p)

        case .appendEvents(let name, let batch, let idempotencyKey):
            complete(token, appendEvents(stream: name, batch: batch, idempotencyKey: idempotencyKey, nowMs: clock.nowMs()),
                producer: p, mutation: true)

        case .queryResults(let name, let key, let after, let limit, let keyPrefix):
            guard let stream = streams[name] else { return complete(token, .failure(.unknownStream(name)), producer: p) }
            complete(token, .entries(resultPage(stream, key: key, keyPrefix: keyPrefix, after: after, limit: clampLimit(limit))), producer: p)

        case .watch(let prefix):
            // After a storage failure nothing changes any more: a new watch or follow would wait forever.
            if let failure = storageFailure { return complete(token, .failure(failure), producer: p) }
            guard p.subscriptionCount < limits.subscriptionsPerProducerMax else {
                return complete(token, .failure(.tooManySubscriptions), producer: p)
            }
            let id = addSubscription(Subscription(kind: .watch(prefix), producer: p.index, token: token))
            watchIds.append(id)
            complete(token, .subscribed, producer: p)

        case .follow(let name):
            guard let stream = streams[name] else { return complete(token, .failure(.unknownStream(name)), producer: p) }
            if let failure = storageFailure { return complete(token, .failure(failure), producer: p) }
            guard p.subscriptionCount < limits.subscriptionsPerProducerMax else {
                return complete(token, .failure(.tooManySubscriptions), producer: p)
            }
            let id = addSubscription(Subscription(kind: .follow(name), producer: p.index, token: token))
            stream.followers.append(id)
            armProgressTimer()
            complete(token, .subscribed, producer: p)

        case .lateEvents(let name):
            guard let stream = streams[name] else { return complete(token, .failure(.unknownStream(name)), producer: p) }
            complete(token, .lateEvents(stream.lateEvents), producer: p)

        case .resumeResults(let name, let after, let keyPrefix):
            guard let stream = streams[name] else { return complete(token, .failure(.unknownStream(name)), producer: p) }
            complete(token, resumeResults(stream, after: after, keyPrefix: keyPrefix, token: token, producer: p), producer: p)

        case .defineSource(let definition):
            complete(token, defineSource(definition), producer: p, mutation: true)

        case .deleteSource(let name):
            guard let source = sources[name] else { return complete(token, .failure(.unknownSource(name)), producer: p) }
            if !source.readers.isEmpty { return complete(token, .failure(.conflict(readersDetail(source))), producer: p) }
            do {
                try deleteSource(name)
                complete(token, .ok, producer: p, mutation: true)
            } catch {
                complete(token, .failure(ReactorError(error)), producer: p)
            }

        case .sourceInfo(let name):
            guard let source = sources[name] else { return complete(token, .failure(.unknownSource(name)), producer: p) }
            complete(token, .source(source.info), producer: p)

        case .listSources:
            complete(token, .sources(sources.keys.sorted().map { sources[$0]!.info }), producer: p)

        case .appendSourceEvents(let name, let batch, let idempotencyKey):
            complete(token, appendSourceEvents(source: name, batch: batch, idempotencyKey: idempotencyKey, nowMs: clock.nowMs()),
                producer: p, mutation: true)

        case .catalog:
            complete(token, catalogSnapshot, producer: p)

        case .applyCatalog(let steps):
            complete(token, applyCatalog(steps), producer: p, mutation: true)

        case .unsubscribe(let subscriptionToken):
            guard let id = subscriptions.first(where: { $0.value.producer == p.index && $0.value.token == subscriptionToken })?.key else {
                return complete(token, .failure(.unknownSubscription), producer: p)
            }
            let sub = subscriptions.removeValue(forKey: id)!
            if case .watch = sub.kind { watchIds.removeAll { $0 == id } }
            if case .follow(let name) = sub.kind { streams[name]?.followers.removeAll { $0 == id } }
            p.subscriptionCount -= 1
            complete(token, .ok, producer: p)
        }
    }

    func addSubscription(_ sub: Subscription) -> UInt64 {
        let id = nextSubscriptionId
        nextSubscriptionId += 1
        subscriptions[id] = sub
        producers[sub.producer].subscriptionCount += 1
        return id
    }

    @inline(__always)
    func clampLimit(_ limit: Int) -> Int { max(0, min(limit, limits.scanEntriesMax)) }
}
