#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import LaminarStore
import Logging

/// `laminar-bench-store`: LogStore (persistent, fsync never) against LMDB on 16-byte keys and
/// 100-byte values, the same keys and the same random access sequences for both. Prints a table
/// and, as its last line, one JSON object (also written to `--json-out`).
///
/// Definitions (all medians of `--reps` timed repetitions after one warm-up, unless said; puts
/// are means, so that a compaction in some reps is amortized over all of them):
/// - get: zero-copy `withValue(rawKey:)` / `mdb_get` in one read txn, uniform random keys, every
///   key present; the first and last value byte are summed.
/// - put: uniform random overwrites of existing keys of the 1M-key store, `commit()` after every
///   `commitEvery` (256) puts, fsync never (nothing is synced; compaction may run in `commit()`,
///   as it does under the reactor, and its count is reported). LMDB: the same overwrites in write
///   txns of `commitEvery` puts each (MDB_NOSYNC|MDB_NOMETASYNC|MDB_WRITEMAP), the same commit
///   granularity; one txn per put is shown too. Why 256: the reactor takes at most
///   `ReactorLimits.commandsPerRoundMax` (256) commands from a ring per round and calls
///   `store.commit()` once per round, so 256 puts is the store's commit granularity under load.
/// - insert: 1M fresh keys in random order into an empty store, committed every 256 (median of
///   `insertReps` fresh stores); LMDB: the same keys and order, 256 per txn.
/// - scan: a prefix scan of a random 8-byte group prefix, limit 100 (each returns 100 entries),
///   two ways on each side, reading the first and last byte of every value. "page" is what a
///   client gets: the store's `prefixPage` (the ordered index walk, each key resolved through the
///   hash table, keys and values copied into one fresh `ScanPage`: what the reactor hands to the
///   HTTP loop) against an LMDB cursor (SET_RANGE + NEXT in one read txn) copying into the same
///   kind of fresh `ScanPage`. "in place": the store's `visitPrefix` (no copy) against the
///   LMDB cursor reading its pages in place.
/// - reopen: `LogStore.open` of the 1M-key store after `checkpoint()` + `close()` (hint file), and
///   after deleting `index.hint` (full log replay); page cache warm.
///
/// The whole run takes about 2 minutes on 2 cores; data lives in a `mkdtemp` directory under
/// `$TMPDIR` (default /tmp), removed at the end.
@main
struct StoreBenchmark {
    /// Puts per `commit()` (LogStore) and per write txn (LMDB); see above.
    static let commitEvery = 256

    struct Config {
        var keysLarge = 1_000_000
        var keysSmall = 10_000
        var getOps = 1_000_000
        var putOps = 500_000
        var scans = 20_000
        var reps = 5
        var insertReps = 3
        var reopenReps = 3
        var jsonOut: String?
        /// `--profile OP`: only LogStore's OP (get10k, contains10k, get, put, scan), looped for a profiler.
        var profile: String?
        /// `--data-gib N`: the stores' data bound (address space reserved); valgrind cannot
        /// reserve the default 64 GiB.
        var dataBytesMax: Int?
    }

    static func parse(_ arguments: [String]) -> Config {
        var config = Config()
        var i = 1
        func value() -> String {
            i += 1
            guard i < arguments.count else { usage() }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--json-out": config.jsonOut = value()
            case "--reps":
                guard let reps = Int(value()), reps > 0 else { usage() }
                config.reps = reps
            case "--quick":
                // A smoke run: 100K keys, fewer ops. Field names stay the same.
                config.keysLarge = 100_000
                config.getOps = 200_000
                config.putOps = 100_000
                config.scans = 2_000
                config.reps = 3
                config.insertReps = 1
                config.reopenReps = 1
            case "--profile": config.profile = value()
            case "--data-gib":
                guard let gib = Int(value()), gib > 0 else { usage() }
                config.dataBytesMax = gib << 30
            default: StoreBenchmark.usage()
            }
            i += 1
        }
        return config
    }

    static func usage() -> Never {
        print("usage: laminar-bench-store [--json-out PATH] [--reps N] [--quick] [--profile get10k|contains10k|get|put|scan] [--data-gib N]")
        exit(2)
    }

    static func main() throws {
        let config = parse(CommandLine.arguments)
        var bench = Run(config: config)
        if let op = config.profile {
            try bench.profile(op)
        } else {
            try bench.run()
        }
    }
}

