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

    /// A key of at most 8 bytes is decided by its slot (length code and `word`), never by the
    /// arena: so two keys of one such length must never share a word. Every key of 0 to 2
    /// bytes, 3-byte keys over 40 byte values, and for 4 to 8 bytes keys one byte apart at each
    /// position and random keys.
    @Test func shortKeyWordsAreDistinctPerLength() {
        func word(_ k: [UInt8]) -> UInt64 { k.withUnsafeBytes { KeyInterner.word($0) } }
        var seen = Set<UInt64>()
        for a in 0...255 { #expect(seen.insert(word([UInt8(a)])).inserted) }
        seen = []
        for a in 0...255 { for b in 0...255 { #expect(seen.insert(word([UInt8(a), UInt8(b)])).inserted) } }
        seen = []
        let values = (0..<40).map { UInt8($0 * 6 + 3) }
        for a in values { for b in values { for c in values { #expect(seen.insert(word([a, b, c])).inserted) } } }
        var rng = SystemRandomNumberGenerator()
        for n in 4...8 {
            var words: [UInt64: [UInt8]] = [:]
            var keys: [[UInt8]] = (0..<2000).map { _ in (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            let base = (0..<n).map { UInt8($0 * 29 + 7) }
            keys.append(base)
            for p in 0..<n { for bit in 0..<8 { var k = base; k[p] ^= UInt8(1 << bit); keys.append(k) } }
            for k in keys {
                let w = word(k)
                if let other = words[w] { #expect(other == k, "\(other) and \(k) share a word") }
                words[w] = k
            }
        }
        #expect(word([]) == 0)
    }
}
