"""A raw HTTP/2 (and HTTP/1.1) client for the abuse suite: frames are built by hand so they can be
malformed on purpose; header blocks use the `hpack` package (installed with `h2`).

Everything here talks to loopback only (127.0.0.1 unless told) and every wait has a deadline.
Every client write treats a reset or a broken pipe as the end of the connection (`H2Conn.eof`):
a server may close with input unread, after its GOAWAY, and what it said is still to be read."""

import select
import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

ERROR_NAMES = {
    0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
    4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
    8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
    12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED",
}


def wait_fd(sock, writable, timeout):
    """poll(2) for one socket (select(2) fails past descriptor 1023, and the 10 000-connection case
    goes far past it). True when ready."""
    p = select.poll()
    p.register(sock, select.POLLOUT if writable else select.POLLIN)
    return bool(p.poll(max(0, int(timeout * 1000))))


def frame(ftype, flags, stream_id, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", (n >> 16) & 0xFF, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF) + payload


def settings(entries=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in entries))


def ping(data=b"abusepng", ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def rst(stream_id, code=8):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def request_headers(method, path, extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path)] + list(extra)


class Closed(Exception):
    pass


class H2Conn:
    """One HTTP/2 connection with prior knowledge. `send` writes raw bytes; `read_frames` parses
    whatever arrives; `request` is a well-behaved exchange for the health checks."""

    def __init__(self, port, handshake=True, timeout=5.0, rcvbuf=None, host="127.0.0.1", sock=None):
        """`sock`: a connected socket to speak HTTP/2 on (one an h2c Upgrade switched), instead
        of a new connection to `host`:`port`."""
        if sock is None:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.buf = b""
        self.goaway = None          # (last_stream_id, error_code)
        self.resets = {}            # stream id -> error code
        self.eof = False
        self.next_id = 1
        self.responses = {}         # stream id -> {"headers": [...], "data": bytearray, "done": bool}
        self.server_settings = False
        self.auto_window_update = True  # give back every DATA byte read (False: the case manages windows)
        if handshake:
            self.send(PREFACE + settings([(4, 1 << 24)]) + window_update(0, (1 << 30)))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        """Writes `data`; a reset or broken pipe means the server has closed the connection (it may
        close with our input unread, after a GOAWAY): recorded as EOF, not raised, so a case goes on
        to read what the server said before closing."""
        if self.eof:
            return
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.eof = True

    def try_send(self, data, seconds):
        """Sends what the peer accepts within `seconds` (non-blocking); returns bytes sent."""
        self.sock.setblocking(False)
        sent, deadline = 0, time.monotonic() + seconds
        view = memoryview(data)
        try:
            while sent < len(data) and time.monotonic() < deadline:
                if not wait_fd(self.sock, True, deadline - time.monotonic()):
                    break
                try:
                    sent += self.sock.send(view[sent:sent + 65536])
                except BlockingIOError:
                    continue
                except OSError:
                    self.eof = True
                    break
        finally:
            self.sock.setblocking(True)
        return sent

    def header_block(self, headers):
        return self.encoder.encode(headers)

    def headers_frame(self, stream_id, headers, end_stream=True):
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream_id, self.header_block(headers))

    def new_stream(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def _recv_some(self, timeout):
        if not wait_fd(self.sock, False, timeout):
            return False
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _parse(self, frames):
        while len(self.buf) >= 9:
            n = (self.buf[0] << 16) | (self.buf[1] << 8) | self.buf[2]
            if len(self.buf) < 9 + n:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            self._on_frame(ftype, flags, sid, payload)
            frames.append((ftype, flags, sid, payload))

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS and not flags & ACK:
            self.send(settings(ack=True))
            self.server_settings = True
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code)
        elif ftype == RST_STREAM:
            self.resets[sid] = struct.unpack(">I", payload)[0]
            if sid in self.responses:
                self.responses[sid]["done"] = True
        elif ftype == HEADERS:
            block = payload
            if flags & PADDED:
                block = block[1:len(block) - block[0]]
            if flags & PRIORITY_FLAG:
                block = block[5:]
            r = self.responses.setdefault(sid, {"headers": [], "data": bytearray(), "done": False})
            r["headers"] += self.decoder.decode(block)
            if flags & END_STREAM:
                r["done"] = True
        elif ftype == DATA:
            r = self.responses.setdefault(sid, {"headers": [], "data": bytearray(), "done": False})
            body = payload
            if flags & PADDED:
                body = body[1:len(body) - body[0]]
            r["data"] += body
            if flags & END_STREAM:
                r["done"] = True
            if len(payload) and self.auto_window_update:
                # Keep the windows open (the health checks read large answers).
                self.send(window_update(sid, len(payload)) + window_update(0, len(payload)))

    def read_frames(self, seconds, until=None):
        """Reads and handles frames for up to `seconds`, or until `until()` is true or EOF."""
        frames = []
        deadline = time.monotonic() + seconds
        while True:
            self._parse(frames)
            if until is not None and until():
                break
            if self.eof or time.monotonic() >= deadline:
                break
            self._recv_some(deadline - time.monotonic())
        return frames

    def read_until_closed(self, seconds):
        """Reads until the server closes the connection (EOF or reset); True if it did in time."""
        self.read_frames(seconds, until=lambda: self.eof)
        return self.eof

    def request(self, method, path, body=b"", extra=(), seconds=5.0):
        if len(body) > 65535 and not self.server_settings:
            # Bodies past the default window wait for the server's SETTINGS (its larger window).
            self.read_frames(seconds, until=lambda: self.server_settings)
        sid = self.new_stream()
        hdrs = request_headers(method, path, extra)
        if body:
            hdrs.append(("content-length", str(len(body))))
        self.send(self.headers_frame(sid, hdrs, end_stream=not body))
        for i in range(0, len(body), 16384):
            chunk = body[i:i + 16384]
            self.send(frame(DATA, END_STREAM if i + 16384 >= len(body) else 0, sid, chunk))
        self.read_frames(seconds, until=lambda: self.responses.get(sid, {}).get("done"))
        r = self.responses.get(sid)
        if not r or not r["done"]:
            raise TimeoutError(f"no answer to {method} {path} within {seconds} s (eof={self.eof}, goaway={self.goaway})")
        status = dict((k if isinstance(k, str) else k.decode(), v) for k, v in r["headers"]).get(":status")
        return int(status) if status else None, bytes(r["data"])


def http1(port, raw_request, seconds=5.0):
    """Sends raw bytes, returns (status, response bytes) of the first response (reads to close or
    to the end of a content-length body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
        try:
            s.sendall(raw_request)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the server answered and closed before taking it all: read what it said
        data = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = None
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if length is not None and len(rest) >= length:
                    break
        if not data.startswith(b"HTTP/1."):
            return None, data
        return int(data.split(b" ", 2)[1]), data
