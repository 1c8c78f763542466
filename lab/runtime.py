"""Bring a topology up on Docker with testcontainers, and take it down without a trace.

Every container and network carries the lab's labels (run id, owning pid, host), so a
run killed with SIGKILL is swept by the next one, and ``down --all`` removes exactly what
the lab owns. A topology's containers start in parallel; a node counts as up when its
ports accept a connection made *through the gateway on its network* — Docker's port
proxy on the host accepts before the server inside listens, the gateway does not lie.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, NotFound
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from lab.client import Vantage
from lab.docker_env import HOST_LABEL, LAB_LABEL, PID_LABEL, RUN_LABEL, docker_client
from lab.errors import LabError
from lab.images import ensure_images
from lab.pki import TlsFiles, make_pki
from lab.progress import SILENT, Progress
from lab.provision import DropIns, node_environment, node_files
from lab.topology import PUBLIC_HOST, Node, Topology

READY_TIMEOUT_S = 60
GATEWAY_PORT = 1080
NODE_LABEL = "org.bitbucket-lab.node"
TOPOLOGY_LABEL = "org.bitbucket-lab.topology"


@dataclass(frozen=True)
class LabOptions:
    """How to run a topology: drop-ins, the public URL the checks use, the TLS variant."""

    drop_ins: DropIns = field(default_factory=DropIns)
    public_url: str | None = None
    tls_variant: str = "good"
    certs_dir: Path | None = None


@dataclass
class RunningTopology:
    """A topology that is up: its containers by node name and its vantage points."""

    topology: Topology
    options: LabOptions
    run_id: str
    tls: TlsFiles
    containers: dict[str, DockerContainer]
    networks: dict[str, Network]
    gateway_ports: dict[str, int] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return (self.options.public_url or self.topology.public_url).rstrip("/")

    def vantage(self, network: str = "outside") -> Vantage:
        """Where users stand (``outside``) or an admin on the server network (``inside``)."""
        if network not in self.gateway_ports:
            raise LabError(f"topology {self.topology.name} has no {network!r} network")
        return Vantage(self.gateway_ports[network], self.tls.ca)

    def logs(self, node: str, tail: int = 40) -> str:
        """The last lines of a node's output (stdout and stderr together)."""
        try:
            raw = self.containers[node].get_wrapped_container().logs(tail=tail)
        except (APIError, NotFound):
            return "(no logs: container gone)"
        return raw.decode("utf-8", "replace").rstrip()

    def stop(self) -> None:
        """Remove every container, then every network, of this run; never raises."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.containers))) as pool:
            list(pool.map(_remove_quietly, self.containers.values()))
        for network in self.networks.values():
            with contextlib.suppress(APIError, NotFound, AssertionError):
                network.remove()


@contextlib.contextmanager
def up(topology: Topology, options: LabOptions | None = None,
       progress: Progress = SILENT) -> Iterator[RunningTopology]:
    """Start ``topology``, yield it running, and always take it down afterwards."""
    running = start(topology, options or LabOptions(), progress)
    try:
        yield running
    finally:
        running.stop()


def start(topology: Topology, options: LabOptions, progress: Progress = SILENT) -> RunningTopology:
    """Start ``topology``; on any failure, remove what was started and raise."""
    options.drop_ins.validate(topology)
    tags = ensure_images(progress=progress)
    client = docker_client()
    sweep_dead_runs(client)
    certs_dir = options.certs_dir or Path.cwd() / "certs" / topology.name
    tls = make_pki(certs_dir, [PUBLIC_HOST, "bitbucket"], options.tls_variant)
    run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
    labels = {LAB_LABEL: "1", RUN_LABEL: run_id, PID_LABEL: _owner_token(os.getpid()),
              HOST_LABEL: socket.gethostname(), TOPOLOGY_LABEL: topology.name}
    running = RunningTopology(topology, options, run_id, tls, {}, {})
    try:
        started = time.monotonic()
        progress.step(f"starting {topology.name} (run {run_id})")
        _create_networks(running, labels)
        _start_containers(running, tags, labels)
        _wait_until_ready(running)
        progress.step(f"{topology.name} is up in {time.monotonic() - started:.1f} s")
    except BaseException:
        running.stop()
        raise
    return running


def _create_networks(running: RunningTopology, labels: dict[str, str]) -> None:
    for name in running.topology.networks:
        network = Network(docker_network_kw={"labels": labels})
        network.name = f"lab-{running.run_id}-{name}"
        running.networks[name] = network.create()


def _start_containers(running: RunningTopology, tags: dict[str, str], labels: dict[str, str]) -> None:
    nodes = {node.name: node for node in running.topology.nodes}
    running.containers.update({name: _node_container(running, node, tags[node.kind], labels)
                               for name, node in nodes.items()})
    running.containers.update({f"gateway-{net}": _gateway_container(running, net, tags["gateway"], labels)
                               for net in running.networks})
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(running.containers)) as pool:
        futures = [pool.submit(_start_one, running, nodes.get(name), container)
                   for name, container in running.containers.items()]
        for future in futures:
            future.result()
    for network in running.networks:
        running.gateway_ports[network] = int(running.containers[f"gateway-{network}"].get_exposed_port(GATEWAY_PORT))


def _node_container(running: RunningTopology, node: Node, image: str, labels: dict[str, str]) -> DockerContainer:
    primary = _primary_network(running.topology, node)
    container = (DockerContainer(image)
                 .with_name(f"lab-{running.run_id}-{node.name}")
                 .with_network(running.networks[primary])
                 .with_network_aliases(*node.networks[primary], node.name)
                 .with_kwargs(labels={**labels, NODE_LABEL: node.name}, init=True))
    for key, value in node_environment(running.topology, node).items():
        container.with_env(key, value)
    for item in node_files(running.topology, node, running.tls, running.options.drop_ins):
        container.with_copy_into_container(item.data, item.path, item.mode)
    return container


def _gateway_container(running: RunningTopology, network: str, image: str,
                       labels: dict[str, str]) -> DockerContainer:
    name = f"gateway-{network}"
    container = (DockerContainer(image)
                 .with_name(f"lab-{running.run_id}-{name}")
                 .with_network(running.networks[network])
                 .with_kwargs(labels={**labels, NODE_LABEL: name}, init=True))
    # Published on loopback only: the docker SDK takes (address, None) for "any free port".
    container.ports[f"{GATEWAY_PORT}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
    return container


def _start_one(running: RunningTopology, node: Node | None, container: DockerContainer) -> None:
    container.start()
    if node is None:
        return
    primary = _primary_network(running.topology, node)
    for network, aliases in node.networks.items():
        if network != primary:
            running.networks[network].connect(container.get_wrapped_container().id, [*aliases, node.name])


def _primary_network(topology: Topology, node: Node) -> str:
    """The network a node starts on: the one it shares with Bitbucket, so a proxy can
    resolve its upstream at once; other networks are connected right after start."""
    shared = [net for net in node.networks if net in topology.bitbucket.networks]
    return shared[0] if shared else next(iter(node.networks))


def _wait_until_ready(running: RunningTopology) -> None:
    """Each node is up once one of its ports accepts through the gateway of its first
    network. One port suffices: every listener of a node opens before it serves, and a
    customer's drop-in config may not listen on all the ports the topology names."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    # Bitbucket first: when it refuses to start, its own error is the one to report,
    # not the proxy's "host not found in upstream" that follows from it.
    for node in sorted(running.topology.nodes, key=lambda n: n.kind != "stub"):
        network = next(iter(node.networks))
        _wait_for_any_port(running, node, network, node.networks[network][0], deadline)


