#!/usr/bin/env python3
"""HTTP/2 stream states and frame validation (RFC 9113 3.4, 5.1, 5.1.1, 5.3.1, 6.3), driven with
raw frames: each case asserts the exact frame and error code the RFC requires.

Usage: run_rfc9113.py LAMINAR_BINARY [--only NAME[,NAME...]] [--list]
       run_rfc9113.py --connect HOST:PORT [--path /] [--post-path /]   (any h2c server, e.g. nghttpd)

With a binary, one `laminar serve` on 127.0.0.1 (--port 0, --memory) serves every case, each on
its own connection; after every case a fresh client must still be answered. With --connect the
same cases run against a server already listening (the comparison with nghttpd:
`nghttpd --no-tls -d DIR PORT`, GET/POST of `--path`). One line per case, then `N passed, N failed`."""

import os
import struct
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2raw  # noqa: E402
from h2raw import (DATA, END_HEADERS, END_STREAM, HEADERS, PRIORITY, H2Conn, frame, ping,  # noqa: E402
                   request_headers, rst, settings)

PROTOCOL_ERROR, STREAM_CLOSED, CANCEL = 1, 5, 8
WAIT_S = 5.0


class Target:
    """Where the cases connect and which resources they use (a GET answered 200 and a path that
    takes a request body); `laminar` enables the cases that need its h2c Upgrade or its watches."""

    def __init__(self, host, port, get_path, post_method, post_path, laminar=False):
        self.host, self.port, self.laminar = host, port, laminar
        self.get_path, self.post_method, self.post_path = get_path, post_method, post_path

    def connect(self, handshake=True):
        c = H2Conn(self.port, handshake=handshake, host=self.host, timeout=WAIT_S)
        if handshake:
            # The server's SETTINGS and our ACK first: every case starts on an established connection.
            c.read_frames(WAIT_S, until=lambda: c.server_settings)
            assert c.server_settings, "no SETTINGS from the server"
        return c


def name(code):
    return h2raw.ERROR_NAMES.get(code, str(code))


def expect_connection_error(c, code, unanswered=()):
    """GOAWAY(code), then the connection closes; no stream of `unanswered` gets HEADERS or DATA."""
    c.read_until_closed(WAIT_S)
    assert c.goaway is not None, f"expected GOAWAY({name(code)}); resets {c.resets}, eof {c.eof}"
    assert c.goaway[1] == code, f"GOAWAY({name(c.goaway[1])}), expected GOAWAY({name(code)})"
    assert c.eof, f"GOAWAY({name(code)}) but the connection stayed open {WAIT_S} s"
    for sid in unanswered:
        r = c.responses.get(sid)
        assert not r or (not r["headers"] and not r["data"]), \
            f"stream {sid} was answered in the same input as the connection error"
    return f"GOAWAY({name(code)}, last stream {c.goaway[0]})"


def expect_stream_error(t, c, sid, code):
    """RST_STREAM(sid, code); the connection stays usable (a new request is answered)."""
    c.read_frames(WAIT_S, until=lambda: sid in c.resets or c.eof)
    assert sid in c.resets, f"expected RST_STREAM({sid}, {name(code)}); goaway {c.goaway}, eof {c.eof}"
    assert c.resets[sid] == code, f"RST_STREAM({sid}, {name(c.resets[sid])}), expected {name(code)}"
    assert c.goaway is None and not c.eof, f"a stream error ended the connection: goaway {c.goaway}"
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200, f"the connection is unusable after the stream error: {status}"
    return f"RST_STREAM({sid}, {name(code)}), connection kept"


def priority_frame(sid, depends_on, weight=15, exclusive=False):
    return frame(PRIORITY, 0, sid, struct.pack(">IB", (depends_on & 0x7FFFFFFF) | (0x80000000 if exclusive else 0), weight))


CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


@case
def preface_bad_magic(t):
    """3.4: a preface that starts as HTTP/2's and then differs is invalid: GOAWAY(PROTOCOL_ERROR)."""
    c = t.connect(handshake=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings())
    how = expect_connection_error(c, PROTOCOL_ERROR)
    c.close()
    return how


@case
def preface_without_settings(t):
    """3.4: the preface must be followed by SETTINGS; a PING first is a PROTOCOL_ERROR."""
    c = t.connect(handshake=False)
    c.send(h2raw.PREFACE + ping())
    how = expect_connection_error(c, PROTOCOL_ERROR)
    c.close()
    return how


@case
def headers_on_half_closed_remote(t):
    """5.1: the client ended stream 1 (END_STREAM) and sends HEADERS on it again in the same write,
    before any answer: STREAM_CLOSED (nghttp2 goes further than the stream error 5.1 allows and ends
    the connection), and stream 1 is not answered."""
    c = t.connect()
    block = c.header_block(request_headers("GET", t.get_path))
    again = c.header_block(request_headers("GET", t.get_path))
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block) + frame(HEADERS, END_HEADERS | END_STREAM, 1, again))
    how = expect_connection_error(c, STREAM_CLOSED, unanswered=(1,))
    c.close()
    return how


