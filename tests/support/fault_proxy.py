"""A threaded HTTP proxy in front of a real registry that injects faults on demand.

Requests pass through unchanged (Host, Link, Location, WWW-Authenticate, Docker-Content-Digest
and every other end-to-end header), so a client behind the proxy behaves as it would against
the registry, until a fault is switched on:

    proxy.latency(0.2)                       # every request 0.2 s slower
    proxy.error(500, path=r"/tags/list")     # 500 for matching paths
    proxy.hang(path=r"/_catalog", times=1)   # no answer for a while, then the socket closes
    proxy.cut(path=r"/manifests/")           # half the body, then the connection drops
    proxy.malformed_json(path=r"/_catalog")  # upstream headers, a broken JSON body
    proxy.oversized(50 * 1024 * 1024)        # a 200 answer of 50 MB
    proxy.redirect(other.url, path=r"/blobs/")  # 307 to other.url + the same path and query

Faults match a regex against the path with its query (`re.search`) and optionally a method;
`times` limits how many requests a fault hits. Latency adds up and combines with one other fault.
`seen` records every request, with whether it carried an Authorization header.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that describe one hop, not the message: never forwarded as they are.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
}
FAULT_KINDS = ("latency", "status", "hang", "cut", "malformed_json", "oversized", "redirect")
MALFORMED_JSON_BODY = b'{"repositories": ["broken", "unterminated'
UPSTREAM_TIMEOUT_SECONDS = 120
STREAM_CHUNK = 64 * 1024


@dataclass
class Fault:
    kind: str
    path: str = ".*"
    method: str | None = None
    times: int | None = None  # None: every matching request
    seconds: float = 0.0
    status: int = 500
    size: int = 0
    declare_length: bool = True
    location: str = ""  # redirect: the target's base, the request's path and query follow
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method.upper() != method:
            return False
        return re.search(self.path, path) is not None


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    fault: str | None  # the non-latency fault applied, if any
    authorized: bool = False  # the request carried an Authorization header


class FaultProxy:
    def __init__(self, upstream_url: str):
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http":
            raise ValueError("the fault proxy forwards plain http only")
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port or 80
        self.faults: list[Fault] = []
        self.seen: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _TrackingServer | None = None
        self._thread: threading.Thread | None = None

    # -- addresses and lifecycle -----------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> FaultProxy:
        self._stopping.clear()
        self._server = _TrackingServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # releases hanging requests
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------

    def add_fault(self, kind: str, **options) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
        fault = Fault(kind=kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def latency(self, seconds: float, **match) -> Fault:
        return self.add_fault("latency", seconds=seconds, **match)

    def error(self, status: int = 500, **match) -> Fault:
        return self.add_fault("status", status=status, **match)

    def hang(self, seconds: float = 30.0, **match) -> Fault:
        """Answer nothing for `seconds` (longer than the client's timeout), then close."""
        return self.add_fault("hang", seconds=seconds, **match)

    def cut(self, **match) -> Fault:
        """Send the headers and half the upstream body, then drop the connection."""
        return self.add_fault("cut", **match)

    def malformed_json(self, **match) -> Fault:
        return self.add_fault("malformed_json", **match)

    def oversized(self, size: int = 50 * 1024 * 1024, **match) -> Fault:
        """A 200 JSON-looking answer of `size` bytes (chunked if not `declare_length`)."""
        return self.add_fault("oversized", size=size, **match)

    def redirect(self, location_base: str, status: int = 307, **match) -> Fault:
        """Answer `status`, `Location: <location_base><path and query>`, no body, no upstream."""
        return self.add_fault("redirect", status=status, location=location_base, **match)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- what happened ---------------------------------------------------------------------

    @property
    def requests_seen(self) -> int:
        return len(self.seen)

    def count(self, path: str = ".*", method: str | None = None) -> int:
        """Requests seen whose path (with query) matches the regex `path`."""
        return sum(
            1
            for request in self.seen
            if re.search(path, request.path) and (method is None or request.method == method)
        )

    def reset_counts(self) -> None:
        with self._lock:
            self.seen.clear()

    def _choose_faults(
        self, method: str, path: str, *, authorized: bool = False
    ) -> tuple[float, Fault | None]:
        """Total latency and the first other fault for a request; records the request."""
        with self._lock:
            delay = 0.0
            chosen = None
            for fault in self.faults:
                if not fault.matches(method, path):
                    continue
                if fault.kind == "latency":
                    fault.hits += 1
                    delay += fault.seconds
                elif chosen is None:
                    fault.hits += 1
                    chosen = fault
            kind = chosen.kind if chosen else None
            self.seen.append(SeenRequest(method, path, kind, authorized))
            return delay, chosen


class _TrackingServer(ThreadingHTTPServer):
    """Remembers client sockets so `stop()` can close keep-alive connections too."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # Clients that hang up mid-answer (timeouts, killed workers) are part of every fault
        # test; anything else is still printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class FaultProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 120  # idle keep-alive connections end eventually
        # http.server writes head and body apart: with Nagle on, each answer would wait for a
        # delayed ACK (about 40 ms), which punishes sequential clients beyond any latency set.
        disable_nagle_algorithm = True

        def do_GET(self):  # noqa: N802  (http.server's naming)
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

        def _handle(self) -> None:
            body = self._read_request_body()
            delay, fault = proxy._choose_faults(
                self.command, self.path, authorized="Authorization" in self.headers
            )
            if delay and proxy._stopping.wait(delay):
                self.close_connection = True
                return
            kind = fault.kind if fault else None
            if kind == "status":
                self._answer_error(fault)
            elif kind == "hang":
                proxy._stopping.wait(fault.seconds)
                self.close_connection = True
            elif kind == "oversized":
                self._answer_oversized(fault)
            elif kind == "redirect":
                self._answer_redirect(fault)
            else:
                self._forward_or_fail(body, kind)

        def _forward_or_fail(self, body: bytes | None, kind: str | None) -> None:
            try:
                self._forward(body, kind)
            except ConnectionRefusedError:
                self._answer_bad_gateway()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away

        # -- request -----------------------------------------------------------------------

        def _read_request_body(self) -> bytes | None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = self.headers.get("Content-Length")
            return self.rfile.read(int(length)) if length is not None else None

        def _read_chunked(self) -> bytes:
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()

        # -- forwarding --------------------------------------------------------------------

        def _forward(self, body: bytes | None, kind: str | None) -> None:
            upstream = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT_SECONDS
            )
            try:
                # Host goes through unchanged: the registry builds Location URLs from it, so
                # clients keep talking to the proxy.
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        upstream.putheader(name, value)
                if body is not None:
                    upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body)
                response = upstream.getresponse()
                self._relay(response, kind)
            finally:
                upstream.close()

        def _relay(self, response: http.client.HTTPResponse, kind: str | None) -> None:
            headers = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in HOP_BY_HOP
            ]
            has_body = self.command != "HEAD" and response.status not in (204, 304)
            declared = response.getheader("Content-Length")
            if kind is None and has_body and declared is not None and not response.chunked:
                # Stream big answers (blobs) straight through.
                self._send_head(response.status, response.reason, headers)
                self._copy(response, int(declared))
                return
            data = response.read() if has_body else b""
            if kind == "malformed_json":
                data = MALFORMED_JSON_BODY
            if has_body:
                headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
                headers.append(("Content-Length", str(len(data))))
            if kind == "cut":
                self._send_cut(response.status, response.reason, headers, data)
                return
            self._send_head(response.status, response.reason, headers)
            self.wfile.write(data)

        def _copy(self, response: http.client.HTTPResponse, remaining: int) -> None:
            while remaining > 0:
                chunk = response.read(min(STREAM_CHUNK, remaining))
                if not chunk:
                    self.close_connection = True  # upstream ended early: so do we
                    return
                self.wfile.write(chunk)
                remaining -= len(chunk)

        def _send_head(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
            # send_response_only: no Server or Date headers of our own.
            self.send_response_only(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()

        def _send_cut(self, status, reason, headers, data: bytes) -> None:
            self.close_connection = True
            if data:
                self._send_head(status, reason, headers)
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        # -- answers made here -------------------------------------------------------------

        def _answer_error(self, fault: Fault) -> None:
            payload = json.dumps(
                {"errors": [{"code": "UNKNOWN", "message": "fault injected by test proxy"}]}
            ).encode()
            headers = [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Content-Length", str(len(payload))),
                *fault.headers.items(),
            ]
            self._send_head(fault.status, None, headers)
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _answer_redirect(self, fault: Fault) -> None:
            headers = [
                ("Location", fault.location + self.path),
                ("Content-Length", "0"),
                *fault.headers.items(),
            ]
            self._send_head(fault.status, None, headers)

        def _answer_bad_gateway(self) -> None:
            payload = b"upstream registry refused the connection\n"
            self._send_head(
                502,
                None,
                [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))],
            )
            self.wfile.write(payload)

        def _answer_oversized(self, fault: Fault) -> None:
            prefix, suffix = b'{"repositories":["', b'"]}'
            filler = max(fault.size - len(prefix) - len(suffix), 0)
            headers = [("Content-Type", "application/json; charset=utf-8")]
            if fault.declare_length:
                headers.append(("Content-Length", str(len(prefix) + filler + len(suffix))))
            else:
                headers.append(("Transfer-Encoding", "chunked"))
            self._send_head(200, None, headers)
            try:
                for piece in _oversized_pieces(prefix, filler, suffix):
                    if fault.declare_length:
                        self.wfile.write(piece)
                    else:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                if not fault.declare_length:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up reading: that's the point

        def log_message(self, format, *args):  # noqa: A002
            pass  # keep pytest output clean

    return FaultProxyHandler


def _oversized_pieces(prefix: bytes, filler: int, suffix: bytes):
    yield prefix
    block = b"a" * STREAM_CHUNK
    while filler > 0:
        piece = block[: min(STREAM_CHUNK, filler)]
        filler -= len(piece)
        yield piece
    yield suffix
