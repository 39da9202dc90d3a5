/// One node of a cluster as `laminar cluster …` takes it: `NAME=HOST:PORT`. The name labels the
/// node in HAProxy (backend `node_NAME`, the `laminar-node` response header) and in Prometheus;
/// it also fixes the node's place on HAProxy's hash ring (`hashID`), so tags stay where they are
/// whatever the order of the `--node` flags.
public struct ClusterNode: Sendable, Hashable {
    public var name: String
    public var address: HostPort

    /// Longest node name, in bytes.
    public static let nameBytesMax = 32

    public init(name: String, address: HostPort) {
        self.name = name
        self.address = address
    }

    /// `NAME=HOST:PORT`; NAME is 1 to 32 of A-Z a-z 0-9 _ -.
    public init(parsing text: String) throws(ClusterConfigError) {
        guard let equals = text.firstIndex(of: "=") else { throw ClusterConfigError("--node '\(text)': use NAME=HOST:PORT") }
        name = String(text[..<equals])
        let nameOK = !name.isEmpty && name.utf8.count <= Self.nameBytesMax
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
        guard nameOK else { throw ClusterConfigError("--node '\(text)': the name must be 1 to \(Self.nameBytesMax) of A-Z a-z 0-9 _ -") }
        address = try HostPort(parsing: String(text[text.index(after: equals)...]), flag: "--node")
    }

    /// The node's server `id` in HAProxy, from which its points on the consistent-hash ring are
    /// computed: FNV-1a of the name in 1...2^31-1, so that adding, removing or reordering other
    /// nodes leaves this node's points where they were.
    public var hashID: UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return max(1, hash & 0x7fff_ffff)
    }
}

/// `HOST:PORT` with HOST an IPv4 address, a DNS name, or `[IPv6]`.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String, flag: String) throws(ClusterConfigError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            throw ClusterConfigError("\(flag) '\(text)': use HOST:PORT with a port 1...65535")
        }
        let host = String(text[..<colon])
        let bracketed = host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2
            && host.dropFirst().dropLast().allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        let plain = !host.isEmpty && host.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x2E
        }
        guard bracketed || plain else { throw ClusterConfigError("\(flag) '\(text)': the host must be an IPv4 address, a DNS name or [IPv6]") }
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// A bad `laminar cluster …` argument; the command prints it with its usage and exits 64, as for
/// any other argument ArgumentParser refuses.
public struct ClusterConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }

    /// Node lists must be non-empty with unique names, addresses and hash ids.
    static func check(_ nodes: [ClusterNode]) throws(ClusterConfigError) {
        guard !nodes.isEmpty else { throw ClusterConfigError("give at least one --node NAME=HOST:PORT") }
        for (i, a) in nodes.enumerated() {
            for b in nodes[..<i] {
                if a.name == b.name { throw ClusterConfigError("--node \(a.name) is given twice") }
                if a.address == b.address { throw ClusterConfigError("--node \(b.name) and \(a.name) have the same address \(a.address)") }
                if a.hashID == b.hashID { throw ClusterConfigError("--node \(b.name) and \(a.name) fall on the same hash id; rename one") }
            }
        }
    }
}
