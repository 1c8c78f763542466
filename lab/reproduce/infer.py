"""Combine what the parsers read into a :class:`CustomerSetup`, and decide the public URL.

**The public URL is where users arrive**, so it comes from the proxy when there is one:

- host: the proxy's first concrete server name (the TLS front door's first), else the
  host of ``setup.baseUrl``, else ``server.proxy-name``, else ``bitbucket``;
- scheme and port: the front door's listener — the first TLS listener that does not only
  redirect, else the first plain one that does not; the port is omitted when 443/80;
- path: the proxy's routing prefix.

With no proxy config (Tomcat serves users directly) the connector decides: https when
``server.ssl.enabled=true``, on ``server.port`` (7990 by default), path
``server.context-path``. The properties are what the lab tests, so they never override a
host the proxy config names. ``--public-url`` overrides everything. ``public_url_reason``
quotes the customer's line behind each part, for the person who doubts the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.proxies import KINDS, resolve
from lab.reproduce.bundle import PARSED_KINDS, proxy_kind, version_hint
from lab.reproduce.certificates import read_certificates
from lab.reproduce.frontdoor import BitbucketClues
from lab.reproduce.model import BundleFile, CustomerSetup, Listener, ProxySetup, Source
from lab.reproduce.properties import pick_properties, read_properties
from lab.reproduce.settings import SETTINGS_KINDS, Setting, bundle_settings

FALLBACK_HOST = "bitbucket"
"""The host when neither the proxy config nor ``bitbucket.properties`` names one."""

def parser_of(kind: str) -> Callable[..., ProxySetup]:
    """The reader of ``kind``'s files, the one its package names (``ProxyKind.reader``)."""
    return resolve(str(KINDS[kind].reader))


def infer(files: Sequence[BundleFile], public_url: str | None = None,
          bundle_name: str = "the bundle", bitbucket_upstream: str | None = None) -> CustomerSetup:
    """Everything the bundle's ``files`` say; :class:`LabError` when they cannot be reproduced.
    ``bitbucket_upstream``: ``HOST:PORT`` of the proxy's upstream that is Bitbucket, when the
    files leave it ambiguous (``--bitbucket-upstream``)."""
    kind = proxy_kind(files, bundle_name)
    properties = pick_properties(files)
    settings = tuple(bundle_settings(files))
    # The environment (and what compose, Helm or server.xml give) wins over bitbucket.properties, as in Spring Boot.
    values = {**(read_properties(properties) if properties else {}), **{s.key: s.value for s in settings}}
    proxy = parser_of(kind)(files, bitbucket_clues(values, bitbucket_upstream)) if kind else None
    if proxy is None and properties is None:
        _refuse_a_proxy_not_sent(settings)
    if public_url:
        url, reason = _explicit_url(public_url), "--public-url"
    elif proxy:
        url, reason = proxy_public_url(proxy, values, properties, files)
    else:
        url, reason = direct_public_url(values, properties)
    used = {file.relpath for file in proxy.files} if proxy else set()
    used |= {setting.source.file for setting in settings}
    used |= {relpath for setting in settings for relpath in setting.also_from}
    assumed = () if properties or settings or not proxy else assumed_settings(proxy, url)
    values = {**values, **{key: value for key, value, _ in assumed}}
    return CustomerSetup(
        settings=settings, assumed=assumed,
        bundle=tuple(files), proxy=proxy, properties=properties, properties_values=values,
        certificates=read_certificates(files, proxy.tls_files if proxy else ()),
        public_url=url, public_url_reason=reason, version_hint=version_hint(files, kind),
        ignored=tuple(file.relpath for file in files if file.relpath not in used and (
            file.kind in ("text", "script", *SETTINGS_KINDS, *PARSED_KINDS)
            or (file.kind == "properties" and file != properties))),
    )


