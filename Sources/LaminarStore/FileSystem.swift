#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file-system steps the store needs, with errors as `StoreError.io`: making
/// directories, locking one, atomic replacement of a small file, directory fsync.
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

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw StoreError.io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw StoreError.io(operation: "fsync", path: path, errno: errno) }
    }

    /// Replaces `directory/name` with `bytes` atomically: write a temporary file, fsync it,
    /// rename it over the old one, fsync the directory.
    static func writeAtomically(directory: String, name: String, bytes: [UInt8]) throws {
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
        try bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StoreError.io(operation: "write", path: temp, errno: errno)
                }
                done += n
            }
        }
        if fsync(fd) != 0 { throw StoreError.io(operation: "fsync", path: temp, errno: errno) }
        ok = true
        close(fd)
        if rename(temp, directory + "/" + name) != 0 {
            let e = errno
            removeIfPresent(temp)
            throw StoreError.io(operation: "rename", path: temp, errno: e)
        }
        try syncDirectory(directory)
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
