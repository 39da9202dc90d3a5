import LaminarFormats

/// The binary form of a run of result rows with consecutive `seq`s, stored as one value under
/// `_results/{name}/{first seq}` (`ReservedKeys.resultSlice`): the rows one reactor round emitted
/// for a stream (or a part of them, `ResultSlice.bytesMax`). One store write per slice instead
/// of one per row; a row is found by its index (`seq − first`) through the offset table.
///
/// Layout, version 1 (little-endian; `proto-docs/storage-format.md`):
/// `u8 1`, `u32` row count n, the column layout rows are rendered with (`u32` count, per column
/// its name as `u32` length + bytes and `u8` 1 if integer; then the key member's name, same
/// string form), `u32` × (n + 1) row offsets from the start of the value (the last is the end),
/// then the rows. A row: `u8` flags (1 has key, 2 delete, 4 final, 8 before, 16 JSON), the key
/// (`u32` length + bytes) if it has one, `i64` window start, `i64` window end, then either the
/// row's JSON line (flag 16: a row stored by an earlier version, sent as it is, never when
/// empty; `u32` length + bytes) or `u32` value count and the values (`f64`, NaN for null; a delete has none) and, with
/// flag 8, as many `before` values.
///
/// Invariant (checked on read): offsets increase and stay inside the value; a reader that finds
/// otherwise treats the slice as unreadable (rows missing), never traps.
enum ResultSlice {
    static let version: UInt8 = 1
    /// A slice is closed (written) once its rows take this many bytes, so that a slice of rows
    /// with long keys stays well below the store's value bound and reads stay cheap.
    static let bytesMax = 1 << 20

    enum Flag {
        static let hasKey: UInt8 = 1
        static let delete: UInt8 = 2
        static let final: UInt8 = 4
        static let before: UInt8 = 8
        static let json: UInt8 = 16
    }

    /// Builds one slice: rows appended in `seq` order, then `finish`. `reset` starts the next
    /// slice in the same memory.
    struct Builder {
        /// The rows' bytes are `rows[0..<length]`; `rows` only grows (by doubling), so that a
        /// row is written in place with no append call per field.
        private var rows: [UInt8] = []
        private var length = 0
        private(set) var offsets: [UInt32] = []
        private(set) var firstSeq: UInt64

        init(firstSeq: UInt64) { self.firstSeq = firstSeq }

        /// Empties the builder for a slice starting at `firstSeq`, keeping its memory.
        mutating func reset(firstSeq: UInt64) {
            self.firstSeq = firstSeq
            length = 0
            offsets.removeAll(keepingCapacity: true)
        }

        /// Makes room for `n` more bytes after the rows; returns where they start (the caller
        /// writes every one of them).
        @inline(__always)
        private mutating func room(_ n: Int) -> Int {
            let at = length
            if rows.count < at + n { rows.append(contentsOf: [UInt8](repeating: 0, count: Swift.max(at + n - rows.count, rows.count))) }
            length = at + n
            return at
        }

        private mutating func put(_ bytes: UnsafeRawBufferPointer) {
            let at = room(bytes.count)
            if !bytes.isEmpty { rows.withUnsafeMutableBytes { ($0.baseAddress! + at).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) } }
        }

