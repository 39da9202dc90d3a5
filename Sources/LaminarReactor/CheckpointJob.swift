import CLinux
import Glibc
import LaminarStore
import Synchronization

/// A stream's state at one moment, as its checkpoint writes it: the header fields of
/// `StreamRuntime.encodeCheckpoint` and a copy of the window operator. Taking it costs O(1) on
/// the reactor (the operator's arrays are shared copy-on-write with the live state; the live
/// state copies an array, flat, the first time it changes it afterwards), and encoding it reads
/// nothing the reactor touches, so it may run on another thread (`CheckpointJob`).
struct CheckpointSnapshot {
    var atMs: Int64
    var nextSequence: UInt64
    var nextResultSeq: UInt64
    var idempotencyKeys: [UInt64]
    var op: WindowOperator
    /// `sourceNext` of a stream reading a named source (version 4), `nil` else (version 3).
    var sourceNext: UInt64?

    /// The checkpoint value (`StreamRuntime.encodeCheckpoint` documents the layout).
    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(64 + 8 * idempotencyKeys.count + op.checkpointBytesEstimate)
        w.u8(sourceNext == nil ? 6 : 7)
        w.u64(UInt64(bitPattern: atMs))
        w.u64(nextSequence)
        w.u64(nextResultSeq)
        w.u32(UInt32(idempotencyKeys.count))
        for k in idempotencyKeys { w.u64(k) }
        op.encodeCheckpoint(into: &w)
        if let sourceNext { w.u64(sourceNext) }
        return w.bytes
    }
}

/// A checkpoint too big to write in one round (`ReactorLimits.checkpointInlineBytesMax`): its
/// snapshot is encoded on a thread of its own, then the reactor stores the bytes in parts of at
/// most `ReactorLimits.checkpointPartBytes`, one part per round, and last makes it current with a
/// small head record (`ReservedKeys.checkpoint`, version 5) in the same atomic batch that deletes
/// the write-ahead entries before `coversSequence` and the parts of the previous checkpoint.
/// Until then the previous checkpoint and every entry after it stay: a crash at any point
/// replays from the previous checkpoint, and recovery deletes parts no head names.
///
/// Threads: the reactor creates the job (the snapshot is handed over by `pthread_create`, which
/// orders it before the encoder's reads); the encoder thread writes `bytes` and sets `encoded`
/// (release); the reactor reads `bytes` and takes the snapshot back (`takeSnapshot`) only after
/// seeing `encoded` (acquire), and alone touches `partsWritten`. The encoder then rings `wake` (the reactor's doorbell).
final class CheckpointJob: @unchecked Sendable {
    /// The stream's runtime id (a stream deleted and defined again is another stream).
    let streamId: UInt64
    /// The checkpoint covers the write-ahead entries before this one (the stream's
    /// `nextSequence` at the snapshot).
    let coversSequence: UInt64
    /// Names its parts (`ReservedKeys.checkpointPart`): one more than the stream's last.
    let generation: UInt64
    /// The stream's `sourceNext` at the snapshot (0 without a named source).
    let sourceNext: UInt64
    let atMs: Int64
    /// Encoder thread until `encoded`, then the reactor's.
    private var snapshot: CheckpointSnapshot?
    private(set) var bytes: [UInt8] = []
    private let encodedFlag = Atomic<Bool>(false)
    private let wake: Doorbell
    /// Reactor thread: parts stored so far.
    var partsWritten = 0

    init(streamId: UInt64, generation: UInt64, snapshot: CheckpointSnapshot, sourceNext: UInt64, wake: Doorbell) {
        self.streamId = streamId
        self.generation = generation
        self.coversSequence = snapshot.nextSequence
        self.sourceNext = sourceNext
        self.atMs = snapshot.atMs
        self.snapshot = snapshot
        self.wake = wake
        // Background work at nice 10: the encoding yields the cores to the reactor and the I/O threads.
        if ServerThread.start(name: "laminar-ckpt", nice: 10, detached: true, encode) == nil {
            preconditionFailure("pthread_create failed for a checkpoint encoder")
        }
    }

    /// Whether the encoder is done (`bytes` may be read).
    var isEncoded: Bool { encodedFlag.load(ordering: .acquiring) }

    /// Parts of `partBytes` the bytes take (at least one).
    func partCount(partBytes: Int) -> Int { Swift.max(1, (bytes.count + partBytes - 1) / partBytes) }

    private func encode() {
        bytes = snapshot!.encode()
        encodedFlag.store(true, ordering: .releasing)
        wake.ring()
    }

    /// Reactor thread, once `isEncoded`: the snapshot, handed back once (then `nil`), so that
    /// the live state's arrays are its own again and the copies it made can serve the next one.
    func takeSnapshot() -> CheckpointSnapshot? {
        precondition(isEncoded, "the encoder still reads the snapshot")
        defer { snapshot = nil }
        return snapshot
    }

    /// The head record naming the parts: version 5, the generation, the number of parts, the
    /// total bytes (`Reactor.checkpointValue` reads it back).
    func head(partBytes: Int) -> [UInt8] {
        var w = ByteWriter()
        w.u8(5); w.u64(generation); w.u32(UInt32(partCount(partBytes: partBytes))); w.u64(UInt64(bytes.count))
        return w.bytes
    }
}
