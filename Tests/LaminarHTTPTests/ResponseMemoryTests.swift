import CNGHTTP2
import Glibc
import Testing
@testable import LaminarHTTP

/// The HTTP/2 response path's reused memory: `ResponseFields` (header fields packed for
/// nghttp2_submit_response) and `NGHTTP2Allocator` (nghttp2's blocks on free lists).
@Suite struct ResponseMemoryTests {
    private static func text(_ pointer: UnsafeMutablePointer<UInt8>, _ count: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    private static func pairs(_ fields: borrowing ResponseFields) -> [String] {
        (0..<fields.count).map { i in
            let nv = fields.fields[i]
            return text(nv.name, nv.namelen) + ": " + text(nv.value, nv.valuelen)
        }
    }

    @Test func fieldsAreWrittenInOrderAndReused() {
        var fields = ResponseFields()
        fields.begin(fieldCount: 4, byteCount: 200)
        fields.add(":status", decimal: 200)
        fields.add("content-type", "application/octet-stream")
        fields.add("etag", quotedDecimal: 18_446_744_073_709_551_615)
        fields.add("content-length", decimal: 0)
        #expect(Self.pairs(fields) == [":status: 200", "content-type: application/octet-stream",
                                       "etag: \"18446744073709551615\"", "content-length: 0"])
        // A second response reuses the block; one larger than it grows it.
        let long = String(repeating: "x", count: 5000)
        fields.begin(fieldCount: 20, byteCount: 5200)
        fields.add(":status", decimal: 404)
        for i in 0..<18 { fields.add("x-\(i)", i == 17 ? long : "é\(i)") }
        let written = Self.pairs(fields)
        #expect(written.count == 19 && written[0] == ":status: 404" && written[1] == "x-0: é0")
        #expect(written[18] == "x-17: " + long)
    }

    @Test func decimalsOfEveryLength() {
        var buffer = [UInt8](repeating: 0, count: 20)
        // The smallest and the largest number of each length, 0 and UInt64.max.
        var values: [UInt64] = [0, .max]
        var power: UInt64 = 1
        for _ in 1...19 {
            values.append(power)
            values.append(power &* 10 &- 1)
            power &*= 10
        }
        for value in values {
            let n = buffer.withUnsafeMutableBufferPointer { ResponseFields.write(decimal: value, to: $0.baseAddress!) }
            #expect(String(decoding: buffer[..<n], as: UTF8.self) == String(value))
        }
    }

    @Test func allocatorReusesBlocksAndKeepsContents() {
        let allocator = NGHTTP2Allocator()
        let mem = allocator.mem
        let a = mem.malloc!(100, mem.mem_user_data)!
        memset(a, 0xAB, 100)
        mem.free!(a, mem.mem_user_data)
        // The same class gets the block back; another class does not.
        let b = mem.malloc!(120, mem.mem_user_data)!
        #expect(b == a)
        let c = mem.malloc!(10, mem.mem_user_data)!
        #expect(c != a)
        // calloc zeroes a reused block.
        mem.free!(b, mem.mem_user_data)
        let z = mem.calloc!(4, 25, mem.mem_user_data)!.assumingMemoryBound(to: UInt8.self)
        #expect(UnsafeBufferPointer(start: z, count: 100).allSatisfy { $0 == 0 })
        // realloc keeps the bytes, within the block and across classes and past the classes.
        memset(z, 7, 100)
        let same = mem.realloc!(z, 128, mem.mem_user_data)!
        #expect(same == UnsafeMutableRawPointer(z))
        let moved = mem.realloc!(same, 1000, mem.mem_user_data)!.assumingMemoryBound(to: UInt8.self)
        #expect(UnsafeBufferPointer(start: moved, count: 100).allSatisfy { $0 == 7 })
        let large = mem.realloc!(moved, 100_000, mem.mem_user_data)!.assumingMemoryBound(to: UInt8.self)
        #expect(UnsafeBufferPointer(start: large, count: 100).allSatisfy { $0 == 7 })
        large[99_999] = 1
        mem.free!(large, mem.mem_user_data)
        mem.free!(c, mem.mem_user_data)
        mem.free!(nil, mem.mem_user_data)
        #expect(mem.calloc!(Int.max, 2, mem.mem_user_data) == nil)
    }

    @Test func allocatorKeepsABoundedNumberOfBlocks() {
        let allocator = NGHTTP2Allocator()
        let mem = allocator.mem
        for classBytes in [64, 4096] {
            let bound = NGHTTP2Allocator.keptBlocksMax(classBytes: classBytes)
            #expect(bound * classBytes <= NGHTTP2Allocator.keptBytesPerClassMax)
            let n = bound + 10
            let blocks = (0..<n).map { _ in mem.malloc!(classBytes, mem.mem_user_data)! }
            for block in blocks { mem.free!(block, mem.mem_user_data) }
            // The kept ones come back (most recently freed first); past the bound, fresh blocks.
            let again = (0..<n).map { _ in mem.malloc!(classBytes, mem.mem_user_data)! }
            #expect(Set(again.prefix(bound)) == Set(blocks.prefix(bound)))
            for block in again { mem.free!(block, mem.mem_user_data) }
        }
    }
}
