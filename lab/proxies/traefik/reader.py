"""Read a customer's Traefik v2/v3 setup: a static configuration (``traefik.yml``/``.toml``, or
the ``traefik`` service's ``command:`` flags in ``docker-compose.yml``) and its dynamic one
(the file provider's files, or the Docker labels of the services it routes to).

The lab runs Traefik from one static file of its own, ``/etc/lab/traefik-run.yml``
(:func:`run_config`): the customer's static configuration as YAML with only what the lab cannot
run changed, each change a mapping row — a Docker (or other) provider is left out (no socket
in the lab) and the labels become a dynamic file the file provider reads; the access log is
the lab's JSON on stdout. The customer's file provider is kept, so their dynamic files run
verbatim at the paths it names.

A router with ``tls.certResolver`` gets its certificate from an ACME CA, which the lab cannot
reach: the lab writes the resolver's storage (``acme.json``, mode 0600 — Traefik 3.7 skips a
resolver whose storage is readable by others) holding the lab's leaf for each of the router's
hosts. Traefik 3.7 serves it and logs "No ACME certificate generation required", asking no CA
(measured, with an unreachable ``caServer``).
"""

from __future__ import annotations

import base64
import copy
import json
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import yaml

from lab.errors import LabError
from lab.proxies.traefik.compose import ComposeTraefik, Labelled, exposed, read_compose
from lab.proxies.traefik.tree import Tree, get, is_dynamic, is_static, items, read_file, words
from lab.reproduce.frontdoor import BitbucketClues, Route, VirtualServer, concrete_name, front_door
from lab.reproduce.model import BundleFile, Listener, ProxySetup, Source, TlsReference, Upstream

RUN_CONFIG = "/etc/lab/traefik-run.yml"
"""The static file the lab runs (the start script's ``LAB_TRAEFIK_CONF``)."""
LABELS_FILE = "/etc/lab/traefik-labels.yml"
ACME_DIR = "/etc/lab/traefik-acme"
_ACME_DIRECTIVE = re.compile(r"^certresolver (\S+) \(ACME storage (\S+)\)$")
_WORKDIR = "/"      # Traefik's working directory in the lab: a relative path is read from here
ACCESS_LOG = {"format": "json", "fields": {"headers": {"names": {"X-Request-Id": "keep"}}}}


def parse_traefik(bundle: Sequence[BundleFile], clues: BitbucketClues = BitbucketClues()) -> ProxySetup:
    """The Traefik setup the bundle describes (module docstring)."""
    compose = read_compose(bundle)
    static, static_file = _static(bundle, compose)
    dynamic = [(file, read_file(file)) for file in bundle if file.kind == "traefik" and file != static_file]
    dynamic = [(file, tree) for file, tree in dynamic if is_dynamic(tree)]
    if static_file is not None and _names_itself(static, static_file):
        dynamic.insert(0, (static_file, read_file(static_file)))
    labelled = exposed(compose, static)
    run, rows, includes, generated = run_config(static, static_file, dynamic, labelled)
    trees = [tree for _, tree in dynamic] + [item.tree for item in labelled]
    servers = list(_servers(static, trees))
    door = front_door(servers, clues)
    files = tuple(dict.fromkeys([*([static_file] if static_file else []), *(file for file, _ in dynamic)]))
    return ProxySetup(
        kind="traefik", files=files, main_file=None, server_names=door.server_names, listeners=door.listeners,
        route_prefix=door.route_prefix, upstreams=door.upstreams, neighbours=door.neighbours,
        tls_files=tuple(_tls_files(static, trees)), includes=includes, name_sources=door.name_sources,
        route_source=door.route_source, generated=((RUN_CONFIG, run), *generated), translations=tuple(rows),
    )


def _static(bundle: Sequence[BundleFile], compose: ComposeTraefik) -> tuple[Tree, BundleFile | None]:
    files = [file for file in bundle if file.kind == "traefik"]
    static = [(file, tree) for file in files if is_static(tree := read_file(file))]
    if len(static) > 1:
        raise LabError(f"{static[0][0].relpath} and {static[1][0].relpath} are both Traefik static configurations: "
                       "send the one Traefik starts with")
    if static:
        return static[0][1], static[0][0]
    if compose.flags is not None:
        return compose.flags, None
    raise LabError("the bundle holds Traefik's dynamic configuration but not its static one: send traefik.yml "
                   "(or traefik.toml), or the docker-compose.yml whose traefik service's command: sets entry points")


