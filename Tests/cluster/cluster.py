"""A Laminar cluster on loopback for tests and benchmarks: N nodes (`laminar serve --cluster`), HAProxy
from `laminar cluster haproxy-config`, optionally Prometheus from `laminar cluster prometheus-config`.
Every process is started here and stopped by `Cluster.stop()` (SIGTERM, then SIGKILL after a bound).
Standard library only."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.error
import urllib.request


# Debian puts haproxy in /usr/sbin, which a non-root PATH often lacks.
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (HAProxy and Prometheus need one up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, predicate, timeout_s, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def stop_process(proc, signum=signal.SIGTERM, timeout_s=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signum)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request(port, method, path, body=None, headers=None, timeout=10):
    """One HTTP/1.1 request; returns (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class Node:
    def __init__(self, binary, name, port, data_dir, log_path, extra):
        self.binary, self.name, self.port, self.data_dir, self.log_path, self.extra = binary, name, port, data_dir, log_path, extra
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--cluster", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", self.data_dir,
             "--io-threads", "1", *self.extra],
            stdout=subprocess.PIPE, stderr=open(self.log_path, "ab"), text=True)
        line = self.proc.stdout.readline()  # the readiness line, or "" if it died
        if not re.match(r"laminar listening on http://127\.0\.0\.1:(\d+)", line):
            self.proc.kill()
            raise AssertionError(f"node {self.name}: no readiness line (got {line!r}); see {self.log_path}")

    @property
    def spec(self):
        return f"{self.name}=127.0.0.1:{self.port}"


class Cluster:
    """`nodes` nodes, HAProxy in front (port `self.port`), its stats on `self.stats_port`."""

    def __init__(self, bin_dir, nodes=3, node_args=(), prometheus=False, work=None, haproxy_threads=None):
        self.bin_dir = bin_dir
        self.laminar = os.path.join(bin_dir, "laminar")
        self.load = os.path.join(bin_dir, "laminar-load")
        self.work = work or tempfile.mkdtemp(prefix="laminar-cluster-")
        self.own_work = work is None
        self.nodes = [Node(self.laminar, f"n{i + 1}", free_port(), os.path.join(self.work, f"n{i + 1}"),
                           os.path.join(self.work, f"n{i + 1}.log"), list(node_args)) for i in range(nodes)]
        self.port = free_port()
        self.stats_port = free_port()
        self.haproxy = None
        self.haproxy_threads = haproxy_threads
        self.prometheus = None
        self.prometheus_port = free_port() if prometheus else None
        self.want_prometheus = prometheus

    # -- lifecycle

    def start(self):
        try:
            for n in self.nodes:
                n.start()
            self.start_haproxy()
            if self.want_prometheus:
                self.start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def start_haproxy(self):
        args = [self.laminar, "cluster", "haproxy-config", "--listen", f"127.0.0.1:{self.port}",
                "--stats", f"127.0.0.1:{self.stats_port}"]
        for n in self.nodes:
            args += ["--node", n.spec]
        text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        if self.haproxy_threads:
            text = text.replace("global\n", f"global\n    nbthread {self.haproxy_threads}\n", 1)
        self.haproxy_cfg = os.path.join(self.work, "haproxy.cfg")
        with open(self.haproxy_cfg, "w") as f:
            f.write(text)
        check = subprocess.run([HAPROXY, "-c", "-f", self.haproxy_cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"haproxy -c -f rejects the generated file:\n{check.stdout}{check.stderr}")
        self.haproxy = subprocess.Popen([HAPROXY, "-f", self.haproxy_cfg, "-db"],
                                        stdout=open(os.path.join(self.work, "haproxy.log"), "ab"), stderr=subprocess.STDOUT)
        wait_until("HAProxy to see every node up", lambda: all(self.node_states().get(n.name) == "UP" for n in self.nodes), 20)

    def start_prometheus(self):
        args = [self.laminar, "cluster", "prometheus-config", "--scrape-interval", "1", "--haproxy", f"127.0.0.1:{self.stats_port}"]
        for n in self.nodes:
            args += ["--node", n.spec]
        text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        cfg = os.path.join(self.work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(text)
        check = subprocess.run(["promtool", "check", "config", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"promtool rejects the generated file:\n{check.stdout}{check.stderr}")
        self.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(self.work, 'prometheus')}",
             f"--web.listen-address=127.0.0.1:{self.prometheus_port}", "--storage.tsdb.retention.time=1h"],
            stdout=open(os.path.join(self.work, "prometheus.log"), "ab"), stderr=subprocess.STDOUT)
        wait_until("Prometheus to be ready", lambda: self._ok(self.prometheus_port, "/-/ready"), 30, 0.2)
        wait_until("Prometheus to scrape every node", lambda: self.promql('sum(up{job="laminar"})') == len(self.nodes), 30, 0.2)

    def stop(self):
        stop_process(self.prometheus)
        stop_process(self.haproxy, signal.SIGUSR1)  # soft stop: finishes its requests, exits
        stop_process(self.haproxy)
        for n in self.nodes:
            stop_process(n.proc)

    def cleanup(self):
        if self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- looking

    def _ok(self, port, path):
        try:
            return request(port, "GET", path, timeout=2)[0] == 200
        except OSError:
            return False

    def node_states(self):
        """HAProxy's view, node name -> UP/DOWN/..., from its stats CSV."""
        try:
            status, _, body = request(self.stats_port, "GET", "/stats;csv", timeout=2)
        except OSError:
            return {}
        states = {}
        for line in body.decode().splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0].startswith("node_") and f[1] != "BACKEND":
                states[f[1]] = f[17].split(" ")[0]
        return states

    def node_of_tag(self, tag):
        """The node HAProxy routes `tag` to (its laminar-node response header)."""
        status, headers, _ = request(self.port, "HEAD", f"/kv/{urllib.parse.quote(tag, safe='')}/probe")
        return headers.get("laminar-node")

    def promql_raw(self, query):
        """Prometheus's answer to an instant query, as parsed JSON ({} when unreachable)."""
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)
        except OSError:
            return {}

    def promql(self, query):
        """The first value of an instant query, or None."""
        result = self.promql_raw(query).get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    def run_load(self, *args, port=None, check=True, timeout=300):
        """laminar-load against HAProxy (or `port`); returns (exit code, parsed --json report or None, output)."""
        cmd = [self.load, *args, "--url", f"http://127.0.0.1:{port or self.port}"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        report = None
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                report = json.loads(line)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
        return p.returncode, report, p.stdout + p.stderr
