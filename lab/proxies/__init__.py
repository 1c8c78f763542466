"""The proxy kinds the lab runs in front of Bitbucket: one package per kind, one record each.

``lab/proxies/<kind>/`` holds everything about one kind — its image (``image/``: Dockerfile
and ``start.sh``), the catalog's config templates, and in ``__init__.py`` a
:class:`ProxyKind` named ``KIND`` that says how to run, reload, version, read and advise on
it. The rest of the lab asks :data:`KINDS`; it never compares a kind's name. Adding a kind
is adding a package here (tests/unit/test_proxy_kinds.py holds every kind to the record).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROXIES_DIR = Path(__file__).resolve().parent
HINT_TOPICS = ("affinity", "failover", "spooling", "context-path")
"""What a kind must advise on in its own words: sticky sessions, taking a dead node out,
streaming a push's body, routing the context path (the checks quote them)."""


@dataclass(frozen=True)
class Rejection:
    """A directive one release's proxy rejects and a later (or earlier) one accepts."""

    pattern: re.Pattern[str]
    accepted_by: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Signature:
    """A log line pattern of one kind (error or access log) and what it means: the fix a
    support engineer would give, and the cause in ``lab.fix.remedies`` whose edit fixes it."""

    name: str
    pattern: re.Pattern[str]
    fix: str
    remedy: str | None = None


def signature(name: str, pattern: str, fix: str, remedy: str | None = None) -> Signature:
    return Signature(name, re.compile(pattern), fix, remedy)


TLS_TO_PLAIN_PORT = signature(
    "TLS spoken to a plain port", r"wrong version number|packet length too long|http request.*SSL|SSL routines::record layer",
    "the proxy speaks TLS to a port of Bitbucket's that answers plain HTTP: the upstream scheme does not match the port "
    "(https:// to 7990, or http:// to Tomcat's TLS port)")
"""OpenSSL's words when a proxy speaks TLS to a plain port: nginx and Apache log them alike."""


@dataclass(frozen=True)
class ProxyKind:
    """Everything the lab needs to know about one kind of proxy.

    The start script (``image/start.sh``) runs the config test, prints ``LAB-CONFIG-ERROR:``
    and exits 2 when the config is refused, prints ``LAB-SERVER-STARTS:`` just before the
    server, and runs it in the foreground; the catalog's main config (:attr:`base_config`)
    includes the site file at ``/etc/lab/site.conf``; TLS files are in ``/etc/lab/tls/``.
    """

    name: str
    """The node kind in a topology file, and the name the lab's reports use for it."""
    label: str
    """How a person names it: "Apache httpd"."""
    program: str
    """Its process name (``pidof``): the master opens every listener before its workers."""
    base_config: tuple[str, str] | None
    """(file in this package, its path on the proxy host): the catalog's main config, which
    includes the site file; None when the site file is the whole config."""
    reload: str
    """Shell command in the proxy's container: test the config, then make the server take it."""
    version_command: tuple[str, ...]
    version_pattern: str
    """A regular expression whose group 1 is the version in the command's output."""
    version_prefix: str
    """How it names itself in a version line a customer sends (``nginx/1.22.1``)."""
    debian_versions: Mapping[str, str]
    """{Debian release: the version its package had when measured}."""
    listener_words: str
    """The directives that open a listener, for "its config opens no listener (…)"."""
    log_files: tuple[str, ...]
    """Globs of log files inside the container the evidence reads (besides its stdout)."""
    hints: Mapping[str, str]
    """{topic in :data:`HINT_TOPICS`: the fix in this kind's own directives}; "path-rewrite" too
    for a kind that ``lab.fix.remedies.PATH_REWRITTEN``'s text does not name."""
    reload_waits_for_workers: bool = True
    """The reload hands over to new worker processes, and the lab waits until the old ones
    are gone; False for a one-process server whose reload command returns once it runs the
    new config."""
    routes_after_listening: bool = False
    """Its routes and certificates come from a provider a moment after it listens (Traefik's
    file provider: about 0.6 s): readiness waits until the public URL answers with something
    else than a failed handshake or a 404 (bounded), so the first check does not race it."""
    placeholder_certificate: str = ""
    """The subject CN of the certificate the server serves before its own are loaded
    (Traefik's ``TRAEFIK DEFAULT CERT``: an ACME resolver's certificates from ``acme.json``
    come a moment after the routes). Readiness waits, bounded, while it is served."""
    http2_edit: tuple[str, str] | None = None
    """``--http2``: (text of the recommended TLS site, the same offering h2)."""
    rejections: tuple[Rejection, ...] = ()
    log_signatures: tuple[Signature, ...] = ()
    """Known lines of its logs, in the order they are tried (``lab.logsigs.explain``)."""
    image_files: Mapping[str, Path] = field(default_factory=dict)
    """{name in the build context: file} the image copies in besides its folder (a binary that
    no Debian release packages)."""
    unavailable: str | None = None
    """Why the kind's image cannot be built on this machine (and what to install), else None:
    such a kind is left out of "every image" and refused in one line when a topology needs it."""
    reader: str | None = None
    """``module:function`` that reads a customer's files of this kind for ``reproduce``
    (``(bundle, clues) -> ProxySetup``); None: its files are not read yet."""
    config_words: str = ""
    """How a message names one of its config files ("an HAProxy config"); "" gives
    "a <label> config"."""
    file_names: str = ""
    """A regular expression of file names that are this kind's config (``Caddyfile``)."""
    file_signals: tuple[str, ...] = ()
    """Regular expressions (multi-line mode) of lines typical of its config, for files named
    otherwise: a file is the kind with most matching lines."""
    tie_rank: int = 100
    """When two kinds' signals match equally many lines of a file, the lower rank wins (then
    the name): nginx 0, Apache 1, HAProxy 2, the order ``reproduce`` first read them in."""
    renders_templates: bool = False
    """Its files may be ``envsubst`` templates: ``${VAR}`` in them is rendered with the
    bundle's values before they are read (``lab.reproduce.variables``); False: the server
    expands variables itself (Apache's ``${VAR}`` and ``Define``)."""
    main_config_path: str = ""
    """Where a customer's main config goes on the proxy host, and its start script's variable."""
    config_env: str = ""
    host: str | None = None
    """``module:NAME`` of the ``lab.reproduce.placement.ProxyHost`` that puts a customer's
    files of this kind on the proxy host and starts it (layouts, main config, foreground);
    None: the generic one (:attr:`main_config_path` and :attr:`config_env`)."""
    editor: str | None = None
    """``module:NAME`` of the ``lab.fix.syntax.ConfigEditor`` that ``--fix`` edits this kind's
    files with: its blocks and scopes, and its edits by cause of ``lab.fix.remedies``; None:
    its files get instructions only."""
    lab_files: str | None = None
    """``module:function`` giving {path: bytes} the lab adds beside the customer's TLS files
    (``(tls_files, placed) -> dict``, ``placed``: {path: bytes} of the lab's TLS files there):
    Caddy's metadata of a certificate in its storage, Traefik's ``acme.json``. Mode 0600."""
    translated: bool = False
    """``reproduce`` runs the lab's translation of the customer's main config (Traefik's static
    configuration as one YAML), not the file itself: ``check --fix`` of a drop-in is not offered."""
    compose_labels: str = ""
    """A regular expression of lines of a ``docker-compose.yml`` that configure this kind by
    labels (Traefik's Docker provider): such a compose file makes the bundle this kind's."""
    image_variants: Mapping[str, str] = field(default_factory=dict)
    """{image name: folder of this package} of other images of the kind (the official httpd
    layout), built only when a topology's node names them."""
    private_tls_files: tuple[str, ...] = ("privkey.pem",)
    """Files of ``/etc/lab/tls`` that hold a private key (mode 0600)."""
    openssl_command: tuple[str, ...] = ()
    """A command whose output names the OpenSSL the image links (reports name one, from the
    first kind that has it); its pattern's group 1 is the version."""
    openssl_pattern: str = ""
    cuts_answered_responses: str = ""
    """A known fault of the server itself, no config's: it now and then cuts short a response
    Bitbucket gave whole. Said as the note of a git transfer that went through at its second
    try (``lab.checks.retries``), with its sources and what avoids it; empty: no such fault."""

    @property
    def package(self) -> Path:
        return PROXIES_DIR / self.name

    @property
    def image_dir(self) -> Path:
        """The Dockerfile and start script of the kind's image (``lab.images`` builds it)."""
        return self.package / "image"

    def hint(self, topic: str) -> str:
        return self.hints[topic]

    @property
    def config_noun(self) -> str:
        """"an nginx config": how a message names one of its files."""
        return self.config_words or f"a {self.label} config"


