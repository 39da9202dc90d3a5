#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A `FileIO` for tests, in the way of TigerBeetle's testing storage: every call goes to the
/// system and is counted by kind, except the one `Fault` names (the nth call of a kind), which
/// fails with the fault's errno — after writing half of its bytes when the fault tears a write.
/// Calls after the fault succeed again, as a disk that recovers does (the case where a second
/// fsync "succeeds" and proves nothing). Run a scenario once without a fault to learn how many
/// calls of each kind it makes, then once per call with the fault there.
///
/// Thread-safe: the reactor's commit syncer calls `fdatasync` from its own thread, a compaction
/// thread writes and syncs the new data file from its own.
public final class FaultInjectingFileIO: FileIO {
    /// The kinds of call a fault can hit.
    public enum Operation: String, CaseIterable, Sendable {
        /// `pwrite` (data file records, compaction output, the hint file).
        case write
        /// `fdatasync` and `fsync` (data file, hint file, directory).
        case sync
        /// `posix_fallocate`.
        case allocate
        /// `ftruncate`.
        case truncate
        case rename
    }

    /// Which call fails, and how.
    public struct Fault: Sendable, Hashable, CustomStringConvertible {
        public var operation: Operation
        /// 1 for the first call of `operation`.
        public var occurrence: Int
        public var errno: Int32
        /// For a write: half of its bytes reach the file before it fails (a torn write).
        public var tear: Bool

        public init(_ operation: Operation, occurrence: Int, errno: Int32, tear: Bool = false) {
            precondition(occurrence >= 1)
            self.operation = operation
            self.occurrence = occurrence
            self.errno = errno
            self.tear = tear
        }

        public var description: String {
            "\(operation) #\(occurrence) fails with errno \(errno)\(tear ? " after half its bytes" : "")"
        }
    }

    private struct State {
        var counts: [Operation: Int] = [:]
        var fault: Fault?
        var fired = false
        var firedPath: String?
    }

    private let state: Mutex<State>
    private let system = SystemFileIO.shared

    public init(fault: Fault? = nil) {
        state = Mutex(State(fault: fault))
    }

    /// Calls of `operation` made so far (the failed one included).
    public func count(_ operation: Operation) -> Int { state.withLock { $0.counts[operation, default: 0] } }

    /// Whether the fault has been injected.
    public var fired: Bool { state.withLock { $0.fired } }

    /// The file the fault hit (the descriptor's path, or a rename's source), once it fired.
    public var firedPath: String? { state.withLock { $0.firedPath } }

    /// Counts a call of `operation`; returns the fault if this is the call it names.
    private func next(_ operation: Operation, fd: Int32 = -1, path: String? = nil) -> Fault? {
        state.withLock { s in
            s.counts[operation, default: 0] += 1
            guard let f = s.fault, f.operation == operation, f.occurrence == s.counts[operation] else { return nil }
            s.fired = true
            s.firedPath = path ?? FaultInjectingFileIO.path(of: fd)
            return f
        }
    }

    private static func path(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> (written: Int, errno: Int32) {
        guard let fault = next(.write, fd: fd) else { return system.pwrite(fd, bytes, at: offset) }
        guard fault.tear, bytes.count > 1 else { return (0, fault.errno) }
        let half = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count / 2)])
        let (written, e) = system.pwrite(fd, half, at: offset)
        return (written, e != 0 ? e : fault.errno)
    }

    public func fdatasync(_ fd: Int32) -> Int32 {
        if let fault = next(.sync, fd: fd) { return fault.errno }
        return system.fdatasync(fd)
    }

    public func fsync(_ fd: Int32) -> Int32 {
        if let fault = next(.sync, fd: fd) { return fault.errno }
        return system.fsync(fd)
    }

    public func allocate(_ fd: Int32, offset: Int, length: Int) -> Int32 {
        if let fault = next(.allocate, fd: fd) { return fault.errno }
        return system.allocate(fd, offset: offset, length: length)
    }

    public func truncate(_ fd: Int32, length: Int) -> Int32 {
        if let fault = next(.truncate, fd: fd) { return fault.errno }
        return system.truncate(fd, length: length)
    }

    public func rename(_ from: String, _ to: String) -> Int32 {
        if let fault = next(.rename, path: from) { return fault.errno }
        return system.rename(from, to)
    }
}
