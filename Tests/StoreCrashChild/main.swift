// A writer for the crash test: opens the store in argv[1] with fsync `always`, writes batches of
// keys `k<i>` = `v<i>` from i = argv[2] on, and after each commit (fsync) prints `ack <i>` for
// every key of the batch. The test kills it with SIGKILL at a random moment and checks that
// every acknowledged key survived. With argv[3], a `CompactionStep` name: compacts often, in
// small tail slices, and when a compaction reaches that step prints `paused <step>` and stops
// the thread making it (the writer goes on if it is the compaction thread), for the kill.
import Glibc
import LaminarStore

/// Writes a line straight to a file descriptor (no stdio buffering: the kill must not lose it).
func emit(_ line: String, fd: Int32 = 1) {
    var text = line + "\n"
    text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4, let first = Int(arguments[2]) else {
    emit("usage: laminar-store-crash-child DIR FIRST-INDEX [COMPACTION-STEP]", fd: 2)
    exit(2)
}
var options = LogStoreOptions()
options.fsync = .always
options.compactionBytesMin = 256 << 10  // compact now and then, under the kill too
if arguments.count == 4 {
    guard let stop = CompactionStep.allCases.first(where: { "\($0)" == arguments[3] }) else {
        emit("unknown compaction step \(arguments[3])", fd: 2)
        exit(2)
    }
    options.compactionGarbageRatio = 0.1
    options.compactionSliceBytes = 512
    options.compactionObserver = { step in
        guard step == stop else { return }
        emit("paused \(step)")
        while true { pause() }
    }
}
let store = try LogStore.open(directory: arguments[1], options: options)
emit("ready")
var i = first
while true {
    let batch = 1 + i % 7
    for j in i..<(i + batch) {
        try store.put(Array("k\(j)".utf8), Array("v\(j)-".utf8) + [UInt8](repeating: UInt8(j & 0xFF), count: j % 200))
    }
    // Overwrite and delete older keys too, so compaction has garbage to drop.
    if i > 50 { try store.put(Array("k\(i - 50)".utf8), Array("v\(i - 50)-".utf8) + [UInt8](repeating: UInt8((i - 50) & 0xFF), count: (i - 50) % 200)) }
    try store.commit()
    for j in i..<(i + batch) { emit("ack \(j)") }
    i += batch
}
