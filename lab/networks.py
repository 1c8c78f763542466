"""A run's networks: sized to need, addressed from the lab's own pool, and what the seal
needs to know of them.

Docker's default pools give every network a /16 (a run has three, so about ten runs fill
an engine before Docker answers "could not find an available, non-overlapping IPv4
address pool"). The lab instead cuts each network to its need — a /28 holds 13 containers
— out of a pool of its own, ``10.213.0.0/16`` by default (outside Docker's default pools,
172.17–31.x and 192.168.x), or ``LAB_SUBNET_POOL``. A subnet is free when no Docker
network and no route of this host overlaps it; two runs that pick the same one at once
are told by Docker ("overlaps"), and the loser picks again.

The bridge's own address on each network (its gateway) is the Docker host's: the seal
(``lab-seal``, each image's entrypoint) closes every container's way to it.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import ipaddress
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path

import docker
from docker.errors import APIError
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from lab.browser import USERS_NETWORK
from lab.errors import LabError
from lab.topology import Topology

PUBLISH_NETWORK = "publish"
"""The per-run bridge where gateways (and the browser's DevTools) are published on 127.0.0.1."""
SEAL_HOST_ADDRESSES = "LAB_SEAL_HOST_ADDRESSES"
"""The host's address (the IPAM gateway) on each network of a container: ``lab-seal``
prohibits every connection to them — Docker leaves the host's INPUT open to its bridges."""
SEAL_ANSWER_PORTS = "LAB_SEAL_ANSWER_PORTS"
"""The ports a container publishes: Docker's port proxy connects to them from the host's
address on the publishing bridge, and they alone may answer it (TCP from those ports)."""
NETWORK_ATTEMPTS = 8
"""Tries at creating a run's networks when other runs take the subnets picked first."""

POOL_ENV = "LAB_SUBNET_POOL"
DEFAULT_POOL = "10.213.0.0/16"
LARGEST_PREFIX = 28
"""The smallest subnet the lab gives a network: 16 addresses, 13 of them for containers."""
RESERVED_ADDRESSES = 3
"""The network's own address, its broadcast address and the bridge's (the gateway)."""
DOWN_ALL = "python -m lab down --all"


class PoolExhausted(LabError):
    """No free subnet of the size a network needs is left in the lab's pool."""


def subnet_pool(environ: Mapping[str, str] = os.environ) -> IPv4Network:
    """The pool the lab's networks come from: ``LAB_SUBNET_POOL`` or the default."""
    text = environ.get(POOL_ENV, "").strip() or DEFAULT_POOL
    try:
        pool = ipaddress.ip_network(text, strict=False)
    except ValueError:
        pool = None
    if not isinstance(pool, IPv4Network) or pool.prefixlen > LARGEST_PREFIX:
        raise LabError(f"{POOL_ENV}={text!r} is not an IPv4 range of /{LARGEST_PREFIX} or larger "
                       f"(like {DEFAULT_POOL})")
    return pool


def prefix_for(containers: int) -> int:
    """The longest prefix whose subnet holds ``containers`` besides its reserved addresses."""
    needed = containers + RESERVED_ADDRESSES
    return min(LARGEST_PREFIX, 32 - (needed - 1).bit_length())


def pick_subnets(containers: Mapping[str, int], used: Iterable[IPv4Network], pool: IPv4Network,
                 rng: random.Random | None = None) -> dict[str, IPv4Network]:
    """{network: a free subnet of ``pool`` for its number of containers}: none overlaps
    ``used`` or another picked one. The search starts at a random place of the pool (two
    runs starting at once rarely pick the same), then walks it round; the largest first.
    PoolExhausted when one does not fit."""
    taken = _Intervals(net for net in used if net.version == 4)
    picked: dict[str, IPv4Network] = {}
    for name in sorted(containers, key=lambda key: (prefix_for(containers[key]), key)):
        prefix = prefix_for(containers[name])
        subnet = _first_free(pool, prefix, taken, rng or random.Random())
        if subnet is None:
            raise PoolExhausted(
                f"the lab's address pool {pool} ({POOL_ENV}) has no free /{prefix} left for network {name}: "
                f"networks hold all of it (lab runs still up, other networks of this engine); "
                f"`{DOWN_ALL}` removes every lab run's, or set {POOL_ENV} to a larger free range")
        taken.add(subnet)
        picked[name] = subnet
    return picked


def host_routes(route_table: Path = Path("/proc/net/route")) -> list[IPv4Network]:
    """The destinations this host routes (its LAN, VPNs, bridges), bar the default route: a
    lab subnet over one of them would take that traffic. None where unknown (not Linux)."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return []
    routes = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination, mask = (_kernel_address(value) for value in (fields[1], fields[7]))
        if int(mask):
            routes.append(IPv4Network(f"{destination}/{mask}", strict=False))
    return routes


def _kernel_address(hex_text: str) -> ipaddress.IPv4Address:
    """An address as /proc/net/route writes it: hex, in the host's (little-endian) byte order."""
    return ipaddress.IPv4Address(int(hex_text, 16).to_bytes(4, "little"))


def first_host(subnet: IPv4Network) -> str:
    """The bridge's own address on ``subnet`` (the network's gateway), as Docker's default is."""
    return str(subnet.network_address + 1)


def _first_free(pool: IPv4Network, prefix: int, taken: _Intervals, rng: random.Random) -> IPv4Network | None:
    if prefix < pool.prefixlen:
        return None
    size = 1 << (32 - prefix)
    count = pool.num_addresses // size
    start = rng.randrange(count)
    base = int(pool.network_address)
    for step in range(count):
        first = base + ((start + step) % count) * size
        if taken.free(first, first + size - 1):
            return IPv4Network((first, prefix))
    return None


class _Intervals:
    """Address ranges in use, kept merged and sorted: an overlap test is one bisection."""

    def __init__(self, networks: Iterable[IPv4Network]) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for network in networks:
            self.add(network)

    def add(self, network: IPv4Network) -> None:
        ranges = sorted([*zip(self._starts, self._ends, strict=True),
                         (int(network.network_address), int(network.broadcast_address))])
        merged: list[list[int]] = []
        for start, end in ranges:
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts, self._ends = [start for start, _ in merged], [end for _, end in merged]

    def free(self, first: int, last: int) -> bool:
        """No range in use overlaps ``first``..``last``: the range starting last at or
        before ``last`` (disjoint ranges: it ends last of those) ends before ``first``."""
        index = bisect.bisect_right(self._starts, last) - 1
        return index < 0 or self._ends[index] < first


def create_networks(client: docker.DockerClient, prefix: str, topology: Topology, labels: dict[str, str],
                    networks: dict[str, Network]) -> None:
    """Create ``topology``'s networks into ``networks`` (by key, as each is made: a start
    that fails halfway knows what to remove). The topology's are internal (no way out); the
    publishing bridge does no masquerading. When another run takes a picked subnet first
    (Docker: "overlaps"), the ones still missing are picked again (bounded)."""
    specs: dict[str, dict[str, object]] = {name: {"internal": True} for name in topology.networks}
    specs[PUBLISH_NETWORK] = {"options": {"com.docker.network.bridge.enable_ip_masquerade": "false"}}
    sizes, pool = network_sizes(topology), subnet_pool()

    def create(name: str, subnet: IPv4Network) -> tuple[str, Network | None]:
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=first_host(subnet))])
        try:
            return name, client.networks.create(f"{prefix}-{name}", driver="bridge", labels=labels, ipam=ipam,
                                                **specs[name])
        except APIError as error:
            if "overlap" in str(error).lower():
                return name, None  # another run took it first: picked again
            raise

    for _ in range(NETWORK_ATTEMPTS):
        wanted = {name: sizes[name] for name in specs if name not in networks}
        if not wanted:
            return
        subnets = pick_subnets(wanted, subnets_in_use(client), pool)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(wanted)) as threads:
            futures = [threads.submit(create, name, subnets[name]) for name in wanted]
            for future in futures:  # unrecorded ones (one raised): the run's stop sweeps them by label
                name, network = future.result()
                if network is not None:
                    networks[name] = network
    if missing := [name for name in specs if name not in networks]:
        raise LabError(f"could not create network(s) {', '.join(missing)}: {NETWORK_ATTEMPTS} tries each met a "
                       f"subnet of {pool} another run had just taken (is something creating networks in a loop?)")


