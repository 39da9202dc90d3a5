/// Follows the frame boundaries of a client's HTTP/2 input beside nghttp2, which does not report
/// them: the 24-byte preface, then each frame's 9-byte header and payload. Pure (bytes in, events
/// out), so `HTTP2Session` can check what nghttp2 1.52 leaves unchecked before it feeds a frame,
/// and tell a frame left half sent (slowloris).
///
/// Invariants: at most one of `prefaceBytesLeft`, `headerBytes` (0..<9 collected) and
/// `payloadBytesLeft` is non-zero; a PRIORITY frame of the right length (5) has its payload
/// collected in `priorityBytes` and reported as one event.
struct HTTP2FrameScanner {
    /// A frame header as read from the wire (RFC 9113 4.1).
    struct FrameHeader: Equatable {
        var length: Int
        var type: UInt8
        var flags: UInt8
        var streamID: Int32
    }

    enum Event: Equatable {
        /// A frame header has been read completely (its payload follows).
        case header(FrameHeader)
        /// A PRIORITY frame's payload (RFC 9113 6.3): the stream it names depends on `dependency`.
        case priority(streamID: Int32, dependency: Int32)
    }

    static let priorityType: UInt8 = 0x2
    static let prioritySpecBytes = 5

    private(set) var prefaceBytesLeft: Int
    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
    private var headerBytes = 0
    private var payloadBytesLeft = 0
    /// The PRIORITY frame whose payload is being collected, if any.
    private var priorityStreamID: Int32?
    private var priorityBytes: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
    private var priorityCollected = 0

    init(prefaceBytes: Int) { prefaceBytesLeft = prefaceBytes }

    /// Input stopped inside the preface or a frame.
    var isMidFrame: Bool { prefaceBytesLeft > 0 || headerBytes > 0 || payloadBytesLeft > 0 }

    /// Scans `bytes` from `offset` up to the next event. Returns the event (nil when the input ran
    /// out first) and the offset just past the bytes that completed it.
    mutating func next(_ bytes: UnsafeRawBufferPointer, from offset: Int) -> (Event?, Int) {
        var i = offset
        let n = bytes.count
        while i < n {
            if prefaceBytesLeft > 0 {
                let k = min(prefaceBytesLeft, n - i)
                prefaceBytesLeft -= k
                i += k
            } else if payloadBytesLeft > 0 {
                if let id = priorityStreamID {
                    withUnsafeMutableBytes(of: &priorityBytes) { $0[priorityCollected] = bytes[i] }
                    priorityCollected += 1
                    payloadBytesLeft -= 1
                    i += 1
                    if priorityCollected == Self.prioritySpecBytes {
                        priorityStreamID = nil
                        let word = withUnsafeBytes(of: priorityBytes) { Self.word($0, at: 0) }
                        return (.priority(streamID: id, dependency: Int32(bitPattern: word & 0x7FFF_FFFF)), i)
                    }
                } else {
                    let k = min(payloadBytesLeft, n - i)
                    payloadBytesLeft -= k
                    i += k
                }
            } else {
                withUnsafeMutableBytes(of: &header) { $0[headerBytes] = bytes[i] }
                headerBytes += 1
                i += 1
                if headerBytes == 9 {
                    headerBytes = 0
                    let frame = withUnsafeBytes(of: header) { h in
                        FrameHeader(
                            length: Int(h[0]) << 16 | Int(h[1]) << 8 | Int(h[2]), type: h[3], flags: h[4],
                            streamID: Int32(bitPattern: Self.word(h, at: 5) & 0x7FFF_FFFF))
                    }
                    payloadBytesLeft = frame.length
                    if frame.type == Self.priorityType && frame.length == Self.prioritySpecBytes {
                        priorityStreamID = frame.streamID
                        priorityCollected = 0
                    }
                    return (.header(frame), i)
                }
            }
        }
        return (nil, n)
    }

    private static func word(_ b: UnsafeRawBufferPointer, at i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
