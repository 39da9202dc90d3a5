#!/usr/bin/env python3
"""Profile Laminar during an h2load binary ingest run (bodies of 1000 events as in make bench-ingest,
-c16 -m32 -t1, --fsync always): perf record -g -p PID for 7 s, then the share of each shared object
(the kernel's among them) and the top symbols. Needs perf (Debian: linux-perf).
Environment: LAMINAR_IO_THREADS (default 1). Output: bench-results/profile-ingest.txt
"""
import os, sys, tempfile, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *  # noqa
import bench_ingest
from profile_get import profile_under, report, save

IOT = int(os.environ.get("LAMINAR_IO_THREADS", "1"))


def main():
    tmp = tempfile.mkdtemp(prefix="laminar-profile-")
    procs = Procs()
    try:
        srv, port = start_laminar(procs, tmp, "always", IOT)
        st, b = http_req(port, "PUT", "/streams/p", bench_ingest.STREAM_DEF, {"content-type": "application/json"})
        assert st in (200, 201), (st, b)
        path = os.path.join(tmp, "body")
        with open(path, "wb") as f:
            f.write(bench_ingest.binary_body(bench_ingest.make_events(1)))
        data = os.path.join(tmp, "perf.data")
        cores, rps, _ = profile_under(srv.pid, ["-d", path, "-H", "content-type: application/vnd.laminar.events",
                                                f"http://127.0.0.1:{port}/streams/p/events"], data)
        lines = [f"profile of laminar --io-threads {IOT} during h2load binary ingest (1000 events per POST) -c16 -m32 -t1: "
                 f"{rps}", f"server CPU: {cores:.2f} cores"]
        lines += ["", "by shared object:"] + report(data, "--no-children", "--sort", "dso")
        lines += ["", "top symbols (self):"] + report(data, "--no-children", "--sort", "sym")[:40]
        save("profile-ingest.txt", lines)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
