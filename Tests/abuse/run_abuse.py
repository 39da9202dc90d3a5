#!/usr/bin/env python3
"""HTTP/2 and HTTP/1.1 abuse suite for Laminar.

Usage: run_abuse.py LAMINAR_BINARY [--long] [--only NAME[,NAME...]] [--list]

Each case starts a fresh server (127.0.0.1, --port 0, a temporary data dir), waits for its
readiness line, runs the abuse, then checks that
  (a) the server process is alive,
  (b) a fresh client is answered correctly and promptly: HTTP/2 GET /health, PUT + GET of a key,
      and an HTTP/1.1 GET /health,
  (c) its memory stayed bounded: the peak of its anonymous resident memory (RssAnon, sampled every
      20 ms; the memory-mapped data file is left out) minus the baseline under the case's bound,
  (d) the case's own assertion (GOAWAY with the expected code, a 4xx, a closed connection, ...).
One line per case, then `N passed, N failed`; the exit status is 1 if any case failed.
--long (make torture) runs every case 3 times against the same server, with twice the iterations."""

import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2raw  # noqa: E402
from h2raw import (CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, H2Conn, frame,  # noqa: E402
                   http1, ping, request_headers, rst, settings, window_update)

MiB = 1024 * 1024
LONG = "--long" in sys.argv
# --long (make torture): 3 rounds of every case against the same server (memory must not grow
# with rounds: a leak would), and twice the iterations where they are cheap.
ROUNDS = int(os.environ.get("ABUSE_ROUNDS", 3 if LONG else 1))
SCALE = 2 if LONG else 1


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    def __init__(self, binary, args=()):
        self.dir = tempfile.mkdtemp(prefix="laminar-abuse-")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        cmd = [binary, "serve", "--host", "127.0.0.1", "--port", "0",
               "--data-dir", os.path.join(self.dir, "data"), "--fsync", "never",
               "--log-level", "warning"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log)
        self.port = None
        deadline = time.monotonic() + 20
        line = b""
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline and self.proc.poll() is None:
            import select
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = self.proc.stdout.read() or b""
                line += chunk
                if b"\n" in line:
                    first = line.split(b"\n")[0].decode()
                    if first.startswith("laminar listening on http://"):
                        self.port = int(first.rsplit(":", 1)[1])
                        break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"server did not become ready: {line!r} {self.stderr_tail()}")

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def rss(self):
        return self.status("VmRSS")

    def anon(self):
        """Resident anonymous memory: the heap and stacks, not the pages of the memory-mapped
        data file (which grow with what the case writes, and are the kernel's to drop)."""
        return self.status("RssAnon")

    def start_sampling(self):
        """Samples RssAnon every 20 ms in a thread; `stop_sampling` returns the peak seen."""
        self._peak_anon = self.anon()
        self._sampling = True

        def run():
            while self._sampling and self.alive():
                try:
                    self._peak_anon = max(self._peak_anon, self.anon())
                except OSError:
                    break
                time.sleep(0.02)
        self._sampler = threading.Thread(target=run, daemon=True)
        self._sampler.start()

    def stop_sampling(self):
        self._sampling = False
        self._sampler.join(timeout=5)
        if self.alive():
            self._peak_anon = max(self._peak_anon, self.anon())
        return self._peak_anon

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def wait_fds(self, at_most, seconds):
        """Waits until the server holds at most `at_most` descriptors; returns the last count."""
        deadline = time.monotonic() + seconds
        n = self.fds()
        while n > at_most and time.monotonic() < deadline:
            time.sleep(0.1)
            n = self.fds()
        return n

    def alive(self):
        return self.proc.poll() is None

    def stderr_tail(self):
        try:
            self.log.flush()
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode


