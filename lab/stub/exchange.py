"""The exchange between the stub's connector and its application: request in, response out."""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lab.stub.connector import RequestView

Body = bytes | Iterator[bytes]


class ByteReader(Protocol):
    """What the request body is read from: the handler's buffered socket file."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass
class Response:
    """Status, headers and a body: bytes (sent with Content-Length) or an iterator of
    chunks (sent with chunked transfer encoding, streamed, never held in memory)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Body = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Exchange:
    """A request as the application sees it: the connector's view, the path relative to
    the context path (raw, ``%2F`` still encoded), headers with lower-case names."""

    method: str
    view: RequestView
    context_path: str
    path: str
    headers: Mapping[str, str]
    body_stream: Iterator[bytes]
    raw_uri: str
    user: str | None = None
    body_consumed: bool = False
    version: str = "HTTP/1.1"  # the protocol of the request line, as the proxy sent it

    def read_body(self, limit: int = 1 << 20) -> bytes:
        """The whole request body, for small bodies such as a login form."""
        data = bytearray()
        for chunk in self.iter_body():
            data += chunk
            if len(data) > limit:
                raise ValueError("request body too large")
        return bytes(data)

    def iter_body(self) -> Iterator[bytes]:
        self.body_consumed = True
        yield from self.body_stream

    def basic_credentials(self) -> tuple[str, str] | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


class BodyCutShort(EOFError):
    """The connection ended before the body did (no last chunk, fewer bytes than announced)."""


def iter_request_body(rfile: ByteReader, headers: Mapping[str, str], chunk: int = 65536) -> Iterator[bytes]:
    """The request body as it arrives: Content-Length or chunked transfer encoding.
    Raises BodyCutShort at the end when the connection closed before the body was whole."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        yield from _iter_chunked(rfile)
        return
    remaining = int(headers.get("content-length", "0") or 0)
    while remaining > 0:
        data = rfile.read(min(chunk, remaining))
        if not data:
            raise BodyCutShort
        remaining -= len(data)
        yield data


def _iter_chunked(rfile: ByteReader) -> Iterator[bytes]:
    while True:
        size_line = rfile.readline(1024)
        if not size_line:
            raise BodyCutShort
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(1024).strip():
                pass  # trailers
            return
        remaining = size
        while remaining > 0:
            data = rfile.read(min(65536, remaining))
            if not data:
                raise BodyCutShort
            remaining -= len(data)
            yield data
        rfile.readline(1024)


class RecordsById:
    """Records kept by X-Request-ID, for the lab's diagnostics: the latest ``keep`` ids,
    each with its records in arrival order; a record added is the same dict later updated."""

    def __init__(self, keep: int = 200) -> None:
        self._records: dict[str, list[dict[str, object]]] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def add(self, request_id: str, record: dict[str, object]) -> None:
        with self._lock:
            self._records.setdefault(request_id, []).append(record)
            while len(self._records) > self._keep:
                self._records.pop(next(iter(self._records)))

    def of(self, request_id: str) -> list[dict[str, object]]:
        with self._lock:
            return [dict(record) for record in self._records.get(request_id, [])]


class BodyTimings(RecordsById):
    """When each request's body arrived (by X-Request-ID): the first and last byte, and how
    much — so the lab can tell a proxy that streams a push from one that spools it first."""

    def timed(self, request_id: str | None, path: str, body: Iterator[bytes]) -> Iterator[bytes]:
        """``body``, recording its timing under ``request_id`` as it is read, and whether it
        arrived whole (``complete``); a body cut short just ends, as a closed socket's does."""
        if not request_id:
            with contextlib.suppress(BodyCutShort):
                yield from body
            return
        record: dict[str, object] = {"path": path, "headers_at": time.time(), "first_byte_at": None,
                                     "last_byte_at": None, "bytes": 0, "complete": None}
        self.add(request_id, record)
        try:
            for data in body:
                now = time.time()
                if record["first_byte_at"] is None:
                    record["first_byte_at"] = now
                record["last_byte_at"] = now
                record["bytes"] = int(str(record["bytes"])) + len(data)
                yield data
        except BodyCutShort:
            record["complete"] = False
            return
        record["complete"] = True


class Answers(RecordsById):
    """What Bitbucket answered to each request with an X-Request-ID (method, path, status,
    when): so the lab can tell a response the front door lost from one Bitbucket never gave
    (``git.clone`` through a front door that cuts responses Bitbucket answered)."""

    def answered(self, request_id: str | None, method: str, path: str, status: int) -> None:
        if request_id:
            self.add(request_id, {"method": method, "path": path, "status": status, "at": time.time()})
