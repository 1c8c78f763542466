"""Tomcat's connector rules (reference §2): how Bitbucket sees scheme, host and port.

Pure functions over :class:`IncomingRequest`, so every rule is testable without a socket:
``view_request`` gives what ``request.getScheme()/getServerName()/getServerPort()/
isSecure()`` would return, ``absolute_location`` what ``sendRedirect`` writes, and
``precheck`` the answers Tomcat gives before the application runs.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from lab.stub.config import ConnectorSettings

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class IncomingRequest:
    """What arrived on the socket: request line, headers (lower-case names), addresses.

    ``local_name`` is Java's ``getLocalName()``: the reverse-resolved name of
    ``local_addr`` (127.0.0.1 → ``localhost``); None when it did not resolve.
    """

    method: str
    raw_uri: str
    version: str
    headers: Mapping[str, str]
    remote_addr: str
    local_addr: str
    local_port: int
    local_name: str | None = None


@dataclass(frozen=True)
class RequestView:
    """The request as the servlet sees it."""

    scheme: str
    secure: bool
    server_name: str
    server_port: int
    remote_addr: str
    raw_path: str
    query: str

    @property
    def origin(self) -> str:
        """``scheme://name[:port]`` with the port dropped only for http:80 and https:443."""
        host = f"[{self.server_name}]" if ":" in self.server_name else self.server_name
        if DEFAULT_PORTS.get(self.scheme) == self.server_port:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.server_port}"


@dataclass(frozen=True)
class Answer:
    """A response Tomcat gives itself: status and optional Location."""

    status: int
    location: str | None = None
    reason: str = ""


def view_request(connector: ConnectorSettings, request: IncomingRequest,
                 native_forwarding: bool = False) -> RequestView:
    """Scheme/secure from the connector; name and port by proxy settings, Host, defaults."""
    path, _, query = request.raw_uri.partition("?")
    host_header = request.headers.get("host")
    name, port = _name_and_port(connector, host_header, request)
    view = RequestView(connector.scheme, connector.secure, name, port,
                       request.remote_addr, path, query)
    if native_forwarding and _is_internal_proxy(request.remote_addr):
        view = _apply_forwarded(view, request.headers)
    return view


def _name_and_port(connector: ConnectorSettings, host_header: str | None,
                   request: IncomingRequest) -> tuple[str, int]:
    if host_header is None:
        name, port = request.local_name or request.local_addr, request.local_port
    else:
        name, explicit = split_host(host_header)
        port = explicit if explicit is not None else DEFAULT_PORTS[connector.scheme]
    if connector.proxy_name:
        name = connector.proxy_name
    if connector.proxy_port is not None:
        port = connector.proxy_port
    return name, port


def split_host(host_header: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) → (host, port or None)."""
    text = host_header.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    return host, int(port_text) if port_text.isdigit() else None


def _is_internal_proxy(address: str) -> bool:
    """Tomcat RemoteIpValve's default internalProxies: loopback and private ranges."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback


def _apply_forwarded(view: RequestView, headers: Mapping[str, str]) -> RequestView:
    """NATIVE strategy: X-Forwarded-Proto/Host/Port/For override what the connector saw."""
    scheme, secure, name, port, remote = (view.scheme, view.secure, view.server_name,
                                          view.server_port, view.remote_addr)
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if proto in DEFAULT_PORTS:
        scheme, secure, port = proto, proto == "https", DEFAULT_PORTS[proto]
    forwarded_host = headers.get("x-forwarded-host", "").split(",")[0].strip()
    if forwarded_host:
        name, host_port = split_host(forwarded_host)
        port = host_port if host_port is not None else port
    forwarded_port = headers.get("x-forwarded-port", "").split(",")[0].strip()
    if forwarded_port.isdigit():
        port = int(forwarded_port)
    forwarded_for = headers.get("x-forwarded-for", "").split(",")[0].strip()
    remote = forwarded_for or remote
    return RequestView(scheme, secure, name, port, remote, view.raw_path, view.query)


def absolute_location(view: RequestView, target: str) -> str:
    """What Tomcat writes in Location for ``sendRedirect(target)``.

    Absolute URLs pass unchanged; ``/x`` is made absolute on the request's origin (no
    context path added); ``x`` resolves against the request's directory, dot segments
    normalised.
    """
    if urllib.parse.urlsplit(target).scheme:
        return target
    return urllib.parse.urljoin(view.origin + view.raw_path, target)


def precheck(connector: ConnectorSettings, request: IncomingRequest, view: RequestView,
             context_path: str) -> Answer | None:
    """Tomcat's own answers, in Tomcat's order: missing Host, context root, require-ssl."""
    if request.version == "HTTP/1.1" and "host" not in request.headers:
        return Answer(400, reason="HTTP/1.1 request without a Host header")
    if context_path and view.raw_path == context_path:
        query = f"?{view.query}" if view.query else ""
        return Answer(302, absolute_location(view, f"{context_path}/{query}"))
    if connector.require_ssl and not view.secure:
        port = "" if connector.redirect_port == 443 else f":{connector.redirect_port}"
        return Answer(302, f"https://{view.server_name}{port}{request.raw_uri}")
    return None


def implied_base_url(view: RequestView, context_path: str) -> str:
    """The base URL this request implies: what Bitbucket would put in links it builds."""
    return view.origin + context_path
