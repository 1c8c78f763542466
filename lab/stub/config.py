"""The stub's settings: Bitbucket's ``server.*`` keys plus a few ``lab.*`` knobs.

A bad value stops the stub at start with one line naming the key, the way Bitbucket
refuses to start; unknown keys are ignored, as Bitbucket ignores them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab.stub.properties import apply_environment, read_properties_file

DEFAULT_HOME = "/var/atlassian/application-data/bitbucket"
_CONNECTOR_KEYS = (
    "port", "address", "scheme", "secure", "proxy-name", "proxy-port", "redirect-port",
    "require-ssl", "ssl.enabled", "ssl.key-store", "ssl.key-store-password",
    "ssl.key-password", "ssl.key-alias", "ssl.key-store-type",
)
HEADER_SIZE_KEYS = ("server.max-http-request-header-size", "server.max-http-header-size")
"""Spring Boot's request-header limit: the first name from 3.0 on, the second up to 3.1 (3.2
dropped it). When both are set the newer name wins."""
DEFAULT_MAX_HTTP_HEADER_SIZE = 8192
"""Tomcat's ``maxHttpHeaderSize`` default, which Spring Boot keeps (8 KB)."""
_REMOTE_IP_KEYS = tuple(f"server.tomcat.{group}{name}-header" for group in ("remoteip.", "")
                        for name in ("protocol", "remote-ip", "host", "port"))
_GLOBAL_KEYS = (
    "server.context-path", "server.forward-headers-strategy", "server.use-forward-headers", "setup.baseUrl",
    "lab.users", "lab.repos", "lab.slow-repos", *HEADER_SIZE_KEYS, *_REMOTE_IP_KEYS,
    "plugin.ssh.port", "plugin.ssh.baseurl",
)
KNOWN_KEYS: tuple[str, ...] = (
    _GLOBAL_KEYS
    + tuple(f"server.{key}" for key in _CONNECTOR_KEYS)
    + tuple(f"server.additional-connector.{n}.{key}" for n in range(1, 10)
            for key in _CONNECTOR_KEYS)
)


class ConfigError(Exception):
    """A setting Bitbucket would refuse to start with; the message names the key."""


@dataclass(frozen=True)
class TlsSettings:
    """``server.ssl.*`` of one connector. Only PKCS12 keystores are read."""

    key_store: Path
    key_store_password: str
    key_alias: str
    key_store_type: str


@dataclass(frozen=True)
class ConnectorSettings:
    """One Tomcat connector, as the ``server.*`` or ``additional-connector.N.*`` keys say."""

    prefix: str
    port: int
    address: str
    scheme: str
    secure: bool
    proxy_name: str | None
    proxy_port: int | None
    redirect_port: int
    require_ssl: bool
    tls: TlsSettings | None


@dataclass(frozen=True)
class ForwardedHeaders:
    """Tomcat's RemoteIpValve as Spring Boot configures it: the request headers it reads.

    ``enabled_by`` names the key that switched the valve on (``server.forward-headers-strategy``,
    ``server.use-forward-headers`` or one of the ``server.tomcat.[remoteip.]*-header`` keys).
    """

    enabled_by: str
    protocol_header: str = "X-Forwarded-Proto"
    remote_ip_header: str = "X-Forwarded-For"
    host_header: str = "X-Forwarded-Host"
    port_header: str = "X-Forwarded-Port"


@dataclass(frozen=True)
class StubSettings:
    """Everything the stub reads at start."""

    connectors: tuple[ConnectorSettings, ...]
    context_path: str = ""
    forwarded: ForwardedHeaders | None = None
    """The RemoteIpValve's headers when a key switched it on; None: ``X-Forwarded-*`` change nothing."""
    base_url: str | None = None
    users: Mapping[str, str] = field(default_factory=lambda: {"admin": "admin"})
    repos: tuple[str, ...] = ("LAB/repo",)
    slow_repos: Mapping[str, float] = field(default_factory=dict)
    max_header_bytes: int = DEFAULT_MAX_HTTP_HEADER_SIZE
    """The request-header limit in bytes (request line + header lines + the empty line)."""
    ssh_port: int = 7999
    """``plugin.ssh.port``: where Bitbucket's own SSH server listens."""
    ssh_base_url: str | None = None
    """``plugin.ssh.baseurl``: the base of SSH clone links when SSH is reached through a
    load balancer (``ssh://git@host:port``); unset, links use the base URL's host and
    ``plugin.ssh.port``."""


