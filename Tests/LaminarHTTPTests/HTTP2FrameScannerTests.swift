import Testing
@testable import LaminarHTTP

@Suite struct HTTP2FrameScannerTests {
    typealias Header = HTTP2FrameScanner.FrameHeader

    static func frame(_ type: UInt8, _ flags: UInt8, _ stream: Int32, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        let id = UInt32(stream)
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
                UInt8(id >> 24), UInt8(id >> 16 & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF)] + payload
    }

    /// Every event of `input` fed in pieces of `chunk` bytes, with the input offset after each.
    static func events(_ input: [UInt8], chunk: Int, preface: Int = 24) -> (events: [HTTP2FrameScanner.Event], ends: [Int], midFrame: Bool) {
        var scanner = HTTP2FrameScanner(prefaceBytes: preface)
        var events: [HTTP2FrameScanner.Event] = []
        var ends: [Int] = []
        var start = 0
        while start < input.count {
            let piece = Array(input[start..<min(input.count, start + chunk)])
            piece.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let (event, end) = scanner.next(bytes, from: offset)
                    offset = end
                    if let event {
                        events.append(event)
                        ends.append(start + end)
                    }
                }
            }
            start += chunk
        }
        return (events, ends, scanner.isMidFrame)
    }

    @Test(arguments: [1, 2, 7, 9, 10, 23, 24, 1000])
    func framesAcrossAnySplit(chunk: Int) {
        let preface = HTTP2Session.clientPreface
        let settings = Self.frame(4, 0, 0, [0, 3, 0, 0, 0, 100])
        let headers = Self.frame(1, 0x5, 1, [0x82, 0x84])
        let priority = Self.frame(2, 0, 3, [0x80, 0, 0, 3, 15])  // exclusive, depends on 3 (itself)
        let data = Self.frame(0, 0x1, 1, Array(repeating: 7, count: 300))
        let oddPriority = Self.frame(2, 0, 5, [0, 0, 0, 1, 15, 0])  // 6 bytes: not read as a PRIORITY
        let input = preface + settings + headers + priority + data + oddPriority
        let (events, ends, midFrame) = Self.events(input, chunk: chunk)
        var at = preface.count
        var expectedEnds: [Int] = []
        for f in [settings, headers] { expectedEnds.append(at + 9); at += f.count }
        expectedEnds += [at + 9, at + priority.count]
        at += priority.count
        expectedEnds.append(at + 9)
        at += data.count
        expectedEnds.append(at + 9)
        #expect(events == [
            .header(Header(length: 6, type: 4, flags: 0, streamID: 0)),
            .header(Header(length: 2, type: 1, flags: 5, streamID: 1)),
            .header(Header(length: 5, type: 2, flags: 0, streamID: 3)),
            .priority(streamID: 3, dependency: 3),
            .header(Header(length: 300, type: 0, flags: 1, streamID: 1)),
            .header(Header(length: 6, type: 2, flags: 0, streamID: 5)),
        ])
        #expect(ends == expectedEnds)
        #expect(!midFrame)
    }

    @Test func midFrameAndReservedBit() {
        // The reserved bit of the stream id is dropped; input ending inside a payload is mid-frame.
        var bytes = Self.frame(0, 0, 1, [1, 2, 3])
        bytes[5] |= 0x80
        let (events, _, midFrame) = Self.events(Array(bytes.dropLast()), chunk: 100, preface: 0)
        #expect(events == [.header(Header(length: 3, type: 0, flags: 0, streamID: 1))])
        #expect(midFrame)
        #expect(Self.events(Array(HTTP2Session.clientPreface.prefix(10)), chunk: 100).midFrame)
        #expect(!Self.events([], chunk: 1, preface: 0).midFrame)
    }
}
