/// What makes a store's writes so far durable, to run on any thread (the reactor's commit
/// syncer) while the store's owner goes on writing: the bytes of the data file's write-behind
/// tail not yet in the file, written with one `pwrite` at `offset`, then `fdatasync` of the file.
/// `LogStore.beginSync` makes one; its outcome goes back to `LogStore.endSync`.
///
/// The bytes are the store's own memory: they stay valid and unchanged until `endSync` (the owner
/// only appends after them, and remaps nothing while a job is out).
public struct SyncJob: @unchecked Sendable {
    /// The data file's descriptor.
    public let fd: Int32
    let bytes: UnsafeRawBufferPointer
    let offset: Int

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

    /// Writes, then syncs: `errno` 0 on success, else the failed call's errno and its name.
    public func run(io: any FileIO) -> (errno: Int32, operation: String) {
        if bytes.count > 0 {
            let (_, e) = io.pwrite(fd, bytes, at: offset)
            if e != 0 { return (e, "pwrite") }
        }
        return (io.fdatasync(fd), "fdatasync")
    }
}
