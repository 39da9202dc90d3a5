import Glibc

/// An IPv4 or IPv6 socket address, as `bind` and `connect` take it (a `sockaddr_storage` and its
/// length). Made from a host as people type it: an IPv4 literal, an IPv6 literal (brackets
/// optional), `0.0.0.0` or `::` (every address), or a name resolved once with getaddrinfo.
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    private var storage: sockaddr_storage
    let length: socklen_t

    public var family: Int32 { Int32(storage.ss_family) }

    public var port: UInt16 {
        get {
            withSockaddr { address, _ in
                family == AF_INET6
                    ? address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                    : address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
        }
        set {
            let isIPv6 = family == AF_INET6
            withUnsafeMutableBytes(of: &storage) { raw in
                if isIPv6 {
                    raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self).pointee.sin6_port = newValue.bigEndian
                } else {
                    raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self).pointee.sin_port = newValue.bigEndian
                }
            }
        }
    }

    /// The numeric host (`127.0.0.1`, `::1`).
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let rc = withSockaddr { getnameinfo($0, $1, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) }
        return rc == 0 ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    /// `127.0.0.1:7070`, `[::1]:7070`.
    public var description: String { family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `::`: with IPV6_V6ONLY off, one socket also takes IPv4 (dual-stack).
    var isIPv6Unspecified: Bool {
        guard family == AF_INET6 else { return false }
        return withSockaddr { address, _ in
            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                withUnsafeBytes(of: a.pointee.sin6_addr) { $0.allSatisfy { $0 == 0 } }
            }
        }
    }

    init(_ address: UnsafePointer<sockaddr>, length: socklen_t) {
        precondition(Int(length) <= MemoryLayout<sockaddr_storage>.size)
        storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length))) }
        self.length = length
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        a.length == b.length && a.withSockaddr { pa, n in b.withSockaddr { pb, _ in memcmp(pa, pb, Int(n)) == 0 } }
    }

    /// `host` without the brackets of an IPv6 literal (`[::1]` → `::1`).
    public static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 ? String(host.dropFirst().dropLast()) : host
    }

    /// `host` as it goes in a URL or an authority: IPv6 literals in brackets.
    public static func urlHost(_ host: String) -> String {
        let bare = unbracketed(host)
        return bare.contains(":") ? "[\(bare)]" : bare
    }

    /// The one of `addresses` a client should use: the only one, or the first that accepts a TCP
    /// connection within `timeoutMs` (a probe, closed at once), or the first.
    public static func preferred(_ addresses: [SocketAddress], timeoutMs: Int32 = 1000) -> SocketAddress {
        precondition(!addresses.isEmpty)
        if addresses.count == 1 { return addresses[0] }
        return System.firstAccepting(addresses, timeoutMs: timeoutMs) ?? addresses[0]
    }

    /// Every address `host` stands for, with `port`, in getaddrinfo's order, without repeats.
    /// A literal gives one; a name may give several (`localhost`: `::1` and `127.0.0.1`).
    public static func resolve(_ host: String, port: UInt16) throws(AddressError) -> [SocketAddress] {
        let name = unbracketed(host)
        guard !name.isEmpty else { throw AddressError.unknownHost(host: host, reason: "empty host") }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(name, String(port), &hints, &list)
        guard rc == 0 else {
            let reason = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
            throw AddressError.unknownHost(host: host, reason: reason)
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let e = entry {
            if let address = e.pointee.ai_addr, e.pointee.ai_family == AF_INET || e.pointee.ai_family == AF_INET6 {
                let resolved = SocketAddress(address, length: e.pointee.ai_addrlen)
                if !addresses.contains(resolved) { addresses.append(resolved) }
            }
            entry = e.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw AddressError.unknownHost(host: host, reason: "no IPv4 or IPv6 address") }
        return addresses
    }
}

/// A host that does not name an address.
public enum AddressError: Error, CustomStringConvertible, Sendable {
    case unknownHost(host: String, reason: String)

    public var description: String {
        switch self {
        case .unknownHost(let host, let reason): "unknown host '\(host)' (\(reason))"
        }
    }
}
