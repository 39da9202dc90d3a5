import Foundation
import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

/// Several streams over one named source across `kill -9`: every acknowledged batch is counted
/// exactly once in each stream, and a batch logged but not acknowledged at most once.
@Suite(.serialized) struct SourceCrashTests {
    @Test func killNineThenRestartCountsEveryAcknowledgedBatchOnceInEachStream() throws {
        #expect(FileManager.default.isExecutableFile(atPath: CrashRecoveryTests.childPath))
        let dir = TempDir()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CrashRecoveryTests.childPath)
        child.arguments = [dir.path, "source"]
        let pipe = Pipe()
        child.standardOutput = pipe
        try child.run()
        var buffer = Data()
        var acked = Set<Int>()
        func parse() {
            let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            acked = Set(lines.dropLast().compactMap { $0.hasPrefix("ACK ") ? Int($0.dropFirst(4)) : nil })
        }
        while acked.count < 60 {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            parse()
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        buffer.append(pipe.fileHandleForReading.readDataToEndOfFile())
        parse()
        #expect(child.terminationReason == .uncaughtSignal)
        let last = try #require(acked.max())
        #expect(acked == Set(0...last) && last >= 59)

        let reactor = try Reactor(store: try LogStore.open(directory: dir.path))
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        // The next batch after the last acknowledged one may be logged or not; nothing later is.
        let end = EventBatch(keys: ["end"], timestamps: [50_000_000], values: [0])
        #expect(c.call(.appendSourceEvents(source: "src", batch: end, idempotencyKey: nil))?.ack?.accepted == 1)
        for kind in ["tumble", "hop", "session"] {
            for mode in ["final", "changes", "every"] {
                let name = "crash-\(kind)-\(mode)", perEvent = kind == "hop" ? 2 : 1
                let rows = try #require(c.call(.queryResults(stream: name, key: nil, after: nil, limit: 10_000))?.entries)
                var counts: [String: Int] = [:]
                for r in rows {
                    let row = try #require(try JSONSerialization.jsonObject(with: Data(r.value)) as? [String: Any])
                    guard let key = row["key"] as? String, key != "end" else { continue }
                    counts[key, default: 0] += row["count"] as? Int ?? -1000
                }
                for b in 0...last { #expect(counts["b\(b)"] == 10 * perEvent, "\(name): acknowledged batch \(b)") }
                #expect(counts["b\(last + 1)"] == nil || counts["b\(last + 1)"] == 10 * perEvent, "\(name): the batch in flight")
                #expect(counts.keys.allSatisfy { Int($0.dropFirst())! <= last + 1 }, "\(name): \(counts.count) keys")
            }
        }
    }
}
