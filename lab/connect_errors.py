"""Why a connection from a vantage point failed, as types: the lab's one hierarchy of them.

The host reaches a topology through the lab's SOCKS5 gateway (PySocks) or directly. Where a
connection fails, the cause is known — the gateway's SOCKS5 reply code, the gateway not
answering at all, the OS's refusal, no answer in time — and :func:`lab.socks_connect.through_gateway`
and :meth:`lab.client.Vantage.connect` raise it as one of these types (from the library's
error, kept as ``__cause__``). :mod:`lab.checks.network` names causes by these types; for a
request made by requests (urllib3 wraps PySocks' error in its own), :func:`from_pysocks`
reads the same type out of the wrapped chain.

Each keeps the message of the error it was made from: ``str(error)`` is what it always was,
so the line ssh's ProxyCommand prints and every verdict quoting it stay word for word.

There is no TLS type here: the lab never does a handshake of its own that a check does not
catch itself; a handshake that fails inside requests or ``ssl`` is ``ssl.SSLError`` (or
requests' ``SSLError``), already a type.
"""

from __future__ import annotations

import socket

import socks  # PySocks: the lab's SOCKS client (requests' socks5h:// uses it too)


class ConnectFailed(ConnectionError):
    """A TCP connection from a vantage point failed for the cause its class names.
    ``reply_code``: the gateway's SOCKS5 reply, when the gateway gave one."""

    def __init__(self, message: str, reply_code: int | None = None) -> None:
        super().__init__(message)
        self.reply_code = reply_code


class GatewayUnavailable(ConnectFailed):
    """The lab's own SOCKS5 gateway did not accept the connection or spoke no SOCKS5: the
    lab broke (its gateway container stopped?), not the topology."""


class GatewayRefused(ConnectFailed):
    """The gateway answered the CONNECT with a SOCKS5 failure reply (``reply_code``); the
    subclasses are the replies the lab's gateway gives (lab/images/gateway/gateway.py)."""


class NameNotInLab(GatewayRefused):
    """Reply 2, "connection not allowed by ruleset": the sealed gateway connects only to the
    topology's own names, and refuses every other name before any lookup."""


class HostUnreachable(GatewayRefused):
    """Reply 4 (the name does not resolve on the users' network, or no route to it), or
    reply 1 (a general failure, read as unreachable too)."""


class ConnectionRefusedByTarget(ConnectFailed, ConnectionRefusedError):
    """Nothing listens on the host and port: the gateway's reply 5, or the OS's refusal of
    a direct connection (``reply_code`` None)."""


class ConnectTimeout(ConnectFailed, TimeoutError):
    """No answer in time, from the gateway or, directly, from the host."""


REPLIES: dict[int, type[GatewayRefused] | type[ConnectionRefusedByTarget]] = {
    1: HostUnreachable, 2: NameNotInLab, 4: HostUnreachable, 5: ConnectionRefusedByTarget}
"""The SOCKS5 replies whose cause the lab names; any other is a plain :class:`GatewayRefused`."""


def from_pysocks(error: socks.ProxyError) -> ConnectFailed | None:
    """The typed error that PySocks' ``error`` means, or None when its cause is not one the
    lab names (the caller keeps PySocks' error then).

    PySocks has one class for several causes: its ``SOCKS5Error`` carries the reply code only
    in its message (``"0x05: Connection refused"``, PySocks' own format), which its
    ``connect`` then wraps in a ``GeneralProxyError`` ("Socket error: 0x05: …"), the class it
    also uses for "the server sent invalid data", said only in words. Those readings are made
    here, once, at the library's boundary."""
    message = str(error)
    wrapped = error.socket_err if isinstance(error, socks.GeneralProxyError) else None
    if isinstance(wrapped, socks.ProxyError):  # PySocks wraps its own reply error: "Socket error: 0x05: …"
        typed = from_pysocks(wrapped)
        return type(typed)(message, typed.reply_code) if typed is not None else None
    if isinstance(error, socks.ProxyConnectionError):
        return GatewayUnavailable(message)
    if isinstance(error, socks.SOCKS5Error):
        code = _reply_code(message)
        return REPLIES.get(code, GatewayRefused)(message, code) if code is not None else None
    if isinstance(error, socks.GeneralProxyError):
        if isinstance(error.socket_err, socket.timeout):
            return ConnectTimeout(message)
        if message.startswith("SOCKS5 proxy server sent invalid data"):
            return GatewayUnavailable(message)
    return None


def from_os(error: OSError) -> ConnectFailed | None:
    """The typed error of a direct connection's ``error`` (refused, timed out), else None."""
    if isinstance(error, ConnectionRefusedError):
        return ConnectionRefusedByTarget(str(error))
    if isinstance(error, TimeoutError):
        return ConnectTimeout(str(error))
    return None


def _reply_code(message: str) -> int | None:
    head = message.split(":", 1)[0]
    try:
        return int(head, 16) if head.startswith("0x") else None
    except ValueError:
        return None
