/// One file of the web console: its bytes, media type and entity tag, made once at first use.
///
/// Invariant: `etag` is a strong tag derived from `bytes` alone (FNV-1a 64), so it changes
/// exactly when a rebuilt server serves different bytes.
public struct ConsoleAsset: Sendable, Hashable {
    public let name: String
    public let contentType: String
    public let etag: String
    public let bytes: [UInt8]

    init(name: String, text: String) {
        self.name = name
        bytes = Array(text.utf8)
        contentType = Self.contentType(of: name)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        etag = "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
    }

    public static func == (a: ConsoleAsset, b: ConsoleAsset) -> Bool { a.name == b.name && a.etag == b.etag }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        default: "text/plain; charset=utf-8"
        }
    }
}

/// The console's files (`assets/`, embedded by `generate_assets.py`), looked up by the path a
/// browser asks for: `/`, `/console` and `/console/` are the page; `/console/{name}` a file.
public enum ConsoleAssets {
    /// Every file, by name; built once (the bytes are copied out of the string literals once).
    public static let all: [String: ConsoleAsset] = {
        var table: [String: ConsoleAsset] = [:]
        for file in ConsoleAssetSources.files { table[file.name] = ConsoleAsset(name: file.name, text: file.text) }
        precondition(table["index.html"] != nil, "the console has no index.html")
        return table
    }()

    /// Whether `path` (no query) is the console's: the page or one of its files, known or not.
    public static func isConsolePath(_ path: some StringProtocol) -> Bool {
        path == "/" || path == "/console" || path.hasPrefix("/console/")
    }

    /// `isConsolePath` for a path still in bytes.
    public static func isConsolePath<Path: Collection<UInt8>>(bytes path: Path) -> Bool {
        path.elementsEqual(rootPath) || path.elementsEqual(consolePath) || path.starts(with: consoleSlashPath)
    }

    private static let rootPath: [UInt8] = [UInt8(ascii: "/")]
    private static let consolePath: [UInt8] = Array("/console".utf8)
    private static let consoleSlashPath: [UInt8] = Array("/console/".utf8)

    /// The file for a console path, or nil (not a console path, or no such file).
    public static func asset(forPath path: some StringProtocol) -> ConsoleAsset? {
        if path == "/" || path == "/console" || path == "/console/" { return all["index.html"] }
        guard path.hasPrefix("/console/") else { return nil }
        return all[String(path.dropFirst("/console/".count))]
    }
}
