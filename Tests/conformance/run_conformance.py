#!/usr/bin/env python3
"""HTTP semantics as real clients and conformance suites see them: HTTP/2 requests (pseudo-headers,
connection-specific and uppercase fields, content-length against DATA, trailers, TE, HEAD, 1xx,
flow control of our DATA, resets, limits), the h2c Upgrade, HTTP/1.1 (keep-alive, pipelining,
chunked bodies, Expect: 100-continue, HEAD, Host, versions, absolute-form, 400 on malformed
input, Connection: close), the clients themselves (curl, nghttp, Python http.client) and
Server-Sent Events as an EventSource reads them (proto-docs/http-api.md, results.md).

The frame-level state machine (RFC 9113 5.1 and the rest of h2spec's cases) is in
Tests/abuse/run_rfc9113.py; this suite is about what our layer decides above nghttp2.

Usage: run_conformance.py LAMINAR_BINARY [--only NAME[,NAME...]] [--list]
       run_conformance.py --connect HOST:PORT [--path /index.html]   (any h2c server, e.g. nghttpd:
                           only the HTTP/2 cases that need no Laminar endpoint)

With a binary, one `laminar serve --memory --max-body 1MiB` on 127.0.0.1 (--port 0) serves every
case, each on its own connections; after each case a fresh HTTP/2 client must still be answered.
One line per case, then `N passed, N failed`."""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "abuse"))
import h2raw  # noqa: E402
from h2raw import (DATA, END_STREAM, HEADERS, H2Conn, frame, request_headers, rst,  # noqa: E402
                   settings, window_update)

PROTOCOL_ERROR, CANCEL = 1, 8
WAIT_S = 5.0
MAX_BODY = 1 << 20


class Target:
    """Where the cases connect: `get_path` answers GET with 200; `laminar` enables the cases that
    need Laminar's endpoints (PUT /kv, streams, HTTP/1.1); `upgrade`: every HTTP/2 connection
    starts as an HTTP/1.1 GET with Upgrade: h2c (answered on stream 1; the case's streams from 3)."""

    def __init__(self, host, port, get_path, laminar, upgrade=False):
        self.host, self.port, self.get_path, self.laminar, self.upgrade = host, port, get_path, laminar, upgrade
        self.url = f"http://{host}:{port}"

    def connect(self, handshake=True, initial_window=1 << 24):
        if self.upgrade:
            return upgraded(self, b"GET " + self.get_path.encode() + b" HTTP/1.1\r\nHost: x\r\n", initial_window)
        c = H2Conn(self.port, handshake=False, host=self.host, timeout=WAIT_S)
        if handshake:
            c.send(h2raw.PREFACE + settings([(4, initial_window)]) + window_update(0, 1 << 30))
            c.read_frames(WAIT_S, until=lambda: c.server_settings)
            assert c.server_settings, "no SETTINGS from the server"
        return c


def upgraded(t, request_head, initial_window=1 << 24, body=b""):
    """RFC 7540 3.2: `request_head` (request line and fields, no blank line) with the Upgrade
    fields and `body`: the 101, then the HTTP/2 connection with our preface and SETTINGS; the
    answer to the request comes on stream 1 (awaited unless the window is 0), our streams from 3."""
    sock = socket.create_connection((t.host, t.port), timeout=WAIT_S)
    payload = base64.urlsafe_b64encode(struct.pack(">HI", 4, initial_window)).rstrip(b"=")
    sock.sendall(request_head + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: "
                 + payload + b"\r\n" + (b"Content-Length: %d\r\n" % len(body) if body else b"") + b"\r\n" + body)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: what follows the 101 is HTTP/2
        assert chunk, f"closed before the 101: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    c = H2Conn(t.port, handshake=False, sock=sock)
    c.send(h2raw.PREFACE + settings([(4, initial_window)]) + window_update(0, 1 << 30))
    c.read_frames(WAIT_S, until=lambda: c.server_settings and (initial_window == 0 or c.responses.get(1, {}).get("done")))
    assert c.server_settings, "no SETTINGS from the server after the 101"
    c.next_id = 3
    return c


CASES = []


def case(laminar_only=False):
    def register(fn):
        CASES.append((fn.__name__, fn, laminar_only))
        return fn
    return register


# ---------------------------------------------------------------- HTTP/2 helpers

def headers_of(r):
    out = {}
    for k, v in (r or {}).get("headers", []):
        k = k.decode() if isinstance(k, bytes) else k
        v = v.decode() if isinstance(v, bytes) else v
        out.setdefault(k, v)
    return out


def wait_stream(c, sid, seconds=WAIT_S):
    """Reads until stream `sid` ends (END_STREAM or RST_STREAM) or the connection closes."""
    c.read_frames(seconds, until=lambda: c.responses.get(sid, {}).get("done") or sid in c.resets or c.eof)
    return c.responses.get(sid)


def expect_reset(c, sid, code=PROTOCOL_ERROR):
    """RST_STREAM(sid, code), no answer on the stream, the connection kept."""
    r = wait_stream(c, sid)
    assert sid in c.resets, f"expected RST_STREAM({h2raw.ERROR_NAMES[code]}); got {headers_of(r)} goaway {c.goaway}"
    assert c.resets[sid] == code, f"RST_STREAM({h2raw.ERROR_NAMES.get(c.resets[sid])}), expected {h2raw.ERROR_NAMES[code]}"
    assert not headers_of(r), f"stream {sid} was answered before its reset: {headers_of(r)}"
    assert c.goaway is None and not c.eof, f"the stream error ended the connection: {c.goaway}"
    return f"RST_STREAM({h2raw.ERROR_NAMES[code]})"


