"""Run the stub in-process on loopback and talk to it byte for byte."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.stub.config import load_settings
from lab.stub.server import RunningStub, start_stub


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


@contextlib.contextmanager
def running_stub(home: Path, properties: str, environ: Mapping[str, str] | None = None) -> Iterator[RunningStub]:
    """A stub started from ``properties`` (ports may be 0), stopped afterwards."""
    (home / "shared").mkdir(parents=True, exist_ok=True)
    (home / "shared" / "bitbucket.properties").write_text(properties)
    stub = start_stub(load_settings(home, environ or {}), home)
    try:
        yield stub
    finally:
        stub.stop()


def request_head(target: str, headers: Mapping[str, str] | None = None, method: str = "GET",
                 version: str = "HTTP/1.1", body: bytes = b"") -> bytes:
    """The request line and header lines :func:`raw_request` sends, the closing empty line
    included: the bytes Tomcat counts against ``maxHttpHeaderSize``."""
    lines = [f"{method} {target} {version}", *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_request(port: int, target: str, headers: Mapping[str, str] | None = None,
                method: str = "GET", version: str = "HTTP/1.1", body: bytes = b"") -> RawResponse:
    """Send exactly this request (no Host unless given) and read one response."""
    payload = request_head(target, headers, method, version, body) + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split(" ")[1]), parsed, rest)
