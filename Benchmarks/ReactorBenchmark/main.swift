// laminar-bench-reactor: in-process reactor figures (issue 3). Prints a table, then ONE JSON line
// last; `--json-out FILE` also writes that line to FILE. `--quick` runs a smaller smoke version;
// `--only ring|events|hop|session|sketch|kv` runs one part (for a profiler; its JSON has that
// part's fields only; `--only multi`, not in the full run, is bench-ingest's multi_field stream:
// three fields, six aggregates, values i % 977; `--only keys1m`, not in the full run either, is
// the tumbling case over `--keys N` keys, 1M by default, drawn at random and spelled as
// laminar-load's ("u123456"): bench-ingest's keys_1m case in process); `--events N` sets the events per timed run
// (warm-up N/4), `--data-gib N` the store's data bound, for callgrind (which cannot reserve
// the default 64 GiB), and `--kv-ops N` the KV operations per timed run (and warm-up):
//   valgrind --tool=callgrind laminar-bench-reactor --only hop --events 409600 --data-gib 1
//
//   ring_handoff_ns      per element through LaminarReactor's SPSCRing<UInt64> (capacity 4096),
//                        producer and consumer on two threads, pushes and pops in batches of 64;
//                        median of 3 timed runs after a warm-up run
//   ring_items_per_s     the same runs, elements per second (1e9 / ring_handoff_ns)
//   reactor_events_per_s events through producer ring → reactor (`.appendEvents`: WAL record +
//                        tumbling 1 s window count+sum over 10K keys) → completion; batches of
//                        4,096 events built with EventBatch.Builder, up to 8 batches in flight;
//                        persistent LogStore in a temp dir, fsync never; a warm-up of 2M events
//                        first; every event must be accepted (none late)
//   hop_events_per_s     the same with a hopping window (size 10 s, slide 1 s: size/slide = 10),
//                        count+sum+max
//   session_events_per_s the same with a session window (gap 100 ms); 1,000 of the 10K keys are
//                        active at a time, the set moving on every 1M events (1 s of event time),
//                        so sessions of ~1,000 events keep closing; count+sum
//   sketch_events_per_s  the tumbling case with p50 and p99 (quantile sketches) beside count+sum
//   *_cpu_ns_per_event   process CPU time (user + system, all threads) per event in that timed run
//   kv_ops_per_s         50/50 put/get (16-byte keys, 100-byte values, 10K keys prefilled) through
//                        producer ring → reactor → store → completion ring, up to 1,024 commands
//                        in flight; persistent LogStore in a temp dir, fsync never; warm-up first
//   kv_cpu_ns_per_op     process CPU time (user + system, all threads) per op in that timed run
//
// Allocation in the timed loops: the ring loop allocates nothing. The event loop allocates one
// buffer per 4,096-event batch (an EventBatch is an immutable byte array handed to the reactor, as
// the HTTP decoder does). The KV loop submits prebuilt key/value arrays (retains only); the
// reactor hands each get's value as it lies in the store (`.value(StoredValue)`, pinned, no copy).
// The KV loop's own work is kept to what an I/O thread also does per command (build it, submit
// it, poll and look at the result): commands are built in place, keys picked by a wrapping
// counter (no division), results checked through a borrowing switch (no copy); callgrind: ~295
// instructions per op on the producer thread, ~640 on the reactor.
import LaminarFormats
import Foundation
import Glibc
import LaminarReactor
import LaminarStore

func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

final class BenchThread: @unchecked Sendable {
    private var thread: pthread_t = 0
    private let body: () -> Void
    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, nil, { arg in
            Unmanaged<BenchThread>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed")
    }
    func join() { pthread_join(thread, nil) }
}

/// A fresh directory under $TMPDIR (default /tmp); the caller removes it.
func makeTempDirectory(_ name: String) -> String {
    let tmp = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array("\(tmp)/\(name)-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp in \(tmp) failed: errno \(errno)") }
    return String(cString: made)
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// `--data-gib N`: the store's data bound (address space reserved), default the store's; valgrind
/// cannot reserve the default 64 GiB, so profiling runs pass a small one.
nonisolated(unsafe) var dataBytesMax: Int?

