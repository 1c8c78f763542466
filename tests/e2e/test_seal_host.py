"""Issue 28, item 1: no lab container can open a connection to the Docker host.

Docker leaves the host's INPUT open, and removing a container's default route keeps
on-link addresses reachable: the host's address on each bridge (the network's gateway).
A customer's nginx with ``location /g/ { proxy_pass http://<gateway>:<port>/; }`` would
serve a host-only listener to users through the front door.

The test's own listeners stand on the host, one on each gateway address of its topology
(the target the lab's containers try to reach; the host itself never connects to a
container's address). Every container kind tries each gateway of the networks it is on;
the front door is given a site that proxies ``/g/`` to one of them. The negative controls
beside them: what a container may reach (Bitbucket from the proxy) it still reaches, and
the same site still serves Bitbucket on ``/``. The host's address on docker0, on no network
of the lab's, is tried too: with no default route it has no way in. A seal that cannot be
installed ends the container (fails closed).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from docker.errors import NotFound
from docker.types import IPAMConfig, IPAMPool

from lab.browser import BROWSER_NODE, PKI_NODE
from lab.docker_env import RUN_LABEL, docker_client
from lab.images import ensure_images
from lab.networks import first_host, pick_subnets, subnet_pool, subnets_in_use
from lab.provision import ContainerFile, DropIns
from lab.reload import reload_in_place
from lab.runtime import PUBLISH_NETWORK, SEAL_CAPABILITIES, RunningTopology, tar_files
from lab.sweep import owner_labels

SECRET = b"host-only listener: the lab must never see this"
CONNECT_TIMEOUT_S = 5


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_no_lab_container_can_connect_to_the_docker_host_on_any_bridge_it_is_on(lab_topology):
    running = lab_topology("nginx-http", browser=True)
    with host_listeners({**gateways(running), **docker0()}) as listeners:
        tried = []
        for node in running.containers:
            # The bridges it is on, and docker0: the host's address on no network of the lab's.
            for key in [*networks_of(running, node), *docker0()]:
                address, port = listeners.addresses[key]
                assert connect_from(running, node, address, port) != 0, f"{node} reached the host at {address}:{port}"
                tried.append((node, key))
        assert {node for node, _ in tried} >= {"proxy", "bitbucket", "gateway-outside", "gateway-inside",
                                               BROWSER_NODE, PKI_NODE}
        assert (BROWSER_NODE, PUBLISH_NETWORK) in tried and ("gateway-outside", PUBLISH_NETWORK) in tried
        assert listeners.accepted == [], f"the host accepted connections from the lab: {listeners.accepted}"
        # Negative control: what the seal allows still connects, from the same containers the same way.
        assert connect_from(running, "proxy", "bitbucket", 7990) == 0
        assert connect_from(running, "gateway-inside", "bitbucket", 7990) == 0


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_a_customer_site_that_proxies_to_the_host_gets_nothing_through_the_front_door(lab_topology, tmp_path):
    running = lab_topology("nginx-http")
    with host_listeners(gateways(running)) as listeners:
        address, port = listeners.addresses["inside"]
        site = tmp_path / "site.conf"
        site.write_text(f"""server {{
    listen 80;
    server_name bitbucket.lab.test;
    location /g/ {{ proxy_pass http://{address}:{port}/; proxy_connect_timeout 5s; }}
    location / {{ proxy_pass http://bitbucket:7990; proxy_set_header Host $host; }}
}}
""")
        reload_in_place(running, dataclasses.replace(running.options, drop_ins=DropIns(proxy_config=site)))
        users = running.vantage("outside").session()
        answer = users.get("http://bitbucket.lab.test/g/", timeout=20)
        assert answer.status_code != 200 and SECRET not in answer.content, (answer.status_code, answer.text[:200])
        assert listeners.accepted == []
        # Negative control: the same site serves Bitbucket, so the front door itself works.
        assert users.get("http://bitbucket.lab.test/status", timeout=10).json() == {"state": "RUNNING"}


def test_a_seal_that_cannot_close_the_way_to_the_host_ends_the_container_with_lab_seal_error():
    client = docker_client()
    labels = {**owner_labels(), RUN_LABEL: f"{os.getpid()}-sealtest"}  # swept with this process if it dies
    subnet = pick_subnets({"sealtest": 1}, subnets_in_use(client), subnet_pool())["sealtest"]
    network = client.networks.create(f"lab-{os.getpid()}-sealtest", internal=True, labels=labels,
                                     ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet),
                                                                            gateway=first_host(subnet))]))
    # `ip rule add` refused (as on a kernel without policy routing); every other `ip` command is the real one.
    refusing_ip = ContainerFile("/usr/local/sbin/ip", b'#!/bin/sh\n[ "$1 $2" = "rule add" ] && exit 2\nexec /bin/ip "$@"\n',
                                0o755)
    try:
        for files, code in (([refusing_ip], 3), ([], 0)):  # the second: the negative control
            container = client.containers.create(ensure_images()["gateway"], ["true"], network=network.name,
                                                 cap_add=SEAL_CAPABILITIES, labels=labels,
                                                 environment={"LAB_SEAL_HOST_ADDRESSES": first_host(subnet)})
            try:
                if files:
                    container.put_archive("/", tar_files(files))
                container.start()
                exit_code = container.wait(timeout=60)["StatusCode"]
                logs = container.logs().decode()
            finally:
                container.remove(force=True)
            assert exit_code == code, logs
            assert ("LAB-SEAL-ERROR: could not close the way to the Docker host" in logs) == bool(files), logs
    finally:
        network.remove()


def gateways(running: RunningTopology) -> dict[str, str]:
    """{network key: the Docker host's address on that bridge (its IPAM gateway)}."""
    found = {}
    for key, network in running.networks.items():
        network.reload()
        found[key] = network.attrs["IPAM"]["Config"][0]["Gateway"].split("/")[0]
    return found


def docker0() -> dict[str, str]:
    """{"docker0": the host's address on Docker's default bridge}, when the engine has one."""
    try:
        config = docker_client().networks.get("bridge").attrs["IPAM"]["Config"]
    except (NotFound, KeyError):
        return {}
    return {"docker0": config[0]["Gateway"]} if config and config[0].get("Gateway") else {}


def networks_of(running: RunningTopology, node: str) -> list[str]:
    """The network keys a node's container is attached to."""
    container = running.containers[node]
    container.reload()
    names = set(container.attrs["NetworkSettings"]["Networks"])
    return [key for key, network in running.networks.items() if network.name in names]


def connect_from(running: RunningTopology, node: str, host: str, port: int) -> int:
    """The exit code of a TCP connect from inside ``node`` (0: connected), bounded."""
    script = f"exec 3<>/dev/tcp/{host}/{port}"
    result = running.containers[node].exec_run(["timeout", str(CONNECT_TIMEOUT_S), "bash", "-c", script])
    return int(result.exit_code)


@dataclasses.dataclass
class _Listeners:
    addresses: dict[str, tuple[str, int]]
    accepted: list[tuple[str, int]]


@dataclasses.dataclass
class _Serving:
    sockets: list[socket.socket]
    threads: list[threading.Thread]
    stop: threading.Event


@contextmanager
def host_listeners(addresses: dict[str, str]) -> Iterator[_Listeners]:
    """One listener on the host per bridge address, answering any connection with SECRET."""
    listeners = _Listeners({}, [])
    serving = _Serving([], [], threading.Event())
    try:
        for key, address in addresses.items():
            server = socket.socket()
            server.bind((address, 0))
            server.listen()
            server.settimeout(0.2)
            serving.sockets.append(server)
            listeners.addresses[key] = (address, server.getsockname()[1])
            thread = threading.Thread(target=_serve, args=(server, listeners, serving.stop), daemon=True)
            thread.start()
            serving.threads.append(thread)
        yield listeners
    finally:
        serving.stop.set()
        for thread in serving.threads:
            thread.join(timeout=5)
        for server in serving.sockets:
            server.close()


def _serve(server: socket.socket, listeners: _Listeners, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            connection, peer = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        listeners.accepted.append(peer[:2])
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(SECRET), SECRET))