def load_settings(home: Path, environ: Mapping[str, str] | None = None) -> StubSettings:
    """Read ``home/shared/bitbucket.properties`` (if present) plus environment overrides."""
    path = home / "shared" / "bitbucket.properties"
    properties = read_properties_file(path) if path.is_file() else {}
    env = os.environ if environ is None else environ
    return settings_from_properties(apply_environment(properties, env, KNOWN_KEYS), home)


def settings_from_properties(props: Mapping[str, str], home: Path) -> StubSettings:
    """Validate properties into settings; raise ConfigError naming the first bad key."""
    connectors = [_connector(props, "server", home, default_port=7990)]
    numbers = sorted({int(m.group(1)) for key in props
                      if (m := re.match(r"server\.additional-connector\.(\d+)\.", key))})
    for number in numbers:
        connectors.append(_connector(props, f"server.additional-connector.{number}", home))
    slow = {repo: _number(props, "lab.slow-repos", seconds)
            for repo, seconds in _pairs(props.get("lab.slow-repos", ""), "lab.slow-repos")}
    return StubSettings(
        connectors=tuple(connectors),
        context_path=_context_path(props.get("server.context-path", "")),
        forwarded=_forwarded_headers(props),
        base_url=props.get("setup.baseUrl") or None,
        users=dict(_pairs(props.get("lab.users", "admin:admin"), "lab.users")),
        repos=tuple(dict.fromkeys(_repo_names(props.get("lab.repos", "LAB/repo")) + list(slow))),
        slow_repos=slow,
        max_header_bytes=_max_header_bytes(props),
        ssh_port=_port(props, "plugin.ssh.port", props.get("plugin.ssh.port") or "7999"),
        ssh_base_url=_ssh_base_url(props.get("plugin.ssh.baseurl", "")),
    )


def _connector(props: Mapping[str, str], prefix: str, home: Path,
               default_port: int | None = None) -> ConnectorSettings:
    def get(key: str) -> str | None:
        value = props.get(f"{prefix}.{key}")
        return value.strip() if value is not None else None

    port_text = get("port") or (str(default_port) if default_port is not None else None)
    if port_text is None:
        raise ConfigError(f"{prefix}.port is missing: every additional connector needs a port")
    tls = _tls(props, prefix, home) if _bool(props, f"{prefix}.ssl.enabled", False) else None
    scheme = (get("scheme") or ("https" if tls else "http")).lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{prefix}.scheme={scheme} is not http or https")
    return ConnectorSettings(
        prefix=prefix,
        port=_port(props, f"{prefix}.port", port_text),
        address=get("address") or "0.0.0.0",
        scheme=scheme,
        secure=_bool(props, f"{prefix}.secure", tls is not None),
        proxy_name=get("proxy-name") or None,
        proxy_port=_port(props, f"{prefix}.proxy-port", get("proxy-port")) if get("proxy-port") else None,
        redirect_port=_port(props, f"{prefix}.redirect-port", get("redirect-port") or "443"),
        require_ssl=_bool(props, f"{prefix}.require-ssl", False),
        tls=tls,
    )


def _tls(props: Mapping[str, str], prefix: str, home: Path) -> TlsSettings:
    key = f"{prefix}.ssl.key-store"
    store = Path(props.get(key) or home / "shared" / "config" / "ssl-keystore")
    if not store.is_file():
        raise ConfigError(f"{key}={store}: no such keystore file")
    store_type = (props.get(f"{prefix}.ssl.key-store-type") or "PKCS12").strip().upper()
    if store_type != "PKCS12":
        raise ConfigError(f"{prefix}.ssl.key-store-type={store_type}: the stub reads PKCS12 only")
    return TlsSettings(
        key_store=store,
        key_store_password=props.get(f"{prefix}.ssl.key-store-password", "changeit"),
        key_alias=props.get(f"{prefix}.ssl.key-alias", "tomcat").strip(),
        key_store_type=store_type,
    )


def _ssh_base_url(text: str) -> str | None:
    url = text.strip().rstrip("/")
    if url and not re.fullmatch(r"ssh://([^@/]+@)?[^/:@]+(:\d{1,5})?(/.*)?", url):
        raise ConfigError(f"plugin.ssh.baseurl={url} is not ssh://[user@]host[:port]")
    return url or None


