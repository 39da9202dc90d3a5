import LaminarFormats
import LaminarHTTP
import LaminarReactor

/// The long-lived answers: watches of keys (`GET /kv/?watch=1`) and follows of a stream's
/// results (`GET /streams/{name}/results?follow=1`, NDJSON or SSE, resumable with `since`).
/// A subscription's notifications carry the token of the command that started it; the request
/// it answers maps to that token in `subscriptions` until it ends.
extension RequestHandler {
    /// What a subscription's completions and notifications answer.
    enum SubscriptionKind {
        case watch(ValueEncoding)
        case follow(Follower)
    }

    func handleSubscription(_ action: RouteAction, _ responder: HTTPResponder, _ start: UInt64) {
        switch action {
        case .kvWatch(let prefix, let encoding):
            submit(.watch(prefix: prefix), responder, action.route, start, .subscription(.watch(encoding)))
        case .resultsFollow(let name, let since, let keyPrefix, let sse):
            withDefinition(name, .follow(since: since, keyPrefix: keyPrefix, sse: sse), responder, action.route, start)
        default:
            preconditionFailure("not a subscription route: \(action)")
        }
    }

    /// A follow whose stream's definition is known: live from now, or from `since` by pages of
    /// retained rows first.
    func startFollow(_ definition: StreamDefinition, since: UInt64?, keyPrefix: [UInt8], sse: Bool, _ p: Pending) {
        let follower = Follower(definition: definition, sse: sse, keyPrefix: keyPrefix, since: since)
        if let since {
            let token = nextTokenValue()
            pending[token] = Pending(responder: p.responder, route: p.route, startNs: p.startNs, kind: .subscription(.follow(follower)))
            subscriptions[p.responder.token] = token
            enqueue(ReactorCommand(token: token, .resumeResults(stream: definition.name, after: since, keyPrefix: keyPrefix)))
        } else {
            submit(.follow(stream: definition.name), p.responder, p.route, p.startNs, .subscription(.follow(follower)))
        }
    }

