import Testing
@testable import LaminarStore

/// `StoredValue`: a value read in place and pinned, so the HTTP layer can send it from the
/// store's mapping after the reactor moved on, even across a compaction's swap.
@Suite struct StoredValueTests {
    @Test func aPinnedValueOutlivesTheCompactionThatRetiresItsMapping() throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionBytesMin = .max  // started by hand
        options.compactionSliceBytes = 4096
        let store = try LogStore.open(directory: dir.path, options: options)
        let original = [UInt8](repeating: 0xA5, count: 3000)
        try store.put(bytes("pinned"), original)
        for i in 0..<2000 { try store.put(bytes("k\(i % 100)"), [UInt8](repeating: UInt8(i & 0xFF), count: 200)) }
        try store.commit()
        let (pinned, version) = try #require(store.storedValue(bytes("pinned")))
        #expect(version == store.version(of: bytes("pinned")))
        #expect(pinned.count == original.count && pinned.bytes == original)
        let mappingBefore = pinned.owner
        let pinsTheStoresMapping = mappingBefore === (store.region as AnyObject)
        #expect(pinsTheStoresMapping)

        try store.put(bytes("pinned"), [1, 2, 3])  // the pinned record is garbage now
        store.startCompaction()
        try store.waitForCompactionThread()
        var rounds = 0
        while store.compactionInProgress && rounds < 1000 {
            try store.put(bytes("tick"), [UInt8(rounds & 0xFF)])
            try store.commit()
            rounds += 1
        }
        #expect(store.stats.compactions == 1)
        let swapped = (store.region as AnyObject) !== mappingBefore
        #expect(swapped, "the compaction swapped in a new mapping")
        // The old mapping was handed to Retirement; the pin keeps it mapped and unchanged.
        #expect(pinned.bytes == original)
        pinned.withUnsafeBytes { #expect($0.allSatisfy { $0 == 0xA5 }) }
        #expect(store.storedValue(bytes("pinned"))?.value.bytes == [1, 2, 3])
        #expect(store.storedValue(bytes("absent")) == nil)
        try store.close()
    }

    @Test func aCopiedValueReadsAsItsArray() {
        var source: [UInt8] = [9, 8, 7]
        let value = StoredValue(source)
        source[0] = 1  // the value holds a copy of its own
        #expect(value.count == 3 && value.bytes == [9, 8, 7] && value.owner is CopiedBytes)
        value.withUnsafeBytes { #expect(Array($0) == [9, 8, 7]) }
        let empty = StoredValue([])
        #expect(empty.count == 0 && empty.bytes == [])
    }
}