def _forwarded_headers(props: Mapping[str, str]) -> ForwardedHeaders | None:
    """Spring Boot switches RemoteIpValve on for NATIVE (or FRAMEWORK, treated alike here),
    for ``server.use-forward-headers=true`` (Spring Boot 2.x; deprecated in 2.2), and whenever
    a protocol or remote-ip header name is set (``server.tomcat.remoteip.*`` from 2.3, the
    older ``server.tomcat.*`` before). Each ``*-header`` key names the header the valve reads."""
    names = {name: _remote_ip_header(props, name) for name in ("protocol", "remote-ip", "host", "port")}
    switches = [*_remote_ip_key_pair("protocol"), *_remote_ip_key_pair("remote-ip")]
    enabled_by = _forwarding_key(props) or next((key for key in switches if props.get(key, "").strip()), None)
    if enabled_by is None:
        return None
    defaults = ForwardedHeaders(enabled_by)
    return ForwardedHeaders(enabled_by, names["protocol"] or defaults.protocol_header,
                            names["remote-ip"] or defaults.remote_ip_header,
                            names["host"] or defaults.host_header, names["port"] or defaults.port_header)


def _forwarding_key(props: Mapping[str, str]) -> str | None:
    """The strategy key when it says NATIVE/FRAMEWORK; an explicit NONE wins over the older
    ``server.use-forward-headers``."""
    strategy = props.get("server.forward-headers-strategy", "").strip().upper()
    if strategy and strategy not in ("NONE", "NATIVE", "FRAMEWORK"):
        raise ConfigError(f"server.forward-headers-strategy={strategy} is not NONE, NATIVE or FRAMEWORK")
    if strategy:
        return None if strategy == "NONE" else "server.forward-headers-strategy"
    use = _bool(props, "server.use-forward-headers", False)
    return "server.use-forward-headers" if use else None


def _remote_ip_key_pair(name: str) -> tuple[str, str]:
    return f"server.tomcat.remoteip.{name}-header", f"server.tomcat.{name}-header"


def _remote_ip_header(props: Mapping[str, str], name: str) -> str | None:
    """The header name a ``*-header`` key sets; the ``remoteip.`` spelling wins over the older one."""
    return next((value for key in _remote_ip_key_pair(name) if (value := props.get(key, "").strip())), None)


def _max_header_bytes(props: Mapping[str, str]) -> int:
    """The first of :data:`HEADER_SIZE_KEYS` that is set; zero or negative means Tomcat's default,
    as Spring Boot passes only positive sizes on."""
    sizes = [size for key in HEADER_SIZE_KEYS if (size := _size(props, key)) is not None]
    return sizes[0] if sizes and sizes[0] > 0 else DEFAULT_MAX_HTTP_HEADER_SIZE


def _size(props: Mapping[str, str], key: str) -> int | None:
    """Spring's DataSize: ``16384`` (bytes), ``8KB``, ``64kb``, ``1MB``; no blank before the unit."""
    text = (props.get(key) or "").strip()
    if not text:
        return None
    match = re.fullmatch(r"([+-]?\d+)(B|KB|MB|GB)?", text, flags=re.IGNORECASE)
    if not match:
        raise ConfigError(f"{key}={text} is not a size (8192, 8KB, 1MB)")
    unit = (match.group(2) or "B").upper()
    return int(match.group(1)) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[unit]


def _port(props: Mapping[str, str], key: str, text: str | None) -> int:
    text = (text or "").strip()
    if not text.isdigit() or int(text) > 65535:
        raise ConfigError(f"{key}={text} is not a port number (0-65535)")
    return int(text)


def _bool(props: Mapping[str, str], key: str, default: bool) -> bool:
    text = props.get(key)
    if text is None or not text.strip():
        return default
    if text.strip().lower() not in ("true", "false"):
        raise ConfigError(f"{key}={text.strip()} is not true or false")
    return text.strip().lower() == "true"


def _number(props: Mapping[str, str], key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a number of seconds") from None


def _context_path(text: str) -> str:
    path = text.strip().rstrip("/")
    if path and not path.startswith("/"):
        raise ConfigError(f"server.context-path={text.strip()} must start with '/'")
    return path


def _pairs(text: str, key: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition(":")
        if not sep or not name:
            raise ConfigError(f"{key}: {item!r} is not name:value")
        pairs.append((name, value))
    return pairs


def _repo_names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_~-]+/[A-Za-z0-9._-]+", name):
            raise ConfigError(f"lab.repos: {name!r} is not PROJECT/repo")
    return [f"{name.split('/')[0].upper()}/{name.split('/')[1]}" for name in names]
