/// The stored form of expressions (definition version 3): a prefix tree, one tag byte per node.
/// Tags: 1 number (f64), 2 string, 3 boolean (u8), 4 null, 5 column (string), 6 unary (operator
/// text, operand), 7 binary (operator text, left, right), 8 is null (negated u8, operand),
/// 9 like (negated u8, pattern, operand), 10 in (negated u8, u32 count, operand, values).
/// Decoding refuses trees deeper than `Expression.storedDepthMax`.
extension Expression {
    static let storedDepthMax = 256

    func encode(into w: inout ByteWriter) {
        switch self {
        case .number(let d): w.u8(1); w.f64(d)
        case .string(let s): w.u8(2); w.string(s)
        case .boolean(let b): w.u8(3); w.u8(b ? 1 : 0)
        case .null: w.u8(4)
        case .column(let n): w.u8(5); w.string(n)
        case .unary(let op, let e): w.u8(6); w.string(op.rawValue); e.encode(into: &w)
        case .binary(let op, let l, let r): w.u8(7); w.string(op.rawValue); l.encode(into: &w); r.encode(into: &w)
        case .isNull(let e, let negated): w.u8(8); w.u8(negated ? 1 : 0); e.encode(into: &w)
        case .like(let e, let pattern, let negated): w.u8(9); w.u8(negated ? 1 : 0); w.string(pattern); e.encode(into: &w)
        case .inList(let e, let values, let negated):
            w.u8(10); w.u8(negated ? 1 : 0); w.u32(UInt32(values.count)); e.encode(into: &w)
            for v in values { v.encode(into: &w) }
        }
    }

    static func decode(from r: inout ByteReader, depth: Int = 0) throws -> Expression {
        guard depth < storedDepthMax else { throw ByteReader.DecodeError() }
        switch try r.u8() {
        case 1: return .number(try r.f64())
        case 2: return .string(try r.string())
        case 3: return .boolean(try r.u8() == 1)
        case 4: return .null
        case 5: return .column(try r.string())
        case 6:
            guard let op = UnaryOperator(rawValue: try r.string()) else { throw ByteReader.DecodeError() }
            return .unary(op, try decode(from: &r, depth: depth + 1))
        case 7:
            guard let op = BinaryOperator(rawValue: try r.string()) else { throw ByteReader.DecodeError() }
            let l = try decode(from: &r, depth: depth + 1)
            return .binary(op, l, try decode(from: &r, depth: depth + 1))
        case 8:
            let negated = try r.u8() == 1
            return .isNull(try decode(from: &r, depth: depth + 1), negated: negated)
        case 9:
            let negated = try r.u8() == 1, pattern = try r.string()
            return .like(try decode(from: &r, depth: depth + 1), pattern: pattern, negated: negated)
        case 10:
            let negated = try r.u8() == 1, n = Int(try r.u32())
            guard n <= r.bytes.count - r.at else { throw ByteReader.DecodeError() }
            let e = try decode(from: &r, depth: depth + 1)
            let values = try (0..<n).map { _ in try decode(from: &r, depth: depth + 1) }
            return .inList(e, values, negated: negated)
        default:
            throw ByteReader.DecodeError()
        }
    }

    static func encodeOptional(_ e: Expression?, into w: inout ByteWriter) {
        if let e { w.u8(1); e.encode(into: &w) } else { w.u8(0) }
    }

    static func decodeOptional(from r: inout ByteReader) throws -> Expression? {
        try r.u8() == 1 ? try decode(from: &r) : nil
    }
}
