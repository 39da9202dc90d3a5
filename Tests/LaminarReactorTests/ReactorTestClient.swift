import LaminarReactor
import LaminarStore
import Testing

/// A producer used synchronously: submit, wake, wait on its doorbell for the completion.
/// Handed to one thread at a time (tests), hence unchecked.
final class TestClient: @unchecked Sendable {
    let producer: ReactorProducer
    let doorbell: Doorbell
    var nextToken: UInt64 = 1
    var notifications: [ReactorCompletion] = []

    init(reactor: Reactor) {
        let doorbell = Doorbell()
        self.doorbell = doorbell
        self.producer = reactor.makeProducer { doorbell.ring() }
    }

    /// Runs one command and returns its result; nil on a 10 s timeout (a lost wake-up).
    func call(_ op: ReactorOperation) -> ReactorResult? {
        let token = nextToken
        nextToken += 1
        guard producer.submit(ReactorCommand(token: token, op)) else { return nil }
        producer.wakeReactorIfParked()
        var result: ReactorResult?
        var waits = 0
        while result == nil {
            producer.poll { c in
                if c.result.isNotification { notifications.append(c) } else if c.token == token { result = c.result }
            }
            if result == nil {
                if !doorbell.wait(timeoutMs: 100) { waits += 1 }
                if waits > 100 { return nil }
            }
        }
        return result
    }

    /// Collects notifications until `count` arrived or 10 s passed.
    func awaitNotifications(_ count: Int) -> [ReactorCompletion] {
        var waits = 0
        while notifications.count < count && waits < 100 {
            producer.poll { c in if c.result.isNotification { notifications.append(c) } }
            if notifications.count < count, !doorbell.wait(timeoutMs: 100) { waits += 1 }
        }
        return notifications
    }
}

extension ReactorResult {
    var written: Revision? { if case .written(let v) = self { return v } else { return nil } }
    var failure: ReactorError? { if case .failure(let e) = self { return e } else { return nil } }
    var ack: EventsAck? { if case .eventsAccepted(let a) = self { return a } else { return nil } }
    var entries: [StoreEntry]? { if case .entries(let e) = self { return e.storeEntries } else { return nil } }
    var stats: StreamStats? { if case .streamStats(let s) = self { return s } else { return nil } }
    var isOK: Bool { if case .ok = self { return true } else { return false } }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
