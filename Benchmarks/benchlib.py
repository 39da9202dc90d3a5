"""Shared helpers for the h2load-based benchmarks (python3 standard library only).

Every process started here is bounded in time and is ended by its own pid.
All traffic goes to 127.0.0.1.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# LAMINAR_BIN: another laminar binary (an A/B of two builds).
LAMINAR = os.environ.get("LAMINAR_BIN") or os.path.join(ROOT, ".build", "release", "laminar")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port(preferred=None):
    ports = [preferred] if preferred else []
    ports.append(0)
    for p in ports:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


class Procs:
    """Processes started by this benchmark; stop() ends each by its own pid."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        log("$ " + " ".join(argv))
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                self.stop(p)
            except Exception:
                pass


def start_laminar(procs, tmp, fsync, io_threads, name="laminar", extra=()):
    port = free_port()
    data = os.path.join(tmp, name + "-data")
    errf = open(os.path.join(tmp, name + ".err"), "w")
    argv = [LAMINAR, "serve", "--port", str(port), "--data-dir", data,
            "--fsync", fsync, "--io-threads", str(io_threads), "--log-level", "warning", *extra]
    p = procs.start(argv, stdout=subprocess.PIPE, stderr=errf, text=True)
    deadline = time.time() + 30
    line = ""
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            line = p.stdout.readline()
            if "laminar listening on" in line:
                break
        if p.poll() is not None:
            raise RuntimeError(f"laminar exited early: rc={p.returncode}")
    else:
        raise RuntimeError("laminar did not print its listening line within 30s")
    # keep draining stdout so the server never blocks on a full pipe
    subprocess.Popen(["cat"], stdin=p.stdout, stdout=subprocess.DEVNULL)
    return p, port


def static_peer_argv(tmp, kind, port, docroot):
    """The command line of nghttpd (`-n 1`) or h2o (`num-threads: 1`, its configuration written to
    `tmp/h2o.conf`, its pid to `tmp/h2o.pid`) serving `docroot` over h2c on `port`."""
    if kind == "nghttpd":
        return ["nghttpd", "--no-tls", "-n", "1", str(port), "-d", docroot]
    if kind != "h2o":
        raise ValueError(f"unknown peer {kind!r} (nghttpd or h2o)")
    conf = os.path.join(tmp, "h2o.conf")
    with open(conf, "w") as f:
        # as root h2o would switch to "nobody", which cannot read the 0700 temp dir
        f.write(("user: root\n" if os.geteuid() == 0 else "") + f"""num-threads: 1
pid-file: {os.path.join(tmp, "h2o.pid")}
error-log: {tmp}/h2o-error.log
listen:
  host: 127.0.0.1
  port: {port}
hosts:
  default:
    paths:
      /:
        file.dir: {docroot}
""")
    return ["h2o", "-c", conf]


