"""Collect a customer's bundle and tell what each file is, by its content.

Customers rename files freely (``bitbucket`` without extension, ``nginx.conf.txt``,
``haproxy.cfg.bak``), so a file's kind comes from what it says, never from its name:

- ``certificate``: a PEM ``-----BEGIN CERTIFICATE-----`` block;
- ``version``: a saved ``nginx -v`` / ``httpd -v`` / ``haproxy -v`` line;
- ``properties``: mostly ``key=value`` lines with ``server.``/``setup.``/``plugin.``/``jdbc.`` keys;
- a proxy kind (``lab.proxies.READ_KINDS``): the one whose config the file is named as
  (``ProxyKind.file_names``), else the one whose typical lines (``ProxyKind.file_signals``)
  the file holds most of;
- ``text``: anything else (notes, ticket text), ignored unless a config includes it.

A private key anywhere in the bundle stops the reading: the lab makes its own keys and a
support engineer should not hold a customer's.

Only the bundle's own files are read. A symbolic link is followed when it stays inside
the bundle directory (``sites-enabled/bitbucket -> ../sites-available/bitbucket``; an
absolute target such as ``/etc/nginx/sites-available/bitbucket`` means the file the bundle
mirrors at ``etc/nginx/sites-available/bitbucket``, as it did on the customer's server).
A link that leads anywhere else (``extra.conf -> /etc/passwd``) stops the reading before
anything is opened, naming the link and its target. A loose file's bundle is its folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from lab.errors import LabError
from lab.proxies import KINDS, READ_KINDS
from lab.reproduce.model import BundleFile
from lab.reproduce.settings import (SETTINGS_KINDS, looks_like_compose, looks_like_env, looks_like_helm,
                                   looks_like_server_xml)

PARSED_KINDS = READ_KINDS
"""The proxy kinds whose files ``reproduce`` reads (``lab.proxies.KINDS`` may have more: the catalog runs them)."""
PROXY_LABELS = {name: KINDS[name].config_noun for name in READ_KINDS}

_PRIVATE_KEY = re.compile(r"-----BEGIN (?:RSA |EC |DSA |ENCRYPTED |OPENSSH )?PRIVATE KEY-----")
_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
VERSION_LINES = (
    re.compile(r"^\s*nginx version:\s*(?:\S+/)?(nginx/\S+)", re.M),
    re.compile(r"^\s*Server version:\s*(Apache/\S+)", re.M),
    re.compile(r"^\s*(HA-?Proxy) version (\S+)", re.M),
)
"""Saved ``-v`` output; the first group (joined with the second, for HAProxy) is the hint."""

_NOTE_NAME = re.compile(r"(?i)\.(?:md|markdown|rst|adoc)$|^(?:readme|notes?|changelog)(?:\.\w+)?$")
"""A note beside the configs (README.md, NOTES.txt): read as text, never as a config."""
_ENV_FILE = re.compile(r"\.env(?:\.[\w-]+)?")
_SCRIPT_NAME = re.compile(r"(?i)\.(?:sh|bash|ps1|bat|py)$")
_PROPERTY_LINE = re.compile(r"^\s*(?:server|setup|plugin|jdbc|hazelcast|feature|bitbucket)\.[\w.\-\[\]]+\s*[=:]")
_KEY_VALUE_LINE = re.compile(r"^\s*[\w.\-\[\]]+\s*[=:]")

_SIGNALS = {name: tuple(re.compile(signal, re.M) for signal in KINDS[name].file_signals) for name in READ_KINDS}
"""Lines typical of each proxy's config; a file's kind is the one with most matching lines
(the first in ``READ_KINDS`` on a tie)."""


def collect_bundle(paths: Sequence[Path]) -> tuple[BundleFile, ...]:
    """Every file under ``paths`` (directories recursively), classified by content.

    Hidden files and directories (``.git``, ``.DS_Store``) are skipped. A directory named
    like a mirrored root (``etc``, ``var``, …) keeps its name in the files' relpaths, so
    ``python -m lab reproduce bundle/etc`` still sees ``etc/nginx/nginx.conf``.
    Raises :class:`LabError` for a missing path, an unreadable, binary or non-UTF-8 file, a
    private key, or a link that leads out of the bundle (checked before anything is read).
    """
    files: list[BundleFile] = []
    seen: set[str] = set()
    for path, relpath in list(_walk(paths)):     # every link is judged before any file is opened
        text = read_text(path, relpath)
        if _PRIVATE_KEY.search(text):
            raise LabError(f"{relpath} holds a private key: ask the customer for public certificates "
                           "only; the lab makes its own keys")
        while relpath in seen:          # two loose files of the same name from different dirs
            relpath = "_" + relpath
        seen.add(relpath)
        files.append(BundleFile(path=path, relpath=relpath, kind=classify(text, relpath.rsplit('/', 1)[-1])))
    return tuple(files)


def read_text(path: Path, relpath: str) -> str:
    """The file's text; one-line :class:`LabError` when it cannot be read or is not text
    (binary, or text that is not UTF-8: the line of the first bad byte is named)."""
    if path.is_symlink():   # _walk hands out the real file of every link it accepted
        raise LabError(f"{relpath} turned into a link while the lab read the bundle: run the reproduction again")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LabError(f"{relpath}: cannot read: {error.strerror or error}") from None
    if b"\0" in data:
        raise LabError(f"{relpath}: binary file, not a config")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise LabError(f"{relpath}: not valid UTF-8 (line {line}): the lab reads configs as UTF-8; convert it "
                       f"(iconv -f ISO-8859-1 -t UTF-8) or leave it out of the bundle") from None


def classify(text: str, name: str = "") -> str:
    """One of ``FILE_KINDS`` for this text (see the module docstring for the rules); ``name``
    (the file's base name) only tells a note or a script, which are never configs."""
    if _CERTIFICATE in text:
        return "certificate"
    if any(pattern.search(text) for pattern in VERSION_LINES):
        return "version"
    if looks_like_compose(text):
        return "compose"
    if looks_like_helm(text):
        return "helm"
    if looks_like_server_xml(text):
        return "server-xml"
    if _looks_like_properties(text):
        return "properties"
    if looks_like_env(text):
        return "env"
    if _NOTE_NAME.search(name):
        return "text"
    if text.startswith("#!") or _SCRIPT_NAME.search(name):
        return "script"
    named = next((kind for kind in READ_KINDS if KINDS[kind].file_names
                  and re.search(KINDS[kind].file_names, name)), None)
    if named:
        return named
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
        if file.kind in PARSED_KINDS:
            first_of_kind.setdefault(file.kind, file.relpath)
    for file in (file for file in files if file.kind == "compose" and not first_of_kind):
        text = file.path.read_text(encoding="utf-8-sig")
        for name, proxy in ((name, KINDS[name]) for name in READ_KINDS):  # a compose file configuring a proxy by labels (Traefik)
            if proxy.compose_labels and re.search(proxy.compose_labels, text, re.M):
                first_of_kind.setdefault(name, file.relpath)
    if len(first_of_kind) > 1:
        (kind_a, file_a), (kind_b, file_b) = list(first_of_kind.items())[:2]
        raise LabError(f"{bundle_name} holds both {PROXY_LABELS[kind_a]} ({file_a}) and "
                       f"{PROXY_LABELS[kind_b]} ({file_b}): send one proxy's files per reproduction")
    if not first_of_kind and not any(file.kind in ("properties", *SETTINGS_KINDS) for file in files):
        raise LabError(f"nothing to reproduce in {bundle_name}: no nginx, Apache or HAProxy config "
                       "and none of Bitbucket's settings (bitbucket.properties, a compose file, Helm values, server.xml)")
    return next(iter(first_of_kind), None)


def version_hint(files: Sequence[BundleFile], kind: str | None) -> str | None:
    """``nginx/1.18.0``, ``Apache/2.4.62`` or ``HAProxy/2.6.12-1+deb12u1`` from a saved
    ``-v`` output; the one matching the proxy kind wins when several are sent."""
    hints: list[str] = []
    for file in files:
        if file.kind == "version":
            hints.extend(_version_hints(file.path.read_text(encoding="utf-8-sig")))
    wanted = KINDS[kind].version_prefix if kind in KINDS else ""
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
    """(file to read, its relpath) of every file under ``paths``; a link yields its real target."""
    mirrored_roots = ("etc", "var", "opt", "usr", "srv", "home")
    for root in paths:
        if not os.path.lexists(root):
            raise LabError(f"{root}: no such file or directory")
        if not root.is_dir():
            folder = root.absolute().parent.resolve()
            target = _inside(root, root.name, folder, folder) if root.is_symlink() else root
            if target.is_file():
                yield target, root.name
            continue
        base = root.resolve()
        prefix = base.name + "/" if base.name in mirrored_roots else ""
        mirror = base.parent if prefix else base
        found = sorted(_files_under(root, base, mirror, (), frozenset({base})), key=lambda item: item[1])
        for path, parts in found:
            yield path, prefix + "/".join(parts)


def _files_under(folder: Path, base: Path, mirror: Path, parts: tuple[str, ...],
                 visiting: frozenset[Path]) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Regular files under ``folder`` (hidden ones skipped), following links that stay in ``base``."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        raise LabError(f"{'/'.join(parts) or folder}: cannot read the folder: {error.strerror or error}") from None
    for entry in entries:
        if entry.name.startswith(".") and not _ENV_FILE.fullmatch(entry.name):  # .env: compose's variables
            continue
        here = (*parts, entry.name)
        path = Path(entry.path)
        if entry.is_symlink():
            path = _inside(path, "/".join(here), base, mirror)
        if path.is_dir():
            real = path.resolve()
            if real not in visiting:        # a link back up the tree is read once, where it is
                yield from _files_under(path, base, mirror, here, visiting | {real})
        elif path.is_file():
            yield path, here


def _inside(link: Path, relpath: str, base: Path, mirror: Path) -> Path:
    """The real path ``link`` leads to, when that is inside ``base``; else a one-line LabError.

    An absolute target is first looked for where the bundle mirrors it (``mirror`` + the
    target): that is the file the link meant on the customer's server.
    """
    written = os.readlink(link)
    if written.startswith("/"):
        mirrored = _resolved(mirror / written.lstrip("/"))
        if mirrored is not None and mirrored.exists() and mirrored.is_relative_to(base):
            return mirrored
    real = _resolved(link.parent / written)
    if real is None:
        raise LabError(f"{relpath} is a link to {written}, which leads round in a loop of links: "
                       "put the file itself in the bundle")
    shown = written if str(real) == written else f"{written} ({real})"
    if not real.is_relative_to(base):
        raise LabError(f"{relpath} is a link to {shown}, outside the bundle: the lab reads only the files sent; "
                       "put the file itself in the bundle (tar -h packs files instead of links)")
    if not real.exists():
        raise LabError(f"{relpath} is a link to {shown}, which is not in the bundle: "
                       "put the file itself in the bundle (tar -h packs files instead of links)")
    return real


def _resolved(path: Path) -> Path | None:
    """``path`` with every link in it resolved (links are read, no file is opened); None for a loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None