def kv_get(t, key):
    c = t.connect()
    try:
        return c.request("GET", "/kv/" + key, seconds=WAIT_S)
    finally:
        c.close()


def malformed_request(t, fields, end_stream=True, then=b"", key=None):
    """A request that RFC 9113 8.1.1/8.2 call malformed: a stream error of type PROTOCOL_ERROR,
    and with Laminar the PUT it carries is not applied."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, fields, end_stream=end_stream) + (then(c, sid) if callable(then) else then))
    how = expect_reset(c, sid)
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200, f"the connection is unusable after the reset: {status}"
    c.close()
    if key and t.laminar:
        status, _ = kv_get(t, key)
        assert status == 404, f"the malformed PUT of {key} was applied ({status})"
    return how + ", connection kept" + (", not applied" if key and t.laminar else "")


def base(method, path, extra=()):
    return request_headers(method, path, extra)


def put(t, key, extra=()):
    return base("PUT", "/kv/" + key if t.laminar else t.get_path, extra)


# ---------------------------------------------------------------- HTTP/2: malformed requests

@case()
def h2_uppercase_field_name(t):
    """8.2.1: a field name with an uppercase letter is malformed."""
    return malformed_request(t, base("GET", t.get_path, [("X-Upper", "1")]))


@case()
def h2_connection_specific_fields(t):
    """8.2.2: connection, keep-alive, proxy-connection, transfer-encoding and upgrade are malformed
    in HTTP/2; each on its own stream."""
    notes = []
    for name, value in [("connection", "keep-alive"), ("keep-alive", "timeout=5"), ("proxy-connection", "x"),
                        ("transfer-encoding", "chunked"), ("upgrade", "h2c")]:
        notes.append(name + ": " + malformed_request(t, base("GET", t.get_path, [(name, value)])).split(",")[0])
    return "; ".join(notes)


@case()
def h2_te_other_than_trailers(t):
    """8.2.2: TE may only be `trailers`: `te: trailers` is served, `te: gzip` is malformed."""
    c = t.connect()
    status, _ = c.request("GET", t.get_path, extra=[("te", "trailers")], seconds=WAIT_S)
    assert status == 200, f"te: trailers got {status}"
    c.close()
    return "trailers: 200; gzip: " + malformed_request(t, base("GET", t.get_path, [("te", "gzip")]))


@case()
def h2_pseudo_header_errors(t):
    """8.3.1: a request without :method, :scheme or :path, with an empty :path, a pseudo-header
    twice, after a regular field, unknown, or a response pseudo-header is malformed."""
    m, s, a, p = (":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", t.get_path)
    variants = {
        "no :method": [s, a, p], "no :scheme": [m, a, p], "no :path": [m, s, a],
        "empty :path": [m, s, a, (":path", "")], "two :path": [m, s, a, p, p],
        "after a field": [m, s, a, ("x-a", "1"), p], "unknown": [m, s, a, p, (":foo", "1")],
        ":status": [m, s, a, p, (":status", "200")],
    }
    for what, fields in variants.items():
        malformed_request(t, fields)
    return f"{len(variants)} variants: RST_STREAM(PROTOCOL_ERROR) each, connection kept"


@case()
def h2_field_value_whitespace_or_nul(t):
    """8.2.1: a field value with leading or trailing whitespace, or NUL, CR or LF, is malformed."""
    for value in (" v", "v ", "a\x00b", "a\rb", "a\nb"):
        malformed_request(t, base("GET", t.get_path, [("x-a", value)]))
    return "5 values: RST_STREAM(PROTOCOL_ERROR) each"


@case()
def h2_content_length_above_data(t):
    """8.1.1: content-length larger than the DATA that ends the stream is malformed."""
    return malformed_request(t, put(t, "c2-short", [("content-length", "5")]), end_stream=False,
                             then=lambda c, sid: frame(DATA, END_STREAM, sid, b"abc"), key="c2-short")


@case()
def h2_content_length_below_data(t):
    """8.1.1: DATA past content-length is malformed (checked as the DATA arrives)."""
    return malformed_request(t, put(t, "c2-long", [("content-length", "2")]), end_stream=False,
                             then=lambda c, sid: frame(DATA, END_STREAM, sid, b"abc"), key="c2-long")


@case()
def h2_content_length_on_headers_only(t):
    """8.1.1: content-length 3 and END_STREAM on HEADERS (no DATA) is malformed."""
    return malformed_request(t, put(t, "c2-none", [("content-length", "3")]), key="c2-none")


@case()
def h2_trailers_with_pseudo_header(t):
    """8.1: trailers must not hold pseudo-header fields."""
    return malformed_request(t, put(t, "c2-tr-pseudo"), end_stream=False, key="c2-tr-pseudo",
                             then=lambda c, sid: frame(DATA, 0, sid, b"abc")
                             + c.headers_frame(sid, [(":path", "/x")], end_stream=True))


@case()
def h2_trailers_without_end_stream(t):
    """8.1: a second HEADERS (trailers) without END_STREAM is malformed."""
    return malformed_request(t, put(t, "c2-tr-open"), end_stream=False, key="c2-tr-open",
                             then=lambda c, sid: frame(DATA, 0, sid, b"abc")
                             + c.headers_frame(sid, [("x-sum", "1")], end_stream=False))


# ---------------------------------------------------------------- HTTP/2: what is served

@case()
def h2_request_trailers_accepted(t):
    """8.1: HEADERS, DATA, trailers (HEADERS with END_STREAM): a complete request; Laminar stores
    the body and ignores the trailer fields."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, put(t, "c2-trailers"), end_stream=False) + frame(DATA, 0, sid, b"abc")
           + c.headers_frame(sid, [("x-checksum", "1")], end_stream=True))
    r = wait_stream(c, sid)
    status = headers_of(r).get(":status")
    assert r and r["done"] and status and status.startswith("2"), f"got {headers_of(r)} resets {c.resets}"
    c.close()
    if t.laminar:
        got = kv_get(t, "c2-trailers")
        assert got == (200, b"abc"), f"stored {got}"
    return f"{status}" + (", body stored" if t.laminar else "")


