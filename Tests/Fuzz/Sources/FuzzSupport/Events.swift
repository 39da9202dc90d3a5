import LaminarFormats

/// One decoded event, for comparing batches.
public struct DecodedEvent: Equatable, CustomStringConvertible {
    public var key: [UInt8]
    public var timestamp: Int64
    /// Bit pattern, so -0.0 and 0.0 differ and NaN equals itself.
    public var valueBits: UInt64
    /// The bit patterns of the fields after the first (multi-field events).
    public var moreBits: [UInt64] = []

    public init(key: [UInt8], timestamp: Int64, value: Double) {
        self.key = key
        self.timestamp = timestamp
        self.valueBits = value.bitPattern
    }

    public init(key: [UInt8], timestamp: Int64, fields: [Double]) {
        self.init(key: key, timestamp: timestamp, value: fields[0])
        moreBits = fields.dropFirst().map(\.bitPattern)
    }

    public var fields: [Double] { ([valueBits] + moreBits).map { Double(bitPattern: $0) } }

    public var description: String { "(\(key), \(timestamp), \(fields))" }
}

extension EventBatch {
    public var decodedEvents: [DecodedEvent] {
        withEvents { view in
            (0..<view.count).map { i in
                DecodedEvent(key: Array(view.key(i)), timestamp: view.timestamp(i), fields: (0..<view.fieldCount).map { view.field(i, $0) })
            }
        }
    }
}

/// A decoder's verdict on a whole body.
public enum DecodeOutcome: Equatable {
    case batch(EventBatch)
    case failure(EventDecodeError)
}

/// Feeds `body` cut at `cuts` (sorted offsets), then finishes.
public func decodeInPieces(
    _ body: [UInt8], cuts: [Int], feed: (UnsafeRawBufferPointer) throws(EventDecodeError) -> Void,
    finish: () throws(EventDecodeError) -> EventBatch
) -> DecodeOutcome {
    var start = 0
    do throws(EventDecodeError) {
        for end in cuts + [body.count] where end > start {
            let piece = Array(body[start..<end])
            let result: Result<Void, EventDecodeError> = piece.withUnsafeBytes { raw in
                do throws(EventDecodeError) { try feed(raw); return .success(()) } catch { return .failure(error) }
            }
            try result.get()
            start = end
        }
        return .batch(try finish())
    } catch {
        return .failure(error)
    }
}