@case
def headers_on_half_closed_remote_streaming(t):
    """5.1: the same on a stream whose answer is a long-lived response already under way (a watch):
    HEADERS on it is STREAM_CLOSED (laminar only)."""
    if not t.laminar:
        return "skipped (no long-lived response on this server)"
    c = t.connect()
    c.send(c.headers_frame(1, request_headers("GET", "/kv?watch=1&prefix=rfc9113-watch%2F")))
    c.read_frames(WAIT_S, until=lambda: c.responses.get(1, {}).get("headers"))
    assert c.responses.get(1, {}).get("headers"), "the watch did not start"
    c.send(c.headers_frame(1, request_headers("GET", t.get_path)))
    how = expect_connection_error(c, STREAM_CLOSED)
    c.close()
    return how


def _after_client_reset(t, late_frame):
    c = t.connect()
    hdrs = request_headers(t.post_method, t.post_path, [("content-length", "2")])
    c.send(c.headers_frame(1, hdrs, end_stream=False) + rst(1, CANCEL) + late_frame(c))
    return c


@case
def data_after_client_reset(t):
    """5.1 closed: any frame but PRIORITY after the client's RST_STREAM is STREAM_CLOSED."""
    c = _after_client_reset(t, lambda c: frame(DATA, END_STREAM, 1, b"xy"))
    how = expect_connection_error(c, STREAM_CLOSED, unanswered=(1,))
    c.close()
    return how


@case
def headers_after_client_reset(t):
    """5.1 closed: HEADERS (trailers) after the client's RST_STREAM: STREAM_CLOSED."""
    c = _after_client_reset(t, lambda c: c.headers_frame(1, [("x-trailer", "1")], end_stream=True))
    how = expect_connection_error(c, STREAM_CLOSED, unanswered=(1,))
    c.close()
    return how


def _closed_stream(t):
    c = t.connect()
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200, f"GET {t.get_path}: {status}"
    return c


@case
def data_on_closed_stream(t):
    """5.1 closed: DATA on a stream closed by END_STREAM both ways is a connection error STREAM_CLOSED."""
    c = _closed_stream(t)
    c.send(frame(DATA, END_STREAM, 1, b"late"))
    how = expect_connection_error(c, STREAM_CLOSED)
    c.close()
    return how


@case
def headers_on_closed_stream(t):
    """5.1 closed: HEADERS on a closed stream is a connection error STREAM_CLOSED."""
    c = _closed_stream(t)
    c.send(c.headers_frame(1, request_headers("GET", t.get_path)))
    how = expect_connection_error(c, STREAM_CLOSED)
    c.close()
    return how


@case
def lower_stream_id(t):
    """5.1.1: a new stream id must be larger than every one the client used: HEADERS on 5 then on 3
    in one write is a connection error PROTOCOL_ERROR, and neither request is answered."""
    c = t.connect()
    c.send(c.headers_frame(5, request_headers("GET", t.get_path)) + c.headers_frame(3, request_headers("GET", t.get_path)))
    how = expect_connection_error(c, PROTOCOL_ERROR, unanswered=(3, 5))
    c.close()
    return how


@case
def lower_stream_id_later(t):
    """5.1.1: stream 5 answered, then a request on stream 3 (idle, but below 5): PROTOCOL_ERROR."""
    c = t.connect()
    c.next_id = 5
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200, f"GET on stream 5: {status}"
    c.send(c.headers_frame(3, request_headers("GET", t.get_path)))
    how = expect_connection_error(c, PROTOCOL_ERROR, unanswered=(3,))
    c.close()
    return how


@case
def priority_on_stream_zero(t):
    """6.3: PRIORITY on stream 0 is a connection error PROTOCOL_ERROR."""
    c = t.connect()
    c.send(priority_frame(0, 1))
    how = expect_connection_error(c, PROTOCOL_ERROR)
    c.close()
    return how


@case
def priority_depends_on_itself(t):
    """5.3.1: a stream cannot depend on itself, a stream error; on an idle stream no RST_STREAM may
    be sent (6.4), so it ends the connection: GOAWAY(PROTOCOL_ERROR)."""
    c = t.connect()
    c.send(priority_frame(1, 1))
    how = expect_connection_error(c, PROTOCOL_ERROR)
    c.close()
    return how


@case
def priority_on_open_stream_depends_on_itself(t):
    """5.3.1: the same on an open stream (its request body pending): RST_STREAM(PROTOCOL_ERROR)."""
    c = t.connect()
    hdrs = request_headers(t.post_method, t.post_path, [("content-length", "2")])
    c.send(c.headers_frame(1, hdrs, end_stream=False) + priority_frame(1, 1))
    c.next_id = 3
    how = expect_stream_error(t, c, 1, PROTOCOL_ERROR)
    r = c.responses.get(1)
    assert not r or not r["headers"], "the reset stream was answered"
    c.close()
    return how


