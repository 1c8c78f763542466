"""Topologies as data: who runs where, on which networks, reached by which names.

A topology is read from ``lab/topologies/<name>.toml``; see ``nginx-https.toml`` for a
commented example. The runtime adds one SOCKS gateway per network (the vantage points)
and the files each node needs; nothing else about a topology lives in code.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.hostnames import ascii_public_url
from lab.proxies import PROXIES_DIR, PROXY_KINDS

CATALOG_DIR = Path(__file__).resolve().parent / "topologies"
CERTS_ROOT = Path("certs")
"""Where every run's PKI goes, relative to the working directory: ``certs/<topology>/``."""
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|[0-9a-f:.]+", re.I)
NODE_KINDS = ("stub", "neighbour", *PROXY_KINDS)
IMAGE_OF_KIND = {"neighbour": "gateway"}
"""Node kinds run from another kind's image (a neighbour is a responder in the gateway image)."""


def image_of(node: Node) -> str:
    """The lab image ``node`` runs (``lab.images.SPECS``)."""
    return node.image or IMAGE_OF_KIND.get(node.kind, node.kind)


def images_of(topology: Topology) -> tuple[str, ...]:
    """The lab images ``topology`` runs: its nodes' and the gateway (one per network)."""
    return tuple(dict.fromkeys([*(image_of(node) for node in topology.nodes), "gateway"]))


@dataclass(frozen=True)
class Node:
    """One container: its image kind, its DNS aliases per network, the ports that answer
    once it is up."""

    name: str
    kind: str
    networks: Mapping[str, tuple[str, ...]]
    ports: tuple[int, ...]
    shares_host_with: str | None = None
    """Another node whose network namespace this one joins (Bitbucket on the proxy's own
    machine, reached as ``localhost``); such a node has no networks of its own."""
    image: str | None = None
    """The lab image it runs when not its kind's own (``lab.images.SPECS``): Apache laid out
    as the official ``httpd`` image for a customer's ``ServerRoot "/usr/local/apache2"``."""
    firewall: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    """Per network, the only ports users' traffic may reach on this node (a firewall in
    front of it): Bitbucket's SSH port open to users while its HTTP port is not."""


@dataclass(frozen=True)
class Topology:
    """A Bitbucket network topology, as a support engineer would draw it."""

    name: str
    summary: str
    diagram: str
    public_url: str
    nodes: tuple[Node, ...]
    properties: Mapping[str, str]
    proxy_site: str | None = None
    tls: bool = False
    tomcat_url: str = "http://bitbucket:7990"
    tomcat_reachable_by_users: bool = True
    http_url: str | None = None
    checks: tuple[str, ...] | None = None

    @property
    def proxy(self) -> Node | None:
        """The proxy node (nginx, apache or haproxy), if the topology has one."""
        return next((node for node in self.nodes if node.kind in PROXY_KINDS), None)

    @property
    def bitbucket(self) -> Node:
        """Bitbucket's (first) node."""
        return self.bitbucket_nodes[0]

    @property
    def bitbucket_nodes(self) -> tuple[Node, ...]:
        """Every Bitbucket node: one, or the nodes of a Data Center cluster."""
        return tuple(node for node in self.nodes if node.kind == "stub")

    @property
    def clustered(self) -> bool:
        return len(self.bitbucket_nodes) > 1

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def networks_of(self, node: Node) -> Mapping[str, tuple[str, ...]]:
        """The networks a node is on, through the node whose host it shares if any."""
        return self.node(node.shares_host_with).networks if node.shares_host_with else node.networks

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(net for node in self.nodes for net in node.networks))

    @property
    def context_path(self) -> str:
        return self.properties.get("server.context-path", "").rstrip("/")

    def proxy_site_file(self) -> Path | None:
        return PROXIES_DIR / self.proxy_site if self.proxy_site else None

    @property
    def public_host(self) -> str:
        return urllib.parse.urlsplit(self.public_url).hostname or ""

    @property
    def tls_names(self) -> list[str]:
        """Names the lab leaf certificate carries: the public host first, then every other
        name of the front door, then Bitbucket's internal name (for re-encrypting proxies)."""
        names = [self.public_host, *(name for name in self.names_on("outside") if "." in name), "bitbucket"]
        return list(dict.fromkeys(name for name in names if name))

    def names_on(self, network: str) -> list[str]:
        """Every name that resolves on ``network``: its nodes' aliases and node names."""
        names = [name for node in self.nodes if network in node.networks
                 for name in (*node.networks[network], *((node.name,) if network not in node.firewall else ()))]
        return list(dict.fromkeys(names))

    def gateway_allows(self, network: str) -> list[str]:
        """What the gateway on ``network`` lets users connect to: a name (any port), or
        ``name:port`` for a node behind a firewall (``firewall`` in the topology file)."""
        allowed: list[str] = []
        for node in self.nodes:
            if network not in node.networks:
                continue
            ports = node.firewall.get(network)
            if ports is None:
                allowed += [*node.networks[network], node.name]
            else:  # behind a firewall, a node is known there by its aliases only
                allowed += [f"{name}:{port}" for name in node.networks[network] for port in ports]
        return list(dict.fromkeys(allowed))

    def with_public_url(self, url: str) -> Topology:
        """This topology reached at ``url``: the front door (the node that answers the
        current public host) also answers the new host, and every URL of the topology that
        named the old host names the new one, so checks, aliases and certificates agree."""
        check_public_url(url)
        old_host, new_host = self.public_host, urllib.parse.urlsplit(url).hostname or ""
        nodes = tuple(dataclasses.replace(node, networks={
            net: (*aliases, new_host) if old_host in aliases and new_host not in aliases else aliases
            for net, aliases in node.networks.items()}) for node in self.nodes)
        return dataclasses.replace(
            self, public_url=url.rstrip("/"), nodes=nodes,
            http_url=_replace_host(self.http_url, old_host, new_host),
            tomcat_url=_replace_host(self.tomcat_url, old_host, new_host) or self.tomcat_url)