def _names_itself(static: Tree, file: BundleFile) -> bool:
    """The static file's file provider reads the static file itself (one file for both)."""
    filename = str(get(static.data, "providers", "file", "filename") or "")
    return bool(filename) and posixpath.basename(filename) == posixpath.basename(file.relpath)


def run_config(static: Tree, static_file: BundleFile | None, dynamic: list[tuple[BundleFile, Tree]],
               labelled: Sequence[Labelled]
               ) -> tuple[bytes, list[tuple[str, str, str]], dict[str, str], list[tuple[str, bytes]]]:
    """(the static file the lab runs, its mapping rows, {path as the config names it: bundle
    relpath} of the customer's files, other files the lab writes)."""
    run = copy.deepcopy(static.data)
    rows = [("static configuration", static.origin,
             f"{RUN_CONFIG}: what Traefik runs — these settings as YAML, changed only as the rows below say")]
    includes: dict[str, str] = {}
    if static_file is not None:
        includes[f"/etc/traefik/{posixpath.basename(static_file.relpath)}"] = static_file.relpath
    providers = get(run, "providers") or {}
    for name in [name for name in providers if name.lower() != "file"]:
        del providers[name]
        rows.append(("provider", f"providers.{name} ({static.source('providers', name)})",
                     "left out: the lab has no Docker socket (or cluster) to watch"
                     + ("; the labels it would read are a dynamic file instead" if labelled else "")))
    file_provider = get(providers, "file")
    generated: list[tuple[str, bytes]] = []
    labels_path = LABELS_FILE
    if isinstance(file_provider, dict) and get(file_provider, "directory"):
        directory = str(get(file_provider, "directory")).rstrip("/")
        includes[f"{directory}/*"] = ",".join(file.relpath for file, _ in dynamic)
        labels_path = f"{directory}/lab-docker-labels.yml"
        rows.append(("file provider", f"providers.file.directory {directory} ({static.source('providers', 'file')})",
                     "kept: it reads the customer's dynamic files verbatim in that directory"))
    elif isinstance(file_provider, dict) and get(file_provider, "filename"):
        filename = str(get(file_provider, "filename"))
        target = _dynamic_for(filename, dynamic)
        if target:
            includes[filename] = target
        rows.append(("file provider", f"providers.file.filename {filename} ({static.source('providers', 'file')})",
                     f"kept: it reads {target or '(not in the bundle)'} verbatim at that path"))
        if labelled:
            directory = "/etc/lab/traefik-dynamic"
            for file, _ in dynamic:
                generated.append((f"{directory}/{posixpath.basename(file.relpath)}", file.path.read_bytes()))
            labels_path = f"{directory}/lab-docker-labels.yml"
            _set(run, ("providers", "file"), {"directory": directory})
            rows.append(("file provider", f"providers.file.filename {filename}",
                         f"providers.file.directory {directory}: a copy of the file beside the labels' dynamic file "
                         "(one file provider reads one file or one directory)"))
    elif dynamic:
        directory = "/etc/traefik/dynamic"
        includes[f"{directory}/*"] = ",".join(file.relpath for file, _ in dynamic)
        labels_path = f"{directory}/lab-docker-labels.yml"
        _set(run, ("providers", "file"), {"directory": directory})
        rows.append(("file provider", "(none in the static configuration)",
                     f"providers.file.directory {directory}: reads the bundle's dynamic files verbatim there"))
    elif labelled:
        _set(run, ("providers", "file"), {"filename": LABELS_FILE})
    if labelled:
        generated.append((labels_path, _labels_yaml(labelled)))
        for item in labelled:
            rows.append(("Docker labels", f"{item.count} traefik labels of service {item.service} ({item.source})",
                         f"{labels_path}: the same routers, services and middlewares for the file provider"
                         + "".join(f"; {change}" for change in item.changes)
                         + f" ({item.service}: the container by its compose name)"))
    rows += _log_rows(run, static)
    return yaml.safe_dump(run, sort_keys=False).encode(), rows, includes, generated


