"""What goes into each container of a topology: config files, properties, TLS material.

The drop-in contract lives here: ``--proxy-config`` replaces the site file verbatim,
``--properties`` replaces ``bitbucket.properties`` verbatim; the lab's minimal
``nginx.conf``/``httpd.conf`` include the site file, TLS files sit in ``/etc/lab/tls/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.pki import TlsFiles
from lab.sshkeys import SSH_DIR, SshKeys
from lab.stub.properties import parse_properties  # Java properties syntax: one reader for lab and stub
from lab.proxies import KINDS
from lab.topology import Node, Topology, properties_text

BITBUCKET_SHARED = "/var/atlassian/application-data/bitbucket/shared"
KEYSTORE_PATH = f"{BITBUCKET_SHARED}/config/ssl-keystore"
SSH_HOST_KEY_PATH = f"{BITBUCKET_SHARED}/config/ssh-server-keys.pem"
SSH_AUTHORIZED_KEYS_PATH = f"{BITBUCKET_SHARED}/config/lab-authorized-keys"
SITE_PATH = "/etc/lab/site.conf"
TLS_DIR = "/etc/lab/tls"


@dataclass(frozen=True)
class ContainerFile:
    """A file copied into a container before it starts."""

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class DropIns:
    """A customer's own files, used verbatim instead of the generated ones."""

    proxy_config: Path | None = None
    properties: Path | None = None

    def validate(self, topology: Topology) -> None:
        """LabError for unreadable files, or a proxy config for a topology with no proxy."""
        for option, path in (("--proxy-config", self.proxy_config), ("--properties", self.properties)):
            if path is None:
                continue
            if not path.is_file():
                raise LabError(f"{option} {path}: no such file")
            try:
                with path.open("rb"):
                    pass
            except OSError as error:
                raise LabError(f"{option} {path}: cannot read it ({error.strerror})") from None
        if self.proxy_config is not None and topology.proxy is None:
            raise LabError(f"topology {topology.name} has no proxy, so --proxy-config has nothing to replace")


@dataclass(frozen=True)
class NodeSetup:
    """What a container of a node starts with: files copied in, environment variables."""

    files: list[ContainerFile]
    environment: dict[str, str]
    command: list[str] | None = None
    """The container's command, when not its image's (a neighbour's responder in the gateway image)."""


Provisioner = Callable[[Topology, Node, TlsFiles], NodeSetup]
"""Decides each node's files and environment. The catalog's is :func:`catalog_provisioner`;
``reproduce`` brings its own, built from a customer's bundle."""


def catalog_provisioner(drop_ins: DropIns, http2: bool = False) -> Provisioner:
    """The catalog's files (site file, properties, lab TLS files), or the drop-ins verbatim."""
    def provision(topology: Topology, node: Node, tls: TlsFiles) -> NodeSetup:
        return NodeSetup(node_files(topology, node, tls, drop_ins, http2), node_environment(topology, node))
    return provision


def node_files(topology: Topology, node: Node, tls: TlsFiles, drop_ins: DropIns,
               http2: bool = False) -> list[ContainerFile]:
    """Every file ``node`` needs, by its kind."""
    if node.kind == "stub":
        return _stub_files(topology, tls, drop_ins)
    if node.kind in KINDS:
        return _proxy_files(topology, node, tls, drop_ins, http2)
    return []


def node_environment(topology: Topology, node: Node) -> dict[str, str]:
    """Environment variables ``node`` starts with. A proxy waits (bounded) until
    Bitbucket's names on the networks it shares with it resolve: nginx refuses a config
    whose upstream does not resolve yet, and a topology's containers start together."""
    if node.kind == "stub":
        return {}
    names = [stub.networks[net][0] for stub in topology.bitbucket_nodes for net in node.networks
             if net in stub.networks]
    return {"LAB_WAIT_FOR_HOSTS": " ".join(names)}


def properties_bytes(topology: Topology, drop_ins: DropIns) -> bytes:
    """The ``bitbucket.properties`` Bitbucket gets: the customer's file verbatim, or the topology's."""
    if drop_ins.properties:
        return drop_ins.properties.read_bytes()
    return properties_text(topology.properties).encode()


def effective_properties(topology: Topology, drop_ins: DropIns) -> dict[str, str]:
    """{key: value} of the properties Bitbucket runs with, read as Java reads them."""
    data = properties_bytes(topology, drop_ins)
    try:
        return parse_properties(data.decode("utf-8"))
    except UnicodeDecodeError:
        return parse_properties(data.decode("iso-8859-1"))


def _stub_files(topology: Topology, tls: TlsFiles, drop_ins: DropIns) -> list[ContainerFile]:
    properties = properties_bytes(topology, drop_ins)
    return [ContainerFile(f"{BITBUCKET_SHARED}/bitbucket.properties", properties),
            ContainerFile(KEYSTORE_PATH, tls.keystore.read_bytes(), 0o600), *ssh_files(tls)]


def ssh_files(tls: TlsFiles) -> list[ContainerFile]:
    """Bitbucket's SSH host key and the lab user's registered public key, from the run's
    ``ssh/`` folder beside its TLS files (none when the run made no SSH keys)."""
    keys = SshKeys(tls.directory / SSH_DIR)
    if not keys.host_key.is_file():
        return []
    return [ContainerFile(SSH_HOST_KEY_PATH, keys.host_key.read_bytes(), 0o600),
            ContainerFile(SSH_AUTHORIZED_KEYS_PATH, keys.user_public_key.read_bytes())]


def _proxy_files(topology: Topology, node: Node, tls: TlsFiles, drop_ins: DropIns,
                 http2: bool = False) -> list[ContainerFile]:
    kind = KINDS[node.kind]
    site_source = drop_ins.proxy_config or topology.proxy_site_file()
    if site_source is None:
        raise LabError(f"topology {topology.name}: proxy node {node.name} has no proxy_site")
    site = site_source.read_bytes()
    if http2 and drop_ins.proxy_config is None:
        # --http2: the one edit that makes the kind's recommended TLS front door offer HTTP/2 (ALPN).
        # A drop-in or a customer's file is never edited: checks find h2 by asking the front door.
        old, new = kind.http2_edit or ("", "")
        if not old or old.encode() not in site:
            raise LabError(f"--http2: topology {topology.name} has no TLS front door to offer HTTP/2 on")
        site = site.replace(old.encode(), new.encode())
    files = [ContainerFile(SITE_PATH, site)]
    if kind.base_config is not None:
        base_name, base_path = kind.base_config
        files.insert(0, ContainerFile(base_path, (kind.package / base_name).read_bytes()))
    for name, data in tls.proxy_files().items():
        private = name in kind.private_tls_files
        files.append(ContainerFile(f"{TLS_DIR}/{name}", data, 0o600 if private else 0o644))
    return files
