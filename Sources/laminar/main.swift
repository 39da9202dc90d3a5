// `laminar`: the command line. Everything lives in LaminarCommand.swift (C callbacks and
// top-level state stay out of main.swift, which is main-actor isolated).
import LaminarStore

HugePages.useForMallocByReexecuting()
LaminarCommand.main()
