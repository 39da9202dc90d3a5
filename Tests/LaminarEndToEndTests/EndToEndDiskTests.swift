import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs mounted on a fresh directory (root only), unmounted by `unmount()`.
final class SmallTmpfs {
    let dir: TempDir
    private(set) var mounted = false

    /// nil (with the reason) when mounting is not permitted here.
    static func make(megabytes: Int) throws -> (SmallTmpfs?, String) {
        let fs = SmallTmpfs(dir: try TempDir())
        let r = try run("mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", fs.dir.path])
        guard r.status == 0 else { return (nil, "cannot mount a tmpfs (\(r.err.trimmingCharacters(in: .whitespacesAndNewlines)))") }
        fs.mounted = true
        return (fs, "")
    }

    private init(dir: TempDir) { self.dir = dir }

    func unmount() {
        guard mounted else { return }
        if (try? run("umount", [dir.path]))?.status != 0 { _ = try? run("umount", ["-l", dir.path]) }
        mounted = false
    }

    deinit { unmount() }
}

/// Full disk and a damaged data file.
@Suite("EndToEnd disk", .serialized)
struct EndToEndDiskTests {
    /// Fills `path` with zeros until the file system refuses (ENOSPC); returns the bytes written.
    static func fill(_ path: String) -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        var size = chunk.count
        for _ in 0..<100_000 {  // bounded: at most 6.4 GB, far more than any tmpfs here
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
            if n > 0 { total += n; continue }
            if size == 1 { break }
            size = max(1, size / 4)  // fill the last pages too
        }
        fsync(fd)
        return total
    }

    static func value(_ i: Int, _ bytes: Int) -> Data {
        Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
    }

    /// On an 8 MiB tmpfs: fill the disk, writers get 507 with a JSON error, reads keep working,
    /// writes work again once space is freed, and a restart (after SIGKILL) has every
    /// acknowledged write.
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullDiskGives507KeepsReadsAndRecovers() throws {
        let (made, reason) = try SmallTmpfs.make(megabytes: 8)
        guard let fs = made else {
            print("[disk] SKIPPED fullDiskGives507KeepsReadsAndRecovers: \(reason)")
            return
        }
        defer { fs.unmount() }
        let dataDir = fs.dir.path + "/data"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let args = ["--data-dir", dataDir, "--fsync", "always", "--io-threads", "1"]
        var server: Server? = try Server(args)
        var acknowledged: [String: Data] = [:]

        for i in 0..<10 {
            let v = Self.value(i, 1000)
            #expect(try request("--http1.1", "PUT", server!.url("/kv/before\(i)"), ["--data-binary", "@-"], stdin: v).status == 204)
            acknowledged["before\(i)"] = v
        }
        #expect(try request("--http1.1", "PUT", server!.url("/streams/s"), ["-d", #"{"window_ms":1000}"#]).status == 200)

        let filler = fs.dir.path + "/filler"
        let filled = Self.fill(filler)
        print("[disk] filler: \(filled) bytes")
        #expect(filled > 0)

        // The data file has some preallocated room left; writing 256 KiB values uses it up.
        var full: HTTPAnswer?
        for i in 0..<200 {
            let v = Self.value(i, 256 * 1024)
            let put = try request("--http1.1", "PUT", server!.url("/kv/fill\(i)"), ["--data-binary", "@-"], stdin: v)
            if put.status == 204 { acknowledged["fill\(i)"] = v; continue }
            full = put
            break
        }
        let answer = try #require(full, "no write failed on a full disk")
        #expect(answer.status == 507, "a full disk: \(answer.status) \(answer.text)")
        let error = try answer.json()
        #expect(error["error"] as? String == "insufficient_storage", "\(answer.text)")
        #expect((error["detail"] as? String)?.isEmpty == false)

        // Other writers get the same answer; readers keep being served.
        let small = try request("--http1.1", "PUT", server!.url("/kv/small-while-full"), ["--data-binary", "@-"], stdin: Self.value(0, 300 * 1024))
        #expect(small.status == 507, "\(small.text)")
        // Event batches: acknowledged while the log has room, then 507 and not applied.
        var acknowledgedEvents = 0
        var batchFull: HTTPAnswer?
        for b in 0..<50 {
            let lines = (0..<4000).map { #"{"key":"k\#($0 % 50)","ts":\#(1000 + b * 1000 + $0 % 1000),"value":\#($0)}"# }
            let body = Data((lines.joined(separator: "\n") + "\n").utf8)
            let batch = try request("--http2-prior-knowledge", "POST", server!.url("/streams/s/events"),
                                    ["--data-binary", "@-", "-H", "content-type: application/x-ndjson"], stdin: body)
            if batch.status == 202 { acknowledgedEvents += 4000; continue }
            batchFull = batch
            break
        }
        let refusedBatch = try #require(batchFull, "no event batch failed on a full disk")
        #expect(refusedBatch.status == 507, "an event batch on a full disk: \(refusedBatch.status) \(refusedBatch.text)")
        #expect(try refusedBatch.json()["error"] as? String == "insufficient_storage")
        let stats = try #require(try EndToEndCrashTests.streamStats(server!, "s"))
        #expect((stats["events"] as? Int ?? -1) + (stats["late_events"] as? Int ?? -1) == acknowledgedEvents, "a refused batch was counted: \(stats)")
        print("[disk] \(acknowledgedEvents) events acknowledged before the batch that got 507")
        for (key, v) in acknowledged.prefix(5) {
            let get = try request("--http2-prior-knowledge", "GET", server!.url("/kv/\(key)"))
            #expect(get.status == 200 && get.body == v, "\(key) unreadable while the disk is full: \(get.status)")
        }
        #expect(try request("--http1.1", "GET", server!.url("/kv?prefix=before")).text.split(separator: "\n").count == 10)
        #expect(try request("--http1.1", "GET", server!.url("/health")).status == 200)

        // Space returns: writes succeed again.
        try FileManager.default.removeItem(atPath: filler)
        for i in 0..<4 {
            let v = Self.value(1000 + i, 256 * 1024)
            let put = try request("--http1.1", "PUT", server!.url("/kv/after\(i)"), ["--data-binary", "@-"], stdin: v)
            #expect(put.status == 204, "a write after space was freed: \(put.status) \(put.text)")
            if put.status == 204 { acknowledged["after\(i)"] = v }
        }
        let events = Data(#"{"key":"a","ts":900000,"value":1}"#.utf8 + [10])
        let batchAfter = try request("--http2-prior-knowledge", "POST", server!.url("/streams/s/events"),
                                     ["--data-binary", "@-", "-H", "content-type: application/x-ndjson"], stdin: events)
        #expect(batchAfter.status == 202, "\(batchAfter.text)")
        if batchAfter.status == 202 { acknowledgedEvents += 1 }

        // A crash now, and a restart: every acknowledged write is there.
        server!.child.signal(SIGKILL)
        _ = try server!.child.wait(10)
        server = nil
        let again = try Server(args)
        for (key, v) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let get = try request("--http2-prior-knowledge", "GET", again.url("/kv/\(key)"))
            #expect(get.status == 200 && get.body == v, "\(key) after the restart: \(get.status)")
        }
        let statsAfter = try #require(try EndToEndCrashTests.streamStats(again, "s"))
        #expect((statsAfter["events"] as? Int ?? -1) + (statsAfter["late_events"] as? Int ?? -1) == acknowledgedEvents,
                "events after the restart: \(statsAfter), \(acknowledgedEvents) acknowledged")
        print("[disk] \(acknowledged.count) acknowledged writes and \(acknowledgedEvents) events checked after the restart")
        try again.stop(within: 20)
    }

    /// A stop (SIGTERM) while the disk is full drains and exits 0 (the hint file it cannot write
    /// is optional), and a restart once space is back has every acknowledged write.
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func stopWhileTheDiskIsFullThenRestart() throws {
        let (made, reason) = try SmallTmpfs.make(megabytes: 8)
        guard let fs = made else {
            print("[disk] SKIPPED stopWhileTheDiskIsFullThenRestart: \(reason)")
            return
        }
        defer { fs.unmount() }
        let dataDir = fs.dir.path + "/data"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let args = ["--data-dir", dataDir, "--fsync", "interval", "--io-threads", "1"]
        let server = try Server(args)
        var acknowledged: [String: Data] = [:]
        let filler = fs.dir.path + "/filler"
        #expect(Self.fill(filler) > 0)
        var sawFull = false
        for i in 0..<200 {
            let v = Self.value(i, 100 * 1024)
            let put = try request("--http1.1", "PUT", server.url("/kv/k\(i)"), ["--data-binary", "@-"], stdin: v)
            if put.status == 204 { acknowledged["k\(i)"] = v; continue }
            #expect(put.status == 507, "\(put.status) \(put.text)")
            sawFull = true
            break
        }
        #expect(sawFull, "no write failed on a full disk")
        let stopped = try server.stop(within: 20)
        print("[disk] stop on a full disk: \(stopped.err.split(separator: "\n").filter { $0.contains("warning") || $0.contains("error") }.joined(separator: " | "))")
        try FileManager.default.removeItem(atPath: filler)
        let again = try Server(args)
        for (key, v) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let get = try request("--http2-prior-knowledge", "GET", again.url("/kv/\(key)"))
            #expect(get.status == 200 && get.body == v, "\(key) after the restart: \(get.status)")
        }
        #expect(try request("--http1.1", "PUT", again.url("/kv/after"), ["-d", "x"]).status == 204)
        try again.stop(within: 20)
    }

    /// The end of the log in a data file: one past the last non-zero byte.
    static func logEnd(_ path: String) throws -> Int {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var end = bytes.count
        while end > 0 && bytes[end - 1] == 0 { end -= 1 }
        return end
    }

    static func patch(_ path: String, at offset: Int, _ bytes: [UInt8]) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seek(toOffset: UInt64(offset))
        try h.write(contentsOf: bytes)
        try h.synchronize()
        try h.close()
    }

    /// Garbage after the last record, and then a damaged last record: the server starts, logs
    /// "data file tail truncated" with the offset, reason and bytes dropped, and keeps every record
    /// before the damage.
    @Test(arguments: ["garbage after the log", "damaged last record", "garbage after a clean stop"])
    func corruptedTailIsTruncatedAndReportedAtStart(_ damage: String) throws {
        let data = try TempDir()
        let args = ["--data-dir", data.path, "--fsync", "always", "--io-threads", "1"]
        let server = try Server(args)
        var values: [String: Data] = [:]
        for i in 0..<40 {
            let v = Self.value(i, 200 + i)
            #expect(try request("--http1.1", "PUT", server.url("/kv/t\(i)"), ["--data-binary", "@-"], stdin: v).status == 204)
            values["t\(i)"] = v
        }
        // The last write: the record the second variant damages.
        let lastValue = Self.value(99, 5000)
        #expect(try request("--http1.1", "PUT", server.url("/kv/zlast"), ["--data-binary", "@-"], stdin: lastValue).status == 204)
        if damage == "garbage after a clean stop" {
            // The hint file written at the stop covers the whole log; replay starts at its end.
            try server.stop(within: 20)
            #expect(FileManager.default.fileExists(atPath: data.file("index.hint")))
        } else {
            // SIGKILL: no hint file covers the tail, the log is what recovery reads.
            server.child.signal(SIGKILL)
            _ = try server.child.wait(10)
        }

        let file = data.file("data.lmnr")
        let end = try Self.logEnd(file)
        var g = SeededGenerator(state: 42)
        let garbage = (0..<3000).map { _ in UInt8.random(in: 1...255, using: &g) }
        let damagedAt: Int
        if damage != "damaged last record" {
            damagedAt = end
            try Self.patch(file, at: end, garbage)
        } else {
            damagedAt = end - 100  // inside the last record's value
            try Self.patch(file, at: damagedAt, Array(garbage.prefix(50)))
        }

        let again = try Server(args)
        let log = try String(contentsOfFile: again.child.errPath, encoding: .utf8)
        let report = log.split(separator: "\n").first { $0.contains("data file tail truncated") }
        #expect(report != nil, "no truncation report at start:\n\(log)")
        if let report {
            print("[disk] \(damage): \(report)")
            #expect(report.contains("bytes_dropped"), "\(report)")
            #expect(report.contains("offset"), "\(report)")
            #expect(report.contains("reason"), "\(report)")
        }
        for (key, v) in values {
            let get = try request("--http2-prior-knowledge", "GET", again.url("/kv/\(key)"))
            #expect(get.status == 200 && get.body == v, "\(key) lost to a damaged tail: \(get.status)")
        }
        let last = try request("--http2-prior-knowledge", "GET", again.url("/kv/zlast"))
        if damage != "damaged last record" {
            #expect(last.status == 200 && last.body == lastValue, "the last record before the garbage: \(last.status)")
        } else {
            #expect(last.status == 404, "a damaged record must not be served: \(last.status)")
        }
        // The store goes on: new writes, and a clean restart without a second report.
        #expect(try request("--http1.1", "PUT", again.url("/kv/new"), ["-d", "fresh"]).status == 204)
        try again.stop(within: 20)
        let third = try Server(args)
        #expect(try request("--http1.1", "GET", third.url("/kv/new")).text == "fresh")
        let log3 = try String(contentsOfFile: third.child.errPath, encoding: .utf8)
        #expect(!log3.contains("data file tail truncated"), "the tail was zeroed, a second start finds nothing: \(log3)")
        try third.stop(within: 20)
    }
}
