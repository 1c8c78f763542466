"""A request body Bitbucket leaves unread (a 401 to a push without credentials) is handled as
Tomcat handles it: swallowed and the connection kept up to maxSwallowSize (2 MB), the
connection closed beyond it. A proxy pooling
connections to Bitbucket (Traefik, Caddy) otherwise reuses one the stub is closing, and the
next push through it is cut (measured with Traefik under load)."""

from __future__ import annotations

import socket

from tests.unit.stubutil import running_stub

PUSH = "/bitbucket/scm/LAB/repo.git/git-receive-pack"


def _head(body: bytes, extra: str = "") -> bytes:
    return (f"POST {PUSH} HTTP/1.1\r\nHost: bitbucket\r\nContent-Type: application/x-git-receive-pack-request\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode()


def _responses(sock: socket.socket, count: int) -> list[str]:
    """The heads of ``count`` responses read from ``sock`` (bodies have a Content-Length)."""
    data, heads = b"", []
    while len(heads) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return heads
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        length = int(next((line.split(":", 1)[1] for line in text.split("\r\n") if line.lower().startswith("content-length:")), "0"))
        while len(data) < length:
            data += sock.recv(65536)
        data = data[length:]
        heads.append(text)
    return heads


def test_a_small_unread_body_is_swallowed_and_the_connection_serves_the_next_request(tmp_path):
    with running_stub(tmp_path / "home", "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        with socket.create_connection(("127.0.0.1", stub.ports[0]), timeout=10) as sock:
            body = b"0" * 5000
            sock.sendall(_head(body) + body + b"GET /bitbucket/status HTTP/1.1\r\nHost: bitbucket\r\n\r\n")
            first, second = _responses(sock, 2)
    assert first.startswith("HTTP/1.1 401") and "connection: close" not in first.lower()
    assert second.startswith("HTTP/1.1 200")


def test_more_unread_body_than_tomcat_swallows_closes_the_connection_after_the_response(tmp_path):
    with running_stub(tmp_path / "home", "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        with socket.create_connection(("127.0.0.1", stub.ports[0]), timeout=10) as sock:
            body = b"0" * (3 << 20)  # Tomcat's maxSwallowSize is 2 MB
            sock.sendall(_head(body) + body + b"GET /bitbucket/status HTTP/1.1\r\nHost: bitbucket\r\n\r\n")
            heads = _responses(sock, 2)
    assert len(heads) == 1 and heads[0].startswith("HTTP/1.1 401")
