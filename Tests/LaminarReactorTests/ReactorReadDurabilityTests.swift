import Dispatch
import Glibc
@testable import LaminarReactor
@testable import LaminarStore
import Synchronization
import Testing

/// A `FileIO` whose `fdatasync` the test holds: once `hold()` is called, the next data syncs
/// signal `entered` and block until `release(errno:)`, which lets them go on (succeeding, or
/// failing with the errno given without touching the disk). Everything else goes to the system.
final class GatedSyncFileIO: FileIO {
    private let system = SystemFileIO.shared
    private let held = Atomic<Bool>(false)
    private let failWith = Atomic<Int32>(0)
    /// Signalled by each held sync as it starts waiting.
    let entered = DispatchSemaphore(value: 0)
    private let gate = DispatchSemaphore(value: 0)

    func hold() { held.store(true, ordering: .sequentiallyConsistent) }

    /// Lets the held sync return; later syncs pass. `errno` 0: the sync runs; else it fails so.
    func release(errno e: Int32 = 0) {
        failWith.store(e, ordering: .sequentiallyConsistent)
        held.store(false, ordering: .sequentiallyConsistent)
        gate.signal()
    }

    func fdatasync(_ fd: Int32) -> Int32 {
        if held.load(ordering: .sequentiallyConsistent) {
            entered.signal()
            gate.wait()
            let e = failWith.load(ordering: .sequentiallyConsistent)
            if e != 0 { return e }
        }
        return system.fdatasync(fd)
    }

    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> (written: Int, errno: Int32) {
        system.pwrite(fd, bytes, at: offset)
    }
    func fsync(_ fd: Int32) -> Int32 { system.fsync(fd) }
    func allocate(_ fd: Int32, offset: Int, length: Int) -> Int32 { system.allocate(fd, offset: offset, length: length) }
    func truncate(_ fd: Int32, length: Int) -> Int32 { system.truncate(fd, length: length) }
    func rename(_ from: String, _ to: String) -> Int32 { system.rename(from, to) }
}

/// Reads wait only for their own key (`Reactor.completeRead`, `LogStore.isDurable`), at
/// `fsync always` with the pipelined commit: while the sync of a put of key B is held, a read of
/// key A (durable) and of an absent key are answered; a read of B is not, until the sync returns
/// — after B's acknowledgement, with B's new value — or fails, when it is refused like the put.
@Suite(.serialized) struct ReactorReadDurabilityTests {
    /// A reactor on a store in `dir` whose syncs go through `io`, with one producer polled by hand.
    final class Rig {
        let store: LogStore
        let reactor: Reactor
        let producer: ReactorProducer
        let doorbell = Doorbell()
        var nextToken: UInt64 = 1
        var results: [UInt64: ReactorResult] = [:]
        /// Tokens in the order their completions arrived.
        var arrivals: [UInt64] = []

        init(dir: String, io: GatedSyncFileIO) throws {
            var options = LogStoreOptions()
            options.fsync = .always
            options.fileIO = io
            store = try LogStore.open(directory: dir, options: options)
            reactor = try Reactor(store: store, clock: ManualClock())
            let bell = doorbell
            producer = reactor.makeProducer { bell.ring() }
            reactor.start()
        }

        func submit(_ op: ReactorOperation) -> UInt64 {
            let token = nextToken
            nextToken += 1
            precondition(producer.submit(ReactorCommand(token: token, op)))
            producer.wakeReactorIfParked()
            return token
        }

        func drain() {
            producer.poll { c in
                results[c.token] = c.result
                arrivals.append(c.token)
            }
        }

        /// Waits (at most 10 s) for `token`'s completion.
        @discardableResult
        func await(_ token: UInt64) -> ReactorResult? {
            for _ in 0..<100 {
                drain()
                if let r = results[token] { return r }
                _ = doorbell.wait(timeoutMs: 100)
            }
            return nil
        }

