import CCRC32C

/// The byte layout of the data file: a 32-byte file header, then records back to back.
/// All integers are little-endian. The full reference is `proto-docs/storage-format.md`.
///
/// File header:
/// ```
///  0  8  magic "LMNRDATA"
///  8  4  format version (1)
/// 12  4  CRC-32C of bytes 0..<12 and 16..<32
/// 16  8  generation: random, new for every file written (hint files name it)
/// 24  8  base revision: the store revision when the file was written (revisions never go back,
///        even when compaction drops the record that carried the highest one)
/// ```
///
/// Record (`headerBytes` + key + value, zero-padded to a multiple of 8):
/// ```
///  0  4  CRC-32C of bytes 4..<(32 + key + value)
///  4  4  value length
///  8  8  revision
/// 16  8  expiry, ms since the epoch (0: none)
/// 24  2  key length (1...)
/// 26  1  flags: 1 tombstone, 2 batch continues (more records of the same atomic batch follow)
/// 27  5  zero
/// 32     key bytes, value bytes, padding
/// ```
/// A record is valid when its lengths fit in the file and its CRC matches. An all-zero header is
/// the clean end of the log (the file is preallocated with zeros).
@usableFromInline
enum RecordFormat {
    static let fileMagic: [UInt8] = Array("LMNRDATA".utf8)
    static let formatVersion: UInt32 = 1
    static let fileHeaderBytes = 32
    @usableFromInline static let headerBytes = 32
    static let alignment = 8

    static let flagTombstone: UInt8 = 1
    static let flagBatchContinues: UInt8 = 2

    /// Size of a record on disk, padding included.
    @inline(__always)
    static func paddedSize(keyBytes: Int, valueBytes: Int) -> Int {
        (headerBytes + keyBytes + valueBytes + alignment - 1) & ~(alignment - 1)
    }

