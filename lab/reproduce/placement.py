"""Where each of the customer's proxy files goes on the lab's proxy host, and how it runs.

A file keeps the absolute path its bundle mirrors; a loose file goes where the config
that includes it expects it; a loose site file goes where the distribution's own main
config picks it up (Debian's ``nginx.conf`` includes ``sites-enabled/*``, its
``apache2.conf`` ``sites-enabled/*.conf``). Nothing here reads or changes a file's text.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass

from lab.errors import LabError
from lab.proxies import KINDS
from lab.reproduce.model import INCLUDE_DISTRIBUTION, INCLUDE_NOTHING, BundleFile, ProxySetup
from lab.reproduce.nginx import SNIPPETS_DIR, WRAPPER_SITE

DEBIAN_APACHE_ROOT = "/etc/apache2"
RHEL_APACHE_ROOT = "/etc/httpd"
OFFICIAL_APACHE_ROOT = "/usr/local/apache2"
OFFICIAL_APACHE_IMAGE = "apache-official"
MPM_PRELOAD = "LoadModule mpm_event_module modules/mod_mpm_event.so"
LAB_RHEL_HTTPD_CONF = "/etc/lab/httpd-rhel.conf"
LAB_HAPROXY_BASE = "/etc/lab/haproxy.cfg"
_MAIN_PATHS = {"nginx": "/etc/nginx/nginx.conf", "haproxy": "/etc/haproxy/haproxy.cfg",
               DEBIAN_APACHE_ROOT: "/etc/apache2/apache2.conf", RHEL_APACHE_ROOT: "/etc/httpd/conf/httpd.conf",
               OFFICIAL_APACHE_ROOT: "/usr/local/apache2/conf/httpd.conf"}
_SITE_DIRS = {"nginx": "/etc/nginx/sites-enabled", "haproxy": "/etc/haproxy",
              DEBIAN_APACHE_ROOT: "/etc/apache2/sites-enabled", RHEL_APACHE_ROOT: "/etc/httpd/conf.d",
              OFFICIAL_APACHE_ROOT: "/usr/local/apache2/conf/extra"}


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


def place_files(proxy: ProxySetup, server_root: str) -> list[Placed]:
    """Every file of the proxy's config at its path on the proxy host."""
    included = _included_paths(proxy, server_root)
    placed = []
    for file in proxy.files:
        if file.relpath in proxy.snippets:
            placed.append(Placed(file, f"{SNIPPETS_DIR}/{posixpath.basename(file.relpath)}",
                                 "a location-only snippet: the lab's server {} includes it "
                                 f"({WRAPPER_SITE}), since nginx refuses `location` outside one"))
        elif file.mirrored_path:
            placed.append(Placed(file, file.mirrored_path, "the path the bundle mirrors"))
        elif file == proxy.main_file:
            path = _main_path(proxy.kind, server_root)
            placed.append(Placed(file, path, f"where {proxy.kind} reads its main config"))
        elif file.relpath in included:
            path, include = included[file.relpath]
            placed.append(Placed(file, path, f"where `{include}` finds it"))
        else:
            placed.append(Placed(file, _site_path(proxy.kind, server_root, file), _site_reason(proxy.kind, server_root)))
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


