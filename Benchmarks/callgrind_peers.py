#!/usr/bin/env python3
"""Instructions per request of bench-http's peers under callgrind, the same way
callgrind_http.py measures Laminar: h2load -c16 -m32 -t1 GET of a 10-byte static file (nghttpd
-n 1, h2o with one thread), 20 000 requests of warm-up, then counters zeroed and N requests
counted. Per thread: instructions per request, and how they split by shared object (for
nghttpd: how much is libnghttp2 itself, the floor a server on nghttp2 shares).

usage: callgrind_peers.py [--requests N] [--out DIR] [--only nghttpd|h2o]
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *  # noqa
from callgrind_http import by_object, thread_totals, top_functions  # noqa


def measure(label, argv, url, out_dir, requests):
    procs = Procs()
    try:
        srv = procs.start(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(out_dir, f"{label}.err"), "w"))
        port = int(url.split(":")[2].split("/")[0])
        wait_port(port, 120)
        pid = srv.pid
        client = ["h2load", "-c16", "-m32", "-t1", url]
        subprocess.run(client + ["-n", "20000"], capture_output=True, timeout=1800)
        subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=300)
        out = subprocess.run(client + ["-n", str(requests)], capture_output=True, text=True, timeout=3600).stdout
        subprocess.run(["callgrind_control", "-d", label, str(pid)], capture_output=True, timeout=600)
        ok = re.search(r"status codes: (\d+) 2xx", out)
        print(f"{label}: {ok.group(1) if ok else '?'} of {requests} answered 2xx")
        totals = thread_totals(out_dir, pid, 1)
        for thread, n in sorted(totals.items()):
            print(f"  thread {thread}: {n / requests:8.0f} instructions per request")
        if totals:
            busiest = max(totals, key=totals.get)
            path = os.path.join(out_dir, f"callgrind.out.{pid}.1-{busiest:02d}")
            print(f"  thread {busiest} by object (exclusive, per request):")
            for obj, n in by_object(path).most_common(8):
                print(f"    {n / requests:7.0f}  {obj}")
            print(f"  top functions of thread {busiest} (exclusive, per request):")
            for per, name in top_functions(path, requests, 20):
                print(f"    {per:7.0f}  {name}")
        procs.stop(srv, timeout=300)
    finally:
        procs.stop_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "callgrind-peers"))
    ap.add_argument("--only", choices=["nghttpd", "h2o"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for old in glob.glob(os.path.join(a.out, "callgrind.out.*")):
        os.remove(old)
    tmp = tempfile.mkdtemp(prefix="laminar-callgrind-peers-")
    try:
        docroot = os.path.join(tmp, "www")
        os.makedirs(docroot)
        with open(os.path.join(docroot, "f10"), "wb") as f:
            f.write(b"0123456789")
        vg = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={a.out}/callgrind.out.%p"]
        for kind in ("nghttpd", "h2o"):
            if a.only in (None, kind):
                port = free_port()
                measure(kind, vg + static_peer_argv(tmp, kind, port, docroot), f"http://127.0.0.1:{port}/f10", a.out, a.requests)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
