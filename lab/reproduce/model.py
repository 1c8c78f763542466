"""What the lab believes about a customer's setup, read from the files they sent.

Readers (each proxy kind's ``ProxyKind.reader``, ``lab.reproduce.properties``) turn a bundle
into these plain records; ``lab.reproduce.infer`` combines them into a
:class:`CustomerSetup`; the runtime maps that onto containers. Nothing here rewrites a
customer file: every value keeps the file and line it came from (``source``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.proxies import READ_KINDS

if TYPE_CHECKING:
    from lab.reproduce.settings import Setting
    from lab.reproduce.variables import Rendered

FILE_KINDS = (*READ_KINDS, "properties", "compose", "helm", "env", "server-xml", "certificate", "version", "script",
              "text")
"""How a bundle file is recognised, by content: a proxy config of each kind, a
``bitbucket.properties``, Bitbucket's settings elsewhere (a ``docker-compose.yml``, Helm
values, an env file, a pre-5.0 ``server.xml``: :mod:`lab.reproduce.settings`), PEM
certificates, saved ``nginx -v``/``httpd -v``/``haproxy -v`` output, a script, or free text
(notes: ignored)."""

TLS_ROLES = ("fullchain", "leaf", "chain", "key", "leaf+key", "fullchain+key", "ca", "dhparam")
"""What a TLS path must hold, by the directive that names it:
nginx ``ssl_certificate`` → fullchain; ``ssl_certificate_key`` → key;
``ssl_trusted_certificate``/``proxy_ssl_trusted_certificate`` → ca; ``ssl_dhparam`` → dhparam;
Apache ``SSLCertificateFile`` → fullchain when the vhost has no ``SSLCertificateChainFile``,
else leaf; ``SSLCertificateChainFile`` → chain; ``SSLCertificateKeyFile`` → key;
``SSLCACertificateFile``/``SSLProxyCACertificateFile`` → ca;
HAProxy ``crt`` → fullchain+key; ``ca-file`` → ca."""

INCLUDE_DISTRIBUTION = "distribution"
"""``ProxySetup.includes`` value: the include names a file the distribution's package ships
(``/etc/nginx/mime.types``, ``/etc/apache2/mods-enabled/*.load``) and the bundle lacks."""

INCLUDE_NOTHING = "nothing"
"""``ProxySetup.includes`` value: a glob (or Apache ``IncludeOptional``) matching no file,
which the proxy accepts."""


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle as the customer sent it."""

    path: Path      # where it is on this machine (a rendered working copy for a template)
    relpath: str    # its path inside the bundle (or its name for a loose file)
    kind: str       # one of FILE_KINDS
    original: Path | None = None  # the customer's own file, when ``path`` is a rendered working copy

    @property
    def mirrored_path(self) -> str | None:
        """The absolute path the bundle mirrors (``etc/nginx/nginx.conf`` → ``/etc/nginx/nginx.conf``),
        when the bundle keeps one: its relpath starts with etc/, var/, opt/, usr/ or srv/."""
        first = self.relpath.split("/", 1)[0]
        return "/" + self.relpath if first in ("etc", "var", "opt", "usr", "srv", "home") and "/" in self.relpath else None


@dataclass(frozen=True)
class Source:
    """Where a value came from: bundle file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Listener:
    """A port the proxy opens for users."""

    port: int
    tls: bool
    redirects_to_https: bool    # every request on it is redirected to https
    http2: bool
    source: Source


@dataclass(frozen=True)
class Upstream:
    """Where the proxy sends Bitbucket's traffic, exactly as written."""

    scheme: str     # http or https (https: the proxy re-encrypts)
    host: str       # a name, an IP literal, or localhost
    port: int
    source: Source

    @property
    def is_local(self) -> bool:
        """Bitbucket on the proxy's own machine (``localhost``, ``127.x``, ``::1``)."""
        return self.host in ("localhost", "::1", "[::1]") or self.host.startswith("127.")

    @property
    def is_ip(self) -> bool:
        import ipaddress
        try:
            ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Neighbour:
    """An application the proxy serves beside Bitbucket (Jira, Confluence, …): the lab runs a
    small responder for it, so the proxy starts and its routes can be told from Bitbucket's."""

    app: str                # "Jira", "Confluence", … or the upstream's host
    upstream: Upstream
    route_prefix: str       # the path the proxy routes to it ("" for a whole host)


@dataclass(frozen=True)
class TlsReference:
    """A TLS file a directive names: the customer's path and what it must hold."""

    directive: str
    path: str       # absolute, as the proxy will open it (Apache: resolved against ServerRoot)
    role: str       # one of TLS_ROLES
    source: Source


@dataclass(frozen=True)
class ProxySetup:
    """What one proxy config (all its files, includes resolved) says."""

    kind: str                               # nginx | apache | haproxy
    files: tuple[BundleFile, ...]           # every bundle file that belongs to this config
    main_file: BundleFile | None            # a full nginx.conf / httpd.conf / apache2.conf / haproxy.cfg, if sent
    server_names: tuple[str, ...]           # concrete public names (no wildcards, no _): the TLS front door's
                                            # first, then in order of appearance
    listeners: tuple[Listener, ...]
    route_prefix: str                       # "/bitbucket", or "" when everything is routed
    upstreams: tuple[Upstream, ...]         # one per cluster member, in order
    tls_files: tuple[TlsReference, ...]
    includes: dict[str, str] = field(default_factory=dict)   # include as written → bundle relpath or "distribution"
    directories: tuple[str, ...] = ()       # directories the config expects: logs, pid, chroot, sockets
    accounts: tuple[str, ...] = ()          # user/group names the config runs as
    daemonizes: bool = False                # the config itself asks to daemonize (nginx `daemon on`, haproxy `daemon`)
    daemon_source: Source | None = None     # where a `daemon` directive is (nginx rejects a second one from -g)
    name_sources: dict[str, Source] = field(default_factory=dict)   # each server name → where it is declared
    route_source: Source | None = None      # the location / ProxyPass / use_backend that gave route_prefix
    neighbours: tuple[Neighbour, ...] = ()  # the other applications the proxy sends traffic to
    snippets: tuple[str, ...] = ()          # nginx files of bare `location`s, included by a server {} the bundle
                                            # lacks: the lab wraps them in a server {} of its own (shown)
    generated: tuple[tuple[str, bytes], ...] = ()   # (path, content) the lab writes for what it cannot run as
                                                    # written (Traefik's static config as the lab runs it)
    translations: tuple[tuple[str, str, str], ...] = ()  # (what, customer's, lab's) mapping rows of the reader's


@dataclass(frozen=True)
class CustomerCertificate:
    """A public certificate file from the bundle, by the path it is meant for (when known)."""

    file: BundleFile
    for_path: str | None      # the customer path it matches (by base name or mirrored path)
    subjects: tuple[str, ...]  # DNS names (SAN, else CN) of the first certificate
    count: int                 # certificates in the file, in order
    key_type: str              # "rsa-2048", "ec-p256", ...
    expired: bool
    includes_root: bool        # a self-signed certificate is in the file
    ordered: bool              # each certificate is issued by the next one


@dataclass(frozen=True)
class CustomerSetup:
    """Everything inferred from a bundle; the runtime consumes this, never the files' text."""

    bundle: tuple[BundleFile, ...]
    proxy: ProxySetup | None
    properties: BundleFile | None
    properties_values: dict[str, str]
    certificates: tuple[CustomerCertificate, ...]
    public_url: str
    public_url_reason: str              # "server_name in sites-enabled/bitbucket:4", "--public-url", ...
    version_hint: str | None = None     # "nginx/1.18.0" from a saved `nginx -v`, if any
    ignored: tuple[str, ...] = ()       # bundle files read as free text, or proxy files no include reaches
    settings: tuple[Setting, ...] = ()  # Bitbucket's settings from compose, env, Helm, server.xml (win over properties)
    rendered: tuple[Rendered, ...] = ()  # proxy files with ${VAR} rendered into working copies
    assumed: tuple[tuple[str, str, str], ...] = ()
    """(key, value, why) of settings the bundle does not give anywhere and the lab assumed from
    the proxy (where users arrive, the routed path): the customer must confirm them."""

    @property
    def has_settings(self) -> bool:
        """Whether the bundle says anything about Bitbucket's own settings."""
        return self.properties is not None or bool(self.settings)