@case()
def h2_head_has_no_body(t):
    """9.3.2 of RFC 9110 / 8.1 of RFC 9113: HEAD gets the GET's headers (content-length
    included) and no DATA: END_STREAM on the HEADERS frame."""
    c = t.connect()
    status, body = c.request("GET", t.get_path, seconds=WAIT_S)
    get_length = len(body)
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("HEAD", t.get_path)))
    frames = c.read_frames(WAIT_S, until=lambda: c.responses.get(sid, {}).get("done"))
    r = c.responses.get(sid)
    h = headers_of(r)
    assert h.get(":status") == "200", f"HEAD got {h}"
    assert h.get("content-length") == str(get_length), f"HEAD content-length {h.get('content-length')}, GET body {get_length}"
    data = [f for f in frames if f[0] == DATA and f[2] == sid]
    assert not data and not r["data"], f"HEAD got DATA frames: {[(len(f[3]), f[1]) for f in data]}"
    c.close()
    return f"200, content-length {get_length}, END_STREAM on HEADERS"


@case(laminar_only=True)
def h2_no_content_has_no_length(t):
    """RFC 9110 8.6: no content-length in a 204; no DATA."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("PUT", "/kv/c2-204", [("content-length", "1")]), end_stream=False)
           + frame(DATA, END_STREAM, sid, b"z"))
    r = wait_stream(c, sid)
    h = headers_of(r)
    assert h.get(":status") == "204" and "content-length" not in h and not r["data"], f"got {h} {bytes(r['data'])!r}"
    c.close()
    return "204 without content-length"


@case()
def h2_expect_100_continue(t):
    """RFC 9110 10.1.1: a request with `expect: 100-continue` whose body follows gets a 100 at once
    (or its final status), before the client sends the body; then the final response."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, put(t, "c2-expect", [("expect", "100-continue"), ("content-length", "3")]),
                           end_stream=False))
    c.read_frames(2.0, until=lambda: headers_of(c.responses.get(sid)).get(":status") or sid in c.resets)
    first = headers_of(c.responses.get(sid)).get(":status")
    assert first == "100", f"no 100 before the body (got {first}, resets {c.resets})"
    c.responses[sid]["headers"] = []
    c.send(frame(DATA, END_STREAM, sid, b"abc"))
    r = wait_stream(c, sid)
    final = headers_of(r).get(":status")
    assert final and final.startswith("2"), f"final {headers_of(r)}"
    c.close()
    if t.laminar:
        assert kv_get(t, "c2-expect") == (200, b"abc")
    return f"100, then {final}"


@case(laminar_only=True)
def h2_expect_100_refused_by_headers(t):
    """RFC 9110 10.1.1: refused from its headers (content-length past --max-body): the final 413
    instead of a 100, and the connection is kept."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("PUT", "/kv/c2-expect-big", [("expect", "100-continue"),
                                                                    ("content-length", str(MAX_BODY + 1))]),
                           end_stream=False))
    c.read_frames(WAIT_S, until=lambda: headers_of(c.responses.get(sid)).get(":status") or sid in c.resets)
    status = headers_of(c.responses.get(sid)).get(":status")
    assert status == "413", f"expected 413 before the body, got {status}"
    c.send(rst(sid, CANCEL))  # as a client does once it has its final answer
    assert c.request("GET", t.get_path, seconds=WAIT_S)[0] == 200
    c.close()
    return "413, no 100, connection kept"


@case(laminar_only=True)
def h2_body_over_limit(t):
    """proto-docs/limits.md: a body past --max-body is answered 413 body_too_large on its stream
    (with content-length: before any DATA; without: once the DATA passes the limit); the rest of
    the body is read and dropped and the connection is kept."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("PUT", "/kv/c2-big"), end_stream=False))
    chunk = b"x" * 16384
    for _ in range(MAX_BODY // len(chunk) + 2):
        c.send(frame(DATA, 0, sid, chunk))
    c.read_frames(WAIT_S, until=lambda: c.responses.get(sid, {}).get("done") or sid in c.resets)
    r = c.responses.get(sid)
    assert headers_of(r).get(":status") == "413", f"got {headers_of(r)} resets {c.resets}"
    assert json.loads(bytes(r["data"]))["error"] == "body_too_large"
    c.send(frame(DATA, END_STREAM, sid, chunk))
    assert c.request("GET", t.get_path, seconds=WAIT_S)[0] == 200
    c.close()
    assert kv_get(t, "c2-big")[0] == 404, "the refused PUT was applied"
    return "413 body_too_large, connection kept, not applied"


@case()
def h2_window_zero_then_opened(t):
    """6.9.2: with SETTINGS_INITIAL_WINDOW_SIZE 0 the response's HEADERS come but no DATA; a
    SETTINGS that opens the window lets the whole body through."""
    c = t.connect(initial_window=0)
    status, body = None, None
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("GET", t.get_path)))
    frames = c.read_frames(1.0)
    assert not [f for f in frames if f[0] == DATA and f[3]], "DATA sent into a zero window"
    c.send(settings([(4, 1 << 20)]))
    r = wait_stream(c, sid)
    status, body = headers_of(r).get(":status"), bytes(r["data"])
    assert status == "200" and r["done"] and body, f"after the window opened: {status} {len(body)} bytes"
    c.close()
    return f"no DATA at window 0, then {len(body)} bytes"


