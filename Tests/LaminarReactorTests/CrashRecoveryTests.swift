import LaminarFormats
import Foundation
import LaminarReactor
import LaminarStore
import Testing

@Suite(.serialized) struct CrashRecoveryTests {
    /// The child next to this test binary (SwiftPM builds it into the same directory).
    static var childPath: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        // The xctest bundle on Linux is a plain executable in .build/<config>/.
        if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
        return dir + "/laminar-reactor-crash-child"
    }

    /// `checkpointParts`: the child stores every checkpoint in parts of 64 bytes, one per round,
    /// so the kill lands in the middle of one (recovery reads the previous one and its log).
    @Test(arguments: [false, true])
    func killNineThenRestartCountsEveryAcknowledgedEventOnce(checkpointParts: Bool) throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.childPath), "missing \(Self.childPath)")
        let dir = TempDir()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: Self.childPath)
        child.arguments = [dir.path]
        if checkpointParts {
            child.environment = ProcessInfo.processInfo.environment.merging(["LAMINAR_CRASH_CHECKPOINT_PARTS": "1"]) { $1 }
        }
        let pipe = Pipe()
        child.standardOutput = pipe
        try child.run()
        // Read acknowledgements until enough, then kill -9 mid-stream.
        var acked = Set<Int>()
        var buffer = Data()
        let handle = pipe.fileHandleForReading
        while acked.count < 60 {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            acked = Set(lines.dropLast().compactMap { $0.hasPrefix("ACK ") ? Int($0.dropFirst(4)) : nil })
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        buffer.append(handle.readDataToEndOfFile())
        let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        acked = Set(lines.dropLast().compactMap { $0.hasPrefix("ACK ") ? Int($0.dropFirst(4)) : nil })
        #expect(child.terminationReason == .uncaughtSignal)
        #expect(acked.count >= 60)
        let lastAcked = try #require(acked.max())
        #expect(acked == Set(0...lastAcked), "acknowledgements come in order")

        // The rows each stream's follower got before the kill (each after its commit).
        var followed: [String: [[String: Any]]] = [:]
        for line in lines.dropLast() where line.hasPrefix("ROW ") {
            let rest = line.dropFirst(4)
            let space = try #require(rest.firstIndex(of: " "))
            let row = try #require(try JSONSerialization.jsonObject(with: Data(rest[rest.index(after: space)...].utf8)) as? [String: Any])
            followed[String(rest[..<space]), default: []].append(row)
        }

        // Restart on the same directory: recovery from checkpoint + write-ahead log.
        let store = try LogStore.open(directory: dir.path)
        if checkpointParts {
            #expect(store.prefixScan(Array("_checkpoint/crash-tumble-final/".utf8), after: nil, limit: 1).count == 1,
                    "checkpoints were stored in parts")
        }
        let reactor = try Reactor(store: store)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        /// A changelog applied to "key window_start" → "seq S count N" (a row without `op`, an
        /// insert or an update sets it; a delete removes it). The key "end" is left out (its
        /// window is still open, an `every` stream may emit it at any tick).
        typealias State = [String: String]
        func apply(_ row: [String: Any], to state: inout State) {
            guard let key = row["key"] as? String, key != "end" else { return }
            let id = "\(key) \(row["window_start"] as? Int ?? -1)"
            if row["op"] as? String == "delete" { state[id] = nil; return }
            state[id] = "seq \(row["seq"] as? Int ?? -1) count \(row["count"] as? Int ?? -1)"
        }
        // Each stream: close every window, then read the counts back from the stored results
        // (within the default one-day retention of every row: a later event time would expire them).
        // A hop event is in two windows; a key's events form one session (its row is final).
        for kind in ["tumble", "hop", "session"] {
            for mode in ["final", "changes", "every"] {
                let name = "crash-\(kind)-\(mode)", perEvent = kind == "hop" ? 2 : 1
                _ = c.call(.appendEvents(stream: name, batch: EventBatch(keys: ["end"], timestamps: [50_000_000], values: [0]), idempotencyKey: nil))
                var counts: [String: Int] = [:]
                var stored: State = [:]
                var after: [UInt8]? = nil
                while true {
                    let page = try #require(c.call(.queryResults(stream: name, key: nil, after: after, limit: 1000))?.entries)
                    for e in page {
                        let json = String(decoding: e.value, as: UTF8.self)
                        let key = String(json.split(separator: "\"")[5])  // {"seq":N,"key":"…"
                        counts[key, default: 0] += Int(json.split(separator: "\"count\":")[1].prefix { $0.isNumber })!
                        if mode != "final" && key != "end" { #expect(json.hasSuffix(#","final":true}"#), "\(name): \(json)") }
                        apply(try #require(try JSONSerialization.jsonObject(with: Data(e.value)) as? [String: Any]), to: &stored)
                    }
                    if page.count < 1000 { break }
                    after = page.last!.key
                }
                for b in acked {
                    #expect(counts["b\(b)"] == 10 * perEvent, "\(name): acknowledged batch \(b) counted \(counts["b\(b)"] ?? 0) times")
                }
                // At most the one batch in flight at the kill may also be there, and then whole.
                let extra = counts.keys.filter { $0 != "end" && !acked.contains(Int($0.dropFirst())!) }
                #expect(extra.count <= 1)
                for k in extra { #expect(counts[k] == 10 * perEvent) }
                let stats = try #require(c.call(.streamStats(name: name))?.stats)
                #expect(stats.eventsAccepted >= UInt64(10 * acked.count + 1) && stats.eventsAccepted <= UInt64(10 * (acked.count + 1) + 1),
                        "\(name): \(stats.eventsAccepted)")

                // Seqs across the crash: the follower got 1, 2, 3, … before the kill; resuming
                // after its last seq and applying what comes onto what it had ends exactly at the
                // stored rows, seqs included (a row renumbered by the replay would not match).
                let rows = followed[name] ?? []
                let seqs = rows.map { $0["seq"] as? Int ?? -1 }
                #expect(seqs == Array(0..<seqs.count).map { $0 + 1 }, "\(name): seqs \(seqs.prefix(20))…")
                #expect(!rows.isEmpty, "\(name): the follower got rows before the kill")
                var state: State = [:]
                for row in rows { apply(row, to: &state) }
                var since = UInt64(seqs.last ?? 0)
                while true {
                    guard case .retainedResults(let page, let last, let live)? = c.call(.resumeResults(stream: name, after: since, keyPrefix: [])) else {
                        Issue.record("\(name): resume after \(since)"); break
                    }
                    for r in page {
                        #expect(r.seq > since)
                        apply(try #require(try JSONSerialization.jsonObject(with: Data(r.json)) as? [String: Any]), to: &state)
                    }
                    since = last
                    if live { break }
                }
                #expect(state == stored, "\(name): the followed rows and the resume after them end at the stored rows")
            }
        }
    }
}
