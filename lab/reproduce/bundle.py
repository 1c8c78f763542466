"""Collect a customer's bundle and tell what each file is, by its content.

Customers rename files freely (``bitbucket`` without extension, ``nginx.conf.txt``,
``haproxy.cfg.bak``), so a file's kind comes from what it says, never from its name:

- ``certificate``: a PEM ``-----BEGIN CERTIFICATE-----`` block;
- ``version``: a saved ``nginx -v`` / ``httpd -v`` / ``haproxy -v`` line;
- ``properties``: mostly ``key=value`` lines with ``server.``/``setup.``/``plugin.``/``jdbc.`` keys;
- ``nginx`` / ``apache`` / ``haproxy``: the kind whose typical lines (see ``_SIGNALS``) the
  file holds most of;
- ``text``: anything else (notes, ticket text), ignored unless a config includes it.

A private key anywhere in the bundle stops the reading: the lab makes its own keys and a
support engineer should not hold a customer's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from lab.errors import LabError
from lab.releases import VERSION_PREFIX
from lab.reproduce.model import BundleFile

PROXY_KINDS = ("nginx", "apache", "haproxy")
PROXY_LABELS = {"nginx": "an nginx config", "apache": "an Apache config", "haproxy": "an HAProxy config"}

_PRIVATE_KEY = re.compile(r"-----BEGIN (?:RSA |EC |DSA |ENCRYPTED |OPENSSH )?PRIVATE KEY-----")
_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
VERSION_LINES = (
    re.compile(r"^\s*nginx version:\s*(?:\S+/)?(nginx/\S+)", re.M),
    re.compile(r"^\s*Server version:\s*(Apache/\S+)", re.M),
    re.compile(r"^\s*(HA-?Proxy) version (\S+)", re.M),
)
"""Saved ``-v`` output; the first group (joined with the second, for HAProxy) is the hint."""

_PROPERTY_LINE = re.compile(r"^\s*(?:server|setup|plugin|jdbc|hazelcast|feature|bitbucket)\.[\w.\-\[\]]+\s*[=:]")
_KEY_VALUE_LINE = re.compile(r"^\s*[\w.\-\[\]]+\s*[=:]")

_SIGNALS: dict[str, tuple[re.Pattern[str], ...]] = {
    "nginx": (
        re.compile(r"^\s*(?:(?:server|http|events|stream|types)\s*|(?:upstream|map|geo|location)\s[^{;]*)\{", re.M),
        re.compile(r"^\s*(?:proxy_pass|listen|server_name|ssl_certificate(?:_key)?|proxy_set_header|server"
                   r"|worker_processes|client_max_body_size|include|return|root|error_log|access_log)"
                   r"\s[^;{}]*;", re.M),
    ),
    "apache": (
        re.compile(r"^\s*</?(?:VirtualHost|IfModule|Directory|Location|LocationMatch|Proxy|Files)\b", re.M | re.I),
        re.compile(r"^\s*(?:ProxyPass|ProxyPassReverse|ServerName|ServerAlias|LoadModule|SSLEngine"
                   r"|SSLCertificateFile|DocumentRoot|ServerRoot|IncludeOptional|RewriteEngine"
                   r"|ProxyPreserveHost|AllowEncodedSlashes)\s+[^;{}]*$", re.M),
    ),
    "haproxy": (
        re.compile(r"^(?:global|defaults)(?:\s+\S+)?\s*$|^(?:frontend|backend|listen)\s+\S+\s*$", re.M),
        re.compile(r"^\s+(?:bind|server|mode|default_backend|use_backend|option|timeout|maxconn|balance"
                   r"|http-request|acl|chroot|stats)\s+[^;{}]*$", re.M),
    ),
}
"""Lines typical of each proxy's config; a file's kind is the one with most matching lines."""


def collect_bundle(paths: Sequence[Path]) -> tuple[BundleFile, ...]:
    """Every file under ``paths`` (directories recursively), classified by content.

    Hidden files and directories (``.git``, ``.DS_Store``) are skipped. A directory named
    like a mirrored root (``etc``, ``var``, …) keeps its name in the files' relpaths, so
    ``python -m lab reproduce bundle/etc`` still sees ``etc/nginx/nginx.conf``.
    Raises :class:`LabError` for a missing path, an unreadable or binary file, or a private key.
    """
    files: list[BundleFile] = []
    seen: set[str] = set()
    for path, relpath in _walk(paths):
        text = read_text(path, relpath)
        if _PRIVATE_KEY.search(text):
            raise LabError(f"{relpath} holds a private key: ask the customer for public certificates "
                           "only; the lab makes its own keys")
        while relpath in seen:          # two loose files of the same name from different dirs
            relpath = "_" + relpath
        seen.add(relpath)
        files.append(BundleFile(path=path, relpath=relpath, kind=classify(text)))
    return tuple(files)


def read_text(path: Path, relpath: str) -> str:
    """The file's text; one-line :class:`LabError` when it cannot be read or is not text."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LabError(f"{relpath}: cannot read: {error.strerror or error}") from None
    if b"\0" in data:
        raise LabError(f"{relpath}: binary file, not a config")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabError(f"{relpath}: binary file, not a config") from None