func storeOptions() -> LogStoreOptions {
    var options = LogStoreOptions()
    options.fsync = .never
    if let dataBytesMax { options.dataBytesMax = dataBytesMax }
    options.logger.logLevel = .warning
    return options
}

// MARK: ring

/// One run: `items` elements through a fresh ring; nanoseconds per element.
func ringRun(items: Int) -> Double {
    let ring = SPSCRing<UInt64>(capacity: 4096)
    let start = nowNs()
    let producer = BenchThread {
        var next = 0
        while next < items {
            let base = UInt64(next)
            next += ring.push(count: min(64, items - next)) { base &+ UInt64($0) }
        }
    }
    var received = 0
    var checksum: UInt64 = 0
    while received < items {
        received += ring.pop(max: 64) { checksum &+= $0 }
    }
    let elapsed = nowNs() - start
    producer.join()
    precondition(checksum == UInt64(items) * UInt64(items - 1) / 2, "ring lost or duplicated elements")
    return Double(elapsed) / Double(items)
}

func benchRing(items: Int) -> Double {
    _ = ringRun(items: items / 5)  // warm-up
    return median((0..<3).map { _ in ringRun(items: items) })
}

// MARK: reactor events

/// Process CPU time (user + system), nanoseconds.
func cpuNs() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = UInt64(usage.ru_utime.tv_sec) * 1_000_000_000 + UInt64(usage.ru_utime.tv_usec) * 1000
    let system = UInt64(usage.ru_stime.tv_sec) * 1_000_000_000 + UInt64(usage.ru_stime.tv_usec) * 1000
    return user + system
}

/// The stream of each events case.
func eventsDefinition(_ kind: String) -> StreamDefinition {
    var d = StreamDefinition(name: "bench", windowSizeMs: 1000, allowedLatenessMs: 0, aggregates: [.count, .sum])
    switch kind {
    case "hop":
        d.window = .hop(sizeMs: 10_000, slideMs: 1000)
        d.aggregates = [.count, .sum, .max]
    case "session":
        d.window = .session(gapMs: 100)
    case "sketch":
        d.aggregates = [.count, .sum, Aggregate(.p, quantile: 0.5), Aggregate(.p, quantile: 0.99)]
    case "multi":
        // bench-ingest's multi_field stream: price, volume, spread; six aggregates.
        d.fields = ["price", "volume", "spread"]
        d.fieldsDeclared = true
        d.aggregates = [.count, Aggregate(.sum, field: 1), Aggregate(.max, field: 0), Aggregate(.min, field: 0),
                        Aggregate(.avg, field: 2), Aggregate(.p, field: 0, quantile: 0.99)]
    case "keys1m":
        // Under callgrind a round may take longer than the default idle timeout of wall time;
        // the idle advance would then make the rest of the events late.
        d.idleTimeoutMs = 3_600_000
    default:
        break
    }
    return d
}

