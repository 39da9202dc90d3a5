import Foundation
import Glibc
@testable import LaminarStore

/// Which store a parameterized test runs on.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, persistent
    var testDescription: String { rawValue }
}

import Testing

/// A fresh temporary directory, removed by `remove()`.
struct TempDirectory: ~Copyable {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "laminar-test-XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Opens a store of `kind`, in `directory` for the persistent kind.
func makeStore(_ kind: StoreKind, directory: String, options: LogStoreOptions = LogStoreOptions()) throws -> LogStore {
    switch kind {
    case .memory: return try LogStore.inMemory(options: options)
    case .persistent: return try LogStore.open(directory: directory, options: options)
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}
