"""Where each of the customer's proxy files goes on the lab's proxy host, and how it runs.

A file keeps the absolute path its bundle mirrors; a loose file goes where the config
that includes it expects it; a loose site file goes where the distribution's own main
config picks it up (Debian's ``nginx.conf`` includes ``sites-enabled/*``, its
``apache2.conf`` ``sites-enabled/*.conf``). Nothing here reads or changes a file's text.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.proxies import KINDS, ProxyKind, resolve
from lab.reproduce.model import INCLUDE_DISTRIBUTION, INCLUDE_NOTHING, BundleFile, ProxySetup

if TYPE_CHECKING:
    from lab.provision import ContainerFile


@dataclass(frozen=True)
class Placed:
    """A bundle file at the path the proxy opens it from, and why there."""

    file: BundleFile
    path: str
    reason: str


@dataclass(frozen=True)
class ProxyStart:
    """How the proxy container starts: its environment, and what the lab supplied itself."""

    environment: dict[str, str]
    main_config: str
    main_reason: str


class ProxyHost:
    """How a customer's files of one kind sit on the lab's proxy host, and how it starts.

    This generic host serves a kind whose start script takes the main config in one
    variable (:attr:`ProxyKind.config_env`, e.g. Caddy); a kind with more to decide
    (layouts, a fallback main config, globals) subclasses it in its own package and names
    it in :attr:`ProxyKind.host`. Nothing here reads or changes a file's text.
    """

    def __init__(self, kind: ProxyKind) -> None:
        self.kind = kind

    def server_root(self, files: Sequence[BundleFile]) -> str:
        """Where the files' relative paths start, when the kind's layout depends on it ("": one layout)."""
        return ""

    def refusal(self, proxy: ProxySetup) -> str | None:
        """Why the lab cannot run this config (one line), else None."""
        return None

    def image(self, server_root: str) -> str | None:
        """The lab image to run when not the kind's own (another layout of the same server)."""
        return None

    def image_row(self, image: str) -> tuple[str, str] | None:
        """(customer, lab) of the mapping row that says why :meth:`image` was chosen."""
        return None

    def snippet(self, proxy: ProxySetup, file: BundleFile) -> tuple[str, str] | None:
        """(path, reason) of a file the lab wraps in a block of its own, else None."""
        return None

    def main_path(self, server_root: str) -> str:
        """Where the kind reads its main config."""
        return self.kind.main_config_path

    def site_path(self, server_root: str, name: str) -> str:
        """Where a loose site file named ``name`` goes, so the main config picks it up."""
        return f"{posixpath.dirname(self.kind.main_config_path)}/{name}"

    def site_reason(self, server_root: str) -> str:
        return f"beside the main config, {self.kind.main_config_path}"

    def include_root(self, server_root: str) -> str:
        """Where a relative include starts."""
        return server_root

    def start(self, proxy: ProxySetup, placed: list[Placed], main: str | None, server_root: str,
              environment: dict[str, str]) -> ProxyStart:
        """The start script's settings (``environment`` holds the directories and accounts)."""
        environment[self.kind.config_env] = main or self.kind.main_config_path
        return ProxyStart(environment, environment[self.kind.config_env], "the customer's own")

    def lab_config_files(self, proxy: ProxySetup, placed: list[Placed], start: ProxyStart,
                         public_host: str) -> list[ContainerFile]:
        """Configs of the lab's own the start needs (a stand-in main config, a block around
        snippets), beside the customer's files."""
        return []

    def added_rows(self, proxy: ProxySetup, public_host: str | None) -> list[tuple[str, str, str]]:
        """Mapping rows (what, customer, lab) of a block the lab added around the customer's files."""
        return []

    def foreground(self, proxy: ProxySetup, environment: dict[str, str]) -> str:
        """How the server runs in the foreground, for the mapping's "foreground" row."""
        return f"{self.kind.label} in the foreground by the lab's start script (the file is not edited)"


def host_of(kind: str) -> ProxyHost:
    """The host of ``kind`` its package names (``ProxyKind.host``), else the generic one."""
    record = KINDS[kind]
    return resolve(record.host)(record) if record.host else ProxyHost(record)


def place_files(proxy: ProxySetup, server_root: str) -> list[Placed]:
    """Every file of the proxy's config at its path on the proxy host."""
    host = host_of(proxy.kind)
    included = _included_paths(proxy, host.include_root(server_root))
    placed = []
    for file in proxy.files:
        snippet = host.snippet(proxy, file)
        if snippet is not None:
            placed.append(Placed(file, *snippet))
        elif file.mirrored_path:
            placed.append(Placed(file, file.mirrored_path, "the path the bundle mirrors"))
        elif file == proxy.main_file:
            placed.append(Placed(file, host.main_path(server_root), f"where {proxy.kind} reads its main config"))
        elif file.relpath in included:
            path, include = included[file.relpath]
            placed.append(Placed(file, path, f"where `{include}` finds it"))
        else:
            placed.append(Placed(file, host.site_path(server_root, posixpath.basename(file.relpath)),
                                 host.site_reason(server_root)))
    _refuse_collisions(placed)
    return placed


def _refuse_collisions(placed: list[Placed]) -> None:
    """Two customer files may not land on one path: one would silently hide the other."""
    seen: dict[str, Placed] = {}
    for item in placed:
        if item.path in seen:
            raise LabError(f"{seen[item.path].file.relpath} and {item.file.relpath} would both be {item.path} on the "
                           "proxy host: send the files in the directories they live in (etc/nginx/…) so each keeps "
                           "its own path")
        seen[item.path] = item


def proxy_start(proxy: ProxySetup, placed: list[Placed], server_root: str) -> ProxyStart:
    """The start script's settings: which main config, which globals, what to prepare."""
    main = next((item.path for item in placed if item.file == proxy.main_file), None)
    environment = {"LAB_DIRS": " ".join(proxy.directories), "LAB_ACCOUNTS": " ".join(proxy.accounts)}
    return host_of(proxy.kind).start(proxy, placed, main, server_root, environment)


def _included_paths(proxy: ProxySetup, prefix: str) -> dict[str, tuple[str, str]]:
    """{relpath: (path the include finds it at, the include as written)} for loose files
    an include of the config resolved to (a relative include starts at ``prefix``)."""
    found: dict[str, tuple[str, str]] = {}
    for include, target in proxy.includes.items():
        if target in (INCLUDE_DISTRIBUTION, INCLUDE_NOTHING):
            continue
        pattern = include if include.startswith("/") else posixpath.join(prefix, include)
        for relpath in (part.strip() for part in target.split(",")):
            if any(char in pattern for char in "*?["):
                name = posixpath.basename(relpath)
                directory = posixpath.dirname(pattern)
                if fnmatch.fnmatch(name, posixpath.basename(pattern)):
                    found.setdefault(relpath, (posixpath.join(directory, name), include))
            else:
                found.setdefault(relpath, (pattern, include))
    return found