@case(laminar_only=True)
def h2_window_shrunk_while_blocked(t):
    """6.9.2: the client shrinks SETTINGS_INITIAL_WINDOW_SIZE while our DATA is blocked (the stream
    window goes negative), then opens it: the whole 200 000-byte body arrives, exactly once."""
    c = t.connect(initial_window=1000)
    c.auto_window_update = False
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("GET", "/kv/c2-large")))
    c.read_frames(1.0, until=lambda: len(c.responses.get(sid, {}).get("data", b"")) >= 1000)
    got = len(c.responses[sid]["data"])
    assert got == 1000, f"{got} bytes into a 1000-byte window"
    c.send(settings([(4, 10)]))          # window now 10 - 1000 = -990
    c.send(window_update(sid, 500))      # -490: still nothing may be sent
    frames = c.read_frames(0.5)
    assert not [f for f in frames if f[0] == DATA and f[3]], "DATA sent while the window was negative"
    c.auto_window_update = True
    c.send(settings([(4, 1 << 20)]))
    r = wait_stream(c, sid)
    assert r["done"] and bytes(r["data"]) == LARGE_VALUE, f"body {len(r['data'])} bytes, done {r['done']}"
    c.close()
    return "nothing while negative, then the whole body"


@case(laminar_only=True)
def h2_reset_during_response(t):
    """5.4.2 / 6.4: the client resets a stream whose large response is blocked by flow control and
    one whose PUT is with the reactor; the other streams go on, and nothing more is sent on them."""
    c = t.connect(initial_window=1000)
    c.auto_window_update = False
    big = c.new_stream()
    c.send(c.headers_frame(big, base("GET", "/kv/c2-large")))
    c.read_frames(1.0, until=lambda: len(c.responses.get(big, {}).get("data", b"")) >= 1000)
    c.send(rst(big, CANCEL))
    w = c.new_stream()
    c.send(c.headers_frame(w, base("PUT", "/kv/c2-rst", [("content-length", "1")]), end_stream=False)
           + frame(DATA, END_STREAM, w, b"r") + rst(w, CANCEL))
    c.auto_window_update = True
    c.send(settings([(4, 1 << 20)]))
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200
    frames = c.read_frames(0.5)
    late = [f for f in frames if f[2] in (big, w) and f[0] in (DATA, HEADERS)]
    assert not late, f"frames on reset streams after the reset: {[(f[0], f[2]) for f in late]}"
    assert c.goaway is None and not c.eof
    c.close()
    return "other requests served, nothing sent on the reset streams"


@case()
def h2_goaway_from_client(t):
    """6.8: a request sent with a GOAWAY(NO_ERROR) right after it is still answered (the client's
    last stream id names server-initiated streams: 0 here)."""
    c = t.connect()
    sid = c.new_stream()
    c.send(c.headers_frame(sid, base("GET", t.get_path)) + frame(h2raw.GOAWAY, 0, 0, b"\x00" * 8))
    r = wait_stream(c, sid)
    assert headers_of(r).get(":status") == "200" and r["done"], f"got {headers_of(r)} eof {c.eof}"
    c.close()
    return "answered"


# ---------------------------------------------------------------- h2c Upgrade and real clients

def raw_h1(t, data, seconds=WAIT_S, until_closed=False, pauses=()):
    """Sends `data` (or several parts with 0.2 s between, `pauses`), returns what arrived until the
    server closed or nothing came for a while."""
    s = socket.create_connection((t.host, t.port), timeout=seconds)
    parts = pauses or [data]
    out = b""
    try:
        for i, part in enumerate(parts):
            s.sendall(part)
            if i + 1 < len(parts):
                s.settimeout(0.3)
                try:
                    out += s.recv(65536)
                except socket.timeout:
                    pass
        deadline = time.monotonic() + seconds
        s.settimeout(0.5 if not until_closed else seconds)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        s.close()


