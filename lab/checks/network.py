"""Name the network cause of a failed request in the user's terms.

requests, PySocks, ssl and git each wrap the same few causes in their own exceptions;
this reads them back: a name the sealed lab does not know, nothing listening, the lab's
gateway gone, TLS refused, no answer in time.
"""

from __future__ import annotations

import errno
import socket
import ssl

import requests

from lab.checks.base import GATEWAY_GONE_HINT, CheckTarget
from lab.client import Vantage

NOT_IN_LAB = "not resolvable inside the lab"


def gateway_answers(vantage: Vantage, timeout: float = 3) -> bool:
    """Whether the lab's SOCKS gateway of ``vantage`` completes a SOCKS5 greeting."""
    if vantage.socks_port is None:
        return True
    try:
        with socket.create_connection(("127.0.0.1", vantage.socks_port), timeout=timeout) as sock:
            sock.sendall(b"\x05\x01\x00")
            return sock.recv(2) == b"\x05\x00"
    except OSError:
        return False


def describe(error: BaseException, target: CheckTarget, host: str | None = None,
             port: int | None = None) -> tuple[str, str]:
    """(observed, hint) for a request to ``host:port`` (default: the public front door)
    that failed with ``error`` before any HTTP answer."""
    host, port = host or target.host, port or target.port
    text = _chain_text(error)
    if "0x02" in text or "not allowed by ruleset" in text:
        return (f"{host} is {NOT_IN_LAB}",
                f"the lab is sealed and resolves only the topology's own names, so nothing reaches the real "
                f"{host}: reproduce with the customer's files (`reproduce`) or pass --public-url so the "
                "front door answers that name")
    if "Error connecting to SOCKS5 proxy" in text or "SOCKS5 proxy server sent invalid data" in text:
        return ("the lab's users' gateway does not answer",
                GATEWAY_GONE_HINT)
    if "0x05" in text or "Connection refused" in text:
        return (f"nothing listens on {host}:{port}",
                f"the front door does not listen on port {port}: check the proxy's listen/Listen/bind lines "
                "and the public URL's port")
    if "0x04" in text or "Host unreachable" in text or "0x01" in text:
        return (f"{host}:{port} is unreachable from the users' network",
                f"no container answers {host} on the users' network: is the front door running?")
    if isinstance(error, (requests.exceptions.SSLError, ssl.SSLError)) or "SSL" in text:
        return (f"TLS handshake with {host}:{port} failed: {_last_line(text)}",
                "TLS fails before HTTP: see tls.chain and tls.hostname")
    if isinstance(error, (requests.Timeout, socket.timeout, TimeoutError)) or "timed out" in text:
        return (f"{host}:{port} gave no answer in time",
                "the front door accepted the connection but did not answer: check its timeouts and upstream")
    return (f"{type(error).__name__}: {_last_line(text)}",
            f"the request to {host}:{port} failed before any HTTP answer")


def is_network_error(error: BaseException) -> bool:
    """Errors of the network or TLS, as opposed to a bug in a check (a missing file or
    program is a bug, not a network finding)."""
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS:
        return True
    return isinstance(error, (requests.RequestException, ssl.SSLError, ConnectionError, TimeoutError,
                              socket.gaierror, socket.timeout)) or type(error).__module__ == "socks"


_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED,
                   errno.ECONNREFUSED, errno.ETIMEDOUT}


def _chain_text(error: BaseException) -> str:
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
        if current is None and error.args and isinstance(error.args[0], BaseException) and id(error.args[0]) not in seen:
            current = error.args[0]
    return " | ".join(parts)


def _last_line(text: str) -> str:
    return text.split(" | ")[-1][:200]