def check_normal_client(srv, seconds=5.0):
    """(b): a fresh, well-behaved client is answered correctly and promptly."""
    start = time.monotonic()
    c = H2Conn(srv.port, timeout=seconds)
    try:
        status, body = c.request("GET", "/health", seconds=seconds)
        assert status == 200 and b'"ok"' in body, f"h2 /health: {status} {body!r}"
        value = os.urandom(8).hex().encode()
        status, _ = c.request("PUT", "/kv/abuse-check", body=value, seconds=seconds)
        assert status in (200, 201, 204), f"h2 PUT: {status}"
        status, body = c.request("GET", "/kv/abuse-check", seconds=seconds)
        assert status == 200 and body == value, f"h2 GET: {status} {body!r}"
    finally:
        c.close()
    status, data = http1(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", seconds)
    assert status == 200, f"http/1.1 /health: {status} {data[:200]!r}"
    return time.monotonic() - start


def expect_bounded_close(c, seconds, codes=("ENHANCE_YOUR_CALM", "PROTOCOL_ERROR")):
    """(d) for floods: GOAWAY with one of `codes`, or a close without one (the server may cut a
    connection it cannot even write a GOAWAY to). Returns a short description."""
    c.read_until_closed(seconds)
    if c.goaway is not None:
        name = h2raw.ERROR_NAMES.get(c.goaway[1], str(c.goaway[1]))
        assert name in codes, f"GOAWAY({name}), expected one of {codes}"
        assert c.eof, f"GOAWAY({name}) but the connection stayed open {seconds} s"
        return f"GOAWAY({name})"
    assert c.eof, f"the abusive connection was neither sent GOAWAY nor closed within {seconds} s"
    return "closed without GOAWAY"


# ---------------------------------------------------------------------------------------- cases

CASES = []


def case(name, rss_bound_mib=64, args=()):
    def register(fn):
        CASES.append((name, fn, rss_bound_mib, list(args)))
        return fn
    return register


@case("rapid_reset", rss_bound_mib=32)
def rapid_reset(srv):
    """CVE-2023-44487: HEADERS + RST_STREAM pairs as fast as possible, never reading."""
    c = H2Conn(srv.port)
    pairs = 20000 * SCALE
    out = bytearray()
    for _ in range(pairs):
        sid = c.new_stream()
        out += c.headers_frame(sid, request_headers("GET", "/health")) + rst(sid, 8)
    sent = c.try_send(bytes(out), 10)
    how = expect_bounded_close(c, 10, codes=("ENHANCE_YOUR_CALM", "PROTOCOL_ERROR", "INTERNAL_ERROR"))
    c.close()
    return f"{pairs} pairs, {sent // 1024} KiB accepted, {how}"


@case("server_reset_flood", rss_bound_mib=32)
def server_reset_flood(srv):
    """MadeYouReset: requests the server must reset itself (an uppercase field name, a
    connection-specific header, a body shorter than its content-length): each a stream error."""
    c = H2Conn(srv.port)
    out = bytearray()
    n = 1000 * SCALE
    for i in range(n):
        sid = c.new_stream()
        if i % 3 == 0:
            out += c.headers_frame(sid, request_headers("GET", "/health", [("X-Bad", "1")]))
        elif i % 3 == 1:
            out += c.headers_frame(sid, request_headers("GET", "/health", [("connection", "close")]))
        else:
            out += c.headers_frame(sid, request_headers("PUT", "/kv/x", [("content-length", "5")]), end_stream=False)
            out += frame(DATA, END_STREAM, sid, b"x")
    c.try_send(bytes(out), 10)
    how = expect_bounded_close(c, 10, codes=("ENHANCE_YOUR_CALM",))
    c.close()
    return f"{n} invalid streams, {how}"


# HTTPLimits.serverResetsPerConnectionMax: the server counts every invalid frame it receives and
# every RST_STREAM it sends, and ends the connection with GOAWAY(ENHANCE_YOUR_CALM) at this many.
SERVER_RESETS_MAX = 200


@case("invalid_frame_reset_flood", rss_bound_mib=32)
def invalid_frame_reset_flood(srv):
    """MadeYouReset with invalid frames on open streams, each a stream error in nghttp2 1.52:
    a WINDOW_UPDATE that takes the stream's send window past 2^31-1 (RST_STREAM(FLOW_CONTROL_ERROR))
    and a second HEADERS (trailers) without END_STREAM (RST_STREAM(PROTOCOL_ERROR)).
    Left out because nghttp2 does not reset the stream: WINDOW_UPDATE with increment 0 and DATA or
    HEADERS after END_STREAM are connection errors (GOAWAY(PROTOCOL_ERROR) / GOAWAY(STREAM_CLOSED)
    on the first one), and a PRIORITY frame depending on its own stream is ignored.
    Per kind, (1) lockstep: batches of 10 streams, each batch's resets awaited before the next:
    every stream costs 2 of the budget (the invalid frame, then our RST_STREAM), so exactly
    SERVER_RESETS_MAX / 2 resets arrive, then GOAWAY(ENHANCE_YOUR_CALM) naming the last of them;
    (2) burst: every stream in one write: the budget runs out on invalid frames alone, before the
    queued resets are written (GOAWAY goes first and ends the session), so few or no resets are seen."""
    kinds = (
        ("WINDOW_UPDATE past 2^31-1", "FLOW_CONTROL_ERROR",
         lambda c, sid: c.headers_frame(sid, request_headers("GET", "/health")) + window_update(sid, 0x7FFFFFFF)),
        ("trailers without END_STREAM", "PROTOCOL_ERROR",
         lambda c, sid: c.headers_frame(sid, request_headers("PUT", "/kv/x"), end_stream=False)
         + c.headers_frame(sid, [("x-trailer", "1")], end_stream=False)),
    )
    n, batch = 1000 * SCALE, 10
    per_stream = SERVER_RESETS_MAX // 2
    notes = []
    for label, code, build in kinds:
        # (1) lockstep
        c = H2Conn(srv.port)
        sent = 0
        while sent < n and c.goaway is None and not c.eof:
            sids = [c.new_stream() for _ in range(batch)]
            c.try_send(b"".join(build(c, sid) for sid in sids), 5)
            sent += batch
            c.read_frames(5, until=lambda: all(s in c.resets for s in sids) or c.goaway is not None or c.eof)
            assert c.goaway is not None or c.eof or all(s in c.resets for s in sids), \
                f"{label}: streams {sids} not reset within 5 s (resets so far {len(c.resets)})"
        how = expect_bounded_close(c, 10, codes=("ENHANCE_YOUR_CALM",))
        assert c.goaway is not None, f"{label}: closed without GOAWAY after {sent} streams"
        codes = {h2raw.ERROR_NAMES.get(v, v) for v in c.resets.values()}
        assert codes == {code}, f"{label}: reset codes {codes}, expected {code}"
        assert len(c.resets) == per_stream and c.goaway[0] == 2 * per_stream - 1, \
            f"{label}: {len(c.resets)} resets, GOAWAY last stream {c.goaway[0]}; expected {per_stream}, {2 * per_stream - 1}"
        c.close()
        lockstep = f"{len(c.resets)} RST_STREAM({code}) of {sent} sent, {how} last {c.goaway[0]}"
        # (2) burst
        c = H2Conn(srv.port)
        c.try_send(b"".join(build(c, c.new_stream()) for _ in range(n)), 10)
        how = expect_bounded_close(c, 10, codes=("ENHANCE_YOUR_CALM",))
        assert c.goaway is not None, f"{label} burst: closed without GOAWAY"
        codes = {h2raw.ERROR_NAMES.get(v, v) for v in c.resets.values()}
        assert codes <= {code}, f"{label} burst: reset codes {codes}, expected {code}"
        # At least SERVER_RESETS_MAX / 2 streams processed (each at most 2 of the budget), at most
        # SERVER_RESETS_MAX (each at least 1), then the server stops reading.
        assert 2 * per_stream - 1 <= c.goaway[0] <= 2 * SERVER_RESETS_MAX - 1, \
            f"{label} burst: GOAWAY last stream {c.goaway[0]} outside [{2 * per_stream - 1}, {2 * SERVER_RESETS_MAX - 1}]"
        c.close()
        check_normal_client(srv)
        notes.append(f"{label}: lockstep {lockstep}; burst of {n}: {len(c.resets)} RST_STREAM, {how} last {c.goaway[0]}")
    return "; ".join(notes)


@case("ping_flood", rss_bound_mib=32)
def ping_flood(srv):
    c = H2Conn(srv.port, rcvbuf=4096)
    n = 200000 * SCALE
    data = ping() * n
    sent = c.try_send(data, 8)
    how = expect_bounded_close(c, 10)
    c.close()
    return f"{sent // 17} of {n} PINGs accepted, {how}"


@case("settings_flood", rss_bound_mib=32)
def settings_flood(srv):
    c = H2Conn(srv.port, rcvbuf=4096)
    n = 100000 * SCALE
    data = settings([(3, 100), (4, 65535)]) * n
    sent = c.try_send(data, 8)
    how = expect_bounded_close(c, 10)
    c.close()
    return f"{sent // 21} of {n} SETTINGS accepted, {how}"


@case("settings_too_many_entries", rss_bound_mib=32)
def settings_too_many_entries(srv):
    c = H2Conn(srv.port)
    c.send(settings([(3, 100)] * 1000))
    how = expect_bounded_close(c, 5, codes=("ENHANCE_YOUR_CALM", "PROTOCOL_ERROR"))
    c.close()
    return f"one SETTINGS of 1000 entries, {how}"


@case("continuation_flood", rss_bound_mib=32)
def continuation_flood(srv):
    """CVE-2024-28182: one header block in endless CONTINUATION frames. 1000 frames in one write
    (the server reads them all before closing): GOAWAY(ENHANCE_YOUR_CALM) must arrive; then a
    flood of 100 000 (the server closes with unread input, so the client may see only a reset)."""
    notes = []
    for n, strict in ((1000, True), (100000 * SCALE, False)):
        c = H2Conn(srv.port)
        c.read_frames(0.5, until=lambda: False)
        sid = c.new_stream()
        block = c.header_block(request_headers("GET", "/health"))
        out = bytearray(frame(HEADERS, END_STREAM, sid, block))
        filler = c.encoder.encode([("x-filler", "a" * 8)], huffman=False)
        for _ in range(n):
            out += frame(CONTINUATION, 0, sid, filler)
        sent = c.try_send(bytes(out), 8)
        if strict:
            how = expect_bounded_close(c, 10, codes=("ENHANCE_YOUR_CALM",))
            assert c.goaway is not None, "no GOAWAY after 1000 CONTINUATION frames"
        else:
            how = expect_bounded_close(c, 10, codes=("ENHANCE_YOUR_CALM",))
        notes.append(f"{sent // (9 + len(filler))} of {n} CONTINUATION frames accepted, {how}")
        c.close()
    return "; ".join(notes)


@case("oversized_headers", rss_bound_mib=32)
def oversized_headers(srv):
    """A header list over 64 KiB: HTTP/2 431 on the stream (connection kept), HTTP/1.1 431 then close,
    and a header block bigger than CONTINUATION allows: GOAWAY."""
    notes = []
    c = H2Conn(srv.port)
    big = [(f"x-big-{i}", "v" * 4000) for i in range(20)]  # ~80 KiB decoded
    sid = c.new_stream()
    block = c.encoder.encode(request_headers("GET", "/health", big), huffman=False)
    out = bytearray()
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    for i, chunk in enumerate(chunks):
        last = END_HEADERS if i == len(chunks) - 1 else 0
        out += frame(HEADERS if i == 0 else CONTINUATION, last | (END_STREAM if i == 0 else 0), sid, chunk)
    c.send(bytes(out))
    c.read_frames(5, until=lambda: c.responses.get(sid, {}).get("done") or sid in c.resets or c.eof)
    r = c.responses.get(sid)
    status = dict(r["headers"]).get(":status") if r else None
    assert status == "431" or sid in c.resets, f"h2 80 KiB header list: status {status}, resets {c.resets}, goaway {c.goaway}"
    notes.append(f"h2 80 KiB list: {status or 'RST ' + str(c.resets.get(sid))}")
    status, _ = c.request("GET", "/health")
    assert status == 200, "connection unusable after 431"
    # 160 KiB in one header block: more CONTINUATION frames than allowed.
    sid = c.new_stream()
    big = [(f"x-big-{i}", "v" * 4000) for i in range(40)]
    block = c.encoder.encode(request_headers("GET", "/health", big), huffman=False)
    chunks = [block[i:i + 8192] for i in range(0, len(block), 8192)]
    out = bytearray()
    for i, chunk in enumerate(chunks):
        last = END_HEADERS if i == len(chunks) - 1 else 0
        out += frame(HEADERS if i == 0 else CONTINUATION, last | (END_STREAM if i == 0 else 0), sid, chunk)
    c.try_send(bytes(out), 5)
    c.read_frames(5, until=lambda: c.eof)
    assert c.goaway is not None and c.goaway[1] == 11 and c.eof, \
        f"160 KiB header block in {len(chunks)} frames: goaway {c.goaway}, closed {c.eof}"
    notes.append(f"h2 160 KiB block in {len(chunks)} frames: GOAWAY(ENHANCE_YOUR_CALM)")
    c.close()
    # HTTP/1.1
    req = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 4000) for i in range(20)) + b"\r\n"
    status, data = http1(srv.port, req)
    assert status == 431, f"http/1.1 80 KiB headers: {status} {data[:100]!r}"
    notes.append("h1 431")
    return ", ".join(notes)


