#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file-system steps the store needs: making directories, locking one, atomic
/// replacement of a small file, directory fsync. Errors are `StoreError.io` where nothing can
/// have been lost, `StoreError.storageFailed` (fail-stop) otherwise; every write, sync and
/// rename goes through `io`.
enum FileSystem {
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw StoreError.io(operation: "mkdir", path: prefix, errno: errno)
            }
        }
    }

    /// Opens `directory/lockFileName` and takes an exclusive `flock` on it, so two processes
    /// never open one store. Returns the descriptor that holds the lock.
    static func lockDirectory(_ directory: String, lockFileName: String) throws -> Int32 {
        let path = directory + "/" + lockFileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw StoreError.io(operation: "open", path: path, errno: errno) }
        // A lock still held after its owner closed it is usually a child process of ours between
        // fork and exec (the descriptor is O_CLOEXEC, but exec has not happened yet): retry for up
        // to a second before calling the directory locked.
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK && attempts < 100 {
                attempts += 1
                usleep(10_000)
                continue
            }
            close(fd)
            if e == EWOULDBLOCK { throw StoreError.locked(path: directory) }
            throw StoreError.io(operation: "flock", path: path, errno: e)
        }
        return fd
    }

    /// fsyncs the directory (after a file was created or renamed in it). A failure is fail-stop:
    /// the rename or creation it was to make durable may be lost.
    static func syncDirectory(_ path: String, io: any FileIO) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw StoreError.storageFailed(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        let e = io.fsync(fd)
        if e != 0 { throw StoreError.storageFailed(operation: "fsync", path: path, errno: e) }
    }

    /// Replaces `directory/name` with `bytes` atomically: write a temporary file, fsync it,
    /// rename it over the old one, fsync the directory. A full disk while writing the temporary
    /// file is recoverable (the file is removed, the old one stays); a failed sync or rename is
    /// fail-stop.
    static func writeAtomically(directory: String, name: String, bytes: [UInt8], io: any FileIO) throws {
        let temp = directory + "/" + name + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw StoreError.io(operation: "open", path: temp, errno: errno) }
        var ok = false
        defer {
            if !ok {
                close(fd)
                removeIfPresent(temp)
            }
        }
        let (written, e) = bytes.withUnsafeBytes { io.pwrite(fd, $0, at: 0) }
        if e != 0 { throw StoreError.writeFailed("write", path: temp, errno: e, written: written, fileInUse: false) }
        let s = io.fsync(fd)
        if s != 0 { throw StoreError.storageFailed(operation: "fsync", path: temp, errno: s) }
        ok = true
        close(fd)
        let r = io.rename(temp, directory + "/" + name)
        if r != 0 {
            removeIfPresent(temp)
            throw StoreError.storageFailed(operation: "rename", path: temp, errno: r)
        }
        try syncDirectory(directory, io: io)
    }

    /// The whole file, or `nil` if it cannot be read.
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let size = Int(st.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        let ok = bytes.withUnsafeMutableBytes { buffer -> Bool in
            var done = 0
            while done < size {
                let n = read(fd, buffer.baseAddress! + done, size - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        return ok ? bytes : nil
    }

    static func removeIfPresent(_ path: String) {
        unlink(path)
    }
}
