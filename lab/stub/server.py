"""The stub's connectors: one threaded HTTP(S) server per Tomcat connector."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

from lab.stub.app import BitbucketApp
from lab.stub.config import ConnectorSettings, StubSettings
from lab.stub.connector import Answer, IncomingRequest, header_too_large, precheck, view_request
from lab.stub.exchange import Exchange, Response, iter_request_body
from lab.stub.ssh import start_sshd, stop_sshd
from lab.stub.tls import server_context

IDLE_TIMEOUT_S = 60
NO_CACHE = [("Cache-Control", "no-cache, no-store, no-transform, must-revalidate"),
            ("Pragma", "no-cache"), ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")]
_request_ids = itertools.count(1)


class ConnectorServer(ThreadingHTTPServer):
    """A listening connector; TLS handshakes happen in the request thread, not in accept."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    access_log = False

    def __init__(self, connector: ConnectorSettings, app: BitbucketApp,
                 tls_context: ssl.SSLContext | None) -> None:
        self.connector, self.app, self.tls_context = connector, app, tls_context
        self.open_connections: set[socket.socket] = set()
        family = socket.AF_INET6 if ":" in connector.address else socket.AF_INET
        self.address_family = family
        super().__init__((connector.address, connector.port), StubHandler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        request.settimeout(IDLE_TIMEOUT_S)
        self.open_connections.add(request)
        try:
            if self.tls_context is not None:
                try:
                    request = self.tls_context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            super().finish_request(request, client_address)
        finally:
            self.open_connections.discard(request)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        report = request_error_report(sys.exc_info()[1], client_address)
        if report:
            sys.stderr.write(report + "\n")
            sys.stderr.flush()

    def drop_connections(self) -> None:
        """Close every open connection, kept-alive ones included, as a dying JVM's do."""
        for connection in list(self.open_connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


QUIET_ERRORS = (ConnectionError, TimeoutError, ssl.SSLError)
"""A client that went away or spoke bad TLS mid-request: Tomcat logs nothing for it, nor does the stub."""


def request_error_report(error: BaseException | None, client_address: tuple[str, int]) -> str:
    """One ``LAB-STUB-ERROR`` line (its traceback joined with `` | ``) for an exception a request
    thread raised — the stub's own fault, and the client saw its connection reset; "" for a
    client gone (:data:`QUIET_ERRORS`). One line, so a log reader or a failing test's captured
    stderr has all of it, not socketserver's header without its traceback."""
    if error is None or isinstance(error, QUIET_ERRORS):
        return ""
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)).strip().replace("\n", " | ")
    return f"LAB-STUB-ERROR request from {client_address[0]}:{client_address[1]}: {trace}"


class _CountingReader:
    """The socket file as ``http.client.parse_headers`` reads it (line by line), counting the
    bytes: the size of the header block as Tomcat's Http11InputBuffer holds it."""

    def __init__(self, rfile: BinaryIO) -> None:
        self.rfile, self.bytes_read = rfile, 0

    def readline(self, size: int = -1) -> bytes:
        line = self.rfile.readline(size)
        self.bytes_read += len(line)
        return line


