"""Name the network cause of a failed request in the user's terms.

A cause is read from the error's type: the lab's own (:mod:`lab.connect_errors`, raised
where a connection fails: the gateway's reply, the gateway gone, a refusal, no answer in
time), PySocks' inside a request that requests and urllib3 wrapped, ``ssl``'s and
requests' TLS and timeout errors. Only an error whose chain holds none of these types is
read by its words (:func:`_cause_in_text`), the fallback for messages a library passed on as
text alone. Either way one cause gives one wording (:func:`_wording`), word for word the
same.
"""

from __future__ import annotations

import enum
import errno
import socket
import ssl

import requests
import socks

from lab.checks.base import GATEWAY_GONE_HINT, CheckTarget
from lab.client import Vantage
from lab.connect_errors import (ConnectFailed, ConnectionRefusedByTarget, ConnectTimeout, GatewayUnavailable,
                                HostUnreachable, NameNotInLab, from_pysocks)

NOT_IN_LAB = "not resolvable inside the lab"


class _Cause(enum.Enum):
    """The causes the lab names, in the order they win when a chain holds several (the
    gateway gone wins over the refusal of the connection to it)."""

    NOT_IN_LAB = 1
    GATEWAY_GONE = 2
    REFUSED = 3
    UNREACHABLE = 4
    TLS = 5
    TIMEOUT = 6


_TYPED: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], _Cause], ...] = (
    (NameNotInLab, _Cause.NOT_IN_LAB),
    (GatewayUnavailable, _Cause.GATEWAY_GONE),
    ((ConnectionRefusedByTarget, ConnectionRefusedError), _Cause.REFUSED),
    (HostUnreachable, _Cause.UNREACHABLE),
    ((requests.exceptions.SSLError, ssl.SSLError), _Cause.TLS),
    ((ConnectTimeout, requests.Timeout, TimeoutError), _Cause.TIMEOUT),
)


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
    chain = _chain(error)
    text = " | ".join(f"{type(link).__name__}: {link}" for link in chain)
    cause = _cause_by_type(chain) or _cause_in_text(text)
    if cause is None:
        return (f"{type(_origin(error)).__name__}: {_last_line(text)}",
                f"the request to {host}:{port} failed before any HTTP answer")
    return _wording(cause, host, port, text)


def _wording(cause: _Cause, host: str, port: int, text: str) -> tuple[str, str]:
    """(observed, hint) of a cause: the one wording of each."""
    if cause is _Cause.NOT_IN_LAB:
        return (f"{host} is {NOT_IN_LAB}",
                f"the lab is sealed and resolves only the topology's own names, so nothing reaches the real "
                f"{host}: reproduce with the customer's files (`reproduce`) or pass --public-url so the "
                "front door answers that name")
    if cause is _Cause.GATEWAY_GONE:
        return ("the lab's users' gateway does not answer",
                GATEWAY_GONE_HINT)
    if cause is _Cause.REFUSED:
        return (f"nothing listens on {host}:{port}",
                f"the front door does not listen on port {port}: check the proxy's listen/Listen/bind lines "
                "and the public URL's port")
    if cause is _Cause.UNREACHABLE:
        return (f"{host}:{port} is unreachable from the users' network",
                f"no container answers {host} on the users' network: is the front door running?")
    if cause is _Cause.TLS:
        return (f"TLS handshake with {host}:{port} failed: {_last_line(text)}",
                "TLS fails before HTTP: see tls.chain and tls.hostname")
    return (f"{host}:{port} gave no answer in time",
            "the front door accepted the connection but did not answer: check its timeouts and upstream")


def _cause_by_type(chain: list[BaseException]) -> _Cause | None:
    """The cause the types in ``chain`` name (PySocks' read as the lab's), the first in
    :class:`_Cause` order when several do; None when no type says."""
    typed = [from_pysocks(link) or link if isinstance(link, socks.ProxyError) else link for link in chain]
    found = [cause for types, cause in _TYPED if any(isinstance(link, types) for link in typed)]
    return min(found, key=lambda cause: cause.value) if found else None


def _cause_in_text(text: str) -> _Cause | None:
    """The fallback for an error that carries its cause only in words (a library that wrapped
    the typed error into its message): PySocks' reply codes as it prints them, the OS's
    wording, "SSL", "timed out"."""
    if "0x02" in text or "not allowed by ruleset" in text:
        return _Cause.NOT_IN_LAB
    if "Error connecting to SOCKS5 proxy" in text or "SOCKS5 proxy server sent invalid data" in text:
        return _Cause.GATEWAY_GONE
    if "0x05" in text or "Connection refused" in text:
        return _Cause.REFUSED
    if "0x04" in text or "Host unreachable" in text or "0x01" in text:
        return _Cause.UNREACHABLE
    if "SSL" in text:
        return _Cause.TLS
    if "timed out" in text:
        return _Cause.TIMEOUT
    return None


def _origin(error: BaseException) -> BaseException:
    """The library error a typed one was made from, so an unnamed cause reads as it always did."""
    return error.__cause__ if isinstance(error, ConnectFailed) and error.__cause__ is not None else error


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


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps: urllib3's ``reason``, ``__cause__`` or ``__context__``,
    and an exception passed as the first argument (requests does that)."""
    links, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        links.append(current)
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
        if current is None and error.args and isinstance(error.args[0], BaseException) and id(error.args[0]) not in seen:
            current = error.args[0]
    return links


def _last_line(text: str) -> str:
    return text.split(" | ")[-1][:200]
