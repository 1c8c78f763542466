"""Provision the lab's nodes for a decided reproduction: each node's files and environment.

The last of three steps (reading: :mod:`lab.reproduce`; deciding: :mod:`lab.reproduce.labmap`):
everything here was decided by :func:`lab.reproduce.labmap.reproduction` from the customer's
files; the lab's PKI (``TlsFiles``, made when the run starts) only fills it in. Nothing here
adds a mapping row, so the mapping can be printed before, and whether or not, anything runs.
"""

from __future__ import annotations

import urllib.parse

from lab.pki import KEYSTORE_ALIAS, KEYSTORE_PASSWORD, TlsFiles, keystore
from lab.provision import BITBUCKET_SHARED, ContainerFile, NodeSetup, Provisioner, ssh_files
from lab.reproduce.labmap import (ProxyPlan, Reproduction, alias, assumed_properties, lab_files, neighbour_nodes_by_name,
                                  stub_values, tls_connectors, working_copy)
from lab.reproduce.model import CustomerSetup, ProxySetup
from lab.reproduce.placement import host_of
from lab.reproduce.tlsmap import TlsPlacement, tls_container_files
from lab.topology import Node, Topology

NEIGHBOUR_COMMAND = ["python3", "/usr/local/bin/lab-neighbour.py"]
"""The neighbours' responder (lab/images/gateway/neighbour.py, in the gateway image)."""


def provisioner(plan: Reproduction) -> Provisioner:
    """The runtime's provisioner for ``plan``: files and environment of each node."""

    def provision(topology: Topology, node: Node, tls: TlsFiles) -> NodeSetup:
        if node.kind == "stub":
            return NodeSetup(_stub_files(plan.setup, tls), {})
        if node.kind == "neighbour":
            assert plan.setup.proxy is not None
            neighbour = neighbour_nodes_by_name(plan.topology, plan.setup.proxy)[node.name]
            return NodeSetup([], {"LAB_NEIGHBOUR_APP": neighbour.app, "LAB_NEIGHBOUR_PORTS": str(neighbour.upstream.port)},
                             command=NEIGHBOUR_COMMAND)
        assert plan.setup.proxy is not None and plan.proxy_plan is not None
        public_host = urllib.parse.urlsplit(topology.public_url).hostname or ""
        return _proxy_setup(plan.setup.proxy, plan.proxy_plan, plan.tls_placements, tls, public_host)

    return provision


def generated_properties(setup: CustomerSetup) -> bytes:
    """bitbucket.properties for a bundle whose settings live elsewhere (or nowhere): the
    customer's file first, then each setting with where it came from, or what was assumed."""
    lines = [setup.properties.path.read_text(encoding="utf-8-sig", errors="replace").rstrip("\n")] \
        if setup.properties is not None else []
    if not setup.has_settings:
        lines += ["# the bundle names none of Bitbucket's settings: the lab assumed what the proxy implies",
                  *assumed_properties(setup)]
    lines += [f"# {setting.written} ({setting.source})\n{setting.key}={setting.value}" for setting in setup.settings]
    lines += [f"# assumed: {why}\n{key}={value}" for key, value, why in setup.assumed]
    return ("\n".join(lines) + "\n").encode()


def _stub_files(setup: CustomerSetup, tls: TlsFiles) -> list[ContainerFile]:
    """The customer's properties verbatim (or defaults on the upstream's port), and a lab
    keystore wherever a TLS connector expects one, with the customer's alias and password."""
    values = stub_values(setup)
    if setup.properties is not None and not setup.settings:
        properties = setup.properties.path.read_bytes()
    else:
        properties = generated_properties(setup)
    files = [ContainerFile(f"{BITBUCKET_SHARED}/bitbucket.properties", properties)]
    files += [ContainerFile(store, _customer_keystore(tls, values, prefix), 0o600)
              for prefix, store in tls_connectors(values)]
    return files + ssh_files(tls)


def _customer_keystore(tls: TlsFiles, values: dict[str, str], prefix: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, cert, chain = pkcs12.load_key_and_certificates(tls.keystore.read_bytes(), KEYSTORE_PASSWORD.encode())
    assert key is not None and cert is not None
    pem = serialization.Encoding.PEM
    return keystore(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                    cert.public_bytes(pem), b"".join(c.public_bytes(pem) for c in chain or []),
                    values.get(f"{prefix}.ssl.key-alias", KEYSTORE_ALIAS).strip() or KEYSTORE_ALIAS,
                    values.get(f"{prefix}.ssl.key-store-password", KEYSTORE_PASSWORD))


def _proxy_setup(proxy: ProxySetup, plan: ProxyPlan, placements: list[TlsPlacement], tls: TlsFiles,
                 public_host: str) -> NodeSetup:
    files = [ContainerFile(item.path, working_copy(item, proxy)) for item in plan.placed]
    files += host_of(proxy.kind).lab_config_files(proxy, plan.placed, plan.start, public_host)
    placed_tls = tls_container_files(placements, tls)
    files += placed_tls
    files += [ContainerFile(path, data) for path, data in proxy.generated]  # what a translating reader wrote
    files += [ContainerFile(path, data, 0o600)  # Traefik ignores an ACME storage others can read
              for path, data in lab_files(proxy, {item.path: item.data for item in placed_tls}).items()]
    environment = dict(plan.start.environment)
    hosts = [*(alias(u) for u in proxy.upstreams if not u.is_local),
             *(alias(n.upstream, n.app) for n in proxy.neighbours if not n.upstream.is_local)]
    environment["LAB_WAIT_FOR_HOSTS"] = " ".join(dict.fromkeys(hosts))
    return NodeSetup(files, environment)
