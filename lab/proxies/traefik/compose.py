"""Traefik in a ``docker-compose.yml``: the ``traefik`` service's ``command:`` flags (its static
configuration) and the ``traefik.*`` labels of the services it routes to (the Docker provider's
dynamic configuration).

The lab has no Docker socket, so labels become the file provider's dynamic configuration
(:func:`docker_to_file`) as the Docker provider would read them: ``loadbalancer.server.port``
is a server at the container's address (the lab names it by its compose service name), a
router without ``service`` takes the one service its container's labels define, and
``@docker`` references are ``@file`` ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from lab.errors import LabError
from lab.proxies.traefik.tree import Tree, flags_tree, get, items, labels_tree, words
from lab.reproduce.model import BundleFile, Source
from lab.reproduce.settings import child, compose_yaml, env_values, interpolate, mapping_items, sequence

_TRAEFIK_IMAGE = re.compile(r"(?:^|/)traefik(?::|$)", re.I)


@dataclass(frozen=True)
class Labelled:
    """One compose service's Traefik labels, as the file provider's dynamic configuration."""

    service: str
    tree: Tree
    count: int
    source: Source
    changes: tuple[str, ...]    # what became what ("server.port 7990 → url http://bitbucket:7990")
    enabled: bool               # labelled traefik.enable=true


@dataclass(frozen=True)
class ComposeTraefik:
    """What the bundle's compose files say about Traefik."""

    flags: Tree | None          # the traefik service's command: as a static configuration
    labelled: tuple[Labelled, ...]


def read_compose(bundle: Sequence[BundleFile]) -> ComposeTraefik:
    """The traefik service's flags and every labelled service of the bundle's compose files."""
    variables = env_values(bundle)
    flags, labelled = None, []
    for file in (f for f in bundle if f.kind == "compose"):
        for name_node, service in mapping_items(child(compose_yaml(file), "services")):
            name = str(name_node.value)
            image = str(getattr(child(service, "image"), "value", "") or "")
            command = _command(file, child(service, "command"), variables)
            if _TRAEFIK_IMAGE.search(image) and command:
                flags = flags_tree(command, f"command: of service {name} ({file.relpath})")
            labels = _labels(file, child(service, "labels"), variables)
            if any(key.lower().startswith(("traefik.http.", "traefik.tcp.")) for key, _, _ in labels):
                labelled.append(_labelled(name, labels, file))
    return ComposeTraefik(flags, tuple(labelled))


def exposed(compose: ComposeTraefik, static: Tree) -> tuple[Labelled, ...]:
    """The labelled services Traefik routes to: none without a Docker provider (Traefik reads no
    labels then); with ``providers.docker.exposedByDefault=false``, those labelled ``traefik.enable=true``."""
    if get(static.data, "providers", "docker") is None:
        return ()
    by_default = str(get(static.data, "providers", "docker", "exposedByDefault")).lower() != "false"
    return tuple(item for item in compose.labelled
                 if by_default or item.enabled)


def _labelled(name: str, labels: list[tuple[str, str, Source]], file: BundleFile) -> Labelled:
    tree = labels_tree(labels, f"labels of service {name} ({file.relpath})")
    enable = next((value for key, value, _ in labels if key.lower() == "traefik.enable"), "")
    changes = docker_to_file(tree, name)
    count = sum(1 for key, _, _ in labels if key.lower().startswith("traefik."))
    return Labelled(name, tree, count, labels[0][2], tuple(changes), enable.strip().lower() == "true")


def docker_to_file(tree: Tree, host: str) -> list[str]:
    """Rewrite a labels tree into what the file provider reads (module docstring); the changes made."""
    changes: list[str] = []
    for protocol in ("http", "tcp"):
        services = get(tree.data, protocol, "services") or {}
        for service_name, service in items(services):
            balancer = get(service, "loadBalancer")
            server_key = next((key for key in balancer if key.lower() == "server"), None) if isinstance(balancer, dict) else None
            if server_key is None:
                continue
            server = balancer.pop(server_key)
            port = get(server, "port") or ""
            if protocol == "tcp":
                balancer["servers"] = [{"address": f"{host}:{port}"}]
                changes.append(f"{service_name}: server.port {port} → address {host}:{port}")
                continue
            url = get(server, "url") or f"{get(server, 'scheme') or 'http'}://{host}:{port}"
            balancer["servers"] = [{"url": url}]
            changes.append(f"{service_name}: server.port {port} → url {url}")
        for router_name, router in items(get(tree.data, protocol, "routers")):
            changes += _router_to_file(tree, protocol, router_name, router, services)
    return changes


def _router_to_file(tree: Tree, protocol: str, name: str, router: dict, services: dict) -> list[str]:
    changes = []
    if get(router, "service") is None:
        if len(services) != 1:
            raise LabError(f"{tree.source(protocol, 'routers', name)}: router {name} names no service and its "
                           f"container's labels define {len(services)}: Traefik would refuse it too; add "
                           f"traefik.{protocol}.routers.{name}.service")
        router["service"] = next(iter(services))
        changes.append(f"router {name} → service {router['service']} (its container's only one)")
    for key in [key for key in router if key.lower() in ("service", "middlewares")]:
        written = words(router[key])
        renamed = [re.sub(r"@docker$", "@file", word) for word in written]
        if renamed != written:
            router[key] = renamed if key.lower() == "middlewares" else renamed[0]
            changes.append(f"router {name}: {', '.join(w for w in written if w.endswith('@docker'))} → @file")
    return changes


def _command(file: BundleFile, node: yaml.Node | None, variables: dict[str, tuple[str, str]]) -> list[tuple[str, Source]]:
    if isinstance(node, yaml.ScalarNode):
        line = node.start_mark.line + 1
        return [(interpolate(word, variables, Source(file.relpath, line)), Source(file.relpath, line))
                for word in str(node.value).split()]
    found = []
    for item in _scalars(node):
        source = Source(file.relpath, item.start_mark.line + 1)
        found.append((interpolate(str(item.value), variables, source), source))
    return found


def _labels(file: BundleFile, node: yaml.Node | None, variables: dict[str, tuple[str, str]]) -> list[tuple[str, str, Source]]:
    """(key, value, source) of each label, ``key=value`` list items or a mapping."""
    pairs: list[tuple[str, str, int]] = []
    if isinstance(node, yaml.MappingNode):
        pairs = [(str(key.value), str(value.value), key.start_mark.line + 1) for key, value in node.value]
    for item in _scalars(node):
        key, _, value = str(item.value).partition("=")
        pairs.append((key.strip(), value, item.start_mark.line + 1))
    return [(key, interpolate(value, variables, Source(file.relpath, line)), Source(file.relpath, line))
            for key, value, line in pairs]


def _scalars(node: yaml.Node | None) -> list[yaml.ScalarNode]:
    """The scalar items of a YAML sequence (a list of flags or ``key=value`` labels)."""
    return [item for item in sequence(node) if isinstance(item, yaml.ScalarNode)]
