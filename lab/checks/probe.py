"""Raw HTTP probes through the users' gateway, for what requests and git cannot show."""

from __future__ import annotations

import socket
import ssl

from lab.checks.base import CheckTarget
from lab import sent
from lab.client import REQUEST_ID_HEADER, request_id


def open_socket(target: CheckTarget, context: ssl.SSLContext | None = None,
                timeout: float = 10) -> socket.socket:
    """A connection to the public host and port through the users' gateway; TLS when the
    public URL is https — by default verified against the lab CA with the host name checked."""
    raw = target.users.connect(target.host, target.port, timeout)
    if target.parts.scheme != "https":
        return raw
    context = context or ssl.create_default_context(cafile=str(target.users.ca_file))
    try:
        return context.wrap_socket(raw, server_hostname=target.host)
    except BaseException:
        raw.close()
        raise


def early_status_for_body(target: CheckTarget, path: str, size: int, wait: float = 5) -> int | None:
    """Announce a ``size``-byte POST body without sending it: a proxy enforcing a body
    limit answers at once (413); one without a limit waits for the body (None) or lets Bitbucket answer (401).

    git streams big pushes chunked, so a proxy limit often surfaces on git's side only as
    "curl 55 Send failure: Broken pipe"; this asks the proxy the question directly.
    """
    tag = request_id.get()
    sent.record(tag, "POST", f"{target.context_path}{path}")
    request = (f"POST {target.context_path}{path} HTTP/1.1\r\nHost: {target.parts.netloc}\r\n"
               + (f"{REQUEST_ID_HEADER}: {tag}\r\n" if tag else "") +
               f"Content-Type: application/x-git-receive-pack-request\r\nContent-Length: {size}\r\n"
               "Connection: close\r\n\r\n").encode()
    try:
        with open_socket(target) as sock:
            sock.sendall(request)
            sock.settimeout(wait)
            status_line = sock.recv(1024).split(b"\r\n", 1)[0].split()
    except OSError:
        return None
    return int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else None
