import CLinux
import CNGHTTP2

/// The memory nghttp2 allocates for one loop's server sessions (`nghttp2_mem`): blocks of up to
/// `classBytesMax` bytes are kept on free lists by size class (64-byte steps) and handed out again,
/// larger ones go straight to malloc. nghttp2 allocates about five blocks per request (the stream,
/// header buffers, the outbound HEADERS item and its fields), and with hundreds of streams per
/// loop glibc's per-thread cache (7 blocks per size) overflows into its slow paths: malloc and
/// free of those blocks cost ~1 350 instructions per request under callgrind.
///
/// Every block carries a 16-byte header before it with its capacity, so `free` and `realloc`
/// know its class (CLinux/block_pool.c). Each class keeps at most `keptBytesPerClassMax` of free
/// blocks (the rest go back to malloc: `keptBlocksMax`), so what a loop keeps is bounded: 64 classes × 512 KiB,
/// 32 MiB at the very worst, a few MiB in practice (nghttp2's blocks fall in a few small classes).
///
/// Thread ownership: the loop thread (nghttp2 allocates only inside session calls, which run
/// there). Lifetime: the loop's; every session using it is deleted before it is (`EventLoop`
/// closes its connections before it goes away).
final class NGHTTP2Allocator {
    static let classStep = 64
    static let classBytesMax = 4096
    static let keptBytesPerClassMax = 512 << 10

    /// Free blocks a class of `classBytes` keeps at most.
    static func keptBlocksMax(classBytes: Int) -> Int { keptBytesPerClassMax / classBytes }

    /// The pool (CLinux/block_pool.c): nghttp2's `mem_user_data`. Its functions are C, a few
    /// instructions per call (as Swift closures the same free lists cost ~380 instructions per
    /// request under callgrind, for ~13 calls).
    private let pool: UnsafeMutableRawPointer

    init() {
        guard let pool = CLinux_block_pool_create(Self.classStep, Self.classBytesMax, Self.keptBytesPerClassMax) else {
            preconditionFailure("out of memory for the nghttp2 block pool")
        }
        self.pool = pool
    }

    deinit { CLinux_block_pool_destroy(pool) }

    /// The `nghttp2_mem` for `nghttp2_session_server_new3` (nghttp2 copies it into the session).
    var mem: nghttp2_mem {
        nghttp2_mem(mem_user_data: pool, malloc: CLinux_block_pool_malloc, free: CLinux_block_pool_free,
                    calloc: CLinux_block_pool_calloc, realloc: CLinux_block_pool_realloc)
    }
}