@case
def priority_frame_size(t):
    """6.3: a PRIORITY frame whose length is not 5 is a stream error FRAME_SIZE_ERROR, which nghttp2
    treats as a connection error (5.4.1 allows it): GOAWAY(FRAME_SIZE_ERROR)."""
    c = t.connect()
    c.send(frame(PRIORITY, 0, 1, b"\0\0\0\0\x0f\0"))
    how = expect_connection_error(c, 6)
    c.close()
    return how


@case
def headers_on_upgraded_stream(t):
    """5.1: after an h2c Upgrade, stream 1 is half-closed (remote) for the client, then closed:
    a HEADERS on it is STREAM_CLOSED (laminar only: nghttpd does not upgrade)."""
    if not t.laminar:
        return "skipped (the server does not do h2c Upgrade)"
    c = t.connect(handshake=False)
    c.send(b"GET " + t.get_path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
    deadline = time.monotonic() + WAIT_S
    while b"\r\n\r\n" not in c.buf and time.monotonic() < deadline and not c.eof:
        c._recv_some(deadline - time.monotonic())
    head, _, c.buf = c.buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), f"no 101: {head[:80]!r}"
    c.send(h2raw.PREFACE + settings() + c.headers_frame(1, request_headers("GET", t.get_path)))
    how = expect_connection_error(c, STREAM_CLOSED)
    c.close()
    return how


@case
def data_after_server_reset(t):
    """5.1: frames on a stream the server reset are ignored, not an error: an uppercase field name
    gets RST_STREAM(PROTOCOL_ERROR) (8.2.1); the DATA the client sent on after it changes nothing."""
    c = t.connect()
    c.send(c.headers_frame(1, request_headers(t.post_method, t.post_path, [("X-Bad", "1")]), end_stream=False))
    c.read_frames(WAIT_S, until=lambda: 1 in c.resets or c.eof)
    assert c.resets.get(1) == PROTOCOL_ERROR, f"expected RST_STREAM(1, PROTOCOL_ERROR): {c.resets}, goaway {c.goaway}"
    c.send(frame(DATA, 0, 1, b"late") + frame(DATA, END_STREAM, 1, b"r"))
    c.next_id = 3
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200 and c.goaway is None, f"after DATA on a reset stream: {status}, goaway {c.goaway}"
    c.close()
    return "RST_STREAM(1, PROTOCOL_ERROR), later DATA ignored, connection kept"


@case
def priority_allowed_on_closed_stream(t):
    """5.1: PRIORITY is allowed on a closed stream (and on one the client reset): no error."""
    c = _closed_stream(t)
    c.send(priority_frame(1, 0) + priority_frame(7, 0))
    c.next_id = 9
    status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
    assert status == 200 and c.goaway is None and not c.resets, \
        f"after PRIORITY on closed/idle streams: {status}, goaway {c.goaway}, resets {c.resets}"
    c.close()
    return "ignored, connection kept"


def check_fresh_client(t):
    c = t.connect()
    try:
        status, _ = c.request("GET", t.get_path, seconds=WAIT_S)
        assert status == 200, f"a fresh client got {status}"
    finally:
        c.close()


def run(t, only):
    passed = failed = 0
    for case_name, fn in CASES:
        if only and case_name not in only:
            continue
        t0 = time.monotonic()
        try:
            note = fn(t)
            check_fresh_client(t)
            passed += 1
            print(f"PASS {case_name} ({time.monotonic() - t0:.1f} s): {note}", flush=True)
        except Exception as e:  # noqa: BLE001 - one line per failed case
            failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {case_name} ({time.monotonic() - t0:.1f} s): {detail}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def option(flag, default=None):
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


def main():
    if "--list" in sys.argv:
        for case_name, _ in CASES:
            print(case_name)
        return 0
    only = set(option("--only").split(",")) if option("--only") else None
    connect = option("--connect")
    if connect:
        host, _, port = connect.rpartition(":")
        path = option("--path", "/")
        return run(Target(host.strip("[]"), int(port), path, "POST", option("--post-path", path)), only)
    args = [a for a in sys.argv[1:] if not a.startswith("--") and a not in (option("--only"),)]
    if not args:
        print(__doc__)
        return 2
    from run_abuse import Server  # the abuse suite's server wrapper: --port 0, readiness line
    srv = Server(os.path.abspath(args[0]), ["--memory"])
    try:
        rc = run(Target("127.0.0.1", srv.port, "/health", "PUT", "/kv/rfc9113", laminar=True), only)
        assert srv.alive(), f"the server died: {srv.stderr_tail()}"
    finally:
        code = srv.stop()
    if code != 0:
        print(f"FAIL the server exited {code} on SIGTERM")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