def proxy_start(proxy: ProxySetup, placed: list[Placed], server_root: str, loads_mpm: bool = True) -> ProxyStart:
    """The start script's settings: which main config, which -g globals, what to prepare.
    ``loads_mpm``: the customer's Apache files load an MPM (the official image before 2.4.x's
    stock httpd.conf built event in: its configs load none)."""
    main = next((item.path for item in placed if item.file == proxy.main_file), None)
    environment = {"LAB_DIRS": " ".join(proxy.directories), "LAB_ACCOUNTS": " ".join(proxy.accounts)}
    if proxy.kind == "nginx":
        environment["LAB_NGINX_CONF"] = main or _MAIN_PATHS["nginx"]
        environment["LAB_NGINX_GLOBALS"] = "" if proxy.daemon_source else "daemon off;"
        reason = "the customer's own" if main else "Debian's stock nginx.conf (it includes conf.d/*.conf and sites-enabled/*)"
        return ProxyStart(environment, environment["LAB_NGINX_CONF"], reason)
    if proxy.kind == "apache":
        layout = _layout("apache", server_root)
        fallback = LAB_RHEL_HTTPD_CONF if layout == RHEL_APACHE_ROOT else _MAIN_PATHS[layout]
        environment["LAB_APACHE_CONF"] = main or fallback
        reason = ("the customer's own" if main else "Debian's stock apache2.conf (it includes sites-enabled/*.conf)"
                  if layout == DEBIAN_APACHE_ROOT else
                  "the official image's stock httpd.conf (it includes no file of the bundle: send the customer's)"
                  if layout == OFFICIAL_APACHE_ROOT else
                  "the lab's stand-in for RHEL's httpd.conf: Debian's modules, Listen 80/443, conf.d/*.conf")
        if layout == OFFICIAL_APACHE_ROOT and not loads_mpm:
            environment["LAB_APACHE_PRELOAD"] = MPM_PRELOAD
        if layout == RHEL_APACHE_ROOT:
            environment["LAB_DIRS"] = " ".join([*proxy.directories, "/etc/httpd/logs", "/run/httpd"])
            environment["LAB_ACCOUNTS"] = " ".join(dict.fromkeys([*proxy.accounts, "apache"]))
        return ProxyStart(environment, environment["LAB_APACHE_CONF"], reason)
    if proxy.kind in KINDS and KINDS[proxy.kind].config_env:  # a kind whose package reads its files
        kind = KINDS[proxy.kind]
        environment[kind.config_env] = main or kind.main_config_path
        return ProxyStart(environment, environment[kind.config_env], "the customer's own")
    files = [item.path for item in placed]
    if main is None:
        files.insert(0, LAB_HAPROXY_BASE)
    environment["LAB_HAPROXY_FILES"] = " ".join(dict.fromkeys([main or LAB_HAPROXY_BASE, *files]))
    reason = "the customer's own" if main else "the lab's minimal haproxy.cfg (global, defaults) before the customer's sections"
    return ProxyStart(environment, main or LAB_HAPROXY_BASE, reason)


def _main_path(kind: str, server_root: str) -> str:
    layout = _layout(kind, server_root)
    return _MAIN_PATHS[layout] if layout in _MAIN_PATHS else KINDS[kind].main_config_path


def _layout(kind: str, server_root: str) -> str:
    if kind != "apache":
        return kind
    return server_root if server_root in (RHEL_APACHE_ROOT, OFFICIAL_APACHE_ROOT) else DEBIAN_APACHE_ROOT


def _site_path(kind: str, server_root: str, file: BundleFile) -> str:
    name = posixpath.basename(file.relpath)
    if kind == "apache" and not name.endswith(".conf"):
        name += ".conf"  # Debian's and RHEL's main configs include *.conf only
    layout = _layout(kind, server_root)
    directory = _SITE_DIRS[layout] if layout in _SITE_DIRS else posixpath.dirname(KINDS[kind].main_config_path)
    return f"{directory}/{name}"


def _site_reason(kind: str, server_root: str) -> str:
    if kind == "nginx":
        return "a site file: Debian's nginx.conf includes sites-enabled/*"
    if kind == "haproxy":
        return "loaded with -f after the main config"
    if _layout(kind, server_root) == OFFICIAL_APACHE_ROOT:
        return "a vhost file beside the official image's extra/ configs (.conf added when missing)"
    if _layout(kind, server_root) == RHEL_APACHE_ROOT:
        return "a vhost file: RHEL's httpd.conf includes conf.d/*.conf (.conf added when missing)"
    return "a vhost file: Debian's apache2.conf includes sites-enabled/*.conf (.conf added when missing)"


def _included_paths(proxy: ProxySetup, server_root: str) -> dict[str, tuple[str, str]]:
    """{relpath: (path the include finds it at, the include as written)} for loose files
    an include of the config resolved to."""
    prefix = "/etc/nginx" if proxy.kind == "nginx" else server_root
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