/// One benchmark run: its fixtures, results and temporary directories.
struct Run {
    let config: Config
    typealias Config = StoreBenchmark.Config
    let harness: Harness
    let root: String
    var results: [(key: String, value: Double, unit: String, note: String)] = []
    /// JSON fields that are context, not measurements (e.g. the load average).
    var extraFields: [String] = []
    var options: LogStoreOptions

    init(config: Config) {
        self.config = config
        harness = Harness(reps: config.reps)
        let tmp = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(tmp)/laminar-bench-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp in \(tmp) failed: errno \(errno)") }
        root = String(cString: made)
        options = LogStoreOptions()
        options.fsync = .never
        options.logger.logLevel = .warning
        if let bytes = config.dataBytesMax { options.dataBytesMax = bytes }
    }

    mutating func record(_ key: String, _ value: Double, _ unit: String, _ note: String = "") {
        results.append((key, value, unit, note))
        let shown = value >= 100 ? String(format: "%.0f", value) : String(format: value >= 10 ? "%.1f" : "%.3f", value)
        Run.row(key, shown, unit, note)
    }

    /// One table row, flushed at once so a long run shows progress.
    static func row(_ key: String, _ value: String, _ unit: String, _ note: String) {
        func pad(_ s: String, _ width: Int, left: Bool = true) -> String {
            let fill = String(repeating: " ", count: max(0, width - s.count))
            return left ? s + fill : fill + s
        }
        print("  " + pad(key, 36) + " " + pad(value, 14, left: false) + " " + pad(unit, 8) + " " + note)
        fflush(nil)
    }

    func value(_ key: String) -> Double { results.first { $0.key == key }!.value }