def _dynamic_for(filename: str, dynamic: list[tuple[BundleFile, Tree]]) -> str:
    """The bundle file ``providers.file.filename`` names: by base name, else the only dynamic file."""
    named = [file for file, _ in dynamic if posixpath.basename(file.relpath) == posixpath.basename(filename)]
    if named:
        return named[0].relpath
    return dynamic[0][0].relpath if len(dynamic) == 1 else ""


def _labels_yaml(labelled: Sequence[Labelled]) -> bytes:
    merged = Tree()
    for item in labelled:
        _merge(merged.data, item.tree.data)
    return yaml.safe_dump(merged.data, sort_keys=False).encode()


def _merge(into: dict, data: dict) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _set(tree: dict, path: tuple[str, ...], value: object) -> None:
    node = tree
    for key in path[:-1]:
        found = next((k for k in node if k.lower() == key.lower()), key)
        node = node.setdefault(found, {})
    found = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
    node[found] = value


def _log_rows(run: dict, static: Tree) -> list[tuple[str, str, str]]:
    """The access log on stdout as JSON (the lab's evidence); a log file path left out (its lines on stderr)."""
    rows = []
    written = next((key for key in run if key.lower() == "accesslog"), None)
    customer = f"accessLog ({static.source('accessLog')})" if written else "(no access log)"
    if written:
        del run[written]
    run["accessLog"] = ACCESS_LOG
    rows.append(("access log", customer, "JSON on stdout, X-Request-Id kept: the lab ties each request to its "
                                         "check (Bitbucket sees no difference)"))
    log = get(run, "log")
    path = next((key for key in log if key.lower() == "filepath"), None) if isinstance(log, dict) else None
    if path:
        rows.append(("log file", f"log.filePath {log.pop(path)} ({static.source('log', path)})",
                     "left out: Traefik's log goes to stderr, where the lab reads it"))
    return rows


def _entry_points(static: Tree) -> dict[str, tuple[int, Source, dict]]:
    found = {}
    for name, point in items(get(static.data, "entryPoints")):
        match = re.search(r":(\d+)(?:/\w+)?$", str(get(point, "address") or ""))
        if match:
            found[name.lower()] = (int(match.group(1)), static.source("entryPoints", name), point)
    return found


def _servers(static: Tree, trees: list[Tree]) -> Iterator[VirtualServer]:
    """One virtual server per HTTP router, one per entry point that redirects to another."""
    points = _entry_points(static)
    for port, source, point in points.values():
        if get(point, "http", "redirections", "entryPoint", "to"):
            yield VirtualServer(source=source, listeners=[Listener(port, False, True, False, source)])
    services = {name.lower(): (name, service, tree) for tree in trees
                for name, service in items(get(tree.data, "http", "services"))}
    middlewares = {name.lower(): middleware for tree in trees
                   for name, middleware in items(get(tree.data, "http", "middlewares"))}
    for tree in trees:
        for name, router in items(get(tree.data, "http", "routers")):
            yield _router_server(tree, name, router, points, services, middlewares)


def _router_server(tree: Tree, name: str, router: dict, points: dict, services: dict,
                   middlewares: dict) -> VirtualServer:
    source = tree.source("http", "routers", name)
    rule = str(get(router, "rule") or "")
    server = VirtualServer(source=source)
    server.names = [(host, source) for host in _hosts(rule) if concrete_name(host)]
    on = [point.lower() for point in words(get(router, "entryPoints"))] or list(points)
    redirects = any(get(middlewares.get(_bare(m), {}), "redirectScheme") is not None
                    for m in words(get(router, "middlewares")))
    for point in on:
        if point not in points:
            raise LabError(f"{source}: router {name} uses entry point {point}, which the static configuration "
                           "does not define")
        port, point_source, entry = points[point]
        tls = get(router, "tls") is not None or get(entry, "http", "tls") is not None
        server.listeners.append(Listener(port, tls and not redirects, redirects, tls, point_source))
    target = _bare(str(get(router, "service") or ""))
    if target in services and not redirects:
        upstreams = tuple(_upstreams(*services[target]))
        if upstreams:
            server.routes = [Route(_prefix(rule), target, upstreams, source)]
    return server