class StubHandler(BaseHTTPRequestHandler):
    """Turns a socket request into an Exchange, applying Tomcat's rules first."""

    protocol_version = "HTTP/1.1"
    server_version = ""
    sys_version = ""
    server: ConnectorServer
    header_bytes = 0
    """Request line + header lines + the empty line, in bytes, as they arrived."""

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler's parsing, counting the header block on the way (a single
        line over 64 KB still gets Python's own 431, whatever the limit)."""
        counting = _CountingReader(self.rfile)  # type: ignore[arg-type]
        self.rfile = counting  # type: ignore[assignment]
        try:
            return super().parse_request()
        finally:
            self.rfile = counting.rfile  # type: ignore[assignment]
            self.header_bytes = len(getattr(self, "raw_requestline", b"")) + counting.bytes_read

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    def _serve(self) -> None:
        headers = {name.lower(): value for name, value in reversed(self.headers.items())}
        local_addr, local_port = self.connection.getsockname()[:2]
        # Only a request without Host needs the name; don't pay a reverse lookup otherwise.
        name = local_name(local_addr) if "host" not in headers else None
        incoming = IncomingRequest(self.command, self.path, self.request_version, headers,
                                   self.client_address[0], local_addr, local_port, name)
        settings = self.server.app.settings
        view = view_request(self.server.connector, incoming, settings.forwarded)
        body = self.server.app.body_timings.timed(headers.get("x-request-id"), self.path,
                                                  iter_request_body(self.rfile, headers))
        exchange = Exchange(self.command, view, settings.context_path, "", headers, body, self.path,
                            version=self.request_version)
        answer = (header_too_large(self.header_bytes, settings.max_header_bytes)
                  or precheck(self.server.connector, incoming, view, settings.context_path))
        if answer is not None:
            response = _tomcat_response(answer)
            self.close_connection = self.close_connection or answer.close
        elif not _under_context(view.raw_path, settings.context_path):
            response = Response(404, [("Content-Type", "text/plain")], b"Not found: no context at this path\n")
        else:
            exchange.path = view.raw_path[len(settings.context_path):] or "/"
            response = self.server.app.handle(exchange)
        # (http.server answered an Expect: 100-continue before this handler: the body will come.)
        unread = not exchange.body_consumed and ("content-length" in headers or "transfer-encoding" in headers)
        if self.close_connection and response.header("Connection") is None:
            # Said in the response, as Tomcat says it: a proxy that pools connections to Bitbucket
            # must not reuse this one (it would race the close and lose the next request).
            response = dataclasses.replace(response, headers=[*response.headers, ("Connection", "close")])
        self._log_exchange(headers, response.status)
        if not view.raw_path.startswith(f"{settings.context_path}/rest/lab/"):  # the lab asking, not a check's traffic
            self.server.app.answers.answered(headers.get("x-request-id"), self.command, self.path, response.status)
        self._send(response, exchange.user, bitbucket_headers=not (answer and answer.page))
        if unread and not self.close_connection and not _swallowed(exchange, MAX_SWALLOW_BYTES):
            self.close_connection = True  # more unread than Tomcat swallows: it closes the connection

    def _log_exchange(self, headers: dict[str, str], status: int) -> None:
        """One JSON line per request (with ``--access-log``): what Bitbucket saw, for the
        lab's evidence — the request id a check sent, the Host and raw path that arrived."""
        if not self.server.access_log:
            return
        record = {"id": headers.get("x-request-id"), "method": self.command, "uri": self.path,
                  "version": self.request_version, "host": headers.get("host"), "status": status,
                  "connector": self.server.connector.port}
        print("LAB-REQUEST " + json.dumps(record), file=sys.stderr, flush=True)

    def _send(self, response: Response, user: str | None, bitbucket_headers: bool = True) -> None:
        """Tomcat 8.5+ sends no reason phrase and Bitbucket no Server header; an error page
        Tomcat renders itself never passed Bitbucket's filters, so it lacks their headers."""
        self.send_response_only(response.status, "")
        self.send_header("Date", self.date_time_string())
        present = {name.lower() for name, _ in response.headers}
        extra = [("X-Lab-Node", self.server.app.node_id)]
        if bitbucket_headers:
            extra += [("X-AREQUESTID", f"@{secrets.token_hex(3).upper()}x{next(_request_ids)}x0"),
                      ("X-Frame-Options", "SAMEORIGIN"), ("X-Content-Type-Options", "nosniff"),
                      *[(k, v) for k, v in NO_CACHE if k.lower() not in present]]
        if user:
            extra += [("X-AUSERID", str(sorted(self.server.app.settings.users).index(user) + 1)),
                      ("X-AUSERNAME", user)]
        for name, value in [*response.headers, *extra]:
            self.send_header(name, value)
        if isinstance(response.body, bytes):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._send_chunked(response.body)

    def _send_chunked(self, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        return  # requests are logged as JSON lines by _log_exchange


@functools.lru_cache(maxsize=64)
def local_name(address: str) -> str:
    """Java's ``getLocalName()``: the reverse-resolved name of the local address
    (127.0.0.1 → ``localhost``), or the address literal when it has none. Cached, as
    Java caches lookups."""
    try:
        return socket.getnameinfo((address, 0), socket.NI_NAMEREQD)[0]
    except (OSError, UnicodeError):
        return address


MAX_SWALLOW_BYTES = 2 * 1024 * 1024
"""Tomcat's ``maxSwallowSize`` default: a request body the application left unread is read
and discarded up to this much after the response, keeping the connection; beyond it Tomcat
closes the connection (Tomcat's HTTP connector reference, ``maxSwallowSize``)."""


def _swallowed(exchange: Exchange, limit: int) -> bool:
    """Read and discard the rest of an unread request body, as Tomcat does; False when more
    than ``limit`` bytes were left (the connection must then close)."""
    left = limit
    try:
        for chunk in exchange.iter_body():
            left -= len(chunk)
            if left < 0:
                return False
    except (OSError, ValueError):
        return False
    return True


def _tomcat_response(answer: Answer) -> Response:
    """What Tomcat itself sends: a redirect, a bare status, or its HTML error report."""
    headers = [("Location", answer.location)] if answer.location else []
    if not answer.page:
        return Response(answer.status, headers, answer.reason.encode())
    headers += [("Content-Type", "text/html;charset=utf-8"), ("Content-Language", "en")]
    if answer.close:
        headers.append(("Connection", "close"))
    return Response(answer.status, headers, answer.page)


def _under_context(raw_path: str, context_path: str) -> bool:
    return not context_path or raw_path.startswith(context_path + "/")


RESTARTING = "stub Bitbucket RESTARTING (SIGHUP: its listeners are closed; it reads its files again)"
"""What the stub prints once a restart has closed everything the old process served."""


@dataclass
class RunningStub:
    """A started stub: its connector servers, bound ports, and how to stop it."""

    servers: list[ConnectorServer]
    threads: list[threading.Thread]
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def ports(self) -> list[int]:
        """Bound port of each connector, main connector first (useful with port 0)."""
        return [server.server_address[1] for server in self.servers]

    def stop(self) -> None:
        stop_sshd(self.sshd)
        for server in self.servers:
            server.shutdown()
            server.server_close()
            server.drop_connections()


def start_stub(settings: StubSettings, home: Path, access_log: bool = False) -> RunningStub:
    """Seed repositories, bind every connector, serve each in a background thread.

    Raises ConfigError (naming the key) for a keystore that cannot be opened, and
    OSError when a port cannot be bound.
    """
    app = BitbucketApp(settings, home)
    contexts = [server_context(c.tls, c.prefix) if c.tls else None for c in settings.connectors]
    app.repos.seed()
    sshd = start_sshd(settings, home)  # first: it listens by the time HTTP answers
    servers: list[ConnectorServer] = []
    try:
        for connector, context in zip(settings.connectors, contexts, strict=True):
            server = ConnectorServer(connector, app, context)
            server.access_log = access_log
            servers.append(server)
    except OSError:
        for server in servers:
            server.server_close()
        stop_sshd(sshd)
        raise
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
               for s in servers]
    for thread in threads:
        thread.start()
    return RunningStub(servers, threads, sshd)

