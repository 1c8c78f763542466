"""Tomcat's connector rules (reference §2): how Bitbucket sees scheme, host and port.

Pure functions over :class:`IncomingRequest`, so every rule is testable without a socket:
``view_request`` gives what ``request.getScheme()/getServerName()/getServerPort()/
isSecure()`` would return, ``absolute_location`` what ``sendRedirect`` writes, and
``precheck`` the answers Tomcat gives before the application runs. Where each rule comes
from, and how sure it is: ``lab/stub/SOURCES.md``.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from lab.stub.config import ConnectorSettings, ForwardedHeaders

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
    """A response Tomcat gives itself: status, optional Location, and for errors that Tomcat
    renders itself its HTML error report (``page``) and whether it closes the connection."""

    status: int
    location: str | None = None
    reason: str = ""
    page: bytes = b""
    close: bool = False


HEADER_TOO_LARGE = "Request header is too large"
"""Tomcat's message (Http11InputBuffer, ``iib.requestheadertoolarge.error``) for a request
whose request line and headers exceed ``maxHttpHeaderSize``."""
_CLIENT_ERROR = ("The server cannot or will not process the request due to something that is perceived to be a "
                 "client error (e.g., malformed request syntax, invalid request message framing, or deceptive "
                 "request routing).")
_TOMCAT_CSS = ("body {font-family:Tahoma,Arial,sans-serif;} h1, h2, h3, b {color:white;background-color:#525D76;} "
               "h1 {font-size:22px;} h2 {font-size:16px;} h3 {font-size:14px;} p {font-size:12px;} "
               "a {color:black;} .line {height:1px;background-color:#525D76;border:none;}")


def view_request(connector: ConnectorSettings, request: IncomingRequest,
                 forwarded: ForwardedHeaders | None = None) -> RequestView:
    """Scheme/secure from the connector; name and port by proxy settings, Host, defaults;
    then, when Spring Boot switched Tomcat's RemoteIpValve on (``forwarded``), the
    ``X-Forwarded-*`` headers of a request from an internal proxy."""
    path, _, query = request.raw_uri.partition("?")
    host_header = request.headers.get("host")
    name, port = _name_and_port(connector, host_header, request)
    view = RequestView(connector.scheme, connector.secure, name, port,
                       request.remote_addr, path, query)
    if forwarded is not None and _is_internal_proxy(request.remote_addr):
        view = _apply_forwarded(view, request.headers, forwarded)
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


_INTERNAL_PROXIES = tuple(ipaddress.ip_network(network) for network in (
    "10.0.0.0/8", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12",
    "::1/128", "fe80::/10", "fc00::/7"))
"""Spring Boot's default ``server.tomcat.remoteip.internal-proxies`` (Tomcat's own default
regex, as networks). Not Python's ``is_private``: that counts the documentation ranges
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) too, which the valve treats as clients."""


def _is_internal_proxy(address: str) -> bool:
    """Whether RemoteIpValve trusts this address as one of its own proxies."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _INTERNAL_PROXIES)


def _apply_forwarded(view: RequestView, headers: Mapping[str, str], forwarded: ForwardedHeaders) -> RequestView:
    """Tomcat's RemoteIpValve: the client address, then scheme/secure/port, then the host name.

    The port header counts only beside a protocol header (the valve sets the port while it
    sets the scheme); the host header's own port is dropped, as the valve drops it.
    """
    scheme, secure, port = view.scheme, view.secure, view.server_port
    proto = headers.get(forwarded.protocol_header.lower())
    if proto is not None:
        secure = _all_https(proto)
        scheme = "https" if secure else "http"
        port = _forwarded_port(headers.get(forwarded.port_header.lower()), DEFAULT_PORTS[scheme])
    name = _forwarded_host(headers.get(forwarded.host_header.lower()), view.server_name)
    remote = _forwarded_client(headers.get(forwarded.remote_ip_header.lower()), view.remote_addr)
    return RequestView(scheme, secure, name, port, remote, view.raw_path, view.query)


def _all_https(proto_header: str) -> bool:
    """Secure only when every comma-separated value is ``https`` (RemoteIpValve since 9.0.14)."""
    values = [value.strip() for value in proto_header.split(",")]
    return bool(values) and all(value.lower() == "https" for value in values)


def _forwarded_port(port_header: str | None, default: int) -> int:
    text = (port_header or "").strip()
    return int(text) if text.isdigit() else default


def _forwarded_host(host_header: str | None, current: str) -> str:
    """The host header without its port; an unparsable value (a list) is ignored."""
    text = (host_header or "").strip()
    if not text or "," in text or " " in text:
        return current
    return split_host(text)[0] or current


def _forwarded_client(for_header: str | None, current: str) -> str:
    """Right to left, the first address that is not an internal proxy; all internal: the leftmost."""
    addresses = [part.strip() for part in (for_header or "").split(",") if part.strip()]
    for address in reversed(addresses):
        if not _is_internal_proxy(address):
            return address
    return addresses[0] if addresses else current


def absolute_location(view: RequestView, target: str) -> str:
    """What Tomcat writes in Location for ``sendRedirect(target)``.

    Absolute URLs pass unchanged; ``/x`` is made absolute on the request's origin (no
    context path added); ``x`` resolves against the request's directory, dot segments
    normalised.
    """
    if urllib.parse.urlsplit(target).scheme:
        return target
    return urllib.parse.urljoin(view.origin + view.raw_path, target)


def header_too_large(header_bytes: int, limit: int) -> Answer | None:
    """Tomcat's ``maxHttpHeaderSize``: a request whose request line and header lines (CRLFs
    and the closing empty line included) exceed ``limit`` bytes gets 400 and Tomcat's error
    report before anything else is looked at; Tomcat then closes the connection."""
    if header_bytes <= limit:
        return None
    return Answer(400, reason=HEADER_TOO_LARGE, page=error_report_page(400, "Bad Request", HEADER_TOO_LARGE),
                  close=True)


def error_report_page(status: int, phrase: str, message: str) -> bytes:
    """Tomcat's ErrorReportValve page for an exception Tomcat raised itself (showReport on,
    showServerInfo off, the stack trace cut to its first line)."""
    title = f"HTTP Status {status} \u2013 {phrase}"
    page = (f'<!doctype html><html lang="en"><head><title>{title}</title><style type="text/css">{_TOMCAT_CSS}'
            f'</style></head><body><h1>{title}</h1><hr class="line" /><p><b>Type</b> Exception Report</p>'
            f"<p><b>Message</b> {message}</p><p><b>Description</b> {_CLIENT_ERROR}</p><p><b>Exception</b></p>"
            f"<pre>java.lang.IllegalArgumentException: {message}\n</pre><p><b>Note</b> The full stack trace of "
            f'the root cause is available in the server logs.</p><hr class="line" /></body></html>')
    return page.encode("utf-8")


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