def _bare(name: str) -> str:
    """A reference without its provider (``bitbucket@file`` → ``bitbucket``)."""
    return name.split("@", 1)[0].lower()


def _hosts(rule: str) -> list[str]:
    """The names of ``Host(`a`)`` / ``Host(`a`, `b`)`` (v2) in a rule; HostRegexp gives none."""
    return [name for args in re.findall(r"(?<![A-Za-z])Host\(([^)]*)\)", rule)
            for name in re.findall(r"[`\"]([^`\"]+)[`\"]", args)]


def _prefix(rule: str) -> str:
    match = re.search(r"PathPrefix\(\s*[`\"]([^`\"]*)[`\"]", rule) or re.search(r"Path\(\s*[`\"]([^`\"]*)[`\"]", rule)
    return match.group(1).rstrip("/") if match else ""


def _upstreams(name: str, service: dict, tree: Tree) -> Iterator[Upstream]:
    source = tree.source("http", "services", name, "loadBalancer", "servers")
    for server in get(service, "loadBalancer", "servers") or []:
        url = str(get(server, "url") or "")
        parts = urlsplit(url)
        if parts.hostname:
            scheme = "https" if parts.scheme == "https" else "http"
            yield Upstream(scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80), source)


def _tls_files(static: Tree, trees: list[Tree]) -> Iterator[TlsReference]:
    """``tls.certificates`` and a store's ``defaultCertificate``; each host of a router whose
    certificate comes from a resolver, in the lab's ACME folder (:func:`acme_storage` reads them)."""
    for tree in trees:
        entries = list(get(tree.data, "tls", "certificates") or [])
        entries += [get(store, "defaultCertificate") for _, store in items(get(tree.data, "tls", "stores"))]
        for entry in entries:
            for key, role in (("certFile", "fullchain"), ("keyFile", "key")):
                path = str(get(entry, key) or "")
                if path and "-----BEGIN" not in path:
                    yield TlsReference(f"tls {key}", posixpath.join(_WORKDIR, path), role, tree.source("tls"))
    points = {name.lower(): point for name, point in items(get(static.data, "entryPoints"))}
    for tree in trees:
        for name, router in items(get(tree.data, "http", "routers")):
            resolver = get(router, "tls", "certResolver") or next(
                (get(points.get(p.lower()), "http", "tls", "certResolver") for p in words(get(router, "entryPoints"))
                 if get(points.get(p.lower()), "http", "tls", "certResolver")), None)
            if not resolver:
                continue
            storage = str(get(static.data, "certificatesResolvers", resolver, "acme", "storage") or "acme.json")
            storage = posixpath.join(_WORKDIR, storage)
            domains = [str(get(d, "main")) for d in get(router, "tls", "domains") or [] if get(d, "main")]
            for host in dict.fromkeys([*_hosts(str(get(router, "rule") or "")), *domains]):
                if concrete_name(host):
                    source = tree.source("http", "routers", name)
                    for suffix, role in ((".crt", "fullchain"), (".key", "key")):
                        yield TlsReference(f"certresolver {resolver} (ACME storage {storage})",
                                           f"{ACME_DIR}/{resolver}/{host}{suffix}", role, source)


def acme_storage(tls_files: Sequence[TlsReference], placed: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """{storage path: acme.json} holding, for each resolver, the lab's leaf (and key) placed for
    each host its routers serve, in Traefik's ACME storage format."""
    stores: dict[str, dict] = {}
    for reference in tls_files:
        match = _ACME_DIRECTIVE.match(reference.directive)
        if not match or reference.role != "fullchain":
            continue
        placed = placed or {}  # None: only the storage's path is wanted (a mapping row)
        resolver, storage = match.groups()
        host = posixpath.basename(reference.path).removesuffix(".crt")
        key = placed.get(reference.path.removesuffix(".crt") + ".key", b"")
        certificates = stores.setdefault(storage, {}).setdefault(resolver, {"Account": None, "Certificates": []})
        certificates["Certificates"].append({
            "domain": {"main": host}, "certificate": base64.b64encode(placed.get(reference.path, b"")).decode(),
            "key": base64.b64encode(key).decode(), "Store": "default"})
    return {path: json.dumps(store, indent=2).encode() for path, store in stores.items()}
