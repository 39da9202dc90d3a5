#!/usr/bin/env python3
"""Profile Laminar during an h2load GET run (-c16 -m32 -t1, 100K preloaded keys):
perf record -g -p PID and perf stat (context switches, CPU) for 8 s, then print the top symbols.
Needs perf (Debian: linux-perf). Environment: LAMINAR_IO_THREADS (default 1). Output: bench-results/profile-get.txt
"""
import os, random, subprocess, sys, tempfile, time, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *  # noqa

IOT = int(os.environ.get("LAMINAR_IO_THREADS", "1"))


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def report(data, *args):
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + list(args),
                         capture_output=True, text=True, timeout=300).stdout
    lines = [l for l in out.splitlines() if "%" in l and not l.startswith("#")]
    dem = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(lines), capture_output=True,
                         text=True, timeout=60).stdout if shutil.which("swift") else "\n".join(lines)
    return [l[:180] for l in dem.splitlines()]


def profile_under(pid, h2load_args, data, stat=False):
    """Runs h2load (-c16 -m32 -t1 for 9 s plus 1 s warm-up) with `h2load_args`, records perf of
    `pid` for 7 s from 1.5 s in (with `stat`, also perf stat of context switches and CPU).
    Returns (server cores used, h2load's "finished in" line, perf stat text)."""
    h2 = subprocess.Popen(["h2load", "-c16", "-m32", "-t1", "-D", "9", "--warm-up-time", "1"] + h2load_args,
                          stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    c0, t0 = cpu(pid), time.time()
    rec = subprocess.Popen(["perf", "record", "-F", "997", "-g", "-p", str(pid), "-o", data, "--", "sleep", "7"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st = subprocess.run(["perf", "stat", "-e", "context-switches,task-clock", "-p", str(pid), "--", "sleep", "7"],
                        capture_output=True, text=True, timeout=60).stderr if stat else ""
    rec.wait(60)
    cores = (cpu(pid) - c0) / (time.time() - t0)
    out = h2.communicate(timeout=60)[0]
    rps = [l for l in out.splitlines() if l.startswith("finished in")]
    return cores, rps[0] if rps else "?", st


def save(name, lines):
    """Prints the report and writes it to bench-results/NAME."""
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results", name), "w") as f:
        f.write(text + "\n")


def main():
    tmp = tempfile.mkdtemp(prefix="laminar-profile-")
    procs = Procs()
    try:
        srv, port = start_laminar(procs, tmp, "always", IOT)
        val = "v" * 100
        for s in range(0, 100000, 10000):
            body = "".join('{"op":"put","key":"k%06d","value":"%s"}\n' % (i, val) for i in range(s, s + 10000))
            assert http_req(port, "POST", "/kv/_batch", body.encode())[0] == 200
        order = list(range(100000))
        random.Random(7).shuffle(order)
        uris = os.path.join(tmp, "uris")
        with open(uris, "w") as f:
            for i in order:
                f.write(f"http://127.0.0.1:{port}/kv/k{i:06d}\n")
        data = os.path.join(tmp, "perf.data")
        cores, rps, st = profile_under(srv.pid, ["-i", uris], data, stat=True)
        lines = [f"profile of laminar --io-threads {IOT} during h2load GET -c16 -m32 -t1: {rps}",
                 f"server CPU: {cores:.2f} cores", "perf stat:"]
        lines += ["  " + l.strip() for l in st.splitlines() if "context" in l or "task-clock" in l]
        lines += ["", "samples per thread (pid:tid):"] + report(data, "--no-children", "--sort", "pid")
        lines += ["", "by shared object:"] + report(data, "--no-children", "--sort", "dso")
        lines += ["", "top symbols (self):"] + report(data, "--no-children", "--sort", "sym")[:40]
        lines += ["", "top symbols (inclusive, Laminar code):"] + [
            l for l in report(data, "--children", "--sort", "sym")
            if any(w in l for w in ("EventLoop", "Connection", "HTTP2", "Router", "Request", "Reactor", "Store", "nghttp2", "Header"))][:40]
        save("profile-get.txt", lines)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
