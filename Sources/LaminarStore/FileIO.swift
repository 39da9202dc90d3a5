#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system calls that change the store's files: writes, syncs, space allocation, truncation,
/// renames. Every one of them goes through this interface, so a test can make any of them fail
/// (`FaultInjectingFileIO`); the server uses `SystemFileIO`.
///
/// Results are plain values, never `errno`: 0 for success, else the error number. Calls are made
/// from the store's owner thread and (`fdatasync` only) the reactor's commit syncer thread.
///
/// Cost: a call through this protocol is one indirect call in front of a system call (a `pwrite`
/// of at least a page or an `fdatasync`, each microseconds or more); records smaller than a page
/// are stored through the mapping and never come here, so the put path of small values pays
/// nothing.
public protocol FileIO: AnyObject, Sendable {
    /// Writes all of `bytes` at `offset` (retrying `EINTR` and short writes). On failure,
    /// `written` says how many bytes reached the file before it (a torn write when not 0).
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> (written: Int, errno: Int32)
    /// `fdatasync(2)`.
    func fdatasync(_ fd: Int32) -> Int32
    /// `fsync(2)` (directories, small files).
    func fsync(_ fd: Int32) -> Int32
    /// `posix_fallocate(3)`: makes `offset..<offset+length` allocated, growing the file.
    func allocate(_ fd: Int32, offset: Int, length: Int) -> Int32
    /// `ftruncate(2)`.
    func truncate(_ fd: Int32, length: Int) -> Int32
    /// `rename(2)`.
    func rename(_ from: String, _ to: String) -> Int32
}

/// The real system calls.
public final class SystemFileIO: FileIO {
    /// The one instance every store uses unless told otherwise.
    public static let shared = SystemFileIO()

    public init() {}

    public func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> (written: Int, errno: Int32) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return (done, n < 0 ? errno : EIO)
            }
        }
        return (done, 0)
    }

    public func fdatasync(_ fd: Int32) -> Int32 {
        Glibc.fdatasync(fd) == 0 ? 0 : errno
    }

    public func fsync(_ fd: Int32) -> Int32 {
        Glibc.fsync(fd) == 0 ? 0 : errno
    }

    public func allocate(_ fd: Int32, offset: Int, length: Int) -> Int32 {
        posix_fallocate(fd, off_t(offset), off_t(length))
    }

    public func truncate(_ fd: Int32, length: Int) -> Int32 {
        ftruncate(fd, off_t(length)) == 0 ? 0 : errno
    }

    public func rename(_ from: String, _ to: String) -> Int32 {
        Glibc.rename(from, to) == 0 ? 0 : errno
    }
}