def bitbucket_clues(values: dict[str, str], given: str | None) -> BitbucketClues:
    """What tells Bitbucket's upstream from the proxy's others: ``--bitbucket-upstream``, and the
    port and context path Bitbucket's settings give (only when the bundle sets them)."""
    port = values.get("server.port", "").strip()
    context = values.get("server.context-path", "").strip()
    proxy_port = values.get("server.proxy-port", "").strip()
    scheme = values.get("server.scheme", "").strip().lower()
    return BitbucketClues(given=parse_upstream_option(given) if given else None,
                          port=int(port) if port.isdigit() else None,
                          context_path=("/" + context.strip("/")) if context.strip("/") else None,
                          scheme=scheme if scheme in ("http", "https") else None,
                          proxy_port=int(proxy_port) if proxy_port.isdigit() else None)


def parse_upstream_option(value: str) -> tuple[str, int]:
    """``--bitbucket-upstream HOST:PORT`` → (host, port); a :class:`LabError` in one line otherwise."""
    host, _, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LabError(f"--bitbucket-upstream {value!r}: give HOST:PORT as the proxy config writes it, "
                       "e.g. --bitbucket-upstream localhost:7990")
    return host, int(port)


def _refuse_a_proxy_not_sent(settings: Sequence[Setting]) -> None:
    """Settings alone (compose, Helm values) that put Bitbucket behind a proxy, and no proxy
    config: running Bitbucket by itself would test something the customer does not run."""
    behind = next((setting for setting in settings if setting.key in ("server.proxy-name", "server.proxy-port")), None)
    if behind is not None:
        raise LabError(f"{behind.source}: {behind.written} puts Bitbucket behind a proxy, but the bundle has no proxy "
                       "config: send the proxy's files too (nginx, Apache or HAProxy; for a Kubernetes ingress, the "
                       "controller's generated nginx.conf)")


def assumed_settings(proxy: ProxySetup, public_url: str) -> tuple[tuple[str, str, str], ...]:
    """What Bitbucket must be told for the proxy to work, when the bundle says nothing of
    Bitbucket's settings: its context path is the routed path, and it must know where users
    arrive (proxy name, port, scheme, secure). Verdicts are then about the proxy."""
    parts = urlsplit(public_url)
    https = parts.scheme == "https"
    port = str(parts.port or (443 if https else 80))
    where = f"users arrive at {public_url}"
    assumed = [("server.proxy-name", parts.hostname or "", where), ("server.proxy-port", port, where),
               ("server.scheme", parts.scheme, where), ("server.secure", str(https).lower(), where)]
    if proxy.route_prefix:
        assumed.append(("server.context-path", proxy.route_prefix, f"the proxy routes {proxy.route_prefix}"
                        + (f" ({proxy.route_source})" if proxy.route_source else "")))
    return tuple(assumed)


def proxy_public_url(proxy: ProxySetup, values: dict[str, str], properties: BundleFile | None,
                     files: Sequence[BundleFile]) -> tuple[str, str]:
    """(URL, reason) users reach through the proxy (rules in the module docstring)."""
    quote = _quoter(files)
    host, host_reason = _host(proxy, values, properties, quote)
    door = front_door_listener(proxy.listeners)
    if door is None:
        scheme, port, scheme_reason = "http", 80, "http on port 80: the config opens no HTTP listener"
    else:
        scheme = "https" if door.tls else "http"
        port, scheme_reason = door.port, f"{scheme} from {quote(door.source)}"
    path_reason = f"path from {quote(proxy.route_source)}" if proxy.route_source else "no path: no route found"
    url = _url(scheme, host, port, proxy.route_prefix)
    return url, "; ".join((host_reason, scheme_reason, path_reason))


def direct_public_url(values: dict[str, str], properties: BundleFile | None) -> tuple[str, str]:
    """(URL, reason) of Tomcat's own connector, when users reach Bitbucket directly."""
    where = properties.relpath if properties else "bitbucket.properties"
    host, host_reason = _host_from_properties(values, where)
    tls = values.get("server.ssl.enabled", "").strip().lower() == "true"
    scheme = "https" if tls else "http"
    raw_port = values.get("server.port", "").strip()
    port = int(raw_port) if raw_port.isdigit() else 7990
    port_reason = f"port {port} from server.port in {where}" if raw_port.isdigit() else \
        f"port 7990: Bitbucket's default (server.port {'is ' + repr(raw_port) if raw_port else 'unset'})"
    scheme_reason = f"https from server.ssl.enabled=true in {where}" if tls else "http: server.ssl.enabled is not true"
    context = _context_path(values.get("server.context-path", ""))
    path_reason = f"path from server.context-path in {where}" if context else "no path: server.context-path unset"
    return _url(scheme, host, port, context), "; ".join((host_reason, scheme_reason, port_reason, path_reason))


