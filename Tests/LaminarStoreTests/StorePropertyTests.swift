import PropertyBased
import Testing
@testable import LaminarStore

/// The obviously-correct reference: a dictionary and a revision counter.
struct ReferenceStore {
    var entries: [[UInt8]: (value: [UInt8], version: Revision)] = [:]
    var revision: Revision = 0

    func check(_ condition: WriteCondition, _ key: [UInt8]) -> Bool {
        switch condition {
        case .always: return true
        case .ifVersion(let v): return entries[key]?.version == v
        case .absent: return entries[key] == nil
        }
    }

    func sorted() -> [StoreEntry] {
        entries.map { StoreEntry(key: $0.key, value: $0.value.value, version: $0.value.version) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}

/// Random sequences of put / delete / conditional put / batch / scan / compact / reopen / crash,
/// applied to a store and to the reference, which must agree after every step.
@Suite struct StorePropertyTests {
    static func key(_ n: Int) -> [UInt8] {
        // Keys share prefixes and vary in length so scans and ordering are exercised.
        switch n % 4 {
        case 0: return bytes("a/\(n % 17)")
        case 1: return bytes("a/\(n % 17)/x")
        case 2: return bytes("b\(n % 11)")
        default: return [0xFF, UInt8(n % 5), 0x00]
        }
    }

    static func prefix(_ n: Int) -> [UInt8] {
        [[], bytes("a/"), bytes("a/1"), bytes("b"), [0xFF], bytes("zz")][n % 6]
    }

    static func value(_ n: Int) -> [UInt8] {
        [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: (n >> 3) % 300)
    }

    @Test(arguments: StoreKind.allCases)
    func agreesWithReferenceModel(kind: StoreKind) async {
        await propertyCheck(count: 40, input: Gen.int(in: 0...1_000_000).array(of: 1...250)) { ops in
            let dir = TempDirectory()
            var options = LogStoreOptions()
            options.fsync = .never
            var store = try! makeStore(kind, directory: dir.path, options: options)
            var model = ReferenceStore()

            for (step, op) in ops.enumerated() {
                let k = StorePropertyTests.key(op >> 4)
                let v = StorePropertyTests.value(op >> 2)
                switch op % 16 {
                case 0, 1, 2, 3:
                    let rev = try! store.put(k, v)
                    model.revision += 1
                    model.entries[k] = (v, model.revision)
                    #expect(rev == model.revision)
                case 4, 5:
                    let rev = try! store.delete(k)
                    if model.entries[k] != nil {
                        model.revision += 1
                        model.entries[k] = nil
                        #expect(rev == model.revision)
                    } else {
                        #expect(rev == nil)
                    }
                case 6, 7:
                    // Conditional put with the right version half the time.
                    let current = model.entries[k]?.version ?? 0
                    let condition: WriteCondition = (op >> 3) % 2 == 0 ? .ifVersion(current) : .ifVersion(current + 1)
                    do {
                        let rev = try store.put(k, v, condition: condition)
                        #expect(model.check(condition, k))
                        model.revision += 1
                        model.entries[k] = (v, model.revision)
                        #expect(rev == model.revision)
                    } catch {
                        #expect(!model.check(condition, k))
                        #expect(error as? StoreError == .conditionFailed(key: k, current: model.entries[k]?.version))
                    }
                case 8:
                    do {
                        try store.put(k, v, condition: .absent)
                        #expect(model.entries[k] == nil)
                        model.revision += 1
                        model.entries[k] = (v, model.revision)
                    } catch {
                        #expect(model.entries[k] != nil)
                    }
                case 9:
                    // A batch of up to three mutations, all or nothing.
                    let batch: [StoreMutation] = (0..<(1 + op % 3)).map { i in
                        let key = StorePropertyTests.key((op >> 4) + i * 7)
                        switch (op >> (6 + i)) % 3 {
                        case 0: return .put(key: key, value: v)
                        case 1: return .delete(key: key)
                        default: return .put(key: key, value: v, condition: .absent)
                        }
                    }
                    let ok = batch.allSatisfy { m in
                        if case .put(let key, _, let c, _) = m { return model.check(c, key) }
                        return true
                    }
                    do {
                        let rev = try store.apply(batch)
                        #expect(ok)
                        var changed = false
                        var next = model
                        for m in batch {
                            switch m {
                            case .put(let key, let value, _, _):
                                next.entries[key] = (value, model.revision + 1)
                                changed = true
                            case .delete(let key, _):
                                if next.entries[key] != nil { next.entries[key] = nil; changed = true }
                            }
                        }
                        if changed { next.revision += 1 }
                        model = next
                        #expect(rev == model.revision)
                    } catch {
                        #expect(!ok)
                    }
                case 10, 11:
                    let prefix = StorePropertyTests.prefix(op >> 4)
                    let limit = 1 + (op >> 7) % 6
                    let expected = model.sorted().filter { $0.key.starts(with: prefix) }
                    var after: [UInt8]? = nil
                    var got: [StoreEntry] = []
                    while true {
                        let page = store.prefixScan(prefix, after: after, limit: limit)
                        got += page
                        if page.count < limit { break }
                        after = page.last!.key
                    }
                    #expect(got == expected)
                case 12:
                    let start = StorePropertyTests.key(op >> 4)
                    let end = StorePropertyTests.key(op >> 9)
                    let expected = model.sorted().filter {
                        !$0.key.lexicographicallyPrecedes(start) && $0.key.lexicographicallyPrecedes(end)
                    }
                    #expect(store.rangeScan(start: start, end: end, after: nil, limit: 1000) == expected)
                case 13:
                    try! store.compact()
                case 14:
                    // Clean reopen: close (hint written) and open again.
                    if kind == .persistent {
                        try! store.close()
                        store = try! LogStore.open(directory: dir.path, options: options)
                        #expect(store.stats.recoveryUsedHint)
                    }
                default:
                    // Crash: no close, no flush; what was written is in the page cache.
                    if kind == .persistent {
                        store.abandon()
                        store = try! LogStore.open(directory: dir.path, options: options)
                    }
                }
                if step % 25 == 0 { store.checkInvariants() }
            }
            store.checkInvariants()
            #expect(store.snapshot().entries == model.sorted())
            #expect(store.revision == model.revision)
            #expect(store.count == model.entries.count)
        }
    }
}
