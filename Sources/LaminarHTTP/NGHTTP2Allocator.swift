import CNGHTTP2
import Glibc

/// The memory nghttp2 allocates for one loop's server sessions (`nghttp2_mem`): blocks of up to
/// `classBytesMax` bytes are kept on free lists by size class (64-byte steps) and handed out again,
/// larger ones go straight to malloc. nghttp2 allocates about five blocks per request (the stream,
/// header buffers, the outbound HEADERS item and its fields), and with hundreds of streams per
/// loop glibc's per-thread cache (7 blocks per size) overflows into its slow paths: malloc and
/// free of those blocks cost ~1 350 instructions per request under callgrind.
///
/// Every block carries a 16-byte header before it with its capacity, so `free` and `realloc`
/// know its class. Each class keeps at most `keptBytesPerClassMax` of free blocks (the rest go
/// back to malloc: `keptBlocksMax`), so what a loop keeps is bounded: 64 classes × 512 KiB,
/// 32 MiB at the very worst, a few MiB in practice (nghttp2's blocks fall in a few small classes).
///
/// Thread ownership: the loop thread (nghttp2 allocates only inside session calls, which run
/// there). Lifetime: the loop's; every session using it is deleted before it is (`EventLoop`
/// closes its connections before it goes away).
final class NGHTTP2Allocator {
    static let classStep = 64
    static let classBytesMax = 4096
    static let keptBytesPerClassMax = 512 << 10
    private static let headerBytes = 16
    private static let classCount = classBytesMax / classStep

    /// One class's free blocks (the block's first word links to the next) and how many.
    private struct FreeList {
        var head: UnsafeMutableRawPointer?
        var count: Int
        /// `keptBlocksMax` of the class.
        let limit: Int
    }

    /// Free blocks a class of `classBytes` keeps at most.
    static func keptBlocksMax(classBytes: Int) -> Int { keptBytesPerClassMax / classBytes }

    /// The free lists, one per class: nghttp2's `mem_user_data`. The callbacks work on this
    /// pointer alone (no Swift object, so no retain and release per call).
    private let lists: UnsafeMutablePointer<FreeList>

    init() {
        lists = .allocate(capacity: Self.classCount)
        for c in 0..<Self.classCount {
            (lists + c).initialize(to: FreeList(head: nil, count: 0, limit: Self.keptBlocksMax(classBytes: (c + 1) * Self.classStep)))
        }
    }

    deinit {
        for c in 0..<Self.classCount {
            var block = lists[c].head
            while let b = block {
                block = b.load(as: UnsafeMutableRawPointer?.self)
                Glibc.free(b - Self.headerBytes)
            }
        }
        lists.deallocate()
    }

    /// The `nghttp2_mem` for `nghttp2_session_server_new3` (nghttp2 copies it into the session).
    var mem: nghttp2_mem {
        nghttp2_mem(mem_user_data: UnsafeMutableRawPointer(lists),
                    malloc: { size, lists in NGHTTP2Allocator.allocate(size, lists!.assumingMemoryBound(to: FreeList.self)) },
                    free: { pointer, lists in NGHTTP2Allocator.free(pointer, lists!.assumingMemoryBound(to: FreeList.self)) },
                    calloc: { count, size, lists in NGHTTP2Allocator.allocateZeroed(count, size, lists!.assumingMemoryBound(to: FreeList.self)) },
                    realloc: { pointer, size, lists in NGHTTP2Allocator.reallocate(pointer, size, lists!.assumingMemoryBound(to: FreeList.self)) })
    }

    @inline(__always)
    private static func capacity(of block: UnsafeMutableRawPointer) -> Int {
        (block - headerBytes).load(as: Int.self)
    }

    @inline(__always)
    private static func allocate(_ size: Int, _ lists: UnsafeMutablePointer<FreeList>) -> UnsafeMutableRawPointer? {
        if size <= classBytesMax {
            let c = size == 0 ? 0 : (size - 1) / classStep
            if let block = lists[c].head {
                lists[c].head = block.load(as: UnsafeMutableRawPointer?.self)
                lists[c].count -= 1
                return block
            }
            return fresh((c + 1) * classStep)
        }
        return fresh(size)
    }

    private static func fresh(_ capacity: Int) -> UnsafeMutableRawPointer? {
        guard let raw = Glibc.malloc(capacity + headerBytes) else { return nil }
        raw.storeBytes(of: capacity, as: Int.self)
        return raw + headerBytes
    }

    @inline(__always)
    private static func free(_ pointer: UnsafeMutableRawPointer?, _ lists: UnsafeMutablePointer<FreeList>) {
        guard let block = pointer else { return }
        let capacity = capacity(of: block)
        if capacity <= classBytesMax {
            let c = capacity / classStep - 1
            if lists[c].count < lists[c].limit {
                block.storeBytes(of: lists[c].head, as: UnsafeMutableRawPointer?.self)
                lists[c].head = block
                lists[c].count += 1
                return
            }
        }
        Glibc.free(block - headerBytes)
    }

    private static func allocateZeroed(_ count: Int, _ size: Int, _ lists: UnsafeMutablePointer<FreeList>) -> UnsafeMutableRawPointer? {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, let block = allocate(bytes, lists) else { return nil }
        memset(block, 0, bytes)
        return block
    }

    private static func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int, _ lists: UnsafeMutablePointer<FreeList>) -> UnsafeMutableRawPointer? {
        guard let old = pointer else { return allocate(size, lists) }
        let capacity = capacity(of: old)
        if size <= capacity { return old }
        guard let block = allocate(size, lists) else { return nil }
        memcpy(block, old, capacity)
        free(old, lists)
        return block
    }
}