/// Events per second and CPU nanoseconds per event of one events case.
func benchEvents(kind: String, events: Int, warmUpEvents: Int, batchEvents: Int, keys: Int) throws -> (perSecond: Double, cpuNsPerEvent: Double) {
    let dir = makeTempDirectory("laminar-bench-reactor-events")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = try LogStore.open(directory: dir, options: storeOptions())
    let reactor = try Reactor(store: store)
    let doorbell = Doorbell()
    let producer = reactor.makeProducer { doorbell.ring() }
    reactor.start()
    defer { reactor.stop() }
    precondition(producer.submit(ReactorCommand(token: 0, .defineStream(eventsDefinition(kind)))))
    producer.wakeReactorIfParked()
    var defined = false
    while !defined {
        if producer.poll({ c in
            guard case .ok = c.result else { fatalError("defineStream failed: \(c.result)") }
        }) > 0 { defined = true } else { doorbell.wait(timeoutMs: 100) }
    }

    // The keys in one byte array (`keyEnds[k]` ends key k): a key is read in place, without
    // retaining an array per event. `keys1m`'s are laminar-load's ("u" and the number).
    var keyBytes: [UInt8] = []
    var keyEnds: [Int] = []
    for k in 0..<keys {
        keyBytes += Array((kind == "keys1m" ? "u\(k)" : "key-\(k)").utf8)
        keyEnds.append(keyBytes.count)
    }
    let isMulti = kind == "multi"
    var token: UInt64 = 0
    // Decided once, not per event (a String comparison per event was a sixth of the producer's work).
    let isSession = kind == "session", isSketch = kind == "sketch"
    // Event i: time i / 1000 ms (1 ms per 1000 events: ~1M events per 1 s
    // window); key i % keys, or for sessions i % 1000 + 1000 · (i / 1M % (keys / 1000)); value
    // 1.0, or i % 977 for sketches. Kept as counters that wrap, not divided out per event (a
    // division by `keys` per event was ~10 ns).
    var key = 0, time: Int64 = 0, inMillisecond = 0, value = 0, sessionBase = 0, inSessionSet = 0
    // `keys1m`: keys drawn uniformly at random (xorshift64*), as laminar-load draws them: each
    // window a new random order of ~63 % of the keys. (A fixed permutation repeated every window,
    // as this case first used, gave the keys in id order from the second window on, which the
    // caches follow: half the CPU per event of the same load over HTTP.)
    let random = kind == "keys1m"
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Sends `count` events (a multiple of `batchEvents`), returns nanoseconds taken.
    func send(_ count: Int) -> UInt64 {
        let batches = count / batchEvents
        // Locals, as `fields`: captured ones were checked for exclusive access per use.
        var builder = EventBatch.Builder(fieldCount: isMulti ? 3 : 1, capacity: batchEvents)
        var submitted = 0
        var accepted = 0
        let start = nowNs()
        while accepted < batches * batchEvents {
            // Keep up to 8 batches in flight; build the next while the reactor works: each batch
            // wakes the reactor as it is submitted (waking after the eighth left the reactor
            // parked while the producer built them all, and the two threads took turns).
            var pushed = false
            while submitted < batches && producer.inFlight < 8 {
                builder.removeAll()
                var fields: [Double] = [0, 0, 0]
                keyBytes.withUnsafeBytes { all in
                    for _ in 0..<batchEvents {
                        var k = isSession ? sessionBase + key % 1000 : key
                        if random {
                            rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27
                            k = Int((((rng &* 0x2545_F491_4F6C_DD1D) >> 32) &* UInt64(keys)) >> 32)
                        }
                        let from = k == 0 ? 0 : keyEnds[k - 1]
                        let keyOfEvent = UnsafeRawBufferPointer(rebasing: all[from..<keyEnds[k]])
                        if isMulti {
                            // As bench-ingest's bodies: the value, then value/2, value·3.
                            let v = Double(value)
                            fields[0] = v; fields[1] = v / 2; fields[2] = v * 3
                            fields.withUnsafeBufferPointer { builder.append(key: keyOfEvent, timestamp: time, fields: $0) }
                        } else {
                            builder.append(key: keyOfEvent, timestamp: time, value: isSketch ? Double(value) : 1.0)
                        }
                        key += 1; if key == keys { key = 0 }
                        value += 1; if value == 977 { value = 0 }
                        inMillisecond += 1; if inMillisecond == 1000 { inMillisecond = 0; time += 1 }
                        inSessionSet += 1
                        if inSessionSet == 1_000_000 {
                            inSessionSet = 0
                            sessionBase += 1000; if sessionBase == keys / 1000 * 1000 { sessionBase = 0 }
                        }
                    }
                }
                token += 1
                precondition(producer.submit(ReactorCommand(token: token,
                    .appendEvents(stream: "bench", batch: builder.build(), idempotencyKey: nil))))
                submitted += 1
                pushed = true
                producer.wakeReactorIfParked()
            }
            let n = producer.poll { c in
                guard case .eventsAccepted(let ack) = c.result else { fatalError("batch failed: \(c.result)") }
                precondition(ack.late == 0, "late events: the benchmark must count every event")
                accepted += ack.accepted
            }
            if n == 0 && !pushed { doorbell.wait(timeoutMs: 100) }
        }
        return nowNs() - start
    }

    let w = warmUpEvents / batchEvents * batchEvents
    _ = send(w)
    let n = events / batchEvents * batchEvents
    let cpu = cpuNs()
    let elapsed = send(n)
    return (Double(n) / (Double(elapsed) / 1e9), Double(cpuNs() - cpu) / Double(n))
}