        /// A row of `emit: final` (no op, not final, no `before`) from its parts in place: the
        /// same bytes `append` writes for such a row.
        mutating func append(key: UnsafeRawBufferPointer?, startMs: Int64, endMs: Int64, values: UnsafeBufferPointer<Double>) {
            let keyBytes = key.map { 4 + $0.count } ?? 0
            // The row's room in one step, then its fields stored in place (no copy call per field).
            let at = room(1 + keyBytes + 20 + 8 * values.count)
            offsets.append(UInt32(at))
            rows.withUnsafeMutableBytes { b in
                var p = b.baseAddress! + at
                p.storeBytes(of: key != nil ? Flag.hasKey : 0, as: UInt8.self)
                p += 1
                if let key {
                    p.storeBytes(of: UInt32(key.count).littleEndian, as: UInt32.self)
                    // Short keys (the usual) by word stores, not a copy call.
                    let n = key.count, q = key.baseAddress
                    if n >= 8 && n <= 16 {
                        (p + 4).storeBytes(of: q!.loadUnaligned(as: UInt64.self), as: UInt64.self)
                        (p + 4 + n - 8).storeBytes(of: q!.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), as: UInt64.self)
                    } else if n > 0 {
                        (p + 4).copyMemory(from: q!, byteCount: n)
                    }
                    p += keyBytes
                }
                p.storeBytes(of: UInt64(bitPattern: startMs).littleEndian, as: UInt64.self)
                (p + 8).storeBytes(of: UInt64(bitPattern: endMs).littleEndian, as: UInt64.self)
                (p + 16).storeBytes(of: UInt32(values.count).littleEndian, as: UInt32.self)
                p += 20
                for v in values {
                    p.storeBytes(of: v.bitPattern.littleEndian, as: UInt64.self)
                    p += 8
                }
            }
        }

        /// Calls `body` with the key (in place), window start and end of each row appended, in order.
        func forEachHead(_ body: (UnsafeRawBufferPointer?, Int64, Int64) -> Void) {
            rows.withUnsafeBytes { all in
                let bytes = UnsafeRawBufferPointer(rebasing: all[0..<length])
                for o in offsets {
                    var c = Cursor(bytes: bytes, at: Int(o))
                    let flags = c.u8()!
                    let key = flags & Flag.hasKey != 0 ? c.blob()! : nil
                    body(key, c.i64()!, c.i64()!)
                }
            }
        }

        var count: Int { offsets.count }
        var isEmpty: Bool { offsets.isEmpty }
        var isFull: Bool { length >= ResultSlice.bytesMax }

        mutating func append(_ row: WindowResult) {
            offsets.append(UInt32(length))
            var flags: UInt8 = 0
            if row.key != nil { flags |= Flag.hasKey }
            if row.op == .delete { flags |= Flag.delete }
            if row.isFinal { flags |= Flag.final }
            if row.op == .delete, row.before != nil { flags |= Flag.before }
            appendU8(flags)
            if let key = row.key { appendU32(UInt32(key.count)); key.withUnsafeBytes { put($0) } }
            appendU64(UInt64(bitPattern: row.startMs))
            appendU64(UInt64(bitPattern: row.endMs))
            let values = row.op == .delete ? [] : row.values
            appendU32(UInt32(values.count))
            for v in values { appendU64(v.bitPattern) }
            if flags & Flag.before != 0, let before = row.before {
                precondition(before.count == values.count || values.isEmpty, "before has the columns' count")
                appendU32(UInt32(before.count))
                for v in before { appendU64(v.bitPattern) }
            }
        }

        /// A row kept as its JSON line (stored by an earlier version).
        mutating func appendJSON(key: [UInt8]?, startMs: Int64, endMs: Int64, isDelete: Bool, json: ArraySlice<UInt8>) {
            offsets.append(UInt32(length))
            appendU8(Flag.json | (key != nil ? Flag.hasKey : 0) | (isDelete ? Flag.delete : 0))
            if let key { appendU32(UInt32(key.count)); key.withUnsafeBytes { put($0) } }
            appendU64(UInt64(bitPattern: startMs))
            appendU64(UInt64(bitPattern: endMs))
            appendU32(UInt32(json.count))
            json.withUnsafeBytes { put($0) }
        }

        /// The slice's value: header, offsets, rows.
        func finish(columns: WindowResult.Columns) -> [UInt8] {
            var value: [UInt8] = []
            finish(columns: columns, into: &value)
            return value
        }

        /// The same written over `value` (its memory reused).
        func finish(columns: WindowResult.Columns, into value: inout [UInt8]) {
            var w = ByteWriter()
            swap(&w.bytes, &value)
            w.bytes.removeAll(keepingCapacity: true)
            w.bytes.reserveCapacity(64 + columns.names.count * 16 + 4 * (offsets.count + 1) + length)
            w.u8(ResultSlice.version)
            w.u32(UInt32(offsets.count))
            w.u32(UInt32(columns.names.count))
            for (name, integer) in zip(columns.names, columns.integer) { w.blob(name); w.u8(integer ? 1 : 0) }
            w.string(columns.keyName)
            let base = w.bytes.count + 4 * (offsets.count + 1)
            // The offsets in one block (a `u32` call per row was most of the cost of a slice).
            let at = w.bytes.count
            w.bytes.append(contentsOf: [UInt8](repeating: 0, count: 4 * (offsets.count + 1)))
            w.bytes.withUnsafeMutableBytes { b in
                var p = b.baseAddress! + at
                for o in offsets { p.storeBytes(of: (UInt32(base) + o).littleEndian, as: UInt32.self); p += 4 }
                p.storeBytes(of: UInt32(base + length).littleEndian, as: UInt32.self)
            }
            w.bytes.append(contentsOf: rows[0..<length])
            swap(&w.bytes, &value)
        }

        private mutating func appendU8(_ v: UInt8) { withUnsafeBytes(of: v) { put($0) } }
        private mutating func appendU32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { put($0) } }
        private mutating func appendU64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { put($0) } }
    }

    /// What an index needs of a row: its window, and whether it deletes the window's row. The
    /// key's bytes are in place in the slice (valid while the slice's bytes are).
    struct RowHead {
        var key: UnsafeRawBufferPointer?
        var startMs: Int64
        var endMs: Int64
        var isDelete: Bool
    }

    /// A slice read in place (the bytes belong to the caller's closure): header checked once.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let count: Int
        let columns: WindowResult.Columns
        private let offsetsAt: Int

        /// `nil` when the bytes are not a slice of a known version (damaged or foreign).
        init?(_ bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
            var c = Cursor(bytes: bytes, at: 0)
            guard c.u8() == ResultSlice.version, let n = c.u32(), let m = c.u32(), m <= 4096 else { return nil }
            var names: [[UInt8]] = []
            var integer: [Bool] = []
            for _ in 0..<m {
                guard let name = c.blob(), let i = c.u8() else { return nil }
                names.append(Array(name))
                integer.append(i == 1)
            }
            guard let keyName = c.blob() else { return nil }
            count = Int(n)
            offsetsAt = c.at
            guard count < bytes.count, offsetsAt + 4 * (count + 1) <= bytes.count else { return nil }
            columns = WindowResult.Columns(names: names, integer: integer, keyName: String(decoding: keyName, as: UTF8.self))
            guard offset(count) == bytes.count else { return nil }
        }

        private func offset(_ i: Int) -> Int {
            Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offsetsAt + 4 * i, as: UInt32.self)))
        }

        /// The row at `i` (`0..<count`), as a cursor over its bytes; `nil` if the offsets are wrong.
        private func row(_ i: Int) -> Cursor? {
            guard i >= 0, i < count else { return nil }
            let start = offset(i), end = offset(i + 1)
            guard start >= offsetsAt + 4 * (count + 1), start < end, end <= bytes.count else { return nil }
            return Cursor(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), at: 0)
        }

        func head(_ i: Int) -> RowHead? {
            guard var c = row(i), let flags = c.u8() else { return nil }
            var key: UnsafeRawBufferPointer? = nil
            if flags & Flag.hasKey != 0 {
                guard let k = c.blob() else { return nil }
                key = k
            }
            guard let start = c.i64(), let end = c.i64() else { return nil }
            return RowHead(key: key, startMs: start, endMs: end, isDelete: flags & Flag.delete != 0)
        }

        /// Whether every integer column's value is null or an `Int64` (a damaged value is not).
        private static func integersFit(_ values: [Double], _ integer: [Bool]) -> Bool {
            zip(values, integer).allSatisfy { v, i in !i || v.isNaN || (v >= -9.2e18 && v <= 9.2e18) }
        }

        /// The row's JSON line with its `seq`: as followers got it for a delete, else its stored
        /// form (no `op`, no `before`), as `GET …/results` and resumes send it.
        func json(_ i: Int, seq: UInt64) -> [UInt8]? {
            guard var c = row(i), let flags = c.u8() else { return nil }
            var key: [UInt8]? = nil
            if flags & Flag.hasKey != 0 {
                guard let k = c.blob() else { return nil }
                key = Array(k)
            }
            guard let start = c.i64(), let end = c.i64() else { return nil }
            if flags & Flag.json != 0 { return c.blob().flatMap { $0.isEmpty ? nil : Array($0) } }
            guard let values = c.doubles() else { return nil }
            let isDelete = flags & Flag.delete != 0
            var before: [Double]? = nil
            if flags & Flag.before != 0 {
                guard let b = c.doubles() else { return nil }
                before = b
            }
            guard values.count == columns.names.count || (isDelete && values.isEmpty),
                  before.map({ $0.count == columns.names.count }) ?? true,
                  Self.integersFit(values, columns.integer), Self.integersFit(before ?? [], columns.integer) else { return nil }
            var r = WindowResult(key: key, startMs: start, endMs: end, values: values, op: isDelete ? .delete : nil,
                                 before: before, isFinal: flags & Flag.final != 0)
            r.seq = seq
            return r.json(columns: columns, stored: !isDelete)
        }
    }

    /// Bounds-checked little-endian reads over bytes in place; `nil` past the end.
    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var at: Int

        mutating func u8() -> UInt8? {
            guard at < bytes.count else { return nil }
            defer { at += 1 }
            return bytes[at]
        }
        mutating func u32() -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            defer { at += 4 }
            return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        }
        mutating func i64() -> Int64? {
            guard at + 8 <= bytes.count else { return nil }
            defer { at += 8 }
            return Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int64.self))
        }
        mutating func blob() -> UnsafeRawBufferPointer? {
            guard let n = u32(), Int(n) <= bytes.count - at else { return nil }
            defer { at += Int(n) }
            return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + Int(n))])
        }
        mutating func doubles() -> [Double]? {
            guard let n = u32(), Int(n) <= (bytes.count - at) / 8 else { return nil }
            var out: [Double] = []
            out.reserveCapacity(Int(n))
            for _ in 0..<n { out.append(Double(bitPattern: UInt64(bitPattern: i64()!))) }
            return out
        }
    }
}