def catalog() -> list[str]:
    """Names of every topology in the catalog, sorted."""
    return sorted(path.stem for path in CATALOG_DIR.glob("*.toml"))


def load_topology(name: str) -> Topology:
    """The catalog topology ``name`` (a name, never a path); LabError naming the choices
    when it does not exist."""
    if name not in catalog():
        raise LabError(f"unknown topology {name!r}; the catalog has: {', '.join(catalog())} "
                       "(a file of your own goes with --topology-file)")
    return topology_from_toml(name, tomllib.loads((CATALOG_DIR / f"{name}.toml").read_text()))


def load_topology_file(path: Path) -> Topology:
    """A topology file of the user's own (``--topology-file``); its PKI still goes under
    ``certs/<name>/``. LabError for a missing, unreadable or malformed file."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as error:
        raise LabError(f"--topology-file {path}: cannot read it ({error.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise LabError(f"--topology-file {path}: not TOML ({error})") from None
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).lstrip(".") or "topology"
    try:
        return topology_from_toml(name, data)
    except (KeyError, TypeError, AttributeError) as error:
        raise LabError(f"--topology-file {path}: missing or malformed key {error}") from None


def certs_dir_for(topology: Topology) -> Path:
    """``certs/<topology>/`` under the working directory, whatever file the topology came from."""
    return CERTS_ROOT.resolve() / topology.name


def topology_from_toml(name: str, data: Mapping[str, Any]) -> Topology:
    """Build a Topology from a parsed catalog file (see nginx-https.toml for the keys)."""
    nodes = tuple(
        Node(node_name, str(spec["kind"]),
             {net: tuple(aliases) for net, aliases in spec["networks"].items()},
             tuple(spec.get("ports", ())),
             firewall={net: tuple(int(port) for port in ports) for net, ports in spec.get("firewall", {}).items()})
        for node_name, spec in data["nodes"].items()
    )
    for node in nodes:
        if node.kind not in NODE_KINDS:
            raise LabError(f"topology {name}: node {node.name} has unknown kind {node.kind!r}")
        if not node.networks or not all(node.networks.values()) or not node.ports:
            raise LabError(f"topology {name}: node {node.name} needs networks with at least one alias each, and ports")
    if not any(node.kind == "stub" for node in nodes):
        raise LabError(f"topology {name}: a node of kind \"stub\" (Bitbucket) is needed")
    if sum(1 for node in nodes if node.kind in PROXY_KINDS) > 1:
        raise LabError(f"topology {name}: at most one proxy node (the front door) is supported")
    public_url = str(data["public_url"])
    try:
        check_public_url(public_url)
    except LabError as error:
        raise LabError(f"topology {name}: {error}") from None
    checks = data.get("checks")
    if checks is not None:
        _check_ids(name, checks)
    return Topology(
        name=name, summary=str(data["summary"]), diagram=str(data.get("diagram", "")).strip("\n"),
        public_url=public_url, nodes=nodes,
        properties={k: str(v) for k, v in data.get("bitbucket-properties", {}).items()},
        proxy_site=data.get("proxy_site"),
        tls=bool(data.get("tls", False)),
        tomcat_url=str(data.get("tomcat_url", "http://bitbucket:7990")),
        tomcat_reachable_by_users=bool(data.get("tomcat_reachable_by_users", True)),
        http_url=data.get("http_url"),
        checks=tuple(checks) if checks is not None else None,
    )


def check_public_url(url: str) -> None:
    """LabError unless ``url`` is ``http(s)://host[:port][/path]`` (no query, no user)."""
    ascii_public_url(url)  # names, ports and IP addresses the lab cannot serve, said in one line
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise LabError(f"public URL {url!r} has a bad port") from None
    if parts.scheme not in ("http", "https"):
        raise LabError(f"public URL {url!r} is not an http:// or https:// URL")
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        raise LabError(f"public URL {url!r} has no usable host name")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise LabError(f"public URL {url!r} must not carry a query, fragment or credentials")
    if port == 0:
        raise LabError(f"public URL {url!r} has port 0")


def _check_ids(name: str, ids: object) -> None:
    from lab.checks import CHECK_IDS

    if not isinstance(ids, list):
        raise LabError(f"topology {name}: checks must be a list of check ids")
    unknown = [check_id for check_id in ids if check_id not in CHECK_IDS]
    if unknown:
        raise LabError(f"topology {name}: unknown check id {unknown[0]!r}; the lab has: {', '.join(CHECK_IDS)}")


def _replace_host(url: str | None, old: str, new: str) -> str | None:
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != old:
        return url
    netloc = new + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def properties_text(properties: Mapping[str, str]) -> str:
    """``bitbucket.properties`` text for the stub, one ``key=value`` a line."""
    header = "# bitbucket.properties generated by the lab for this topology\n"
    return header + "".join(f"{key}={value}\n" for key, value in properties.items())