def start_static_peer(procs, tmp, kind, docroot):
    """Starts nghttpd or h2o (`static_peer_argv`) on a free port: the peers that do no work per
    request. Returns (process, port, pid of the serving process)."""
    port = free_port()
    p = procs.start(static_peer_argv(tmp, kind, port, docroot), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    if kind == "nghttpd":
        return p, port, p.pid
    try:  # h2o's serving process: the one its pid file names (the started one unless it forked)
        pid = int(open(os.path.join(tmp, "h2o.pid")).read().strip())
    except (OSError, ValueError):
        pid = p.pid
    return p, port, pid


def http_req(port, method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


H2LOAD_RE = {
    "finished": re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s"),
    "requests": re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout"),
    "status": re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx"),
}


def proc_cpu_s(pid):
    """user+system CPU seconds of a process (all its threads)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def thread_cpu_s(pid):
    """user+system CPU seconds of each thread of a process, summed by thread name."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return out


# The machine-stall probe's process: every 50 ms, 5000 reads at random over 64 MiB (about 1.5 ms
# on an idle core), and one line per task: its start (CLOCK_MONOTONIC, s), wall and CPU time (us).
_STALL_PROBE = """
import random, sys, time
buf = bytearray(random.getrandbits(8) for _ in range(1 << 16)) * 1024
idx = [random.randrange(len(buf)) for _ in range(5000)]
while True:
    t0, c0 = time.monotonic(), time.thread_time()
    s = 0
    for i in idx:
        s += buf[i]
    t1, c1 = time.monotonic(), time.thread_time()
    print("%.4f %d %d" % (t0, (t1 - t0) * 1e6, (c1 - c0) * 1e6), flush=True)
    time.sleep(0.05)
"""


class StallProbe:
    """Times a fixed small memory task in a process of its own while a measurement runs, so that
    a latency outlier can be told apart: when this task, which shares nothing with the server,
    took as long, the whole machine stalled (on a VM, the host), not the server. `stop()` returns
    the tasks' count, median and longest wall time (ms), and how many took over 20 ms."""

    def __init__(self):
        # A file, not a pipe: however long the measurement, the probe never blocks on its output.
        self.out = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-c", _STALL_PROBE], stdout=self.out, text=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.out.seek(0)
        lines = self.out.read().splitlines()
        self.out.close()
        walls = sorted(int(line.split()[1]) / 1000 for line in lines if len(line.split()) == 3)
        if not walls:
            return {"tasks": 0, "median_ms": None, "max_ms": None, "over_20ms": 0}
        return {"tasks": len(walls), "median_ms": round(walls[len(walls) // 2], 2), "max_ms": round(walls[-1], 1),
                "over_20ms": sum(w > 20 for w in walls)}


def metrics(port, prefixes):
    """The server's /metrics samples whose names begin with one of `prefixes`, as floats."""
    st, body = http_req(port, "GET", "/metrics")
    out = {}
    for line in body.decode(errors="replace").splitlines() if st == 200 else []:
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith(prefixes):
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def h2load(args, timeout=120, label="", server_pid=None, warmup_s=0.0):
    argv = ["h2load"] + args
    log("$ " + " ".join(argv))
    c0 = proc_cpu_s(server_pid) if server_pid else None
    t0 = time.time()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout
    wall = time.time() - t0
    c1 = proc_cpu_s(server_pid) if server_pid else None
    res = {"label": label, "raw": out, "wall_s": wall}
    m = H2LOAD_RE["finished"].search(out)
    if not m:
        log(out)
        raise RuntimeError(f"h2load ({label}) printed no result")
    dur = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    res["duration_s"] = dur
    res["h2load_rps"] = float(m.group(3))
    m = H2LOAD_RE["requests"].search(out)
    res["total"], res["started"], res["done"], res["succeeded"], res["failed"], res["errored"], res["timeout"] = map(int, m.groups())
    m = H2LOAD_RE["status"].search(out)
    res["s2xx"], res["s3xx"], res["s4xx"], res["s5xx"] = map(int, m.groups())
    # "finished in" includes the warm-up, the counts and h2load's req/s only the main duration:
    # successful (2xx) requests per second = req/s scaled by the 2xx share
    res["ok_rps"] = res["h2load_rps"] * res["s2xx"] / res["done"] if res["done"] else 0.0
    res["main_s"] = res["done"] / res["h2load_rps"] if res["h2load_rps"] else 0.0
    # server CPU per request: CPU over the whole h2load run (warm-up included) divided by the
    # requests of the main duration scaled to the whole run (assumes the warm-up ran at that rate)
    if c0 is not None and c1 is not None and res["done"]:
        whole = res["done"] * (res["main_s"] + warmup_s) / res["main_s"]
        res["server_cpu_s"] = c1 - c0
        res["server_cores"] = (c1 - c0) / wall
        res["cpu_us_per_req"] = (c1 - c0) / whole * 1e6
    for line in out.splitlines():
        if line.startswith("time for request:"):
            parts = line.split()
            res["req_time"] = {"min": parts[3], "max": parts[4], "mean": parts[5], "sd": parts[6]}
    return res


def check_h2load(res, name):
    bad = res["done"] - res["s2xx"]
    if res["s2xx"] == 0:
        raise RuntimeError(f"{name}: no 2xx responses\n{res['raw']}")
    if bad > 0:
        log(f"WARNING {name}: {bad} of {res['done']} responses were not 2xx")


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def print_table(title, header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    print(title)
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print()


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s = json.dumps(obj, sort_keys=False)
    with open(path, "w") as f:
        f.write(s + "\n")
    return s


def r1(x):
    return round(x, 1)


def ratio(a, b):
    return round(a / b, 3) if b else None