    func directory(_ name: String) -> String {
        let path = root + "/" + name
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    mutating func run() throws {
        defer { remove(root) }
        let n = config.keysLarge
        let m = config.keysSmall
        let label = n == 1_000_000 ? "1m" : "\(n)"
        print("laminar-bench-store: \(n) and \(m) keys, 16-byte keys, 100-byte values, fsync never, data in \(root)")
        let loadAverage1m = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))
            .flatMap { $0.split(separator: " ").first.flatMap { Double($0) } } ?? -1
        print(String(format: "  load average (1 min) at start: %.2f on %d cores", loadAverage1m, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        extraFields.append(String(format: "\"loadavg_1m\":%.2f", loadAverage1m))
        print("  reps \(config.reps) (median, after 1 warm-up); get ops/rep \(config.getOps); put ops/rep \(config.putOps); scans/rep \(config.scans)")
        Run.row("metric", "value", "unit", "definition")

        // Fixtures, identical for both stores.
        let insertOrder = Sequences.permutation(n, seed: 1)
        let insertArrays = insertOrder.map(Workload.key)
        let insertStream = KeyStream(indices: insertOrder)
        let getIndices = Sequences.uniform(n, count: config.getOps, seed: 2)
        let getStream = KeyStream(indices: getIndices)
        let putIndices = Sequences.uniform(n, count: config.putOps, seed: 3)
        let putArrays = putIndices.map(Workload.key)
        let putStream = KeyStream(indices: putIndices)
        var scanGroups = Sequences.uniform(n / Workload.keysPerGroup, count: config.scans, seed: 4)
        let scanPrefixes = scanGroups.map(Workload.prefix(group:))
        let scanPrefixWords = scanGroups.map(Workload.groupPrefix)
        scanGroups = []
        let smallOrder = Sequences.permutation(m, seed: 5)
        let smallArrays = smallOrder.map(Workload.key)
        let smallStream = KeyStream(indices: smallOrder)
        let smallGetIndices = Sequences.uniform(m, count: config.getOps, seed: 6)
        let smallGetStream = KeyStream(indices: smallGetIndices)
        let smallKeysByIndex = (0..<m).map(Workload.key)
        let initialValue = Workload.value(tag: 0)
        defer {
            insertStream.deallocate()
            getStream.deallocate()
            putStream.deallocate()
            smallStream.deallocate()
            smallGetStream.deallocate()
        }

        // MARK: LogStore, 10K keys
        do {
            let store = try LogStore.open(directory: directory("laminar-10k"), options: options)
            for key in smallArrays { try store.put(key, initialValue) }
            precondition(store.count == m)
            record("get_ns_10k", harness.nsPerOp(ops: smallGetStream.count) { Run.gets(store, smallGetStream) },
                   "ns/op", "withValue(rawKey:), random over 10K")
            record("contains_ns_10k", harness.nsPerOp(ops: smallGetIndices.count) {
                // Borrowed through unsafe buffers: no retain/release of the key arrays per op.
                var hits: UInt64 = 0
                smallKeysByIndex.withUnsafeBufferPointer { keys in
                    smallGetIndices.withUnsafeBufferPointer { indices in
                        for i in indices where store.contains(keys[i]) { hits &+= 1 }
                    }
                }
                precondition(hits == UInt64(smallGetIndices.count))
                return hits
            }, "ns/op", "contains([UInt8]), random over 10K")
        }
        remove(root + "/laminar-10k")

        // MARK: LogStore, 1M keys: insert
        var insertSamples: [Double] = []
        var store: LogStore?
        let largeDirectory = directory("laminar-\(label)")
        for rep in 0..<config.insertReps {
            store = nil
            remove(largeDirectory)
            let s = try LogStore.open(directory: directory("laminar-\(label)"), options: options)
            _ = rep
            let t0 = monotonicNs()
            try Run.puts(s, insertArrays, initialValue)
            let t1 = monotonicNs()
            precondition(s.count == n)
            insertSamples.append(Double(t1 - t0) / Double(n))
            store = s
        }
        insertSamples.sort()
        let insertNs = insertSamples[insertSamples.count / 2]
        record("insert_ns_\(label)", insertNs, "ns/op", "\(n) fresh keys, random order, commit/256, empty store (median of \(config.insertReps))")
        record("insert_per_s_\(label)", 1e9 / insertNs, "ops/s", "the same as a rate")

        // MARK: LogStore, 1M keys: reads
        do {
            let s = store!
            record("get_ns_\(label)", harness.nsPerOp(ops: getStream.count) { Run.gets(s, getStream) },
                   "ns/op", "withValue(rawKey:), random over \(n)")
            let getArrays = getIndices.map(Workload.key)
            record("get_arraykey_ns_\(label)", harness.nsPerOp(ops: getArrays.count) {
                var sum: UInt64 = 0
                for key in getArrays {
                    sum &+= s.withValue(key) { v, _ in UInt64(v.load(as: UInt8.self)) &+ UInt64(v.load(fromByteOffset: v.count - 1, as: UInt8.self)) }!
                }
                return sum
            }, "ns/op", "withValue([UInt8]) (zero-copy, array key)")
            record("get_copy_ns_\(label)", harness.nsPerOp(ops: getArrays.count) {
                var sum: UInt64 = 0
                for key in getArrays { sum &+= UInt64(s.get(key)!.value[0]) }
                return sum
            }, "ns/op", "get([UInt8]) -> StoreEntry (copies key and value)")
            record("contains_ns_\(label)", harness.nsPerOp(ops: getIndices.count) {
                var hits: UInt64 = 0
                for key in getArrays where s.contains(key) { hits &+= 1 }
                return hits
            }, "ns/op", "contains([UInt8]), random over \(n)")
            var keysSeen = 0
            let scanNs = harness.nsPerOp(ops: scanPrefixes.count) {
                var sum: UInt64 = 0
                var seen = 0
                for prefix in scanPrefixes {
                    let page = s.prefixPage(prefix, after: nil, limit: Workload.keysPerGroup)
                    seen += page.count
                    for e in page { sum &+= UInt64(e.value.first!) &+ UInt64(e.value.last!) }
                }
                keysSeen = seen
                return sum
            }
            precondition(keysSeen == scanPrefixes.count * Workload.keysPerGroup, "scan returned \(keysSeen) keys")
            record("scan_keys_per_s", 1e9 * Double(Workload.keysPerGroup) / scanNs, "keys/s", "prefixPage(8-byte prefix, limit 100) -> ScanPage (one copy)")
            record("scan_ns_per_scan", scanNs, "ns/scan", "one scan of 100 keys into a page")
            let visitNs = harness.nsPerOp(ops: scanPrefixes.count) {
                var sum: UInt64 = 0
                var seen = 0
                for prefix in scanPrefixes {
                    seen += s.visitPrefix(prefix, after: nil, limit: Workload.keysPerGroup) { e in
                        sum &+= UInt64(e.value.load(as: UInt8.self)) &+ UInt64(e.value.load(fromByteOffset: e.value.count - 1, as: UInt8.self))
                    }
                }
                keysSeen = seen
                return sum
            }
            precondition(keysSeen == scanPrefixes.count * Workload.keysPerGroup, "visit returned \(keysSeen) keys")
            record("scan_visit_keys_per_s", 1e9 * Double(Workload.keysPerGroup) / visitNs, "keys/s", "visitPrefix(8-byte prefix, limit 100), in place")
        }

        // MARK: LogStore, 1M keys: close and reopen
        do {
            let t0 = monotonicNs()
            try store!.checkpoint()
            let t1 = monotonicNs()
            try store!.close()
            store = nil
            record("checkpoint_ms_\(label)", Double(t1 - t0) / 1e6, "ms", "checkpoint(): fdatasync + hint file")
            var hinted: [Double] = []
            for _ in 0..<config.reopenReps {
                let t0 = monotonicNs()
                let s = try LogStore.open(directory: largeDirectory, options: options)
                let t1 = monotonicNs()
                precondition(s.count == n && s.stats.recoveryUsedHint)
                hinted.append(Double(t1 - t0) / 1e6)
                try s.close()
            }
            hinted.sort()
            record("reopen_ms_\(label)", hinted[hinted.count / 2], "ms", "open after checkpoint + close (hint file), median of \(config.reopenReps)")
            var replayed: [Double] = []
            for _ in 0..<config.reopenReps {
                remove(largeDirectory + "/index.hint")
                let t0 = monotonicNs()
                let s = try LogStore.open(directory: largeDirectory, options: options)
                let t1 = monotonicNs()
                precondition(s.count == n && !s.stats.recoveryUsedHint)
                replayed.append(Double(t1 - t0) / 1e6)
                withExtendedLifetime(s) {}
            }
            replayed.sort()
            record("reopen_ms_\(label)_nohint", replayed[replayed.count / 2], "ms", "open without index.hint (replay + CRC of every record)")
        }

        // MARK: LogStore, 1M keys: overwrites
        do {
            let s = try LogStore.open(directory: largeDirectory, options: options)
            var value = initialValue
            var rep = 0
            let compactionsBefore = s.stats.compactions
            let startedBefore = s.stats.compactionsStarted
            var repNs: [Double] = []
            var longestCommitNs: UInt64 = 0
            let putNs = try harness.nsPerOp(ops: putArrays.count, mean: true) {
                let compactions = s.stats.compactions
                let t0 = monotonicNs()
                defer { if s.stats.compactions == compactions { repNs.append(Double(monotonicNs() - t0) / Double(putArrays.count)) } }
                rep += 1
                value[0] = UInt8(truncatingIfNeeded: rep)
                longestCommitNs = max(longestCommitNs, try Run.puts(s, putArrays, value))
                return UInt64(s.revision)
            }
            precondition(s.count == n)
            record("put_ns_\(label)", putNs, "ns/op", "put([UInt8],[UInt8]): random overwrites over \(n) keys, commit/256, mean incl. compactions")
            record("put_per_s_\(label)", 1e9 / putNs, "ops/s", "the same as a rate")
            record("put_compactions", Double(s.stats.compactions - compactionsBefore), "count", "compactions completed in the \(config.reps + 1) put reps (1 warm-up; each runs on a background thread, the writer copies its tail and swaps)")
            record("put_compactions_started", Double(s.stats.compactionsStarted - startedBefore), "count", "compactions started in the put reps (one still running at the end is finished by the compact() below)")
            record("put_commit_max_ms_\(label)", Double(longestCommitNs) / 1e6, "ms", "the longest commit() in the put reps: the writer's longest stop (compaction steps run there)")
            if !repNs.isEmpty {
                repNs.sort()
                record("put_nocompact_ns_\(label)", repNs[repNs.count / 2], "ns/op", "median of the \(repNs.count) reps without a compaction (warm-up included)")
            }
            if s.compactionInProgress { try s.compact() }  // finish the one the puts started
            let c0 = monotonicNs()
            try s.compact()
            let c1 = monotonicNs()
            record("compact_ms_\(label)", Double(c1 - c0) / 1e6, "ms", "one compact() of the \(n)-key store, waited for (thread: replay + rewrite + fsync + hint; then the swap)")
            record("data_file_mb_after_puts", Double(s.sizeBytes) / 1e6, "MB", "log size at the end")
        }
        remove(largeDirectory)

        // MARK: LMDB, 10K keys
        do {
            let path = directory("lmdb-10k")
            let env = LMDBPeer(path: path, writeMap: true)
            initialValue.withUnsafeBytes { env.put(smallStream, value: $0, perTxn: StoreBenchmark.commitEvery) }
            precondition(env.entryCount == m)
            record("lmdb_get_ns_10k", harness.nsPerOp(ops: smallGetStream.count) { env.gets(smallGetStream) },
                   "ns/op", "mdb_get in one read txn, random over 10K")
        }
        remove(root + "/lmdb-10k")

        // MARK: LMDB, 1M keys (MDB_WRITEMAP)
        do {
            let path = directory("lmdb-\(label)")
            var insertSamples: [Double] = []
            var env: LMDBPeer?
            for _ in 0..<config.insertReps {
                env = nil
                remove(path)
                let e = LMDBPeer(path: directory("lmdb-\(label)"), writeMap: true)
                let t0 = monotonicNs()
                initialValue.withUnsafeBytes { e.put(insertStream, value: $0, perTxn: StoreBenchmark.commitEvery) }
                let t1 = monotonicNs()
                precondition(e.entryCount == n)
                insertSamples.append(Double(t1 - t0) / Double(n))
                env = e
            }
            insertSamples.sort()
            record("lmdb_insert_ns_\(label)", insertSamples[insertSamples.count / 2], "ns/op", "same keys and order, 256 puts per txn")
            let e = env!
            record("lmdb_get_ns_\(label)", harness.nsPerOp(ops: getStream.count) { e.gets(getStream) },
                   "ns/op", "mdb_get in one read txn, same key sequence")
            var keysSeen = 0
            let scanNs = harness.nsPerOp(ops: scanPrefixWords.count) { e.scans(scanPrefixWords, limit: Workload.keysPerGroup, keysSeen: &keysSeen) }
            precondition(keysSeen == scanPrefixWords.count * Workload.keysPerGroup, "lmdb scan returned \(keysSeen) keys")
            record("lmdb_scan_keys_per_s", 1e9 * Double(Workload.keysPerGroup) / scanNs, "keys/s", "cursor SET_RANGE + NEXT, zero-copy")
            let pageNs = harness.nsPerOp(ops: scanPrefixWords.count) { e.scans(scanPrefixWords, limit: Workload.keysPerGroup, page: true, keysSeen: &keysSeen) }
            precondition(keysSeen == scanPrefixWords.count * Workload.keysPerGroup, "lmdb page scan returned \(keysSeen) keys")
            record("lmdb_scan_page_keys_per_s", 1e9 * Double(Workload.keysPerGroup) / pageNs, "keys/s", "cursor SET_RANGE + NEXT, copied into a ScanPage")
            var value = initialValue
            var rep = 0
            record("lmdb_put_ns_\(label)", harness.nsPerOp(ops: putStream.count, mean: true) {
                rep += 1
                value[0] = UInt8(truncatingIfNeeded: rep)
                value.withUnsafeBytes { e.put(putStream, value: $0, perTxn: StoreBenchmark.commitEvery) }
                return UInt64(rep)
            }, "ns/op", "same overwrites, 256 puts per txn (= store commit granularity), mean")
            record("lmdb_put_txn1_ns_\(label)", harness.nsPerOp(ops: putStream.count, reps: 3) {
                rep += 1
                value[0] = UInt8(truncatingIfNeeded: rep)
                value.withUnsafeBytes { e.put(putStream, value: $0, perTxn: 1) }
                return UInt64(rep)
            }, "ns/op", "same overwrites, one txn per put (median of 3)")
        }
        remove(root + "/lmdb-\(label)")

        record("scan_vs_lmdb", value("scan_keys_per_s") / value("lmdb_scan_page_keys_per_s"), "ratio", "both copying into a ScanPage (goal >= 0.5)")
        record("scan_visit_vs_lmdb", value("scan_visit_keys_per_s") / value("lmdb_scan_keys_per_s"), "ratio", "both in place")
        record("get_vs_lmdb", value("get_ns_\(label)") / value("lmdb_get_ns_\(label)"), "ratio", "get_ns / lmdb_get_ns (goal <= 1.0)")
        record("put_vs_lmdb", value("put_ns_\(label)") / value("lmdb_put_ns_\(label)"), "ratio", "both 256 puts per commit/txn (goal <= 0.5)")
        record("put_vs_lmdb_txn1", value("put_ns_\(label)") / value("lmdb_put_txn1_ns_\(label)"), "ratio", "vs LMDB one txn per put")
        print("  checksum \(harness.sink)")

        try writeJSON(label: label)
    }

    /// Runs one LogStore operation alone, `reps` times, for `perf record`.
    mutating func profile(_ op: String) throws {
        defer { remove(root) }
        let small = op.hasSuffix("10k")
        let n = small ? config.keysSmall : config.keysLarge
        let value = Workload.value(tag: 0)
        let store = try LogStore.open(directory: directory("profile"), options: options)
        for key in Sequences.permutation(n, seed: 1).map(Workload.key) { try store.put(key, value) }
        let indices = Sequences.uniform(n, count: config.getOps, seed: 2)
        let stream = KeyStream(indices: indices)
        defer { stream.deallocate() }
        let arrays = indices.map(Workload.key)
        let keysByIndex = (0..<n).map(Workload.key)
        print("profiling \(op) over \(n) keys, pid \(getpid())")
        fflush(nil)
        let ns: Double
        switch op {
        case "get10k", "get":
            ns = harness.nsPerOp(ops: stream.count, reps: config.reps * 4) { Run.gets(store, stream) }
        case "contains10k", "contains":
            ns = harness.nsPerOp(ops: indices.count, reps: config.reps * 4) {
                var hits: UInt64 = 0
                keysByIndex.withUnsafeBufferPointer { keys in
                    indices.withUnsafeBufferPointer { indices in
                        for i in indices where store.contains(keys[i]) { hits &+= 1 }
                    }
                }
                return hits
            }
        case "scan":
            let groups = Sequences.uniform(n / Workload.keysPerGroup, count: config.scans, seed: 4).map(Workload.prefix(group:))
            ns = harness.nsPerOp(ops: groups.count * Workload.keysPerGroup, reps: config.reps * 4) {
                var sum: UInt64 = 0
                for prefix in groups {
                    for e in store.prefixPage(prefix, after: nil, limit: Workload.keysPerGroup) { sum &+= UInt64(e.value.count) }
                }
                return sum
            }
        case "put":
            ns = try harness.nsPerOp(ops: arrays.count, reps: config.reps * 2) {
                try Run.puts(store, arrays, value)
                return store.revision
            }
        default: StoreBenchmark.usage()
        }
        print("\(op): \(ns) ns/op (checksum \(harness.sink))")
    }

    /// Puts every key of `keys` with `value`, `commit()` after every `commitEvery` puts and at the end.
    /// Puts `value` under every key, committing every `commitEvery`; returns the longest
    /// `commit()` in nanoseconds (where compaction steps run: the writer's longest stop).
    @discardableResult
    static func puts(_ store: LogStore, _ keys: [[UInt8]], _ value: [UInt8]) throws -> UInt64 {
        let every = StoreBenchmark.commitEvery
        var j = 0
        var longest: UInt64 = 0
        func timedCommit() throws {
            let t0 = monotonicNs()
            try store.commit()
            longest = max(longest, monotonicNs() - t0)
        }
        for key in keys {
            try store.put(key, value)
            j += 1
            if j == every {
                try timedCommit()
                j = 0
            }
        }
        try timedCommit()
        return longest
    }

    /// Zero-copy gets of every key of `keys`; sums the first and last byte of each value.
    static func gets(_ store: LogStore, _ keys: KeyStream) -> UInt64 {
        var sum: UInt64 = 0
        for j in 0..<keys.count {
            let got = store.withValue(rawKey: keys.key(j)) { v, _ in
                UInt64(v.load(as: UInt8.self)) &+ UInt64(v.load(fromByteOffset: v.count - 1, as: UInt8.self))
            }
            sum &+= got!
        }
        return sum
    }

    func writeJSON(label: String) throws {
        var fields: [String] = []
        func number(_ v: Double) -> String {
            v >= 100 ? String(format: "%.0f", v) : String(format: "%.3g", v)
        }
        for r in results { fields.append("\"\(r.key)\":\(number(r.value))") }
        fields += extraFields
        fields.append("\"keys\":\(config.keysLarge)")
        fields.append("\"key_bytes\":\(Workload.keyBytes)")
        fields.append("\"value_bytes\":\(Workload.valueBytes)")
        fields.append("\"reps\":\(config.reps)")
        fields.append("\"fsync\":\"never\"")
        fields.append("\"lmdb_flags\":\"MDB_NOSYNC|MDB_NOMETASYNC|MDB_WRITEMAP\"")
        fields.append("\"put_vs_lmdb_basis\":\"256 puts per LMDB txn = 256 puts per LogStore commit()\"")
        let json = "{" + fields.joined(separator: ",") + "}"
        if let path = config.jsonOut {
            try (json + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        print(json)
    }
}
