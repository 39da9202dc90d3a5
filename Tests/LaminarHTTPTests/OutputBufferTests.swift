import Testing
@testable import LaminarHTTP

/// `OutputBuffer`: the unsent bytes in order, whatever mix of appends and partial writes (as a
/// socket takes them), with the consumed prefix dropped along the way.
@Suite struct OutputBufferTests {
    @Test func partialWritesKeepOrder() {
        var buffer = OutputBuffer()
        #expect(buffer.isEmpty && buffer.count == 0)
        buffer.append("hello ")
        buffer.append(contentsOf: Array("world".utf8))
        Array("!".utf8).withUnsafeBytes { buffer.append($0) }
        #expect(buffer.count == 12)
        buffer.consume(4)
        #expect(buffer.withUnsentBytes { Array($0) } == Array("o world!".utf8))
        buffer.consume(8)
        #expect(buffer.isEmpty && buffer.count == 0)
        buffer.append("again")
        #expect(buffer.withUnsentBytes { Array($0) } == Array("again".utf8))
        buffer.removeAll()
        #expect(buffer.isEmpty && buffer.withUnsentBytes { $0.count } == 0)
    }

    /// Random appends and partial consumes against a model: the bytes seen by `withUnsentBytes`
    /// are always exactly the model's, across compactions (a consumed prefix past 4 KiB and half
    /// the storage) and full drains.
    @Test func matchesAModelAcrossCompactions() {
        var buffer = OutputBuffer()
        var model: [UInt8] = []
        var generator = SystemRandomNumberGenerator()
        var next: UInt8 = 0
        for round in 0..<5000 {
            if Bool.random(using: &generator) || model.isEmpty {
                let n = Int.random(in: 1...(round % 100 == 0 ? 70_000 : 3000), using: &generator)
                let bytes = (0..<n).map { _ -> UInt8 in next &+= 1; return next }
                buffer.append(contentsOf: bytes)
                model += bytes
            } else {
                // A socket takes some of what is offered: all of it, part, or a byte.
                let n = [model.count, Int.random(in: 1...model.count, using: &generator), 1].randomElement(using: &generator)!
                buffer.consume(n)
                model.removeFirst(n)
            }
            #expect(buffer.count == model.count)
            if round % 50 == 0 || model.count < 16 {
                #expect(buffer.withUnsentBytes { Array($0) } == model, "round \(round)")
            }
        }
    }
}
