import Foundation
import Glibc
import Testing
@testable import LaminarStore

/// Kills a writing child process with SIGKILL and checks that every write it acknowledged
/// (reported on its stdout after the fsync) is in the store after reopening.
@Suite struct CrashTests {
    /// The crash child is built next to the test bundle.
    static var childPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(decoding: buffer[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var dir = exe
        while !dir.isEmpty && !FileManager.default.fileExists(atPath: dir + "/laminar-store-crash-child") {
            dir = (dir as NSString).deletingLastPathComponent
            if dir == "/" { break }
        }
        return dir + "/laminar-store-crash-child"
    }

    /// Runs the child from `first`, kills it after `acks` acknowledgements (or, with
    /// `pauseAt`, once a compaction paused at that step), returns the last one.
    static func runAndKill(dir: String, first: Int, acks: Int, pauseAt: CompactionStep? = nil) throws -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: childPath)
        process.arguments = [dir, String(first)] + (pauseAt.map { ["\($0)"] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let reader = pipe.fileHandleForReading
        var pending = ""
        var lastAck = first - 1
        var seen = 0
        var paused = false
        outer: while true {
            let data = reader.availableData
            if data.isEmpty { break }
            pending += String(decoding: data, as: UTF8.self)
            while let newline = pending.firstIndex(of: "\n") {
                let line = pending[..<newline]
                pending = String(pending[pending.index(after: newline)...])
                if line.hasPrefix("ack "), let n = Int(line.dropFirst(4)) {
                    #expect(n == lastAck + 1, "acks arrive in order")
                    lastAck = n
                    seen += 1
                    if seen >= acks { break outer }
                } else if line.hasPrefix("paused ") {
                    paused = true
                    break outer
                }
            }
        }
        if pauseAt != nil { #expect(paused, "the child exited without pausing at \(pauseAt!)") }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        // Acks printed after the ones we read may also have been fsynced; count those too.
        for line in (pending + String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)).split(separator: "\n") {
            if line.hasPrefix("ack "), let n = Int(line.dropFirst(4)), n == lastAck + 1 { lastAck = n }
        }
        return lastAck
    }

    @Test func everyAcknowledgedWriteSurvivesSIGKILL() throws {
        let dir = TempDirectory()
        #expect(FileManager.default.isExecutableFile(atPath: CrashTests.childPath), "crash child not built at \(CrashTests.childPath)")
        var next = 0
        for round in 0..<4 {
            let lastAck = try CrashTests.runAndKill(dir: dir.path, first: next, acks: 300 + round * 137)
            #expect(lastAck >= next)
            let store = try LogStore.open(directory: dir.path)
            store.checkInvariants()
            for j in 0...lastAck {
                let expected = Array("v\(j)-".utf8) + [UInt8](repeating: UInt8(j & 0xFF), count: j % 200)
                let value = store.get(Array("k\(j)".utf8))?.value
                #expect(value == expected, "acknowledged key k\(j) lost or wrong after kill \(round)")
                if value != expected { return }
            }
            try store.close()
            // The child may have written more than it acknowledged; start after what survived.
            next = lastAck + 1
            while (try? LogStore.open(directory: dir.path)).map({ s in defer { try? s.close() }; return s.contains(Array("k\(next)".utf8)) }) == true {
                next += 1
            }
        }
    }

    /// A kill at each step of a background compaction: the reopened store has every
    /// acknowledged write, and no leftover of the compaction.
    @Test(arguments: CompactionStep.allCases)
    func aKillAtEachCompactionStepLosesNothing(_ step: CompactionStep) throws {
        let dir = TempDirectory()
        let lastAck = try CrashTests.runAndKill(dir: dir.path, first: 0, acks: .max, pauseAt: step)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        switch step {
        case .copiedLive, .syncedTail, .copiedTail, .switchedFile: #expect(names.contains(LogStore.compactFileName), "killed before the rename: \(names)")
        case .wroteHint: #expect(names.contains(LogStore.compactHintFileName), "\(names)")
        case .renamedData: #expect(!names.contains(LogStore.compactFileName) && names.contains(LogStore.compactHintFileName), "\(names)")
        case .renamedHint, .finished: #expect(!names.contains(LogStore.compactFileName) && !names.contains(LogStore.compactHintFileName), "\(names)")
        }
        let store = try LogStore.open(directory: dir.path)
        store.checkInvariants()
        if step == .renamedHint || step == .finished { #expect(store.stats.recoveryUsedHint, "the compacted file's hint is used") }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(left.allSatisfy { !$0.hasSuffix(".compact") && !$0.hasSuffix(".tmp") }, "leftovers after open: \(left)")
        for j in 0...lastAck {
            let expected = Array("v\(j)-".utf8) + [UInt8](repeating: UInt8(j & 0xFF), count: j % 200)
            let value = store.get(Array("k\(j)".utf8))?.value
            #expect(value == expected, "acknowledged key k\(j) lost or wrong after a kill at \(step)")
            if value != expected { break }
        }
        try store.close()
    }
}