def network_sizes(topology: Topology) -> dict[str, int]:
    """{network: the containers it holds at most}: its nodes (a node sharing another's
    host has no address of its own), its gateway, on the users' network the browser and PKI
    nodes (a kept topology may add them later); on the publishing bridge every gateway and
    the browser."""
    sizes = {net: 1 + sum(1 for node in topology.nodes if net in node.networks and not node.shares_host_with)
             for net in topology.networks}
    if USERS_NETWORK in sizes:
        sizes[USERS_NETWORK] += 2
    sizes[PUBLISH_NETWORK] = len(topology.networks) + 1
    return sizes


def subnets_in_use(client: docker.DockerClient) -> list[IPv4Network]:
    """Every subnet of the engine's networks (anyone's), and this host's routes."""
    used = host_routes()
    for network in client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                subnet = ipaddress.ip_network(config["Subnet"], strict=False)
                if isinstance(subnet, IPv4Network):
                    used.append(subnet)
    return used


def seal_environment(networks: Iterable[Network], published: Sequence[int] = ()) -> dict[str, str]:
    """What ``lab-seal`` needs to close a container's way to the Docker host: the host's
    address on each of its ``networks``, and the ports Docker's port proxy reaches."""
    return {SEAL_HOST_ADDRESSES: " ".join(bridge_address(network) for network in networks),
            SEAL_ANSWER_PORTS: " ".join(str(port) for port in published)}  # none: not the image's default


def bridge_address(network: Network) -> str:
    """The Docker host's own address on ``network`` (its IPAM gateway)."""
    configs = (network.attrs.get("IPAM") or {}).get("Config") or [{}]
    gateway = str(configs[0].get("Gateway", "")).split("/")[0]
    if not gateway:
        raise LabError(f"network {network.name} has no gateway address: the seal cannot close the way to the host")
    return gateway