def responses(data):
    """Splits HTTP/1.1 responses (content-length or no body) into (status line, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        n = int(fields.get("content-length", "0"))
        out.append((lines[0], fields, rest[:n]))
        data = rest[n:]
    return out


@case(laminar_only=True)
def h2c_upgrade_with_body(t):
    """RFC 7540 3.2: an HTTP/1.1 PUT with Upgrade: h2c gets 101, the server preface, the answer on
    stream 1; the connection then serves HTTP/2 (stream 3)."""
    c = upgraded(t, b"PUT /kv/c2-upgrade HTTP/1.1\r\nHost: x\r\n", body=b"up")
    r = c.responses.get(1)
    assert headers_of(r).get(":status") == "204" and r["done"], f"stream 1: {headers_of(r)}"
    assert c.request("GET", "/kv/c2-upgrade", seconds=WAIT_S) == (200, b"up")
    c.close()
    return "101, 204 on stream 1, GET on stream 3"


@case(laminar_only=True)
def curl_transports(t):
    """curl over HTTP/1.1 (two URLs on one connection), --http2 (Upgrade) and
    --http2-prior-knowledge: the same answers."""
    if not shutil.which("curl"):
        return "skipped (no curl)"
    url = t.url + "/health"
    out = subprocess.run(["curl", "-s", "--http1.1", "-o", "/dev/null", "-o", "/dev/null", "-w",
                          "%{http_version} %{http_code} %{num_connects}\n", url, url],
                         capture_output=True, text=True, timeout=30).stdout.split("\n")
    assert out[:2] == ["1.1 200 1", "1.1 200 0"], f"HTTP/1.1 keep-alive: {out}"
    for flag in ("--http2", "--http2-prior-knowledge"):
        got = subprocess.run(["curl", "-s", flag, "-w", " %{http_version} %{http_code}", url],
                             capture_output=True, text=True, timeout=30).stdout
        assert got == '{"status":"ok"}\n 2 200', f"curl {flag}: {got!r}"
    return "1.1 keep-alive (1 connection for 2 URLs), --http2, --http2-prior-knowledge"


@case(laminar_only=True)
def nghttp_client(t):
    """nghttp (nghttp2's client) with prior knowledge and with Upgrade (-u), a PUT with -d."""
    if not shutil.which("nghttp"):
        return "skipped (no nghttp)"
    for args in (["-n"], ["-nu"]):
        p = subprocess.run(["nghttp", *args, "-s", t.url + "/health"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"nghttp {args}: {p.returncode} {p.stdout} {p.stderr}"
    body = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"conform-{os.getpid()}.txt")
    with open(body, "w") as f:
        f.write("from nghttp")
    try:
        p = subprocess.run(["nghttp", "-n", "-H", ":method: PUT", "-d", body, t.url + "/kv/c2-nghttp"],
                           capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(body)
    assert p.returncode == 0, p.stderr
    assert kv_get(t, "c2-nghttp") == (200, b"from nghttp")
    return "prior knowledge, Upgrade, PUT"


@case(laminar_only=True)
def python_h2_client(t):
    """Python's h2 (a strict client state machine: it raises on any frame or field a server must
    not send, e.g. content-length on a 204, DATA after HEAD, a body shorter than content-length):
    GET, PUT, HEAD, a 100-continue PUT that sends its body only after the 100, 404, a 413 from
    the content-length of a 100-continue PUT (no 100, the body never sent), GET."""
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    sock = socket.create_connection((t.host, t.port), timeout=WAIT_S)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())

    def exchange(method, path, body=None, extra=(), wait_for_100=False):
        sid = conn.get_next_available_stream_id()
        fields = base(method, path, ([("content-length", str(len(body)))] if body is not None else []) + list(extra))
        conn.send_headers(sid, fields, end_stream=body is None)
        if body is not None and not wait_for_100:
            conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        out = {"info": [], "headers": None, "data": b"", "ended": False}
        while not out["ended"]:
            data = sock.recv(65536)
            assert data, f"{method} {path}: the connection closed"
            for ev in conn.receive_data(data):
                if getattr(ev, "stream_id", None) != sid:
                    continue
                if isinstance(ev, h2.events.InformationalResponseReceived):
                    out["info"].append(dict(ev.headers)[":status"])
                    if wait_for_100:
                        conn.send_data(sid, body, end_stream=True)
                elif isinstance(ev, h2.events.ResponseReceived):
                    out["headers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    out["data"] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded):
                    out["ended"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    raise AssertionError(f"{method} {path}: reset {ev.error_code}")
            sock.sendall(conn.data_to_send())
        return out["info"], out["headers"][":status"], out["data"]

    try:
        assert exchange("GET", "/health")[1:] == ("200", b'{"status":"ok"}\n')
        assert exchange("PUT", "/kv/c2-h2py", b"hello")[1] == "204"
        assert exchange("HEAD", "/kv/c2-h2py")[1:] == ("200", b"")
        assert exchange("PUT", "/kv/c2-h2py", b"again", [("expect", "100-continue")], wait_for_100=True)[:2] == (["100"], "204")
        assert exchange("GET", "/nope")[1] == "404"
        info, status, body = exchange("PUT", "/kv/c2-h2py", b"x" * (MAX_BODY + 1), [("expect", "100-continue")],
                                      wait_for_100=True)  # refused from its content-length: no 100
        assert (info, status, json.loads(body)["error"]) == ([], "413", "body_too_large"), (info, status, body)
        conn.reset_stream(conn.highest_outbound_stream_id, h2.errors.ErrorCodes.CANCEL)  # the body is not sent
        assert exchange("GET", "/kv/c2-h2py")[1:] == ("200", b"again")
    finally:
        sock.close()
    return "7 exchanges, no protocol error raised by h2"


# ---------------------------------------------------------------- HTTP/1.1

@case(laminar_only=True)
def h1_http_client_keep_alive_and_chunked(t):
    """Python http.client: a PUT with a chunked body (encode_chunked), a PUT with Content-Length and
    GETs on one kept-alive connection."""
    conn = http.client.HTTPConnection(t.host, t.port, timeout=WAIT_S)
    conn.request("PUT", "/kv/c1-chunked", body=iter([b"hel", b"lo"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    r.read()
    assert r.status == 204, r.status
    sock = conn.sock
    conn.request("PUT", "/kv/c1-length", body=b"world")
    r = conn.getresponse()
    r.read()
    assert r.status == 204 and conn.sock is sock, "not kept alive"
    for key, value in (("c1-chunked", b"hello"), ("c1-length", b"world")):
        conn.request("GET", "/kv/" + key)
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, value)
    assert conn.sock is sock, "not kept alive"
    conn.close()
    return "4 requests on one connection"


@case(laminar_only=True)
def h1_pipelining_in_order(t):
    """RFC 9112 9.3.2: pipelined requests (GET, PUT with a body, GET, HEAD, chunked PUT) sent in one
    write are answered in order; HEAD's content-length does not desynchronise the next."""
    data, _ = raw_h1(t, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"PUT /kv/c1-pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                        b"GET /kv/c1-pipe HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"HEAD /kv/c1-pipe HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"PUT /kv/c1-pipe2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"2;ext=1\r\nab\r\n0\r\nX-Trailer: t\r\n\r\n"
                        b"GET /kv/c1-pipe2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", until_closed=True)
    # HEAD's head says content-length 2 but no body follows: `responses` cannot split it.
    text = data.decode("latin-1")
    statuses = re.findall(r"HTTP/1\.1 (\d{3}) ", text)
    assert statuses == ["200", "204", "200", "200", "204", "200"], f"statuses {statuses}: {text}"
    assert text.endswith("\r\n\r\nab"), f"last body: {text[-40:]!r}"
    assert text.count("\r\n\r\nhiHTTP/1.1 200") == 1, f"HEAD got a body or GET lost it: {text}"
    return "6 answers in order"


@case(laminar_only=True)
def h1_expect_100_continue(t):
    """RFC 9110 10.1.1: 100 Continue before the body is sent; 413 instead when the Content-Length
    is past --max-body (then the connection closes: the body is not read)."""
    data, _ = raw_h1(t, None, pauses=[b"PUT /kv/c1-expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                      b"Content-Length: 3\r\n\r\n", b"abc"])
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 "), data
    data, closed = raw_h1(t, b"PUT /kv/c1-expect2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                             b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1), until_closed=True)
    assert data.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in data and closed, data
    return "100 then 204; 413 without 100, closed"


@case(laminar_only=True)
def h1_head_and_204(t):
    """HEAD: the GET's headers with its content-length, no body; 204: no content-length, no body."""
    conn = http.client.HTTPConnection(t.host, t.port, timeout=WAIT_S)
    conn.request("HEAD", "/kv/c2-large")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-length") == str(len(LARGE_VALUE)) and r.read() == b""
    conn.request("PUT", "/kv/c1-204", body=b"x")
    r = conn.getresponse()
    assert r.status == 204 and r.getheader("content-length") is None and r.read() == b""
    conn.request("GET", "/health")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b'{"status":"ok"}\n'
    conn.close()
    return "HEAD 200 with content-length, 204 without; connection still in step"


@case(laminar_only=True)
def h1_malformed_is_400_and_close(t):
    """RFC 9112: malformed requests get 400 bad_request (JSON) and the connection closes: bare LF,
    obs-fold, space before colon, no colon, CL and TE together, conflicting CL, bad chunk size,
    control characters; 501 for an unknown transfer coding."""
    bad = {
        b"GET /health HTTP/1.1\nHost: x\n\n": 400,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n": 400,
        b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n": 400,
        b"GET /health HTTP/1.1\r\nHost: x\r\nfoo\r\n\r\n": 400,
        b"PUT /kv/s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n": 400,
        b"PUT /kv/s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd": 400,
        b"PUT /kv/s HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n": 400,
        b"PUT /kv/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n": 400,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n": 400,
        b"GET /health\r\nHost: x\r\n\r\n": 400,
        b"PUT /kv/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n": 501,
    }
    for request, status in bad.items():
        data, closed = raw_h1(t, request, until_closed=True)
        rs = responses(data)
        assert rs and rs[0][0].startswith(f"HTTP/1.1 {status} "), f"{request!r}: {data!r}"
        assert json.loads(rs[0][2])["error"] in ("bad_request", "not_implemented"), rs[0][2]
        assert rs[0][1].get("connection") == "close" and closed, f"{request!r}: not closed"
    assert kv_get(t, "s")[0] == 404, "a refused request was applied"
    return f"{len(bad)} requests: 400/501 then closed"


@case(laminar_only=True)
def h1_host_header(t):
    """RFC 9112 3.2: 400 for an HTTP/1.1 request without Host and for any with two; HTTP/1.0
    without Host is served."""
    for request in (b"GET /health HTTP/1.1\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        data, closed = raw_h1(t, request, until_closed=True)
        assert data.startswith(b"HTTP/1.1 400 ") and b"Host" in data and closed, f"{request!r}: {data!r}"
    data, _ = raw_h1(t, b"GET /health HTTP/1.0\r\n\r\n", until_closed=True)
    assert data.startswith(b"HTTP/1.0 200 "), data
    return "400 without Host and with two; 1.0 without Host: 200"


@case(laminar_only=True)
def h1_versions_and_absolute_form(t):
    """RFC 9112 3.2.2: an absolute-form target is served as its path; RFC 9110 2.5: HTTP/1.2 is
    served as HTTP/1.1; 15.6.6: HTTP/2.0 in an HTTP/1 request line is 505; RFC 9113 3.4: a first
    line that is no HTTP at all (an invalid HTTP/2 preface) closes the connection unanswered, and
    so does a TLS ClientHello (at its first byte, not at the request timeout)."""
    data, _ = raw_h1(t, b"GET http://127.0.0.1/health?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     until_closed=True)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b'{"status":"ok"}\n'), data
    data, _ = raw_h1(t, b"GET /health HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n", until_closed=True)
    assert data.startswith(b"HTTP/1.1 200 "), data
    data, closed = raw_h1(t, b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", until_closed=True)
    assert data.startswith(b"HTTP/1.1 505 ") and closed, data
    assert json.loads(responses(data)[0][2])["error"] == "http_version_not_supported"
    data, closed = raw_h1(t, b"INVALID CONNECTION PREFACE\r\n\r\n", until_closed=True)
    assert data == b"" and closed, f"answered {data!r}"
    t0 = time.monotonic()
    data, closed = raw_h1(t, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", seconds=2.0, until_closed=True)
    assert data == b"" and closed and time.monotonic() - t0 < 1.5, f"a TLS ClientHello: {data!r}, closed {closed}"
    return "absolute-form 200, 1.2 as 1.1, 2.0: 505, not HTTP (a bad preface, a TLS ClientHello): closed"


@case(laminar_only=True)
def h1_connection_close_and_http10(t):
    """Connection: close (any case, among other tokens) is answered with `connection: close` and the
    server closes, ignoring a request pipelined after it; HTTP/1.0 closes unless keep-alive."""
    data, closed = raw_h1(t, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n"
                             b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", until_closed=True)
    rs = responses(data)
    assert len(rs) == 1 and rs[0][1].get("connection") == "close" and closed, data
    data, closed = raw_h1(t, b"GET /health HTTP/1.0\r\n\r\n", until_closed=True)
    assert data.startswith(b"HTTP/1.0 200 ") and closed, data
    data, closed = raw_h1(t, b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                             b"GET /health HTTP/1.0\r\n\r\n", until_closed=True)
    rs = responses(data)
    assert len(rs) == 2 and rs[0][1].get("connection") == "keep-alive" and closed, data
    return "closed after close; 1.0 closed; 1.0 keep-alive kept for the next"


# ---------------------------------------------------------------- Server-Sent Events

def sse_events(text):
    """Parses an event stream as the WHATWG EventSource does (fields id, event, data; blank line
    dispatches; comments ignored); returns [(last_event_id, event type, data)]."""
    events, data, etype, last_id = [], [], "message", ""
    for line in text.split("\n"):
        if line == "":
            if data:
                events.append((last_id, etype, "\n".join(data)))
            data, etype = [], "message"
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            etype = value
        elif field == "id" and "\0" not in value:
            last_id = value
    return events


def read_stream(t, path, headers, seconds):
    """GET over HTTP/1.1 for `seconds` (a follow never ends): (status, headers, body text)."""
    conn = http.client.HTTPConnection(t.host, t.port, timeout=seconds)
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = r.read1(65536) if r.status == 200 else r.read()
            if not chunk:
                break
            body += chunk
    except (socket.timeout, TimeoutError):
        pass
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body.decode()


@case(laminar_only=True)
def sse_event_source(t):
    """results.md: `Accept: text/event-stream` (what EventSource sends) gets text/event-stream, one
    event per row with `id: <seq>` and the NDJSON row as data; `Last-Event-ID` resumes after it
    (what EventSource sends on reconnecting), the later of it and `since` counts (an EventSource
    opened on ?since=0 reconnects to that URL); progress events carry no id
    (EventSource keeps the last row's); an unknown stream is 404 (EventSource stops)."""
    c = t.connect()
    assert c.request("PUT", "/streams/c-sse", body=b'{"window":"1s"}', seconds=WAIT_S)[0] in (200, 201)
    events = b"".join(b'{"key":"k%d","ts":%d,"value":1}\n' % (i % 2, i * 1000) for i in range(6))
    status, _ = c.request("POST", "/streams/c-sse/events", body=events, extra=[("content-type", "application/x-ndjson")],
                          seconds=WAIT_S)
    assert status in (200, 202), status
    status, rows = c.request("GET", "/streams/c-sse/results", seconds=WAIT_S)
    c.close()
    rows = sorted((json.loads(line) for line in rows.decode().splitlines()), key=lambda r: r["seq"])
    assert len(rows) >= 3, rows
    sse = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    status, headers, text = read_stream(t, "/streams/c-sse/results", {**sse, "Last-Event-ID": "0"}, 1.5)
    assert status == 200 and headers.get("content-type", "").startswith("text/event-stream"), (status, headers)
    assert headers.get("cache-control") == "no-cache", headers
    got = [e for e in sse_events(text) if e[1] == "message"]
    assert [json.loads(e[2]) for e in got] == rows, f"{got} vs {rows}"
    assert [e[0] for e in got] == [str(r["seq"]) for r in rows], "id: is not the row's seq"
    progress = [e for e in sse_events(text) if e[1] == "progress"]
    assert all(e[0] == got[-1][0] for e in progress), "a progress event changed the last event id"
    last = rows[0]["seq"]
    status, _, text = read_stream(t, "/streams/c-sse/results", {**sse, "Last-Event-ID": str(last)}, 1.0)
    resumed = [json.loads(e[2]) for e in sse_events(text) if e[1] == "message"]
    assert status == 200 and resumed == rows[1:], f"resume after {last}: {resumed}"
    # Both: the later one. An EventSource opened on ?since=0 reconnects with Last-Event-ID.
    status, _, text = read_stream(t, "/streams/c-sse/results?since=0", {**sse, "Last-Event-ID": str(last)}, 1.0)
    assert [json.loads(e[2]) for e in sse_events(text) if e[1] == "message"] == rows[1:], "?since=0 won over Last-Event-ID"
    status, _, text = read_stream(t, f"/streams/c-sse/results?since={rows[-2]['seq']}", {**sse, "Last-Event-ID": "0"}, 1.0)
    assert [json.loads(e[2]) for e in sse_events(text) if e[1] == "message"] == rows[-1:], "Last-Event-ID 0 won over since"
    status, headers, _ = read_stream(t, "/streams/c-nope/results", sse, 1.0)
    assert status == 404, status
    status, _, _ = read_stream(t, "/streams/c-sse/results", {**sse, "Last-Event-ID": "x"}, 1.0)
    assert status == 400, f"Last-Event-ID x: {status}"
    return f"{len(rows)} rows as events with ids, resumed by Last-Event-ID (over ?since=0), 404, 400"


# ---------------------------------------------------------------- running

LARGE_VALUE = bytes(range(256)) * 781 + b"x" * 64   # 200 000 bytes


def prepare(t):
    if t.laminar:
        c = t.connect()
        status, _ = c.request("PUT", "/kv/c2-large", body=LARGE_VALUE, seconds=WAIT_S)
        assert status == 204, f"setup PUT: {status}"
        c.close()


def check_fresh_client(t):
    c = t.connect()
    try:
        status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
        assert status == 200, f"a fresh client got {status}"
    finally:
        c.close()


def run(t, only, upgraded_too=False):
    """Every case on `t`; with `upgraded_too`, the h2_ cases again on connections that began
    with an h2c Upgrade (named upgrade:h2_…)."""
    passed = failed = skipped = 0
    prepare(t)
    upgrade_target = Target(t.host, t.port, t.get_path, t.laminar, upgrade=True)
    runs = [(name, fn, laminar_only, t) for name, fn, laminar_only in CASES]
    if upgraded_too:
        runs += [("upgrade:" + name, fn, laminar_only, upgrade_target) for name, fn, laminar_only in CASES
                 if name.startswith("h2_")]
    for name, fn, laminar_only, t in runs:
        if only and name not in only and name.removeprefix("upgrade:") not in only:
            continue
        if laminar_only and not t.laminar:
            skipped += 1
            continue
        t0 = time.monotonic()
        try:
            note = fn(t)
            check_fresh_client(t)
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.1f} s): {note}", flush=True)
        except Exception as e:  # noqa: BLE001 - one line per failed case
            failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s): {detail}", flush=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 1 if failed else 0


def option(flag, default=None):
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


def main():
    if "--list" in sys.argv:
        for name, fn, laminar_only in CASES:
            print(name + (" (laminar)" if laminar_only else ""))
        return 0
    only = set(option("--only").split(",")) if option("--only") else None
    connect = option("--connect")
    if connect:
        host, _, port = connect.rpartition(":")
        return run(Target(host.strip("[]"), int(port), option("--path", "/"), laminar=False), only)
    args = [a for a in sys.argv[1:] if not a.startswith("--") and a != option("--only")]
    if not args:
        print(__doc__)
        return 2
    from run_abuse import Server  # the abuse suite's server wrapper: --port 0, readiness line
    srv = Server(os.path.abspath(args[0]), ["--memory", "--max-body", str(MAX_BODY)])
    try:
        rc = run(Target("127.0.0.1", srv.port, "/health", laminar=True), only, upgraded_too=True)
        assert srv.alive(), f"the server died: {srv.stderr_tail()}"
    finally:
        code = srv.stop()
    if code != 0:
        print(f"FAIL the server exited {code} on SIGTERM")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
