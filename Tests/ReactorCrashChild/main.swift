// Child process of the kill -9 test: ingests batches into three streams at fsync `always` — a
// tumbling window, a hopping window (each event in two windows) and a session window with
// `emit: changes` — and prints "ACK <batch>" once all three acknowledged it, until killed.
// Batch b holds 10 events of key "b<b>" at times 10b...10b+9, so the parent can tell every
// batch's count apart in the results (one session per key).
import LaminarFormats
import Glibc
import LaminarReactor
import LaminarStore

/// Unbuffered: a line is in the pipe before the next batch starts, so a kill loses no ACK line.
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    bytes.withUnsafeBytes { precondition(write(1, $0.baseAddress, $0.count) == $0.count) }
}

let directory = CommandLine.arguments[1]
var options = LogStoreOptions()
options.fsync = .always
let store = try LogStore.open(directory: directory, options: options)
var limits = ReactorLimits()
limits.walEntriesPerCheckpointMax = 7
let reactor = try Reactor(store: store, limits: limits)
let doorbell = Doorbell()
let producer = reactor.makeProducer { doorbell.ring() }
reactor.start()

func call(_ op: ReactorOperation, token: UInt64) -> ReactorResult {
    precondition(producer.submit(ReactorCommand(token: token, op)))
    producer.wakeReactorIfParked()
    while true {
        var result: ReactorResult?
        producer.poll { if $0.token == token { result = $0.result } }
        if let result { return result }
        doorbell.wait(timeoutMs: 1000)
    }
}

let tumble = StreamDefinition(name: "crash", windowSizeMs: 100, allowedLatenessMs: 0, aggregates: [.count, .sum])
var hop = tumble
hop.name = "crash-hop"
hop.window = .hop(sizeMs: 100, slideMs: 50)
var session = tumble
session.name = "crash-session"
session.window = .session(gapMs: 5)
session.emit = .changes
var token: UInt64 = 0
for d in [tumble, hop, session] {
    token += 1
    guard case .ok = call(.defineStream(d), token: token) else { fatalError("define failed") }
}
say("READY")
for b in 0..<1_000_000 {
    let keys = Array(repeating: "b\(b)", count: 10)
    let ts = (0..<10).map { Int64(b * 10 + $0) }
    let batch = EventBatch(keys: keys, timestamps: ts, values: Array(repeating: 1, count: 10))
    for name in ["crash", "crash-hop", "crash-session"] {
        token += 1
        guard case .eventsAccepted(let ack) = call(.appendEvents(stream: name, batch: batch, idempotencyKey: UInt64(b)), token: token),
            ack.accepted == 10
        else { fatalError("batch \(b) not accepted by \(name)") }
    }
    say("ACK \(b)")
}
