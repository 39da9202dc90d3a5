#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What makes a store's writes so far durable, to run on any thread (the reactor's commit
/// syncer) while the store's owner goes on writing: the bytes of the data file's write-behind
/// tail not yet in the data file, written with one `pwrite` at `offset`, then `fdatasync` of the
/// file; and, for the first job after a compaction switched the store to its new file, that
/// file's publication (`CompactionPublication`: renames and the directory fsync).
/// `LogStore.beginSync` makes one; its outcome goes back to `LogStore.endSync`.
///
/// The bytes are the store's own memory: they stay valid and unchanged until `endSync` (the owner
/// only appends after them, and remaps nothing while a job is out).
public struct SyncJob: @unchecked Sendable {
    /// The data file's descriptor.
    public let fd: Int32
    let bytes: UnsafeRawBufferPointer
    let offset: Int
    /// Set on the job that makes a compaction's new file the data file (after its `fdatasync`).
    var publication: CompactionPublication?

    /// Only `fdatasync(fd)`, nothing to write first.
    public init(fd: Int32) {
        self.init(fd: fd, bytes: UnsafeRawBufferPointer(start: nil, count: 0), offset: 0)
    }

    init(fd: Int32, bytes: UnsafeRawBufferPointer, offset: Int) {
        self.fd = fd
        self.bytes = bytes
        self.offset = offset
    }

    /// Bytes the job writes before its sync.
    public var writeBytes: Int { bytes.count }

    /// Writes, syncs, then publishes a compaction's file if it carries one: `errno` 0 on
    /// success, else the failed call's errno and its name.
    public func run(io: any FileIO) -> (errno: Int32, operation: String) {
        if bytes.count > 0 {
            let (_, e) = io.pwrite(fd, bytes, at: offset)
            if e != 0 { return (e, "pwrite") }
        }
        let e = io.fdatasync(fd)
        if e != 0 { return (e, "fdatasync") }
        return publication?.run(io: io) ?? (0, "fdatasync")
    }
}

/// The last steps of a compaction, off the owner's thread: once the new file holds every record
/// and is fsynced (by the job carrying this), rename it over `data.lmnr`, rename its hint over
/// `index.hint`, fsync the directory. Until the directory fsync returns, a crash may bring back
/// either file; both hold every acknowledged write, since nothing written to the new file is
/// acknowledged before this job returns. Immutable; any thread.
final class CompactionPublication: @unchecked Sendable {
    let directory: String
    /// Whether the compaction wrote `index.hint.compact` (to rename over `index.hint`).
    let hasHint: Bool
    let observer: (@Sendable (CompactionStep) -> Void)?

    init(directory: String, hasHint: Bool, observer: (@Sendable (CompactionStep) -> Void)?) {
        self.directory = directory
        self.hasHint = hasHint
        self.observer = observer
    }

    func run(io: any FileIO) -> (errno: Int32, operation: String) {
        var e = io.rename(directory + "/" + LogStore.compactFileName, directory + "/" + LogStore.dataFileName)
        if e != 0 { return (e, "rename") }
        observer?(.renamedData)
        if hasHint {
            e = io.rename(directory + "/" + LogStore.compactHintFileName, directory + "/" + LogStore.hintFileName)
            if e != 0 { return (e, "rename") }
        }
        observer?(.renamedHint)
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { return (errno, "open") }
        e = io.fsync(fd)
        close(fd)
        if e != 0 { return (e, "fsync") }
        observer?(.finished)
        return (0, "fsync")
    }
}
