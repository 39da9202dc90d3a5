// Fuzzes the store's recovery scan (LaminarStore: RecordFormat.scan and LogStore.open's replay):
// a data file made of a valid header, valid records built from the input, then arbitrary bytes as
// its tail. Opening it must never crash and must truncate the tail:
// - the store holds exactly what a reference reader of proto-docs/storage-format.md (written here,
//   with its own CRC-32C) finds: records in order, batches applied whole, stop at an all-zero
//   header or at the first damaged record or incomplete batch;
// - after opening, every byte of the file after the log is zero (nothing old can reappear behind
//   later writes), the revision is the largest seen, the indexes agree (checkInvariants);
// - reopening finds the same and truncates nothing; a write after it survives a reopen.
// Input: byte 0 = record count (low 3 bits) and flags; then per record: key length, value length,
// flags, key, value; then a gap of zeros (byte × 8); the rest is the tail. Flag 0x80 of byte 0:
// the tail's first 32 bytes are taken as a record header and given a correct CRC, so the fuzzer
// reaches the checks behind the CRC (batch flags, lengths).
#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import LaminarStore
import Logging

struct Record {
    var key: [UInt8]
    var value: [UInt8]
    var revision: UInt64
    var expiry: Int64
    var flags: UInt8
}

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

func load<T: FixedWidthInteger>(_ b: [UInt8], _ at: Int, _: T.Type) -> T {
    var v: T = 0
    for i in 0..<MemoryLayout<T>.size { v |= T(b[at + i]) << (8 * i) }
    return v
}

func encode(_ r: Record) -> [UInt8] {
    var body = le(UInt32(r.value.count)) + le(r.revision) + le(r.expiry) + le(UInt16(r.key.count))
    body += [r.flags, 0, 0, 0, 0, 0] + r.key + r.value
    var out = le(ReferenceCRC32C.checksum(body)) + body
    while out.count % 8 != 0 { out.append(0) }
    return out
}

/// The reference reader: (applied state, revision, end of the log, whether the tail was damaged).
func referenceReplay(_ file: [UInt8], baseRevision: UInt64) -> (state: [[UInt8]: Record], revision: UInt64, end: Int, damaged: Bool) {
    var state: [[UInt8]: Record] = [:]
    var revision = baseRevision
    var offset = 32
    var pending: [(Int, Record)] = []
    var damaged = false
    while true {
        let available = file.count - offset
        if available < 32 {
            damaged = !file[offset...].allSatisfy { $0 == 0 }
            break
        }
        if file[offset..<(offset + 32)].allSatisfy({ $0 == 0 }) { break }
        let valueBytes = Int(load(file, offset + 4, UInt32.self))
        let keyBytes = Int(load(file, offset + 24, UInt16.self))
        let flags = file[offset + 26]
        let reservedZero = file[(offset + 27)..<(offset + 32)].allSatisfy { $0 == 0 } && flags & ~3 == 0
        let size = (32 + keyBytes + valueBytes + 7) / 8 * 8
        guard keyBytes > 0, valueBytes <= Int(Int32.max), reservedZero, size <= available,
              load(file, offset, UInt32.self) == ReferenceCRC32C.checksum(file[(offset + 4)..<(offset + 32 + keyBytes + valueBytes)])
        else {
            damaged = true
            break
        }
        let key = Array(file[(offset + 32)..<(offset + 32 + keyBytes)])
        let value = Array(file[(offset + 32 + keyBytes)..<(offset + 32 + keyBytes + valueBytes)])
        let r = Record(key: key, value: value, revision: load(file, offset + 8, UInt64.self), expiry: load(file, offset + 16, Int64.self), flags: flags)
        pending.append((offset, r))
        offset += size
        if flags & 2 == 0 {
            for (_, p) in pending {
                revision = max(revision, p.revision)
                if p.flags & 1 != 0 { state[p.key] = nil } else { state[p.key] = p }
            }
            pending = []
        }
    }
    if let first = pending.first {
        offset = first.0
        damaged = true
    }
    return (state, revision, offset, damaged)
}

let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
let root: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    var template = Array("\(base)/laminar-fuzz-store-XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { fatalError("mkdtemp failed") }
    return String(cString: p)
}()
atexit {
    // Leave no directory behind (libFuzzer exits through exit()).
    _ = rmdirTree(root)
}

@discardableResult
func rmdirTree(_ path: String) -> Int32 {
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            unlink(path + "/" + name)
        }
        closedir(dir)
    }
    return rmdir(path)
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0)
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(n == bytes.count)
    close(fd)
}

func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0)
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        precondition(n >= 0)
        if n == 0 { return out }
        out += buffer[0..<n]
    }
}

let options: LogStoreOptions = {
    var options = LogStoreOptions()
    options.fsync = .never
    options.dataBytesMax = 8 << 20
    options.compactionBytesMin = Int.max
    options.logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    return options
}()

