import Testing
@testable import LaminarStore

/// `ScanPage` and the in-place scans it is built from; `isDurable`'s bookkeeping.
@Suite struct ScanPageTests {
    /// More entries than one scan batch, overwritten (so the ordered index names older records),
    /// some with an expiry, one deleted: the page, the visit and the old array API agree.
    @Test(arguments: StoreKind.allCases)
    func pagesMatchTheStore(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        for i in 0..<40 { try store.put(bytes("p/\(100 + i)"), bytes("v\(i)"), condition: .always, expiresAtMs: i % 3 == 0 ? Int64(i) : nil) }
        for i in stride(from: 0, to: 40, by: 2) { try store.put(bytes("p/\(100 + i)"), bytes("w\(i)"), condition: .always, expiresAtMs: nil) }
        try store.delete(bytes("p/105"))
        try store.put(bytes("q"), bytes("other"))
        let page = store.prefixPage(bytes("p/"), after: bytes("p/101"), limit: 30)
        #expect(page.count == 30)
        #expect(page.storeEntries == store.prefixScan(bytes("p/"), after: bytes("p/101"), limit: 30))
        #expect(Array(page[0].key) == bytes("p/102") && Array(page[0].value) == bytes("w2"))
        #expect(Array(page[1].key) == bytes("p/103") && page[1].expiresAtMs == 3)
        #expect(Array(page[2].key) == bytes("p/104"))  // p/105 is gone
        #expect(page.lastKey == bytes("p/132"))
        var visited: [[UInt8]] = []
        page.forEach { key, value, version in
            visited.append(Array(key))
            #expect(store.get(Array(key))?.value == Array(value) && store.version(of: Array(key)) == version)
        }
        #expect(visited == page.map { Array($0.key) })
        let range = store.rangePage(start: bytes("p/138"), end: bytes("q"), after: nil, limit: 10)
        #expect(range.map { Array($0.key) } == [bytes("p/138"), bytes("p/139")])
        #expect(store.rangePage(start: bytes("p/138"), end: nil, after: nil, limit: 10).lastKey == bytes("q"))
        #expect(store.prefixPage(bytes("z"), after: nil, limit: 10).lastKey == nil)
        store.checkInvariants()
    }

    /// A write is durable once a sync that started after it succeeded, not before; a failed
    /// sync makes nothing durable.
    @Test func durabilityFollowsSuccessfulSyncs() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        try store.put(bytes("a"), [1])
        func durable(_ key: String) -> Bool { bytes(key).withUnsafeBytes { store.isDurable($0) } }
        func slot(_ key: String) -> Int { bytes(key).withUnsafeBytes { LogStore.writeSlot(store.hasher.hash($0)) } }
        #expect(!durable("a"))
        #expect(durable("never-written") || slot("never-written") == slot("a"))
        let job = try #require(store.beginSync())
        try store.put(bytes("b"), [2])
        let (e, operation) = job.run(io: SystemFileIO.shared)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        #expect(!durable("b"), "written after the sync started")
        if slot("a") != slot("b") { #expect(durable("a")) }
        try store.flush()
        #expect(durable("a") && durable("b"))
        try store.delete(bytes("a"))
        #expect(!durable("a"), "a delete is a write")
        _ = try #require(store.beginSync())
        #expect(throws: StoreError.self) { try store.endSync(nanoseconds: 0, errno: 5) }
        #expect(!durable("a"), "a failed sync covers nothing")
        try? store.close()
    }
}
