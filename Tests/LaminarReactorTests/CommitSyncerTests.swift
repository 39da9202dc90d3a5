import Glibc
import Testing
@testable import LaminarReactor
import LaminarStore

/// `CommitSyncer`: one sync at a time on its own thread; `isDone` turns true only after the
/// sync returned, the reactor's doorbell rings after that, `take` hands over its outcome (the
/// errno as it is: what to do with a failure is the reactor's policy), and syncs run in order.
@Suite struct CommitSyncerTests {
    func temporaryFile() throws -> (fd: Int32, path: String) {
        var template = Array("/tmp/laminar-syncer-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        return (fd, String(cString: template))
    }

    @Test func completesOnlyAfterTheSyncAndInOrder() throws {
        let (fd, path) = try temporaryFile()
        defer { close(fd); unlink(path) }
        let doorbell = Doorbell()
        let syncer = CommitSyncer(wakeReactor: doorbell, io: SystemFileIO())
        defer { syncer.stop() }
        #expect(!syncer.inFlight && !syncer.isDone)
        for round in 0..<50 {
            let bytes = [UInt8](repeating: UInt8(round), count: 4096)
            #expect(pwrite(fd, bytes, bytes.count, off_t(round * 4096)) == 4096)
            syncer.start(fd: fd)
            #expect(syncer.inFlight)
            // The doorbell rings once the sync returned, never before: then it is done.
            var rung = false
            for _ in 0..<1000 where !rung { rung = doorbell.wait(timeoutMs: 10) }
            #expect(rung, "round \(round): no wake-up")
            #expect(syncer.isDone, "round \(round): rung before the sync was done")
            let outcome = syncer.take()
            #expect(outcome.errno == 0)
            #expect(!syncer.inFlight && !syncer.isDone, "taken: the next sync may start")
        }
    }

    /// A sync that fails reports its errno through `take`, and the syncer goes on.
    @Test func aFailedSyncReportsItsErrno() throws {
        let doorbell = Doorbell()
        let syncer = CommitSyncer(wakeReactor: doorbell, io: SystemFileIO())
        defer { syncer.stop() }
        var pipeFDs: [Int32] = [0, 0]
        try #require(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        syncer.start(fd: pipeFDs[1])  // fdatasync on a pipe: EINVAL
        syncer.waitUntilDone()
        #expect(syncer.isDone)
        #expect(syncer.take().errno == EINVAL)
        let (fd, path) = try temporaryFile()
        defer { close(fd); unlink(path) }
        syncer.start(fd: fd)
        syncer.waitUntilDone()
        #expect(syncer.take().errno == 0, "the next sync works")
    }

    /// `waitUntilDone` returns at once when nothing is in flight; `stop` joins an idle syncer.
    @Test func idleSyncerWaitsForNothingAndStops() {
        let syncer = CommitSyncer(wakeReactor: Doorbell(), io: SystemFileIO())
        syncer.waitUntilDone()
        #expect(!syncer.inFlight)
        syncer.stop()
    }
}