def _wait_for_any_port(running: RunningTopology, node: Node, network: str, host: str, deadline: float) -> None:
    vantage = running.vantage(network)
    while True:
        if any(vantage.reaches(host, port, timeout=2) for port in node.ports):
            return
        _raise_if_exited(running, node)
        if time.monotonic() > deadline:
            ports = ", ".join(str(port) for port in node.ports)
            raise LabError(f"{node.name} did not answer on {host} port {ports} within {READY_TIMEOUT_S} s; "
                           f"its log:\n{running.logs(node.name)}")
        time.sleep(0.1)


def _raise_if_exited(running: RunningTopology, node: Node) -> None:
    wrapped = running.containers[node.name].get_wrapped_container()
    wrapped.reload()
    if wrapped.status not in ("exited", "dead"):
        return
    log = running.logs(node.name, tail=200)
    config_error = next((line.split("LAB-CONFIG-ERROR:", 1)[1].strip()
                         for line in log.splitlines() if "LAB-CONFIG-ERROR:" in line), None)
    if config_error:
        raise LabError(f"{node.kind} rejected the proxy config: {config_error}")
    refusal = next((line for line in log.splitlines() if line.startswith("bitbucket.properties:")), None)
    if refusal:
        raise LabError(f"Bitbucket would not start with these properties: {refusal.split(':', 1)[1].strip()}")
    last = " | ".join(log.splitlines()[-3:])
    raise LabError(f"{node.name} ({node.kind}) exited with code "
                   f"{wrapped.attrs['State'].get('ExitCode')}: {last}")


def _remove_quietly(container: DockerContainer) -> None:
    with contextlib.suppress(APIError, NotFound, AttributeError):
        if container._container is not None:
            container._container.remove(force=True, v=True)


def _owner_token(pid: int) -> str:
    """``pid:start-time`` — a pid alone may be reused by an unrelated process."""
    try:
        start_ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start_ticks = "?"
    return f"{pid}:{start_ticks}"


def _owner_alive(token: str) -> bool:
    pid_text, _, start_ticks = token.partition(":")
    if not pid_text.isdigit():
        return False
    if start_ticks != "?":
        return _owner_token(int(pid_text)) == token
    try:  # no /proc (macOS): the pid alone has to do
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_runs(client: docker.DockerClient | None = None) -> int:
    """Remove containers and networks of lab runs whose owning process on this host is
    gone (killed, crashed). Returns how many objects were removed."""
    client = client or docker_client()
    here = socket.gethostname()
    return _remove_labelled(client, lambda labels: labels.get(HOST_LABEL) == here
                            and not _owner_alive(labels.get(PID_LABEL, "")))


def remove_everything(client: docker.DockerClient | None = None) -> int:
    """``down --all``: every container and network carrying the lab's label, and nothing else."""
    return _remove_labelled(client or docker_client(), lambda labels: True)


def _remove_labelled(client: docker.DockerClient, should_remove: Callable[[dict[str, str]], bool]) -> int:
    removed = 0
    for container in client.containers.list(all=True, filters={"label": LAB_LABEL}, ignore_removed=True):
        if should_remove(container.labels):
            with contextlib.suppress(APIError, NotFound):
                container.remove(force=True, v=True)
                removed += 1
    for network in client.networks.list(filters={"label": LAB_LABEL}):
        if should_remove(network.attrs.get("Labels") or {}):
            with contextlib.suppress(APIError, NotFound):
                network.remove()
                removed += 1
    return removed