    /// Writes a whole record at `p` (which has room for `paddedSize`) and returns its padded size.
    @inline(__always)
    static func write(
        to p: UnsafeMutableRawPointer, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
        revision: Revision, expiresAtMs: Int64, flags: UInt8
    ) -> Int {
        let size = paddedSize(keyBytes: key.count, valueBytes: value.count)
        // The padding (under 8 bytes, at the end): the record's last word zeroed first, the key
        // and value then copied over its start (a `memset` call cost ~17 instructions a record).
        p.storeBytes(of: 0, toByteOffset: size - 8, as: UInt64.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: value.count).littleEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: revision.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: expiresAtMs.littleEndian, toByteOffset: 16, as: Int64.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: key.count).littleEndian, toByteOffset: 24, as: UInt16.self)
        p.storeBytes(of: flags, toByteOffset: 26, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: 27, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: 28, as: UInt32.self)
        copy(key, to: p + headerBytes)
        if value.count > 0 { (p + headerBytes + key.count).copyMemory(from: value.baseAddress!, byteCount: value.count) }
        let end = headerBytes + key.count + value.count
        let crc = laminar_crc32c(0, p + 4, end - 4)
        p.storeBytes(of: crc.littleEndian, toByteOffset: 0, as: UInt32.self)
        return size
    }

    /// Copies `bytes` to `to`: one of 8 to 16 bytes (most keys) with two word moves that may
    /// overlap, others with `memcpy` (a call cost ~15 instructions a key).
    @inline(__always)
    static func copy(_ bytes: UnsafeRawBufferPointer, to: UnsafeMutableRawPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        let from = bytes.baseAddress!
        if n >= 8 && n <= 16 {
            let head = from.loadUnaligned(as: UInt64.self)
            let tail = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            to.storeBytes(of: head, as: UInt64.self)
            to.storeBytes(of: tail, toByteOffset: n - 8, as: UInt64.self)
        } else {
            to.copyMemory(from: from, byteCount: n)
        }
    }

    @inlinable @inline(__always) static func valueLength(_ p: UnsafeRawPointer) -> Int {
        Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
    }
    @inlinable @inline(__always) static func revision(_ p: UnsafeRawPointer) -> Revision {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }
    @inline(__always) static func expiresAtMs(_ p: UnsafeRawPointer) -> Int64 {
        Int64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: Int64.self))
    }
    @inlinable @inline(__always) static func keyLength(_ p: UnsafeRawPointer) -> Int {
        Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt16.self)))
    }
    @inline(__always) static func flags(_ p: UnsafeRawPointer) -> UInt8 {
        p.load(fromByteOffset: 26, as: UInt8.self)
    }
    @inline(__always) static func key(_ p: UnsafeRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: p + headerBytes, count: keyLength(p))
    }
    @inlinable @inline(__always) static func value(_ p: UnsafeRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: p + headerBytes + keyLength(p), count: valueLength(p))
    }
    @inline(__always) static func paddedSize(_ p: UnsafeRawPointer) -> Int {
        paddedSize(keyBytes: keyLength(p), valueBytes: valueLength(p))
    }

    /// What is found at an offset of the log while scanning it.
    enum Scan: Equatable {
        /// A valid record of this padded size.
        case record(size: Int)
        /// An all-zero header: the log ends here.
        case end
        /// Not a valid record: cut short by the end of the file, or its CRC or fields are wrong.
        case damaged(reason: String)
    }

    /// Checks the record at `p`, which has `available` bytes before the end of the file.
    static func scan(_ p: UnsafeRawPointer, available: Int, valueBytesMax: Int) -> Scan {
        if available < headerBytes {
            return isZero(p, count: available) ? .end : .damaged(reason: "header cut short")
        }
        if isZero(p, count: headerBytes) { return .end }
        let keyBytes = keyLength(p)
        let valueBytes = valueLength(p)
        if keyBytes == 0 { return .damaged(reason: "zero key length") }
        if valueBytes > valueBytesMax { return .damaged(reason: "value length \(valueBytes) out of range") }
        if p.load(fromByteOffset: 27, as: UInt8.self) != 0 || p.loadUnaligned(fromByteOffset: 28, as: UInt32.self) != 0
            || flags(p) & ~(flagTombstone | flagBatchContinues) != 0
        {
            return .damaged(reason: "reserved bits set")
        }
        let size = paddedSize(keyBytes: keyBytes, valueBytes: valueBytes)
        if size > available { return .damaged(reason: "record cut short") }
        let stored = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let actual = laminar_crc32c(0, p + 4, headerBytes + keyBytes + valueBytes - 4)
        if stored != actual { return .damaged(reason: "CRC mismatch") }
        return .record(size: size)
    }

    /// Writes the file header.
    static func writeFileHeader(to p: UnsafeMutableRawPointer, generation: UInt64, baseRevision: Revision) {
        for (i, byte) in fileMagic.enumerated() { p.storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
        p.storeBytes(of: formatVersion.littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: generation.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: baseRevision.littleEndian, toByteOffset: 24, as: UInt64.self)
        p.storeBytes(of: fileHeaderCRC(p).littleEndian, toByteOffset: 12, as: UInt32.self)
    }

    /// Reads the file header: `(generation, baseRevision)`, or why it is unreadable.
    static func readFileHeader(_ p: UnsafeRawPointer) -> Result<(generation: UInt64, baseRevision: Revision), HeaderError> {
        for (i, byte) in fileMagic.enumerated() where p.load(fromByteOffset: i, as: UInt8.self) != byte {
            return .failure(HeaderError(reason: "not a Laminar data file (bad magic)"))
        }
        let version = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        if version != formatVersion {
            return .failure(HeaderError(reason: "unsupported format version \(version)"))
        }
        let stored = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        if stored != fileHeaderCRC(p) { return .failure(HeaderError(reason: "file header CRC mismatch")) }
        return .success((
            UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
            UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        ))
    }

    struct HeaderError: Error { var reason: String }

    private static func fileHeaderCRC(_ p: UnsafeRawPointer) -> UInt32 {
        laminar_crc32c(laminar_crc32c(0, p, 12), p + 16, 16)
    }

    private static func isZero(_ p: UnsafeRawPointer, count: Int) -> Bool {
        for i in 0..<count where p.load(fromByteOffset: i, as: UInt8.self) != 0 { return false }
        return true
    }
}
