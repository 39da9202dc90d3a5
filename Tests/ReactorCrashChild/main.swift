// Child process of the kill -9 test: ingests batches at fsync `always` into nine streams, every
// window kind (tumbling; hopping, each event in two windows; session) with every emit mode
// (final, changes, every 5 ms), each followed by the child itself, and prints "ACK <batch>" once
// all nine acknowledged it, until killed. Each row a follower got (after its commit) is printed
// as "ROW <stream> <row JSON>", so the parent can check that the rows keep their `seq` across
// the crash. Batch b holds 10 events of key "b<b>" at times 10b...10b+9, so the parent can tell
// every batch's count apart in the results (one session per key).
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
// LAMINAR_CRASH_CHECKPOINT_PARTS=1: every checkpoint is stored in parts of 64 bytes, one per
// round (`CheckpointJob`), so the kill lands while one is half written.
if getenv("LAMINAR_CRASH_CHECKPOINT_PARTS").map({ String(cString: $0) }) == "1" {
    limits.checkpointInlineBytesMax = 0
    limits.checkpointPartBytes = 64
}
let reactor = try Reactor(store: store, limits: limits)
let doorbell = Doorbell()
let producer = reactor.makeProducer { doorbell.ring() }
reactor.start()

/// Follow token → stream name and its columns (this thread only; `poll` calls back on it).
nonisolated(unsafe) var following: [UInt64: (name: String, columns: WindowResult.Columns)] = [:]

func call(_ op: ReactorOperation, token: UInt64) -> ReactorResult {
    precondition(producer.submit(ReactorCommand(token: token, op)))
    producer.wakeReactorIfParked()
    while true {
        var result: ReactorResult?
        producer.poll { c in
            if case .windowsClosed(let rows) = c.result, let f = following[c.token] {
                for row in rows { say("ROW \(f.name) " + String(decoding: row.json(columns: f.columns), as: UTF8.self)) }
            } else if c.token == token {
                result = c.result
            }
        }
        if let result { return result }
        doorbell.wait(timeoutMs: 1000)
    }
}

// `source` as the second argument: the nine streams read one named source "src" (its key,
// time and value fields), each batch is posted once to the source, and "ACK <batch>" follows
// its one acknowledgement.
let viaSource = CommandLine.arguments.count > 2 && CommandLine.arguments[2] == "source"
let tumble = StreamDefinition(name: "crash", windowSizeMs: 100, allowedLatenessMs: 0, aggregates: [.count, .sum])
var streams: [StreamDefinition] = []
for (kind, window) in [("tumble", WindowKind.tumble(sizeMs: 100)), ("hop", .hop(sizeMs: 100, slideMs: 50)), ("session", .session(gapMs: 5))] {
    for (mode, emit) in [("final", EmitMode.final), ("changes", .changes), ("every", .every(ms: 5))] {
        var d = tumble
        d.name = "crash-\(kind)-\(mode)"
        d.window = window
        d.emit = emit
        if viaSource { d.source = "src" }
        streams.append(d)
    }
}
var token: UInt64 = 0
if viaSource {
    let source = SourceDefinition(name: "src", keyField: "key", timeField: "ts", fields: ["value"])
    guard case .ok = call(.defineSource(source), token: 1) else { fatalError("define source failed") }
    token = 1
}
for d in streams {
    token += 1
    guard case .ok = call(.defineStream(d), token: token) else { fatalError("define failed") }
    token += 1
    following[token] = (d.name, WindowResult.Columns(d))
    guard case .subscribed = call(.follow(stream: d.name), token: token) else { fatalError("follow failed") }
}
say("READY")
for b in 0..<1_000_000 {
    let keys = Array(repeating: "b\(b)", count: 10)
    let ts = (0..<10).map { Int64(b * 10 + $0) }
    let batch = EventBatch(keys: keys, timestamps: ts, values: Array(repeating: 1, count: 10))
    if viaSource {
        token += 1
        guard case .eventsAccepted(let ack) = call(.appendSourceEvents(source: "src", batch: batch, idempotencyKey: UInt64(b)), token: token),
            ack.accepted == 10
        else { fatalError("batch \(b) not accepted by the source") }
        say("ACK \(b)")
        continue
    }
    for d in streams {
        let name = d.name
        token += 1
        guard case .eventsAccepted(let ack) = call(.appendEvents(stream: name, batch: batch, idempotencyKey: UInt64(b)), token: token),
            ack.accepted == 10
        else { fatalError("batch \(b) not accepted by \(name)") }
    }
    say("ACK \(b)")
}