@case("hpack_abuse", rss_bound_mib=32)
def hpack_abuse(srv):
    notes = []
    # 1. HPACK bomb: one 4000-byte header in the dynamic table referenced 2000 times (8 MB decoded
    #    from ~4 KB on the wire). Over the header list limit: 431 or a reset, nothing big kept.
    c = H2Conn(srv.port)
    sid = c.new_stream()
    enc = c.encoder
    first = enc.encode(request_headers("GET", "/health") + [("x-bomb", "b" * 4000)], huffman=False)
    # The entry just added is dynamic index 62.
    refs = bytes([0x80 | 0x3E]) * 2000
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, first + refs))
    c.read_frames(5, until=lambda: c.responses.get(sid, {}).get("done") or sid in c.resets or c.eof)
    r = c.responses.get(sid)
    status = dict(r["headers"]).get(":status") if r else None
    assert status == "431" or sid in c.resets or c.goaway, f"HPACK bomb: status {status}"
    notes.append(f"bomb: {status or c.resets.get(sid) or c.goaway}")
    c.close()
    # 2. A dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (4096): COMPRESSION_ERROR.
    c = H2Conn(srv.port)
    sid = c.new_stream()
    update = bytes([0x3F, 0xE1, 0xFF, 0x03])  # size update to 65535 (5-bit prefix integer)
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, update + c.header_block(request_headers("GET", "/health"))))
    how = expect_bounded_close(c, 5, codes=("COMPRESSION_ERROR", "PROTOCOL_ERROR"))
    notes.append(f"table size update: {how}")
    c.close()
    # 3. An index past the end of the table: COMPRESSION_ERROR.
    c = H2Conn(srv.port)
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bytes([0xFF, 0x80, 0x7F])))
    how = expect_bounded_close(c, 5, codes=("COMPRESSION_ERROR", "PROTOCOL_ERROR"))
    notes.append(f"bad index: {how}")
    c.close()
    # 4. Churn: every request inserts new 4000-byte entries (the table evicts); a huge
    #    SETTINGS_HEADER_TABLE_SIZE asks the server's encoder for more than it will keep.
    c = H2Conn(srv.port, handshake=False)
    c.send(h2raw.PREFACE + settings([(1, 1 << 30), (4, 1 << 24)]))
    n = 500 * SCALE
    ok = 0
    for i in range(n):
        status, _ = c.request("GET", "/health", extra=[(f"x-churn-{i % 50}", os.urandom(1500).hex())])
        ok += status == 200
    assert ok == n, f"churn: {ok}/{n} answered 200"
    notes.append(f"churn {n} requests ok")
    c.close()
    return ", ".join(notes)