        /// The first of `candidates` whose write slot differs from `key`'s: keys that share a
        /// slot wait for each other by design, which this test must not mistake for a bug.
        func keyInAnotherSlot(than key: [UInt8], _ candidates: [[UInt8]]) -> [UInt8] {
            let slot = key.withUnsafeBytes { LogStore.writeSlot(store.hasher.hash($0)) }
            return candidates.first { c in c.withUnsafeBytes { LogStore.writeSlot(store.hasher.hash($0)) } != slot }!
        }

        func stop() { reactor.stop() }
    }

    static func put(_ key: [UInt8], _ value: [UInt8]) -> ReactorOperation {
        .put(key: key, value: value, condition: .always, ttlMs: nil)
    }

    @Test func aReadOfAnotherKeyIsNotDelayedByAPendingSync() throws {
        let dir = TempDir()
        let io = GatedSyncFileIO()
        let rig = try Rig(dir: dir.path, io: io)
        defer { rig.stop() }
        let b = bytes("b")
        let a = rig.keyInAnotherSlot(than: b, (0..<4).map { bytes("a\($0)") })
        let absent = rig.keyInAnotherSlot(than: b, (0..<4).map { bytes("absent\($0)") })
        #expect(rig.await(rig.submit(Self.put(a, [1])))?.written != nil)
        #expect(rig.await(rig.submit(Self.put(b, [2])))?.written != nil)

        io.hold()
        let putB = rig.submit(Self.put(b, [3]))
        #expect(io.entered.wait(timeout: .now() + 10) == .success, "the sync of the put of b did not start")
        // In ring order: the read of b is applied before the reads of a and of the absent key.
        let getB = rig.submit(.get(key: b))
        let getA = rig.submit(.get(key: a))
        let getAbsent = rig.submit(.get(key: absent))
        #expect(rig.await(getA)?.valueBytes == [1], "a read of a durable key waited for another key's sync")
        #expect(rig.await(getAbsent)?.failure == .notFound)
        rig.drain()
        #expect(rig.results[putB] == nil, "the put of b was acknowledged before its sync returned")
        #expect(rig.results[getB] == nil, "the read of b was answered before b's write was durable")

        io.release()
        #expect(rig.await(putB)?.written != nil)
        #expect(rig.await(getB)?.valueBytes == [3], "the read of b after its sync")
        let order = rig.arrivals
        #expect(order.firstIndex(of: putB)! < order.firstIndex(of: getB)!, "the read of b came before b's acknowledgement")
        #expect(order.firstIndex(of: getA)! < order.firstIndex(of: putB)!)
        // Durable now: answered at once again.
        #expect(rig.await(rig.submit(.get(key: b)))?.valueBytes == [3])
    }

    /// A failed sync: the put in doubt and the read of its key that waited for it are both
    /// refused; a read of a durable key is still answered, and so are later ones; a later read of
    /// the key in doubt is refused too (no successful sync will ever cover that write).
    @Test func aFailedSyncRefusesTheReadsThatWaitedForIt() throws {
        let dir = TempDir()
        let io = GatedSyncFileIO()
        let rig = try Rig(dir: dir.path, io: io)
        defer { rig.stop() }
        let b = bytes("b")
        let a = rig.keyInAnotherSlot(than: b, (0..<4).map { bytes("a\($0)") })
        #expect(rig.await(rig.submit(Self.put(a, [1])))?.written != nil)

        io.hold()
        let putB = rig.submit(Self.put(b, [3]))
        #expect(io.entered.wait(timeout: .now() + 10) == .success)
        let getB = rig.submit(.get(key: b))
        #expect(rig.await(rig.submit(.get(key: a)))?.valueBytes == [1])
        io.release(errno: EIO)
        for token in [putB, getB] {
            let r = rig.await(token)
            #expect(r?.failure.map { if case .storageFailed = $0 { true } else { false } } == true, "\(String(describing: r))")
        }
        let later = rig.await(rig.submit(.get(key: b)))
        #expect(later?.failure.map { if case .storageFailed = $0 { true } else { false } } == true, "\(String(describing: later))")
        #expect(rig.await(rig.submit(.get(key: a)))?.valueBytes == [1])
    }
}
