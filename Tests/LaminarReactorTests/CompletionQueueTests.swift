import Testing
import LaminarStore
@testable import LaminarReactor

/// `CompletionQueue`: completions moved into the ring in order, the undelivered rest kept in
/// order, failed commits turning only mutations into failures, and nothing leaked or released twice.
@Suite struct CompletionQueueTests {
    private func tokens(_ ring: SPSCRing<ReactorCompletion>) -> [UInt64] {
        var got: [UInt64] = []
        _ = ring.pop(max: .max) { got.append($0.token) }
        return got
    }

    @Test func drainsInOrderAndKeepsTheRest() {
        var queue = CompletionQueue(capacity: 8)
        let ring = SPSCRing<ReactorCompletion>(capacity: 16)
        for t in 1...5 { queue.append(ReactorCompletion(token: UInt64(t), .ok), mutation: t % 2 == 0) }
        queue.drain(2, into: ring)
        #expect(tokens(ring) == [1, 2])
        let left = queue.count
        #expect(left == 3)
        queue.append(ReactorCompletion(token: 6, .ok), mutation: false)
        queue.drain(0, into: ring)
        #expect(tokens(ring) == [])
        queue.drain(queue.count, into: ring)
        #expect(tokens(ring) == [3, 4, 5, 6])
        let empty = queue.isEmpty
        #expect(empty)
        ring.checkInvariants()
    }

    @Test func failMutationsTouchesOnlyMutationsFromStart() {
        var queue = CompletionQueue(capacity: 8)
        for t in 0..<6 { queue.append(ReactorCompletion(token: UInt64(t), .written(version: UInt64(t))), mutation: t != 3) }
        queue.failMutations(from: 2, with: .failure(.storageFailed("sync")))
        for i in 0..<6 {
            let result = queue.result(at: i)
            switch result {
            case .written(let v): #expect(i < 2 || i == 3, "entry \(i) kept"); #expect(v == UInt64(i))
            case .failure(.storageFailed): #expect(i >= 2 && i != 3, "entry \(i) failed")
            default: Issue.record("entry \(i): unexpected result")
            }
        }
    }

    @Test func movesValuesWithoutLeakingThem() {
        weak var owner: AnyObject?
        let ring = SPSCRing<ReactorCompletion>(capacity: 4)
        do {
            var queue = CompletionQueue(capacity: 4)
            let value = StoredValue([1, 2, 3])
            owner = value.owner
            queue.append(ReactorCompletion(token: 1, .value(value, version: 7)), mutation: false)
            queue.append(ReactorCompletion(token: 2, .value(value, version: 7)), mutation: false)
            queue.drain(1, into: ring)
            // One value in the ring, one left in the queue, which its deinit releases.
        }
        #expect(owner != nil, "the value in the ring is still held")
        var bytes: [UInt8] = []
        _ = ring.pop(max: .max) { c in
            if case .value(let v, _) = c.result { bytes = v.bytes }
        }
        #expect(bytes == [1, 2, 3])
        #expect(owner == nil, "every copy released")
    }
}

/// `ReactorCommand`'s prefetch hints (`CommandPrefetch`) name the bytes of the command's own
/// arrays; commands and completions stay small (every ring hop copies one: the KV path lost
/// half its speed when a growing `StreamDefinition` made every command 224 bytes).
@Suite struct CommandHintTests {
    @Test func commandsAndCompletionsStaySmall() {
        #expect(MemoryLayout<ReactorCommand>.stride <= 72)
        #expect(MemoryLayout<ReactorCompletion>.stride <= 48)
    }

    @Test func hintsPointAtTheKeyAndValueBytes() {
        let key: [UInt8] = Array("some-key".utf8), value: [UInt8] = [1, 2, 3, 4]
        let put = ReactorCommand(token: 1, .put(key: key, value: value, condition: .always, ttlMs: nil))
        #expect(put.key.map { Array($0) } == key)
        key.withUnsafeBytes { #expect(put.keyBytes == $0.baseAddress) }
        value.withUnsafeBytes { #expect(put.valueBytes == $0.baseAddress) }
        let get = ReactorCommand(token: 2, .get(key: key))
        #expect(get.key.map { Array($0) } == key && get.valueBytes == nil)
        let delete = ReactorCommand(token: 3, .delete(key: key, condition: .always))
        #expect(delete.key.map { Array($0) } == key)
        let other = ReactorCommand(token: 4, .listStreams)
        #expect(other.key == nil && other.valueBytes == nil)
    }
}
