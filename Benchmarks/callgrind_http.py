#!/usr/bin/env python3
"""Instructions per request of the server's threads under callgrind: a fixed h2load run
(-c16 -m32 -t1, 100-byte values over 100K preloaded keys) of GET /kv/KEY, then of PUT, each
after a 20 000-request warm-up; callgrind's counters are zeroed before and dumped after each run.
Load-independent, unlike bench-http's wall clock: the measure for per-request work on the I/O
thread (`--io-threads 1`).

usage: callgrind_http.py [BINARY] [--requests N] [--out DIR] [--only get|put]
BINARY defaults to .build/release/laminar, stripped of its debug info first (valgrind 3.19 cannot
read Swift 6's DWARF 5). Prints, per run and thread, instructions per request, then the top
functions of the I/O thread (exclusive, per request); callgrind files stay in DIR.
"""
import argparse
import collections
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *  # noqa


def thread_totals(out_dir, pid, part):
    """{thread number: instructions} of a dump (`callgrind.out.PID.PART-THREAD`)."""
    totals = {}
    for path in glob.glob(os.path.join(out_dir, f"callgrind.out.{pid}.{part}-*")):
        with open(path) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    totals[int(path.rsplit("-", 1)[1])] = int(line.split()[1])
                    break
    return totals


def by_object(path):
    """{shared object: exclusive instructions} of a callgrind file (`ob=` sections)."""
    names = {}
    totals = collections.Counter()
    current = None
    cost_line = re.compile(r"^(?:[+-]?\d+|\*)\s+(\d+)")
    with open(path) as f:
        for line in f:
            if line.startswith("ob="):
                m = re.match(r"ob=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = os.path.basename(m.group(2))
                    current = names.get(m.group(1), m.group(1))
                else:
                    current = os.path.basename(line[3:].strip())
            elif line.startswith(("cob=", "cfi=", "cfl=", "cfn=", "fn=", "fl=", "fi=", "fe=")):
                if line.startswith("cob="):
                    m = re.match(r"cob=\((\d+)\)(?: (.*))?", line.strip())
                    if m and m.group(2):
                        names[m.group(1)] = os.path.basename(m.group(2))
                continue
            elif line.startswith("calls="):
                next(f, None)  # the call's inclusive cost line: not exclusive to this object
            else:
                m = cost_line.match(line)
                if m and current is not None:
                    totals[current] += int(m.group(1))
    return totals


def top_functions(path, requests, count=25):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True, text=True, timeout=300).stdout
    if shutil.which("swift"):
        out = subprocess.run(["swift", "demangle", "--simplified"], input=out, capture_output=True, text=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            rows.append((int(m.group(1).replace(",", "")) / requests, m.group(2)[:150]))
    return rows[3:3 + count]  # after clone, start_thread and the thread's entry (inclusive)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default=LAMINAR)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "callgrind"))
    ap.add_argument("--only", choices=["get", "put"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for old in glob.glob(os.path.join(a.out, "callgrind.out.*")):
        os.remove(old)
    tmp = tempfile.mkdtemp(prefix="laminar-callgrind-")
    procs = Procs()
    try:
        binary = os.path.join(tmp, "laminar")
        subprocess.run(["strip", "--strip-debug", "-o", binary, a.binary], check=True)
        port = free_port()
        argv = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                f"--callgrind-out-file={a.out}/callgrind.out.%p", binary, "serve", "--port", str(port),
                "--data-dir", os.path.join(tmp, "data"), "--fsync", "always", "--io-threads", "1", "--log-level", "warning"]
        srv = procs.start(argv, env=dict(os.environ, LAMINAR_DEBUG_DATA_GIB="4"), stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(a.out, "valgrind.err"), "w"))
        wait_port(port, 120)
        value = b"v" * 100
        vfile = os.path.join(tmp, "value100")
        with open(vfile, "wb") as f:
            f.write(value)
        keys = 100000
        for start in range(0, keys, 10000):
            lines = "".join('{"op":"put","key":"k%06d","value":"%s"}\n' % (i, value.decode())
                            for i in range(start, min(keys, start + 10000)))
            st, body = http_req(port, "POST", "/kv/_batch", lines.encode(), timeout=600)
            if st != 200:
                raise RuntimeError(f"preload failed: {st} {body[:200]!r}")
        base = f"http://127.0.0.1:{port}"
        order = list(range(keys))
        random.Random(7).shuffle(order)
        get_uris = os.path.join(tmp, "get-uris")
        with open(get_uris, "w") as f:
            f.writelines(f"{base}/kv/k{i:06d}\n" for i in order)
        put_uris = os.path.join(tmp, "put-uris")
        with open(put_uris, "w") as f:
            f.writelines(f"{base}/kv/p{i:07d}\n" for i in range(1000000))
        runs = [("get", ["-i", get_uris]), ("put", ["-i", put_uris, "-d", vfile, "-H", ":method: PUT"])]
        part = 0
        for label, args in runs:
            if a.only and label != a.only:
                continue
            client = ["h2load", "-c16", "-m32", "-t1"] + args
            subprocess.run(client + ["-n", "20000"], capture_output=True, timeout=1800)
            subprocess.run(["callgrind_control", "-z", str(srv.pid)], capture_output=True, timeout=300)
            out = subprocess.run(client + ["-n", str(a.requests)], capture_output=True, text=True, timeout=3600).stdout
            subprocess.run(["callgrind_control", "-d", label, str(srv.pid)], capture_output=True, timeout=600)
            part += 1
            ok = re.search(r"status codes: (\d+) 2xx", out)
            print(f"{label}: {ok.group(1) if ok else '?'} of {a.requests} answered 2xx")
            totals = thread_totals(a.out, srv.pid, part)
            for thread, n in sorted(totals.items()):
                print(f"  thread {thread}: {n / a.requests:8.0f} instructions per request")
            if totals:
                busiest = max(totals, key=totals.get)
                path = os.path.join(a.out, f"callgrind.out.{srv.pid}.{part}-{busiest:02d}")
                print(f"  thread {busiest} by object (exclusive, per request):")
                for obj, n in by_object(path).most_common(6):
                    print(f"    {n / a.requests:7.0f}  {obj}")
                print(f"  top functions of thread {busiest} (exclusive, per request):")
                for per, name in top_functions(path, a.requests):
                    print(f"    {per:7.0f}  {name}")
        procs.stop(srv, timeout=300)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
