/// A result slice the store refused to write (full disk), kept in memory until a later round
/// stores it (`Reactor.retryPendingSlices`): its finished bytes, its first `seq` and row count,
/// and the rows as followers get them (`nil` when the stream built them straight into the slice,
/// `emitClosedRows`: they are read back from the bytes if a follower came meanwhile).
///
/// Invariants (`StreamRuntime.pendingSlices`): the slices continue each other and end at the
/// stream's `nextResultSeq`; while any waits the stream emits no more rows and takes no
/// checkpoint, and resumes, progress and retention stop at the first one
/// (`StreamRuntime.storedResultEnd`): no row is seen or counted until it is stored.
struct PendingSlice {
    let firstSeq: UInt64
    let count: Int
    let bytes: [UInt8]
    let rows: [WindowResult]?
}