def front_door_listener(listeners: Sequence[Listener]) -> Listener | None:
    """The listener users are meant to use: TLS that does not only redirect, else plain."""
    serving = [listener for listener in listeners if not listener.redirects_to_https]
    return next((listener for listener in serving if listener.tls), None) or \
        next(iter(serving), None) or next(iter(listeners), None)


def _host(proxy: ProxySetup, values: dict[str, str], properties: BundleFile | None, quote) -> tuple[str, str]:
    if proxy.server_names:
        host = proxy.server_names[0]
        source = proxy.name_sources.get(host)
        return host, f"host from {quote(source)}" if source else "host from the proxy config"
    where = properties.relpath if properties else "bitbucket.properties"
    placeholder = _placeholder_name(proxy)
    prefix = (f"{placeholder} is a placeholder, not a host (pass --public-url for the real one); " if placeholder
              else "the proxy config names no host; ")
    return _host_from_properties(values, where, prefix=prefix)


_PLACEHOLDER = re.compile(r"^\s*(server_name|ServerName|ServerAlias)\s+[^;\n]*?(<[^>\s]+>|\{\{[^}]+\}\}|%\{?\w+\}?)",
                          re.M)
"""A name someone forgot to fill in: ``<yourservername.com>``, ``{{ domain }}``, ``%{HOST}``."""


def _placeholder_name(proxy: ProxySetup) -> str | None:
    """``server_name <yourservename.com> (bitbucket.conf:3)`` when a proxy file names its host so."""
    for file in proxy.files:
        text = file.path.read_text(encoding="utf-8-sig", errors="replace")
        if match := _PLACEHOLDER.search(text):
            return f"{match.group(1)} {match.group(2)} ({file.relpath}:{text.count(chr(10), 0, match.start()) + 1})"
    return None


def _host_from_properties(values: dict[str, str], where: str, prefix: str = "") -> tuple[str, str]:
    base_host = urlsplit(values.get("setup.baseUrl", "").strip()).hostname
    if base_host:
        return base_host, f"{prefix}host from setup.baseUrl in {where}"
    proxy_name = values.get("server.proxy-name", "").strip()
    if proxy_name:
        return proxy_name.lower(), f"{prefix}host from server.proxy-name in {where}"
    return FALLBACK_HOST, f"{prefix}host {FALLBACK_HOST}: no setup.baseUrl or server.proxy-name names one"


def _context_path(value: str) -> str:
    value = value.strip().rstrip("/")
    return "" if not value else value if value.startswith("/") else "/" + value


def _url(scheme: str, host: str, port: int, path: str) -> str:
    default = {"http": 80, "https": 443}[scheme]
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}{'' if port == default else f':{port}'}{path}"


def _explicit_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabError(f"--public-url {url}: expected http(s)://host[:port][/path]")
    return url.strip().rstrip("/")


def _quoter(files: Sequence[BundleFile]):
    """``source`` → "listen 443 ssl at sites-enabled/bitbucket:4": the customer's line,
    so the reason can be checked against the file at a glance."""
    by_relpath = {file.relpath: file for file in files}

    def quote(source: Source) -> str:
        file = by_relpath.get(source.file)
        try:
            line = file.path.read_text(encoding="utf-8-sig").splitlines()[source.line - 1] if file else ""
        except (OSError, IndexError):
            line = ""
        text = " ".join(line.split("#", 1)[0].split()).rstrip(";{ ")
        return f"{text} at {source}" if text else str(source)

    return quote