    func completeSubscription(_ kind: SubscriptionKind, _ result: ReactorResult, token: UInt64, _ p: Pending) {
        switch (kind, result) {
        case (.follow(let follower), .failure(let error)) where follower.started:
            // A resume page failed after rows went out (they expired meanwhile): a last line.
            subscriptions[p.responder.token] = nil
            let failure = HTTPFailure(error)
            var line = follower.errorLine(failure.code, detail: failure.detail)
            if case .resultsGone(let oldest) = error { line = follower.errorLine("gone", detail: Self.goneDetail(follower.lastSeq, oldest)) }
            _ = p.responder.write(line)
            _ = p.responder.finish()
        case (.follow(let follower), .failure(let error)):
            subscriptions[p.responder.token] = nil
            guard case .resultsGone(let oldest) = error else { return respond(p, error) }
            // {"error":"gone","detail":…,"oldest_seq":N}
            var body = JSONWriter.errorBody("gone", detail: Self.goneDetail(follower.lastSeq, oldest))
            body.removeLast(2)
            body.append(contentsOf: #","oldest_seq":"#.utf8)
            JSONWriter.appendInteger(oldest, to: &body)
            body.append(contentsOf: "}\n".utf8)
            respond(p, HTTPResponse(status: 410, headers: Self.json, body: body))
        case (.watch, .failure(let error)):
            respond(p, error)
        case (.follow(let follower), .subscribed):
            guard beginFollowResponse(p, follower) else {
                enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: token)))
                return
            }
            pending[token] = p
            subscriptions[p.responder.token] = token
        case (.follow(let follower), .retainedResults(let rows, let lastSeq, let live)):
            guard beginFollowResponse(p, follower) else {
                if live { enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: token))) }
                subscriptions[p.responder.token] = nil
                return
            }
            var out: [UInt8] = []
            follower.appendRetained(rows, pageLastSeq: lastSeq, to: &out)
            if !out.isEmpty {
                follower.wroteSinceTick = true
                _ = p.responder.write(out)
            }
            if live {
                pending[token] = p
                subscriptions[p.responder.token] = token
            } else if p.responder.unsentBytes <= runtime.limits.subscriberBacklogBytesMax / 2 {
                requestNextPage(p)
            } else {
                resuming[p.responder.token] = p
            }
        case (.watch, .subscribed):
            guard p.responder.startStreaming(status: 200, headers: Self.ndjson) else {
                enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: token)))
                return
            }
            pending[token] = p
            subscriptions[p.responder.token] = token
            metrics.recordRequest(route: p.route, status: 200, durationNs: Self.nowNs() &- p.startNs)
        default:
            unexpected(result, p)
        }
    }

    /// A watch's change or a follow's closed window: one NDJSON line on its long-lived answer.
    func notify(_ completion: ReactorCompletion) {
        guard let p = pending[completion.token], case .subscription(let kind) = p.kind else { return }  // unsubscribed meanwhile
        var line: [UInt8] = []
        switch (kind, completion.result) {
        case (.watch(let encoding), .change(let change)):
            // {"op":"put","key":…,"value":…,"version":n} or {"op":"delete","key":…,"version":n}
            line.append(contentsOf: (change.value == nil ? #"{"op":"delete","# : #"{"op":"put","#).utf8)
            change.key.withUnsafeBytes { KVLines.appendField("key", $0, encoding: encoding, to: &line) }
            if let value = change.value {
                line.append(0x2C)
                value.withUnsafeBytes { KVLines.appendField("value", $0, encoding: encoding, to: &line) }
            }
            line.append(contentsOf: #","version":"#.utf8)
            JSONWriter.appendInteger(change.revision, to: &line)
            line.append(contentsOf: "}\n".utf8)
        case (.follow(let follower), .windowsClosed(let results)):
            follower.appendRows(results, to: &line)
            if line.isEmpty { return }  // none passed the prefix
            follower.wroteSinceTick = true
        case (.follow(let follower), .progress(let watermarkMs, let seq)):
            // Only when nothing else went out since the last tick.
            let quiet = !follower.wroteSinceTick
            follower.wroteSinceTick = false
            guard quiet else { return }
            follower.appendProgress(watermarkMs: watermarkMs, seq: max(seq, follower.lastSeq), to: &line)
        case (_, .subscriptionEnded(let error)):
            let failure = HTTPFailure(error)
            endSubscription(completion.token, failure.code, detail: failure.detail, unsubscribe: false)
            return
        default:
            return
        }
        // Unread: what was written before this wake and is still unsent. Lines of this wake may
        // pile up to the hard cap, which keeps room for the last line.
        let unsent = p.responder.unsentBytes
        let written = writtenThisWake[completion.token, default: 0]
        let backlogMax = runtime.limits.subscriberBacklogBytesMax
        let streamingBytesMax = runtime.limits.streamingBytesMax
        if unsent - written > backlogMax || unsent + line.count > streamingBytesMax {
            endSubscription(completion.token, "slow_consumer", detail: unsent - written > backlogMax
                ? "the client left more than \(backlogMax) bytes unread"
                : "\(unsent + line.count) bytes to send at once pass the \(streamingBytesMax)-byte limit; raise --subscriber-backlog-bytes",
                unsubscribe: true)
            producer.wakeReactorIfParked()
            return
        }
        writtenThisWake[completion.token] = written + line.count
        // False: the client is gone or too slow; the HTTP layer reset it and requestClosed follows.
        _ = p.responder.write(line)
    }

    /// The request of a watch or follow finished or went away: its subscription ends.
    func subscriberLeft(_ token: HTTPRequestToken) {
        // Every request ends here: most have no subscription, and two hashes are not free.
        if subscriptions.isEmpty && resuming.isEmpty { return }
        resuming[token] = nil
        if let subscription = subscriptions.removeValue(forKey: token) {
            pending[subscription] = nil
            enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: subscription)))
            producer.wakeReactorIfParked()
        }
    }

    /// The server is stopping: every long-lived answer ends now, so its connection can close
    /// within the drain deadline.
    func endSubscriptionsForDrain() {
        for subscription in Array(subscriptions.values) {
            endSubscription(subscription, "shutting_down", detail: "the server is stopping", unsubscribe: true)
        }
        for p in resuming.values {
            if case .subscription(.follow(let follower)) = p.kind {
                _ = p.responder.write(follower.errorLine("shutting_down", detail: "the server is stopping"))
            }
            _ = p.responder.finish()
        }
        resuming.removeAll()
    }

    /// Ends a watch or follow with a last error line and the end of its response; with
    /// `unsubscribe`, tells the reactor too (not needed when the reactor ended it).
    private func endSubscription(_ subscription: UInt64, _ code: String, detail: String, unsubscribe: Bool) {
        guard let p = pending.removeValue(forKey: subscription) else { return }
        subscriptions[p.responder.token] = nil
        if unsubscribe { enqueue(ReactorCommand(token: nextTokenValue(), .unsubscribe(subscription: subscription))) }
        if case .subscription(.follow(let follower)) = p.kind {
            _ = p.responder.write(follower.errorLine(code, detail: detail))
        } else {
            _ = p.responder.write(JSONWriter.errorBody(code, detail: detail))
        }
        _ = p.responder.finish()
    }

    /// Asks for the next page of each resuming follow whose client took most of the last one.
    func resumeReadFollowers() {
        let threshold = runtime.limits.subscriberBacklogBytesMax / 2
        for (token, p) in resuming where p.responder.unsentBytes <= threshold {
            resuming[token] = nil
            requestNextPage(p)
        }
    }

    /// Submits `resumeResults` after the follower's last seq; the new token stands for the
    /// request's subscription (it becomes the live one when a page reaches the newest row).
    private func requestNextPage(_ p: Pending) {
        guard case .subscription(.follow(let follower)) = p.kind else { return }
        let token = nextTokenValue()
        pending[token] = p
        subscriptions[p.responder.token] = token
        enqueue(ReactorCommand(token: token,
            .resumeResults(stream: follower.definition.name, after: follower.lastSeq, keyPrefix: follower.keyPrefix)))
    }

    /// Starts a follow's long-lived answer (NDJSON or SSE) if not yet started; false if gone.
    private func beginFollowResponse(_ p: Pending, _ follower: Follower) -> Bool {
        if follower.started { return true }
        guard p.responder.startStreaming(status: 200, headers: ["content-type": follower.contentType, "cache-control": "no-cache"]) else {
            return false
        }
        follower.started = true
        metrics.recordRequest(route: p.route, status: 200, durationNs: Self.nowNs() &- p.startNs)
        return true
    }

    static func goneDetail(_ since: UInt64, _ oldest: UInt64) -> String {
        "results after seq \(since) are no longer retained; the oldest retained is seq \(oldest)"
    }
}