// MARK: kv

/// A KV completion's version or first value byte, for the sink; a failure stops the benchmark.
/// A borrowing switch: nothing copied out of the result (a copy retained and released the value's
/// mapping and ran an outlined destroy of the result).
@inline(__always)
func check(_ result: borrowing ReactorResult) -> UInt64 {
    switch result {
    case .written(let version): return version
    case .value(let v, _): return UInt64(v.withUnsafeBytes { $0[0] })
    default: fatalError("kv op failed: \(copy result)")
    }
}

func benchKV(ops: Int, keys: Int) throws -> (perSecond: Double, cpuNsPerOp: Double) {
    let dir = makeTempDirectory("laminar-bench-reactor-kv")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let reactor = try Reactor(store: LogStore.open(directory: dir, options: storeOptions()))
    let doorbell = Doorbell()
    let producer = reactor.makeProducer { doorbell.ring() }
    reactor.start()
    defer { reactor.stop() }
    // 16-byte keys, 100-byte values, as in the store benchmark.
    let keyBytes: [[UInt8]] = (0..<keys).map { i in
        var k = Array("kv-".utf8) + Array(String(i).utf8)
        k += [UInt8](repeating: UInt8(ascii: "."), count: 16 - k.count)
        return k
    }
    let value = [UInt8](repeating: 7, count: 100)
    let inFlightMax = reactor.limits.commandsInFlightMax
    var sink: UInt64 = 0

    /// `ops` commands: even ones put, odd ones get; keys cycle through a fixed stride so
    /// consecutive commands touch different keys. `putsOnly` for the prefill.
    func run(_ ops: Int, putsOnly: Bool) -> UInt64 {
        var submitted = 0
        var completed = 0
        // Command i's key: `(i · 7919) % keys`, kept as a counter that wraps (a division per
        // command was the harness's, not the server's).
        var keyIndex = 0
        let start = nowNs()
        while completed < ops {
            var pushed = false
            while submitted < ops && producer.inFlight < inFlightMax {
                // Built straight into the command (a named operation was copied, then destroyed:
                // an outlined copy and destroy of the enum per command, ~100 instructions of the
                // harness's own).
                let command = putsOnly || submitted & 1 == 0
                    ? ReactorCommand(token: UInt64(submitted), .put(key: keyBytes[keyIndex], value: value, condition: .always, ttlMs: nil))
                    : ReactorCommand(token: UInt64(submitted), .get(key: keyBytes[keyIndex]))
                guard producer.submit(command) else { break }
                submitted += 1
                keyIndex += 7919; while keyIndex >= keys { keyIndex -= keys }
                pushed = true
            }
            if pushed { producer.wakeReactorIfParked() }
            let n = producer.poll { c in sink &+= check(c.result) }
            completed += n
            if n == 0 && !pushed { doorbell.wait(timeoutMs: 100) }
        }
        return nowNs() - start
    }

    _ = run(keys, putsOnly: true)  // prefill: every get finds its key
    _ = run(min(ops, 1_000_000), putsOnly: false)  // warm-up
    let cpu = cpuNs()
    let elapsed = run(ops, putsOnly: false)
    precondition(sink != 0)
    return (Double(ops) / (Double(elapsed) / 1e9), Double(cpuNs() - cpu) / Double(ops))
}

// MARK: main

HugePages.useForMallocByReexecuting()  // as the server does: its figures are the server's
var jsonOut: String?
var quick = false
var only: String?
/// `--events N`: events per timed run (and a warm-up of N/4), for a smoke run.
var eventsOverride: Int?
/// `--kv-ops N`: KV operations per timed run (and the warm-up), for a profiler.
var kvOpsOverride: Int?
/// `--keys N`: distinct keys of the `keys1m` case (default 1M).
var manyKeys = 1_000_000
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--json-out": jsonOut = args.next()
    case "--quick": quick = true
    case "--only": only = args.next()
    case "--events": eventsOverride = args.next().flatMap { Int($0) }
    case "--kv-ops": kvOpsOverride = args.next().flatMap { Int($0) }
    case "--keys": manyKeys = args.next().flatMap { Int($0) } ?? manyKeys
    case "--data-gib": dataBytesMax = args.next().flatMap { Int($0) }.map { $0 << 30 }
    default:
        print("usage: laminar-bench-reactor [--json-out PATH] [--quick] [--events N] [--kv-ops N] [--data-gib N] [--keys N] [--only ring|events|hop|session|sketch|multi|keys1m|kv]")
        exit(2)
    }
}