@case("max_concurrent_streams", rss_bound_mib=32)
def max_concurrent_streams(srv):
    """1000 streams left open (request bodies never sent) on one connection: at most 256 (the
    advertised SETTINGS_MAX_CONCURRENT_STREAMS) are kept, the rest refused or the connection ended."""
    c = H2Conn(srv.port)
    c.read_frames(2, until=lambda: False)  # the server's SETTINGS, our ACK
    out = bytearray()
    n = 1000
    ids = []
    for _ in range(n):
        sid = c.new_stream()
        ids.append(sid)
        out += c.headers_frame(sid, request_headers("PUT", f"/kv/open-{sid}"), end_stream=False)
    c.send(bytes(out))
    c.read_frames(3, until=lambda: c.eof)
    refused = [s for s in ids if c.resets.get(s) == 7]
    if c.goaway is not None:
        name = h2raw.ERROR_NAMES.get(c.goaway[1])
        assert name in ("PROTOCOL_ERROR", "REFUSED_STREAM", "ENHANCE_YOUR_CALM"), f"GOAWAY({name})"
        assert c.goaway[0] <= ids[255], f"GOAWAY last stream {c.goaway[0]} beyond the 256th stream"
        how = f"GOAWAY({name}) last stream {c.goaway[0]}"
    else:
        assert len(refused) >= n - 256, f"only {len(refused)} of {n - 256} extra streams refused"
        # The first 256 are still open: finish one of them.
        sid = ids[0]
        c.send(frame(DATA, END_STREAM, sid, b"v"))
        c.read_frames(5, until=lambda: c.responses.get(sid, {}).get("done"))
        assert c.responses.get(sid, {}).get("done"), "an accepted stream was not answered"
        how = f"{len(refused)} REFUSED_STREAM"
    c.close()
    # Before the client acknowledged the server's SETTINGS: the 50 extra streams are refused
    # (each refusal counts twice towards the server-resets limit of 200, as an invalid HEADERS and
    # as a RST_STREAM sent: past 100 the connection ends with GOAWAY(ENHANCE_YOUR_CALM)).
    c = H2Conn(srv.port, handshake=False)
    out = bytearray(h2raw.PREFACE + settings())
    ids = []
    for _ in range(306):
        sid = c.new_stream()
        ids.append(sid)
        out += c.headers_frame(sid, request_headers("PUT", f"/kv/open-{sid}"), end_stream=False)
    c.send(bytes(out))
    c.read_frames(3, until=lambda: c.eof or len(c.resets) >= 50)
    refused = [s for s in ids if c.resets.get(s) == 7]
    assert c.goaway is None and refused == ids[256:], \
        f"before SETTINGS ACK: {len(refused)} refused (first {refused[:1]}), goaway {c.goaway}"
    c.close()
    return f"{n} open streams: {how}; before the SETTINGS ACK: {len(refused)} REFUSED_STREAM"


