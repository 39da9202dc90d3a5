#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLMDB
import LaminarStore

/// LMDB as the benchmark's peer: one environment, its main database, the same operations as the
/// LogStore side. Every LMDB return code is checked; a failure is a bug of the benchmark.
final class LMDBPeer {
    let env: OpaquePointer
    private(set) var dbi: MDB_dbi = 0
    let path: String

    /// Opens a fresh environment in `path` (an existing empty directory).
    init(path: String, writeMap: Bool, mapBytes: Int = 16 << 30) {
        var env: OpaquePointer?
        LMDBPeer.check(mdb_env_create(&env), "mdb_env_create")
        self.env = env!
        self.path = path
        LMDBPeer.check(mdb_env_set_mapsize(self.env, mapBytes), "mdb_env_set_mapsize")
        var flags = UInt32(MDB_NOSYNC) | UInt32(MDB_NOMETASYNC)
        if writeMap { flags |= UInt32(MDB_WRITEMAP) }
        LMDBPeer.check(mdb_env_open(self.env, path, flags, 0o644), "mdb_env_open")
        var txn: OpaquePointer?
        LMDBPeer.check(mdb_txn_begin(self.env, nil, 0, &txn), "mdb_txn_begin")
        LMDBPeer.check(mdb_dbi_open(txn, nil, 0, &dbi), "mdb_dbi_open")
        LMDBPeer.check(mdb_txn_commit(txn), "mdb_txn_commit")
    }

    deinit { mdb_env_close(env) }

    static func check(_ rc: Int32, _ what: String) {
        if rc != 0 { fatalError("\(what): \(String(cString: mdb_strerror(rc)))") }
    }

    @inline(__always)
    static func val(_ bytes: UnsafeRawBufferPointer) -> MDB_val {
        MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
    }

    /// Puts `keys.key(j)` for every `j`, `perTxn` puts per write transaction.
    func put(_ keys: KeyStream, value: UnsafeRawBufferPointer, perTxn: Int) {
        var v = LMDBPeer.val(value)
        var j = 0
        while j < keys.count {
            var txn: OpaquePointer?
            LMDBPeer.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
            let end = min(j + perTxn, keys.count)
            while j < end {
                var k = LMDBPeer.val(keys.key(j))
                LMDBPeer.check(mdb_put(txn, dbi, &k, &v, 0), "mdb_put")
                j += 1
            }
            LMDBPeer.check(mdb_txn_commit(txn), "mdb_txn_commit")
        }
    }

    /// Runs `body` in one read-only transaction.
    func read<R>(_ body: (OpaquePointer) -> R) -> R {
        var txn: OpaquePointer?
        LMDBPeer.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin(rdonly)")
        defer { mdb_txn_abort(txn) }
        return body(txn!)
    }

    /// Zero-copy gets of every key of `keys`; sums the first and last byte of each value.
    func gets(_ keys: KeyStream) -> UInt64 {
        read { txn in
            var sum: UInt64 = 0
            var v = MDB_val()
            for j in 0..<keys.count {
                var k = LMDBPeer.val(keys.key(j))
                let rc = mdb_get(txn, dbi, &k, &v)
                precondition(rc == 0, "lmdb: key missing")
                let p = v.mv_data!
                sum &+= UInt64(p.load(as: UInt8.self)) &+ UInt64(p.load(fromByteOffset: v.mv_size - 1, as: UInt8.self))
            }
            return sum
        }
    }

    /// Prefix scans (8-byte prefixes) of at most `limit` keys with a cursor, zero-copy; returns
    /// the keys seen in `keysSeen` and a checksum. With `page`, each scan copies its keys,
    /// values and versions (0) into a fresh `ScanPage`, as the store's `prefixPage` does, and the
    /// checksum reads the page.
    func scans(_ prefixes: [UInt64], limit: Int, page: Bool = false, keysSeen: inout Int) -> UInt64 {
        var seen = 0
        let sum: UInt64 = read { txn in
            var cursor: OpaquePointer?
            LMDBPeer.check(mdb_cursor_open(txn, dbi, &cursor), "mdb_cursor_open")
            defer { mdb_cursor_close(cursor) }
            var sum: UInt64 = 0
            for prefix in prefixes {
                var bigEndian = prefix.bigEndian
                withUnsafeMutableBytes(of: &bigEndian) { prefixBytes in
                    var k = MDB_val(mv_size: 8, mv_data: prefixBytes.baseAddress)
                    var v = MDB_val()
                    var rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE)
                    var n = 0
                    var copied = ScanPage(limit: page ? limit : 0)
                    while rc == 0 && n < limit && k.mv_size >= 8
                        && memcmp(k.mv_data!, prefixBytes.baseAddress!, 8) == 0
                    {
                        if page {
                            copied.append(
                                key: UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                                value: UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size), version: 0, expiresAtMs: 0)
                        } else {
                            let p = v.mv_data!
                            sum &+= UInt64(p.load(as: UInt8.self)) &+ UInt64(p.load(fromByteOffset: v.mv_size - 1, as: UInt8.self))
                        }
                        n += 1
                        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
                    }
                    for e in copied { sum &+= UInt64(e.value.first!) &+ UInt64(e.value.last!) }
                    seen += n
                }
            }
            return sum
        }
        keysSeen = seen
        return sum
    }

    var entryCount: Int {
        read { txn in
            var stat = MDB_stat()
            LMDBPeer.check(mdb_stat(txn, dbi, &stat), "mdb_stat")
            return stat.ms_entries
        }
    }
}