GO_CUT_RESPONSES = (
    "{label} is written in Go, whose HTTP/1 server closes a request's body as soon as the response starts: when "
    "Bitbucket answers a request sent with a Content-Length (git's small POSTs) before {label}'s transport has "
    "read that body once more for stray bytes, the transport drops its connection to Bitbucket and the response "
    "is cut short (golang/go#40747, golang/go#57786). Measured here: about 1 git transfer in 100 with both cores "
    "busy, none on an idle machine. {avoid}")
"""The known fault of the Go front doors (:attr:`ProxyKind.cuts_answered_responses`), filled in
by each Go kind with its name and what avoids it."""


def resolve(reference: str) -> Any:
    """The object a ``module:function`` reference names (imported when first needed: a
    kind's reader uses ``lab.reproduce``, which itself asks this registry)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def hint_for(kind: str | None, topic: str) -> str:
    """``kind``'s fix for ``topic``; every kind's, joined, when the kind is unknown."""
    if kind in KINDS:
        return KINDS[kind].hint(topic)
    return " / ".join(proxy.hint(topic) for proxy in KINDS.values())


def _discover() -> dict[str, ProxyKind]:
    kinds: dict[str, ProxyKind] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
        if info.ispkg:
            kind = importlib.import_module(f"{__name__}.{info.name}").KIND
            if kind.name != info.name:
                raise RuntimeError(f"lab/proxies/{info.name}: its KIND is named {kind.name!r}")
            kinds[kind.name] = kind
    return kinds


KINDS: dict[str, ProxyKind] = _discover()
"""Every proxy kind, by name."""
PROXY_KINDS: tuple[str, ...] = tuple(KINDS)
READ_KINDS: tuple[str, ...] = tuple(sorted((name for name, kind in KINDS.items() if kind.reader),
                                           key=lambda name: (KINDS[name].tie_rank, name)))
"""The kinds whose files ``reproduce`` reads, by :attr:`ProxyKind.tie_rank`."""
