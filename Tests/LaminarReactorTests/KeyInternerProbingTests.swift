import Testing
@testable import LaminarReactor

/// `KeyInterner` under growth and collisions: dense ids in first-seen order, stable however the table grows, keys read back
/// exactly, the limit refuses only new keys; keys that share prefixes, lengths or slots stay apart.
@Suite struct KeyInternerProbingTests {
    func intern(_ interner: inout KeyInterner, _ key: [UInt8], limit: Int = .max) -> UInt32? {
        key.withUnsafeBytes { interner.intern($0, limit: limit) }
    }

    @Test func idsAreDenseStableAndReadBack() {
        var interner = KeyInterner()
        let keys: [[UInt8]] = (0..<100_000).map { Array("user-\($0)".utf8) }
        for (i, key) in keys.enumerated() {
            #expect(intern(&interner, key) == UInt32(i))
        }
        #expect(interner.count == keys.count)
        // After the table grew many times, every key still maps to its first id, and reads back.
        for (i, key) in keys.enumerated().reversed() where i % 7 == 0 {
            #expect(intern(&interner, key) == UInt32(i))
            #expect(Array(interner.key(i)) == key)
        }
        #expect(interner.count == keys.count, "looking keys up adds nothing")
    }

    /// Keys that differ only by length, by a trailing zero, by one bit, or by their last of
    /// eight-byte blocks (the hash works in 8-byte words) are all different keys.
    @Test func nearKeysAreDistinct() {
        var interner = KeyInterner()
        var keys: [[UInt8]] = [[0], [0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0], [1], [0x80], [0xFF, 0xFE], [0xFE, 0xFF]]
        keys += (0..<64).map { bit in
            var k = [UInt8](repeating: 0x55, count: 16)
            k[bit / 8] ^= UInt8(1 << (bit % 8))
            return k
        }
        keys.append([UInt8](repeating: 0x55, count: 16))
        keys += (1...40).map { [UInt8](repeating: 0x61, count: $0) }
        #expect(Set(keys).count == keys.count)
        let ids = keys.map { intern(&interner, $0)! }
        #expect(Set(ids).count == keys.count, "distinct keys got distinct ids")
        for (key, id) in zip(keys, ids) {
            #expect(Array(interner.key(Int(id))) == key)
            #expect(intern(&interner, key) == id)
        }
    }

    /// Keys of one length that differ in a single byte, at every position, for every length up
    /// to 24 (keys up to 16 bytes are compared by two overlapping word loads), are all different.
    @Test func oneByteApartAreDistinct() {
        var interner = KeyInterner()
        var keys: [[UInt8]] = []
        for n in 1...24 {
            let base = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            keys.append(base)
            for p in 0..<n {
                var k = base
                k[p] ^= 0x40
                keys.append(k)
            }
        }
        let ids = keys.map { intern(&interner, $0)! }
        #expect(Set(ids).count == keys.count, "distinct keys got distinct ids")
        for (key, id) in zip(keys, ids) {
            #expect(intern(&interner, key) == id)
            #expect(Array(interner.key(Int(id))) == key)
        }
    }

    /// Many keys in few slots: linear probing past occupied slots finds each one again.
    @Test func collidingSlotsAreProbed() {
        var interner = KeyInterner()
        // 20 000 keys in a table of at most 64 Ki slots: most land on an occupied slot first.
        var ids: [[UInt8]: UInt32] = [:]
        var generator = SystemRandomNumberGenerator()
        while ids.count < 20_000 {
            let key = (0..<Int.random(in: 1...24, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if ids[key] != nil { continue }
            ids[key] = intern(&interner, key)
        }
        for (key, id) in ids {
            #expect(intern(&interner, key) == id)
        }
        #expect(Set(ids.values).count == ids.count && interner.count == ids.count)
    }

    @Test func theLimitRefusesOnlyNewKeys() {
        var interner = KeyInterner()
        #expect(intern(&interner, [1], limit: 2) == 0)
        #expect(intern(&interner, [2], limit: 2) == 1)
        #expect(intern(&interner, [3], limit: 2) == nil, "a third key passes the limit")
        #expect(interner.count == 2)
        #expect(intern(&interner, [1], limit: 2) == 0, "known keys are still found")
        #expect(intern(&interner, [3], limit: 3) == 2, "a larger limit admits it")
    }
}
