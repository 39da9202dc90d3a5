import Testing
@testable import LaminarReactor

@Suite struct KeyInternerTests {
    /// `precedes` orders keys byte by byte, a prefix first, as `lexicographicallyPrecedes` does.
    @Test func precedesIsByteOrder() {
        var interner = KeyInterner(capacity: 4)
        let keys: [[UInt8]] = [[0x62], [0x61], [0x61, 0x62], [0xFF, 0x00], [0x61, 0x62, 0x00], [0x00], [0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61]]
        for key in keys { _ = key.withUnsafeBytes { interner.intern($0, limit: 100) } }
        for a in keys.indices {
            for b in keys.indices { #expect(interner.precedes(a, b) == keys[a].lexicographicallyPrecedes(keys[b]), "\(keys[a]) \(keys[b])") }
        }
    }

    /// Ids are dense and stable; keys read back byte for byte, any bytes; the limit holds.
    @Test func internsBytesToDenseIds() {
        var interner = KeyInterner(capacity: 4)
        let keys: [[UInt8]] = (0..<1000).map { i in [UInt8(i & 0xFF), UInt8(i >> 8), 0xFF] } + [[0xFE], [0xFE, 0xFF], [0x00]]
        for (i, key) in keys.enumerated() {
            #expect(key.withUnsafeBytes { interner.intern($0, limit: 2000) } == UInt32(i))
        }
        for (i, key) in keys.enumerated() {
            #expect(key.withUnsafeBytes { interner.intern($0, limit: 2000) } == UInt32(i), "a known key keeps its id")
            #expect(Array(interner.key(i)) == key)
        }
        #expect(interner.count == keys.count)
        #expect([UInt8]([1, 2, 3, 4]).withUnsafeBytes { interner.intern($0, limit: keys.count) } == nil, "a new key past the limit")
        #expect(keys[5].withUnsafeBytes { interner.intern($0, limit: keys.count) } == 5, "a known key at the limit")
    }

    /// The hash is seeded per interner (crafted keys cannot collide in every process): the same
    /// keys hash differently under two seeds, and alike under the same seed.
    @Test func hashIsSeeded() {
        var a = KeyInterner(seed: 1), b = KeyInterner(seed: 2), c = KeyInterner(seed: 1)
        let keys: [[UInt8]] = (0..<64).map { Array("key-\($0)".utf8) }
        for key in keys {
            key.withUnsafeBytes { _ = a.intern($0, limit: 100); _ = b.intern($0, limit: 100); _ = c.intern($0, limit: 100) }
        }
        #expect(a.hashes == c.hashes)
        #expect(zip(a.hashes, b.hashes).filter { $0 == $1 }.isEmpty)
        #expect(KeyInterner().hasher.seed != KeyInterner().hasher.seed)
    }
}
