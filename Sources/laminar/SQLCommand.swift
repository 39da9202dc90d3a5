import ArgumentParser
import Glibc
import LaminarFormats

/// `laminar sql`: posts statements to a server's `POST /sql` and prints the answers as tables
/// (proto-docs/sql.md); `--follow STREAM` prints a stream's result rows as they are emitted.
/// Exit status 1 when the server refuses the script (nothing of it was applied).
struct SQLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run SQL statements on a server (CREATE SOURCE, CREATE STREAM, DROP, SHOW, EXPLAIN) and print the answers, or follow a stream's results.")

    @Option(help: "The server's base URL (http only).")
    var url = "http://127.0.0.1:7070"

    @Option(name: .customShort("f"), help: ArgumentHelp("A file of statements separated by ';' ('-' for standard input).", valueName: "file"))
    var file: String?

    @Option(name: .customShort("c"), help: ArgumentHelp("Statements separated by ';'.", valueName: "statements"))
    var command: String?

    @Option(help: ArgumentHelp("Print the result rows of this stream as they are emitted (GET /streams/{name}/results?follow=1), until interrupted.", valueName: "stream"))
    var follow: String?

    func validate() throws {
        let given = [file != nil, command != nil, follow != nil].filter { $0 }.count
        if given != 1 { throw ValidationError("give one of -f FILE, -c 'STATEMENTS' or --follow STREAM") }
    }

    func run() throws {
        let client: PlainHTTPClient
        do { client = try PlainHTTPClient(url: url) } catch { throw ValidationError(error.description) }
        if let follow {
            try followStream(follow, client)
            return
        }
        let script: String
        if let command {
            script = command
        } else if let file {
            guard let text = readAll(file) else { throw ValidationError("cannot read \(file)") }
            script = text
        } else {
            return
        }
        let (status, body): (Int, [UInt8])
        do {
            (status, body) = try client.request(method: "POST", path: "/sql", contentType: "application/sql", body: Array(script.utf8))
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        guard status == 200 else {
            printError(SQLAnswerText.error(body, status: status, script: script))
            throw ExitCode(1)
        }
        var blocks: [String] = []
        for line in body.split(separator: 0x0A) where !line.isEmpty {
            guard let value = try? JSONReader.parse(Array(line)) else { continue }
            blocks.append(SQLAnswerText.statement(value))
        }
        print(blocks.joined(separator: "\n\n"))
    }

    /// Prints rows as they come: a header of the first row's members, then one padded line a row.
    private func followStream(_ stream: String, _ client: PlainHTTPClient) throws {
        var columns: [String]?
        var pending: [UInt8] = []
        var failed = false
        let path = "/streams/" + percentEncoded(stream) + "/results?follow=1"
        let status: Int
        var errorBody: [UInt8] = []
        do {
            status = try client.send(method: "GET", path: path) { data in
                pending += data
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = Array(pending[..<nl])
                    pending.removeSubrange(...nl)
                    errorBody = line
                    guard case .object(let members)? = try? JSONReader.parse(line) else { continue }
                    if members.first?.0 == "progress" { continue }
                    if members.first?.0 == "error" {
                        printError(SQLAnswerText.error(line, status: 200, script: nil))
                        failed = true
                        continue
                    }
                    let m = Dictionary(members, uniquingKeysWith: { a, _ in a })
                    let header = columns ?? members.map(\.0)
                    if columns == nil {
                        columns = header
                        print(header.joined(separator: "  "))
                    }
                    var text = header.map { c in (m[c].map(SQLAnswerText.cell) ?? "").padding(to: c.count) }.joined(separator: "  ")
                    while text.last == " " { text.removeLast() }
                    print(text)
                    fflush(nil)
                }
            }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        if status != 200 {
            if !failed { printError(SQLAnswerText.error(errorBody + pending, status: status, script: nil)) }
            throw ExitCode(1)
        }
        if failed { throw ExitCode(1) }
    }

    private func readAll(_ path: String) -> String? {
        let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { if fd != 0 { close(fd) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let plain = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E || b == 0x7E
            out += plain ? String(UnicodeScalar(b)) : "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
        }
        return out
    }

    private func printError(_ text: String) {
        fflush(nil)
        let bytes = Array((text + "\n").utf8)
        var at = 0
        while at < bytes.count {
            let n = bytes[at...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            at += n
        }
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