func entries(_ store: LogStore) -> [[UInt8]: StoreEntry] {
    var out: [[UInt8]: StoreEntry] = [:]
    for e in store.snapshot().entries { out[e.key] = e }
    return out
}

func check(_ raw: UnsafeRawBufferPointer) {
    var input = FuzzInput(raw)
    let mode = input.byte()
    let baseRevision = UInt64(input.byte())
    var file = Array("LMNRDATA".utf8) + le(UInt32(1)) + [0, 0, 0, 0] + le(UInt64(0x1234_5678_9ABC_DEF0)) + le(baseRevision)
    let headerCRC = ReferenceCRC32C.checksum(file[0..<12] + file[16..<32])
    file.replaceSubrange(12..<16, with: le(headerCRC))
    for i in 0..<Int(mode & 7) {
        let keyBytes = 1 + input.int(upTo: 15)
        let valueBytes = input.int(upTo: 40)
        let flags = input.byte() & 3
        var key = input.take(keyBytes)
        if key.isEmpty { key = [UInt8(i)] }
        let value = flags & 1 != 0 ? [] : input.take(valueBytes)
        file += encode(Record(key: key, value: value, revision: baseRevision + UInt64(i) + 1, expiry: 0, flags: flags))
    }
    file += [UInt8](repeating: 0, count: 8 * input.int(upTo: 8))
    var tail = input.rest()
    if mode & 0x80 != 0 && tail.count >= 32 {
        let keyBytes = Int(load(tail, 24, UInt16.self)), valueBytes = Int(load(tail, 4, UInt32.self))
        if 32 + keyBytes + valueBytes <= tail.count {
            tail.replaceSubrange(0..<4, with: le(ReferenceCRC32C.checksum(tail[4..<(32 + keyBytes + valueBytes)])))
        }
    }
    file += tail

    let dir = root + "/d"
    _ = rmdirTree(dir)
    precondition(mkdir(dir, 0o755) == 0)
    defer { rmdirTree(dir) }
    let path = dir + "/data.lmnr"
    writeFile(path, file)

    // What the store will see: the file rounded up to whole pages with zeros.
    var padded = file
    padded += [UInt8](repeating: 0, count: (pageBytes - file.count % pageBytes) % pageBytes)
    let expected = referenceReplay(padded, baseRevision: baseRevision)

    let store: LogStore
    do { store = try LogStore.open(directory: dir, options: options) } catch {
        preconditionFailure("open failed: \(error)")
    }
    store.checkInvariants()
    let found = entries(store)
    precondition(found.count == expected.state.count, "\(found.count) keys, expected \(expected.state.count)")
    for (key, r) in expected.state {
        guard let e = found[key] else { preconditionFailure("key \(key) missing") }
        precondition(e.value == r.value && e.version == r.revision && e.expiresAtMs == (r.expiry == 0 ? nil : r.expiry), "key \(key): \(e) vs \(r)")
    }
    precondition(store.revision == expected.revision, "revision \(store.revision), expected \(expected.revision)")
    precondition(store.sizeBytes == expected.end, "log ends at \(store.sizeBytes), expected \(expected.end)")
    precondition(store.stats.recoveryTruncatedBytes >= 0)
    // Truncated: nothing but zeros after the log, on disk.
    let onDisk = readFile(path)
    precondition(onDisk.count >= expected.end)
    if let bad = onDisk[expected.end...].firstIndex(where: { $0 != 0 }) {
        preconditionFailure("non-zero byte at \(bad) after the log end \(expected.end) (damaged: \(expected.damaged))")
    }

    // A write after recovery, then reopen: the same plus the write, nothing truncated.
    let newKey: [UInt8] = [0xFF, 0xFE] + le(UInt64(found.count))
    let newRevision: Revision
    do { newRevision = try store.put(newKey, [1, 2, 3], condition: .always, expiresAtMs: nil) } catch {
        // A CRC-valid record can carry the last revision there is: writes are refused, not trapped.
        precondition(expected.revision == Revision.max && error as? StoreError == .revisionsExhausted, "put after recovery failed: \(error)")
        try? store.close()
        return
    }
    precondition(newRevision > expected.revision)
    do { try store.close() } catch { preconditionFailure("close failed: \(error)") }
    // Without the hint, so the log itself is replayed again.
    unlink(dir + "/index.hint")
    let reopened: LogStore
    do { reopened = try LogStore.open(directory: dir, options: options) } catch {
        preconditionFailure("reopen failed: \(error)")
    }
    reopened.checkInvariants()
    precondition(reopened.stats.recoveryTruncatedBytes == 0, "second open truncated \(reopened.stats.recoveryTruncatedBytes) bytes")
    var after = entries(reopened)
    precondition(after[newKey]?.value == [1, 2, 3] && after[newKey]?.version == newRevision, "the write after recovery was lost")
    after[newKey] = nil
    if found[newKey] == nil {
        precondition(after == found, "reopening changed the state")
    }
    precondition(reopened.revision == newRevision)
    try? reopened.close()
}

runFuzzer(check)
