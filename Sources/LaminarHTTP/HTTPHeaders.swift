/// An ordered list of header fields. Names are stored lowercased (HTTP/2 requires it; HTTP/1.1
/// names are case-insensitive), values as received. Value type, freely sendable.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        self.fields.reserveCapacity(fields.count)
        for (name, value) in fields { add(name: name, value: value) }
    }

    public mutating func reserveCapacity(_ n: Int) { fields.reserveCapacity(n) }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    public mutating func add(name: String, value: String) {
        fields.append((Self.lowercased(name), value))
    }

    /// The first value of `name` (case-insensitive).
    public subscript(name: String) -> String? {
        let lower = Self.lowercased(name)
        return fields.first { $0.name == lower }?.value
    }

    /// `name` lowercased; the name itself (no new string) when it already is, as HTTP/2 names are.
    @inline(__always)
    static func lowercased(_ name: String) -> String {
        name.utf8.contains { $0 &- 0x41 < 26 } ? name.lowercased() : name
    }

    /// Every value of `name` (case-insensitive), in order.
    public func values(_ name: String) -> [String] {
        let lower = Self.lowercased(name)
        return fields.filter { $0.name == lower }.map(\.value)
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