@case("slowloris", rss_bound_mib=32, args=["--request-timeout-ms", "2000", "--idle-timeout-ms", "3000"])
def slowloris(srv):
    """Connections dribbling a request a byte at a time (HTTP/1.1 headers, HTTP/1.1 body, HTTP/2
    body): each is cut within the request timeout (2 s here) while others are served."""
    socks = []
    dribble = {}  # h2-headers: a HEADERS frame sent a byte at a time
    per_kind = 100
    kinds = ("h1-headers", "h1-body", "h2-body", "h2-headers", "h2-413-body")
    for kind in kinds:
        for _ in range(per_kind):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            if kind == "h1-body":
                s.sendall(b"PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            elif kind.startswith("h2"):
                enc = h2raw.hpack.Encoder()
                block = enc.encode(request_headers("PUT", "/kv/slow", [("content-length", "1000")]))
                if kind == "h2-body":
                    s.sendall(h2raw.PREFACE + settings() + frame(HEADERS, END_HEADERS, 1, block))
                elif kind == "h2-413-body":
                    # Answered 413 at once; the rest of its body must still come in time.
                    big = enc.encode(request_headers("PUT", "/kv/slow", [("content-length", str(1 << 30))]))
                    s.sendall(h2raw.PREFACE + settings() + frame(HEADERS, END_HEADERS, 1, big))
                else:
                    s.sendall(h2raw.PREFACE + settings())
                    dribble[len(socks)] = frame(HEADERS, END_HEADERS | END_STREAM, 1, h2raw.hpack.Encoder().encode(
                        request_headers("GET", "/health", [("x-pad", "p" * 5000)]), huffman=False))
            socks.append((kind, s))
    start = time.monotonic()
    closed = {}
    served = 0
    while time.monotonic() - start < 10 and len(closed) < len(socks):
        for i, (kind, s) in enumerate(socks):
            if i in closed:
                continue
            try:
                if kind == "h1-headers":
                    s.send(b"X")
                elif kind == "h1-body":
                    s.send(b"v")
                elif kind in ("h2-body", "h2-413-body"):
                    s.send(frame(DATA, 0, 1, b"v"))
                else:
                    s.send(dribble[i][:1])
                    dribble[i] = dribble[i][1:]
            except OSError:
                closed[i] = time.monotonic() - start
                continue
            s.setblocking(False)
            try:
                data = s.recv(65536)
                if data == b"":
                    closed[i] = time.monotonic() - start
                elif kind.startswith("h1") and data.startswith(b"HTTP/1.1 408"):
                    closed[i] = time.monotonic() - start
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - start
            s.setblocking(True)
        if served < 3:
            check_normal_client(srv)
            served += 1
        time.sleep(0.2)
    open_kinds = {}
    for i, (kind, s) in enumerate(socks):
        if i not in closed:
            open_kinds[kind] = open_kinds.get(kind, 0) + 1
        s.close()
    assert not open_kinds, f"still open after 10 s: {open_kinds}"
    latest = max(closed.values())
    assert latest < 6, f"the last slow connection closed after {latest:.1f} s"
    return f"{len(socks)} slow connections ({per_kind} each of {len(kinds)} kinds) closed by {latest:.1f} s"


@case("never_reads_h2", rss_bound_mib=32)
def never_reads_h2(srv):
    """Clients that send many GETs of a 256 KiB value and never read: the server holds at most 64
    answers and 4 MiB unsent per connection (before that bound: 256 streams x 256 KiB = 64 MiB
    per connection)."""
    c = H2Conn(srv.port)
    value = os.urandom(256 * 1024)
    status, _ = c.request("PUT", "/kv/big", body=value)
    assert status in (200, 201, 204)
    c.close()
    conns = []
    n = 2000 * SCALE
    accepted = 0
    for _ in range(2):
        c = H2Conn(srv.port, rcvbuf=4096, handshake=False)
        c.send(h2raw.PREFACE + settings([(4, 1 << 20)]))
        out = bytearray()
        for _ in range(n):
            out += c.headers_frame(c.new_stream(), request_headers("GET", "/kv/big"))
        accepted += c.try_send(bytes(out), 3)
        conns.append(c)
    check_normal_client(srv)
    for c in conns:
        c.close()
    return f"2 connections x {n} GETs of 256 KiB, {accepted // 1024} KiB of requests accepted"


@case("never_reads_h1_pipelined", rss_bound_mib=32)
def never_reads_h1(srv):
    """HTTP/1.1 pipelining: 20 000 GETs of a 256 KiB value written at once, nothing read."""
    c = H2Conn(srv.port)
    status, _ = c.request("PUT", "/kv/big", body=os.urandom(256 * 1024))
    assert status in (200, 201, 204)
    c.close()
    socks = []
    n = 20000 * SCALE
    for _ in range(4):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        wrapper = H2Conn.__new__(H2Conn)
        wrapper.sock = s
        wrapper.eof = False
        H2Conn.try_send(wrapper, b"GET /kv/big HTTP/1.1\r\nHost: x\r\n\r\n" * n, 3)
        socks.append(s)
    time.sleep(1)  # let the server produce what it will (nothing to wait on: it must stop by itself)
    check_normal_client(srv)
    for s in socks:
        s.close()
    return f"4 connections x {n} pipelined GETs of 256 KiB"


@case("idle_10k", rss_bound_mib=192, args=["--idle-timeout-ms", "3000", "--request-timeout-ms", "3000", "--io-threads", "2"])
def idle_10k(srv):
    """10 000 idle connections (half silent, half HTTP/2 after the preface): others are served
    meanwhile, and the server closes all of them by its timeouts."""
    limit = raise_nofile()
    n = 10000
    assert limit > n + 100, f"RLIMIT_NOFILE {limit} is too low for {n} connections"
    socks = []
    start = time.monotonic()
    for i in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", srv.port))
        if i % 2:
            s.sendall(h2raw.PREFACE + settings())
        socks.append(s)
    opened = time.monotonic() - start
    check_normal_client(srv)
    # Everything must be closed by the server within the timeouts (3 s) plus sweeps and slack.
    import selectors
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    remaining = n
    received = {}
    goaways = 0
    deadline = time.monotonic() + 20
    while remaining and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                received[key.fileobj] = received.get(key.fileobj, b"") + data
                continue
            got = received.pop(key.fileobj, b"")
            # An idle HTTP/2 connection ends with GOAWAY(NO_ERROR): frame type 7, code 0, last in the stream.
            if len(got) >= 17 and got[-17 + 3] == 7 and got[-4:] == b"\0\0\0\0":
                goaways += 1
            sel.unregister(key.fileobj)
            key.fileobj.close()
            remaining -= 1
    closed_after = time.monotonic() - start
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    assert remaining == 0, f"{remaining} of {n} idle connections still open after {closed_after:.1f} s"
    assert goaways == n // 2, f"{goaways} of {n // 2} idle HTTP/2 connections ended with GOAWAY(NO_ERROR)"
    return (f"{n} connections opened in {opened:.1f} s, all closed by the server {closed_after - opened:.1f} s later "
            f"(the HTTP/2 ones after GOAWAY(NO_ERROR))")


@case("body_over_limit", rss_bound_mib=32, args=["--max-body", str(1 * MiB)])
def body_over_limit(srv):
    notes = []
    # HTTP/1.1 Content-Length over the limit: 413 at once, then close.
    status, _ = http1(srv.port, b"PUT /kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
    assert status == 413, f"h1 content-length: {status}"
    # HTTP/1.1 chunked body passing the limit.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"PUT /kv/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"c" * 0x10000 + b"\r\n"
        sent = 0
        try:
            for _ in range(64):
                s.sendall(chunk)
                sent += 1
        except OSError:
            pass
        data = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except OSError:
            pass
        assert data.startswith(b"HTTP/1.1 413"), f"h1 chunked: {data[:80]!r}"
    notes.append("h1 413 x2")
    # HTTP/2 content-length header over the limit, and a body without one that passes it.
    c = H2Conn(srv.port)
    sid = c.new_stream()
    c.send(c.headers_frame(sid, request_headers("PUT", "/kv/x", [("content-length", str(1 << 30))]), end_stream=False))
    c.send(frame(DATA, 0, sid, b"d" * 16384))
    c.read_frames(5, until=lambda: c.responses.get(sid, {}).get("done"))
    r = c.responses.get(sid)
    st = dict(r["headers"]).get(":status") if r else None
    assert st == "413", f"h2 content-length over the limit: {st}, resets {c.resets}"
    sid = c.new_stream()
    c.send(c.headers_frame(sid, request_headers("PUT", "/kv/y"), end_stream=False))
    payload = b"d" * 16384
    c.try_send(frame(DATA, 0, sid, payload) * 200, 5)  # 3.2 MiB
    c.read_frames(5, until=lambda: c.responses.get(sid, {}).get("done"))
    r = c.responses.get(sid)
    st = dict(r["headers"]).get(":status") if r else None
    assert st == "413", f"h2 body over the limit: {st}, resets {c.resets}"
    # The rest of the body is read and dropped; ending it closes the stream, the connection stays.
    c.send(frame(DATA, END_STREAM, sid, b"d"))
    status, _ = c.request("GET", "/health")
    assert status == 200, "connection unusable after 413"
    c.close()
    notes.append("h2 413 x2, connection kept")
    return ", ".join(notes)


# A request made while subscribers are stuck must not wait for them. Generous, so machine load does
# not fail it (0.6 s seen on a loaded 2-core machine): a writer that waited for stuck subscribers
# would wait for them to be cut, or for the 10 s request timeout of the test client.
STALL_BOUND_S = 8.0


def _put_many(port, count, size, prefix):
    c = H2Conn(port)
    value = b"w" * size
    t0 = time.monotonic()
    worst = 0.0
    try:
        for i in range(count):
            t = time.monotonic()
            status, _ = c.request("PUT", f"/kv/{prefix}{i % 100}", body=value)
            worst = max(worst, time.monotonic() - t)
            assert status in (200, 201, 204), f"PUT {i}: {status}"
    finally:
        c.close()
    return time.monotonic() - t0, worst


def _count_cut(h2_subscribers, h1_sockets):
    """Reads what stuck watch/follow subscribers were sent and counts those the server ended:
    HTTP/2 by a reset, the connection's end or a final slow_consumer line; HTTP/1.1 by the
    connection's end within 10 s or a final slow_consumer line. Closes them all."""
    cut = 0
    for c, sid in h2_subscribers:
        c.sock.settimeout(5)
        c.read_frames(10, until=lambda: sid in c.resets or c.eof or c.responses[sid]["done"])
        r = c.responses[sid]
        if sid in c.resets or c.eof or b"slow_consumer" in bytes(r["data"][-300:]):
            cut += 1
        c.close()
    for s in h1_sockets:
        data = b""
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                d = s.recv(1 << 20)
                if not d:
                    break
                data += d
        except OSError:
            pass
        if time.monotonic() < deadline or b"slow_consumer" in data[-300:]:
            cut += 1
        s.close()
    return cut


@case("watch_never_reads", rss_bound_mib=96, args=["--idle-timeout-ms", "2000"])
def watch_never_reads(srv):
    """Watchers (HTTP/2 and HTTP/1.1) that never read while 24 MiB of changes are written: the
    writer is not stalled, each watch is cut (RST_STREAM / close / slow_consumer), memory is
    bounded, and the server lets go of the stuck connections (idle timeout, 2 s here) without
    the clients reading anything."""
    fds_before = srv.fds()
    h2w = []
    for _ in range(4):
        c = H2Conn(srv.port, rcvbuf=4096)
        sid = c.new_stream()
        c.send(c.headers_frame(sid, request_headers("GET", "/kv?watch=1&prefix=w%2F")))
        c.read_frames(3, until=lambda: c.responses.get(sid, {}).get("headers"))
        assert c.responses.get(sid, {}).get("headers"), "watch not started"
        h2w.append((c, sid))
    h1w = []
    for _ in range(4):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /kv?watch=1&prefix=w%2F HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(12).startswith(b"HTTP/1.1 200"), "h1 watch not started"
        h1w.append(s)
    total, worst = _put_many(srv.port, 3000, 8192, "w/")
    assert worst < STALL_BOUND_S, f"a PUT took {worst:.2f} s while watchers were stuck"
    left = srv.wait_fds(fds_before, 10)
    assert left <= fds_before, f"the server still holds {left - fds_before} stuck watch connections 10 s later"
    # Now read: every watch must have been cut by the server.
    cut = _count_cut(h2w, h1w)
    assert cut == 8, f"only {cut} of 8 stuck watchers were cut"
    return f"3000 PUTs of 8 KiB in {total:.1f} s (worst {worst * 1000:.0f} ms), 8 stuck watchers cut"


@case("follow_never_reads", rss_bound_mib=96, args=["--idle-timeout-ms", "2000"])
def follow_never_reads(srv):
    fds_before = srv.fds()
    name = f"ab{os.urandom(4).hex()}"
    c = H2Conn(srv.port)
    status, body = c.request("PUT", f"/streams/{name}", body=b'{"window_ms":1,"allowed_lateness_ms":0}',
                             extra=[("content-type", "application/json")])
    assert status in (200, 201), f"define stream: {status} {body!r}"
    c.close()
    followers = []
    for _ in range(4):
        f = H2Conn(srv.port, rcvbuf=4096)
        sid = f.new_stream()
        f.send(f.headers_frame(sid, request_headers("GET", f"/streams/{name}/results?follow=1")))
        f.read_frames(3, until=lambda: f.responses.get(sid, {}).get("headers"))
        assert f.responses.get(sid, {}).get("headers"), "follow not started"
        followers.append((f, sid))
    h1f = []
    for _ in range(2):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(f"GET /streams/{name}/results?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert s.recv(12).startswith(b"HTTP/1.1 200"), "h1 follow not started"
        h1f.append(s)
    c = H2Conn(srv.port)
    ts = 1
    batches = 40
    worst = 0.0
    for b in range(batches):
        lines = []
        for i in range(5000):
            lines.append(b'{"key":"k%d","ts":%d,"value":1}' % (i % 50, ts))
            ts += 1
        t = time.monotonic()
        status, body = c.request("POST", f"/streams/{name}/events", body=b"\n".join(lines) + b"\n",
                                 extra=[("content-type", "application/x-ndjson")], seconds=10)
        worst = max(worst, time.monotonic() - t)
        assert status == 202, f"batch {b}: {status} {body[:200]!r}"
    c.close()
    # The reactor never waits for a follower: a batch is acknowledged as fast as without them.
    assert worst < STALL_BOUND_S, f"an event batch took {worst:.2f} s while followers were stuck"

    left = srv.wait_fds(fds_before, 10)
    assert left <= fds_before, f"the server still holds {left - fds_before} stuck follow connections 10 s later"
    cut = _count_cut(followers, h1f)
    assert cut == len(followers) + len(h1f), f"only {cut} of {len(followers) + len(h1f)} stuck followers were cut"
    c = H2Conn(srv.port)
    status, _ = c.request("DELETE", f"/streams/{name}")
    assert status in (200, 204), f"delete stream: {status}"
    c.close()
    return f"{batches} batches of 5000 events (worst {worst * 1000:.0f} ms), {cut} stuck followers cut"


# --------------------------------------------------------------------------------------- runner

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--list" in sys.argv:
        for name, fn, bound, extra in CASES:
            print(name)
        return 0
    if not args:
        print(__doc__)
        return 2
    binary = os.path.abspath(args[0])
    only = None
    for i, a in enumerate(sys.argv):
        if a == "--only":
            only = set(sys.argv[i + 1].split(","))
    if only is not None:
        args = args[:1]
    raise_nofile()
    passed = failed = 0
    suite_start = time.monotonic()
    for name, fn, bound_mib, extra in CASES:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        srv = None
        try:
            srv = Server(binary, extra)
            check_normal_client(srv)  # warm-up: the first answers allocate what steady state needs
            baseline = srv.anon()
            srv.start_sampling()
            for r in range(ROUNDS):
                note = fn(srv)
                if ROUNDS > 1 and os.environ.get("ABUSE_VERBOSE"):
                    print(f"  round {r + 1}: anonymous RSS {srv.anon() / MiB:.0f} MiB", flush=True)
            assert srv.alive(), f"the server died (exit {srv.proc.returncode}): {srv.stderr_tail()}"
            latency = check_normal_client(srv)
            assert latency < 5, f"a fresh client took {latency:.1f} s"
            peak, anon = srv.stop_sampling(), srv.anon()
            grown = (peak - baseline) / MiB
            assert grown < bound_mib, (f"peak anonymous RSS {peak / MiB:.0f} MiB is {grown:.0f} MiB over the baseline "
                                       f"{baseline / MiB:.0f} MiB (bound {bound_mib} MiB)")
            rc = srv.stop()
            srv = None
            assert rc == 0, f"the server exited {rc} on SIGTERM"
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.1f} s): {note}; peak anonymous RSS +{grown:.0f} MiB "
                  f"(bound {bound_mib}), now {anon / MiB:.0f} MiB", flush=True)
        except Exception as e:  # noqa: BLE001 - one line per failed case
            failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s): {detail}", flush=True)
            if os.environ.get("ABUSE_VERBOSE"):
                traceback.print_exc()
            if srv is not None:
                tail = srv.stderr_tail()
                if tail:
                    print("  server stderr: " + tail.replace("\n", "\n  "), flush=True)
        finally:
            if srv is not None:
                srv.stop()
    print(f"{passed} passed, {failed} failed ({time.monotonic() - suite_start:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