func row(_ name: String, _ value: String, _ unit: String, _ goal: String) {
    print("  " + name.padding(toLength: 24, withPad: " ", startingAt: 0)
        + String(repeating: " ", count: max(0, 16 - value.count)) + value + " "
        + unit.padding(toLength: 10, withPad: " ", startingAt: 0) + goal)
    fflush(nil)
}

let ringItems = quick ? 10_000_000 : 100_000_000
let eventCount = eventsOverride ?? (quick ? 4_000_000 : 30_000_000)
let warmUpEventCount = eventsOverride.map { $0 / 4 } ?? 2_000_000
let kvOps = kvOpsOverride ?? (quick ? 1_000_000 : 5_000_000)
/// The 1-minute load average at start: the ring figure needs both threads on a core at once, so
/// a busy machine (load above the core count) inflates it; the JSON carries it for context.
let loadAverage1m = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))
    .flatMap { $0.split(separator: " ").first.flatMap { Double($0) } } ?? -1
print(String(format: "load average (1 min) at start: %.2f on %d cores", loadAverage1m, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
print("laminar-bench-reactor: ring \(ringItems) items x3 (batches of 64); \(eventCount) events (batches of 4096, 10K keys); \(kvOps) KV ops (50/50 put/get, 10K keys); fsync never")
row("metric", "value", "unit", "goal")
var fields: [String] = []
if only == nil || only == "ring" {
    let ringNs = benchRing(items: ringItems)
    row("ring_handoff_ns", String(format: "%.2f", ringNs), "ns/item", "<= 10")
    row("ring_items_per_s", String(format: "%.0f", 1e9 / ringNs), "items/s", "")
    fields += [String(format: "\"ring_handoff_ns\":%.3f", ringNs), String(format: "\"ring_items_per_s\":%.0f", 1e9 / ringNs)]
}
for (kind, name, goal) in [("events", "reactor", ">= 10000000"), ("hop", "hop", ">= 5000000"), ("session", "session", ">= 5000000"),
                           ("sketch", "sketch", ">= 5000000"), ("multi", "multi_field", ""), ("keys1m", "keys_1m", "")]
    where only == kind || (only == nil && kind != "multi" && kind != "keys1m") {
    let r = try benchEvents(kind: kind, events: eventCount, warmUpEvents: warmUpEventCount, batchEvents: 4096,
                            keys: kind == "keys1m" ? manyKeys : 10_000)
    row("\(name)_events_per_s", String(format: "%.0f", r.perSecond), "events/s", goal)
    row("\(name)_cpu_ns_per_event", String(format: "%.1f", r.cpuNsPerEvent), "ns", "")
    fields.append(String(format: "\"\(name)_events_per_s\":%.0f", r.perSecond))
    fields.append(String(format: "\"\(name)_cpu_ns_per_event\":%.1f", r.cpuNsPerEvent))
}
if only == nil || only == "kv" {
    let kv = try benchKV(ops: kvOps, keys: 10_000)
    row("kv_ops_per_s", String(format: "%.0f", kv.perSecond), "ops/s", ">= 5000000")
    row("kv_cpu_ns_per_op", String(format: "%.1f", kv.cpuNsPerOp), "ns", "")
    fields.append(String(format: "\"kv_ops_per_s\":%.0f", kv.perSecond))
    fields.append(String(format: "\"kv_cpu_ns_per_op\":%.1f", kv.cpuNsPerOp))
}
fields += [String(format: "\"loadavg_1m\":%.2f", loadAverage1m), "\"ring_batch\":64", "\"event_batch\":4096", "\"event_keys\":10000", "\"kv_keys\":10000", "\"fsync\":\"never\""]
let json = "{" + fields.joined(separator: ",") + "}"
if let jsonOut { try (json + "\n").write(toFile: jsonOut, atomically: true, encoding: .utf8) }
print(json)