def classify(text: str) -> str:
    """One of ``FILE_KINDS`` for this text (see the module docstring for the rules)."""
    if _CERTIFICATE in text:
        return "certificate"
    if any(pattern.search(text) for pattern in VERSION_LINES):
        return "version"
    if _looks_like_properties(text):
        return "properties"
    scores = {kind: sum(len(p.findall(text)) for p in patterns) for kind, patterns in _SIGNALS.items()}
    best = max(scores, key=lambda kind: scores[kind])
    return best if scores[best] > 0 else "text"


def proxy_kind(files: Sequence[BundleFile], bundle_name: str) -> str | None:
    """The one proxy kind the bundle holds, or None for a properties-only bundle.

    Raises :class:`LabError` when the bundle has nothing to reproduce, or configs of two
    proxy kinds (one reproduction runs one proxy).
    """
    first_of_kind: dict[str, str] = {}
    for file in files:
        if file.kind in PROXY_KINDS:
            first_of_kind.setdefault(file.kind, file.relpath)
    if len(first_of_kind) > 1:
        (kind_a, file_a), (kind_b, file_b) = list(first_of_kind.items())[:2]
        raise LabError(f"{bundle_name} holds both {PROXY_LABELS[kind_a]} ({file_a}) and "
                       f"{PROXY_LABELS[kind_b]} ({file_b}): send one proxy's files per reproduction")
    if not first_of_kind and not any(file.kind == "properties" for file in files):
        raise LabError(f"nothing to reproduce in {bundle_name}: no nginx, Apache or HAProxy config "
                       "and no bitbucket.properties")
    return next(iter(first_of_kind), None)


def version_hint(files: Sequence[BundleFile], kind: str | None) -> str | None:
    """``nginx/1.18.0``, ``Apache/2.4.62`` or ``HAProxy/2.6.12-1+deb12u1`` from a saved
    ``-v`` output; the one matching the proxy kind wins when several are sent."""
    hints: list[str] = []
    for file in files:
        if file.kind == "version":
            hints.extend(_version_hints(file.path.read_text(encoding="utf-8-sig")))
    wanted = VERSION_PREFIX.get(kind or "", "")
    matching = [hint for hint in hints if wanted and hint.startswith(wanted)]
    chosen = matching or hints
    return chosen[0] if chosen else None


def _version_hints(text: str) -> Iterator[str]:
    for pattern in VERSION_LINES:
        for match in pattern.finditer(text):
            groups = match.groups()
            yield f"HAProxy/{groups[1]}" if len(groups) == 2 else groups[0]


def _looks_like_properties(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip() and line.lstrip()[0] not in "#!"]
    keyed = sum(1 for line in lines if _PROPERTY_LINE.match(line))
    key_value = sum(1 for line in lines if _KEY_VALUE_LINE.match(line) or line[:1] in " \t")
    return keyed > 0 and key_value * 2 >= len(lines)


def _walk(paths: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    mirrored_roots = ("etc", "var", "opt", "usr", "srv", "home")
    for root in paths:
        if not root.exists():
            raise LabError(f"{root}: no such file or directory")
        if root.is_file():
            yield root, root.name
            continue
        prefix = root.resolve().name + "/" if root.resolve().name in mirrored_roots else ""
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            yield path, prefix + relative.as_posix()
