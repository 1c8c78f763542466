"""Bring a topology up on Docker, sealed, and take it down without a trace.

The lab is sealed: every network of a topology is ``internal`` (no route out, no
masquerading), so no proxy or Bitbucket can reach or resolve anything outside the lab.
The only way in is one SOCKS gateway per network, published on the host's 127.0.0.1 from
a per-run publishing bridge without masquerading; it connects to the lab's own names only
and refuses any other name before looking it up.

Every container and network carries the lab's labels (run id, owning pid, host), so a
run killed with SIGKILL is swept by the next one, and ``down --all`` removes exactly what
the lab owns. A topology's containers start in parallel; a node counts as up when one of
its ports accepts a connection made *through the gateway on its network* — Docker's port
proxy on the host accepts before the server inside listens, the gateway does not lie.
One docker SDK client serves a whole run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import io
import os
import secrets
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.models.volumes import Volume

from lab import browser as browser_node
from lab.browser import BrowserEndpoint
from lab.client import Vantage
from lab.docker_env import RUN_LABEL, docker_client
from lab.errors import LabError
from lab.images import DEFAULT_RELEASE, ensure_images
from lab.pki import TlsFiles, make_pki
from lab.progress import SILENT, Progress
from lab.readiness import wait_until_ready
from lab.sshkeys import SshKeys, make_ssh_keys, remove_ssh_keys, run_ssh_dir
from lab.networks import PUBLISH_NETWORK, create_networks, seal_environment
from lab.sweep import (owner_labels, owner_line, remove_everything, remove_run, run_objects, signals_held,
                       sweep_dead_key_folders, sweep_dead_runs, sweep_temp_leftovers)
from lab.provision import (BITBUCKET_SHARED, SSH_AUTHORIZED_KEYS_PATH, SSH_HOST_KEY_PATH, ContainerFile, DropIns,
                           NodeSetup, Provisioner, catalog_provisioner)
from lab.topology import Node, Topology, certs_dir_for, image_of, images_of

__all__ = ["LabOptions", "RunningTopology", "remove_everything", "replace_node", "start", "sweep_dead_runs", "up"]

SEALED_DNS = ["127.0.0.1"]
"""Docker's embedded DNS still answers the lab's names; a name it does not know is passed
to this server inside the container's own namespace, where none listens — so no lookup
ever leaves the lab, even on hosts whose resolver Docker would query from the host."""
SEAL_CAPABILITIES = ["NET_ADMIN"]
"""Held only by each image's entrypoint (``lab-seal``), which removes the container's
default route — Docker adds one even on internal networks — closes the way to the Docker
host's address on each of its networks, and drops the capability (``setpriv``) before the
service starts."""
GATEWAY_PORT = 1080
SHARED_REPOSITORIES = f"{BITBUCKET_SHARED}/data"
NODE_LABEL = "org.bitbucket-lab.node"
TOPOLOGY_LABEL = "org.bitbucket-lab.topology"


@dataclass(frozen=True)
class LabOptions:
    """How to run a topology: drop-ins, the TLS variant, where the PKI goes.

    A ``--public-url`` is applied to the topology itself (``Topology.with_public_url``)
    before it gets here, so the aliases, the leaf's names and the checks all agree."""

    drop_ins: DropIns = field(default_factory=DropIns)
    tls_variant: str = "good"
    certs_dir: Path | None = None
    provisioner: Provisioner | None = None
    """Each node's files and environment; default: the catalog's, with the drop-ins."""
    backend_names: tuple[str, ...] | None = None
    """Names of Bitbucket's own TLS certificate, when they differ from the front door's."""
    proxy_release: str = DEFAULT_RELEASE
    """The Debian release the proxy comes from (``--proxy-version``)."""
    http2: bool = False
    """The recommended TLS front door also offers HTTP/2 (``--http2``)."""
    browser: bool = False
    """Start the browser node (and the PKI node its AIA fetches reach) with the topology,
    for the ``browser.*`` checks; the CLI's default, off with ``--no-browser``. A topology
    reloaded with ``False`` keeps a browser node it has, idle: its checks leave it out."""
    leaf_key: str = "ecdsa"
    """The key type of the front door's lab leaf (``lab.pki.LEAF_KEYS``): the catalog's ECDSA;
    reproduce picks the one the customer's cipher list accepts."""
    ssh_base_url_known: bool = True
    """False when Bitbucket's SSH base URL may be set where the lab cannot see it: it lives
    in Bitbucket's database, and a customer's bundle without ``plugin.ssh.baseurl`` leaves
    it unknown (an ssh link that answers nowhere is then a note, not a failure). A
    ``--properties`` drop-in without it leaves it unknown as well (``check_target``)."""


@dataclass
class RunningTopology:
    """A topology that is up: its containers by node name and its vantage points."""

    topology: Topology
    options: LabOptions
    run_id: str
    tls: TlsFiles
    client: docker.DockerClient
    containers: dict[str, Container] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    gateway_ports: dict[str, int] = field(default_factory=dict)
    provisioned: dict[str, NodeSetup] = field(default_factory=dict)
    """What each node was given, so a reload in place can tell what changed."""
    browser: BrowserEndpoint | None = None
    """The browser node's DevTools, when the run has one (``LabOptions.browser``)."""
    browser_driver: browser_node.BrowserDriver | None = None
    """The Playwright driver the browser checks share; ends with the run."""
    shared_home: Volume | None = None
    """A cluster's shared repositories (one volume for every Bitbucket node)."""
    settled_at: float = 0.0
    """When the topology last answered as configured (start, reload): log lines from before
    belong to its start or change, never to a check."""

    @property
    def public_url(self) -> str:
        return self.topology.public_url.rstrip("/")

    @property
    def ssh_keys(self) -> SshKeys:
        """The run's own SSH host and user keys (beside its TLS files, ``ssh-<run id>/``)."""
        return SshKeys(run_ssh_dir(self.tls.directory, self.run_id))

    def vantage(self, network: str = "outside") -> Vantage:
        """Where users stand (``outside``) or an admin on the server network (``inside``)."""
        if network not in self.gateway_ports:
            raise LabError(f"topology {self.topology.name} has no {network!r} network")
        return Vantage(self.gateway_ports[network], self.tls.ca)

    def logs(self, node: str, tail: int = 40) -> str:
        """The last lines of a node's output (stdout and stderr together)."""
        try:
            raw = self.containers[node].logs(tail=tail)
        except (APIError, NotFound, KeyError):
            return "(no logs: container gone)"
        text = raw.decode("utf-8", "replace").rstrip()
        return text or "(the container printed nothing)"

    def exited_nodes(self) -> list[str]:
        """One line per container of this run that is no longer running (or is gone)."""
        lines = []
        for name, container in self.containers.items():
            try:
                container.reload()
            except NotFound:
                lines.append(f"{name} is gone: its container was removed")
                continue
            except APIError:
                continue  # the engine did not answer this time: not a verdict on the node
            if container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                lines.append(f"{name} exited with code {code}: {' | '.join(self.logs(name, 3).splitlines())}")
        return lines

    def stop(self) -> None:
        """Remove every container, then every network, of this run — also those created
        but not yet recorded when a start failed or was interrupted — and its SSH keys;
        never raises but the user's own interrupt. Ctrl-C (or SIGTERM) meanwhile is held
        until the removal has ended, then delivered: a second Ctrl-C no longer leaves the
        networks behind. Whatever the engine still holds afterwards is named on stderr with
        the command that removes it. The browser driver (a Playwright process) ends first."""
        with signals_held(f"taking run {self.run_id} down"):
            if self.browser_driver is not None:
                self.browser_driver.close()
            if self.containers:
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.containers)) as pool:
                    list(pool.map(_remove_quietly, self.containers.values()))
            if self.networks:
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.networks)) as pool:
                    list(pool.map(_remove_network_quietly, self.networks.values()))
            with contextlib.suppress(APIError, NotFound):  # what a failed or interrupted start created unrecorded
                remove_run(self.client, self.run_id)  # and the shared home, once no container holds it
            remove_ssh_keys(self.ssh_keys)
            self._say_what_is_left()

    def _say_what_is_left(self) -> None:
        try:
            left = run_objects(self.client, self.run_id)
        except (APIError, NotFound, OSError) as error:
            left = [f"(the engine did not say: {str(error).splitlines()[0] if str(error) else type(error).__name__})"]
        if left:
            print(f"warning: run {self.run_id} left {', '.join(left)}; `python -m lab down` removes them once this "
                  "process has ended", file=sys.stderr)


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
    tags = ensure_images(images_of(topology), progress=progress, release=options.proxy_release)
    if options.browser:  # built on first use only (Chromium is big); cached by content after
        tags |= ensure_images(("browser",), progress=progress)
    client = docker_client()
    sweep_dead_runs(client)
    certs_dir = options.certs_dir or certs_dir_for(topology)
    tls = make_pki(certs_dir, topology.tls_names, options.tls_variant, backend_names=options.backend_names,
                   leaf_key=options.leaf_key)
    sweep_dead_key_folders(certs_dir)
    sweep_temp_leftovers()
    run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
    labels = {**owner_labels(), RUN_LABEL: run_id, TOPOLOGY_LABEL: topology.name}
    running = RunningTopology(topology, options, run_id, tls, client)
    try:
        make_ssh_keys(certs_dir, run_id, owner_line())
        started = time.monotonic()
        progress.step(f"starting {topology.name} (run {run_id})")
        if options.browser:  # the driver process starts while the containers do
            running.browser_driver = browser_node.BrowserDriver()
        _create_networks(running, labels)
        _create_shared_home(running, labels)
        _start_containers(running, tags, labels)
        wait_until_ready(running)
        running.settled_at = time.time()
        if options.browser:
            running.browser = _browser_endpoint(running)
        progress.step(f"{topology.name} is up in {time.monotonic() - started:.1f} s")
    except BaseException:
        running.stop()
        raise
    return running


def _create_networks(running: RunningTopology, labels: dict[str, str]) -> None:
    """Small subnets of the lab's own pool; internal but for the publishing bridge (``lab.networks``)."""
    create_networks(running.client, f"lab-{running.run_id}", running.topology, labels, running.networks)


def _create_shared_home(running: RunningTopology, labels: dict[str, str]) -> None:
    """The nodes of a Data Center cluster share their repositories (Bitbucket's shared
    home), here one Docker volume mounted in every Bitbucket node."""
    if running.topology.clustered:
        running.shared_home = running.client.volumes.create(f"lab-{running.run_id}-shared-home", labels=labels)


def _start_containers(running: RunningTopology, tags: dict[str, str], labels: dict[str, str]) -> None:
    topology = running.topology
    plans = [_node_plan(running, node, tags[image_of(node)], labels) for node in topology.nodes]
    plans += [_gateway_plan(running, net, tags["gateway"], labels) for net in topology.networks]
    if running.options.browser:  # in parallel with the topology: Chromium starts while the proxy does
        plans += _browser_plans(running, tags, labels)
    _start_plans(running, plans)
    for network in topology.networks:
        running.gateway_ports[network] = _published_port(running.containers[f"gateway-{network}"])


def _start_plans(running: RunningTopology, plans: list[_Plan]) -> None:
    """Create and start ``plans`` in parallel; those sharing a host's network namespace after it."""
    hosts = [plan for plan in plans if plan.shares_host_with is None]
    guests = [plan for plan in plans if plan.shares_host_with is not None]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(plans)) as pool:
        for name, container in zip([p.name for p in hosts], pool.map(_create, hosts), strict=True):
            running.containers[name] = container
        for future in [pool.submit(_start_and_connect, running, plan) for plan in hosts]:
            future.result()
    for plan in guests:  # they join a started container's network namespace
        host = running.containers[str(plan.shares_host_with)]
        try:
            running.containers[plan.name] = _create(plan, host)
            running.containers[plan.name].start()
        except APIError:
            _explain_host_exit(running, str(plan.shares_host_with))
            raise


def _explain_host_exit(running: RunningTopology, host: str) -> None:
    """Docker refuses a guest whose host container has already exited ("cannot join network of
    a non running container"): the host's own reason is the one to report (a proxy that
    rejected the customer's config says so in its log)."""
    from lab.readiness import raise_if_exited  # readiness reads running topologies: imported late

    raise_if_exited(running, running.topology.node(host))


def attach_browser(running: RunningTopology) -> None:
    """Add the browser node and the PKI node to a topology started without them, as
    ``LabOptions(browser=True)`` would have at start (a kept topology asked for a browser);
    nothing when it has them."""
    if browser_node.BROWSER_NODE in running.containers:
        return
    tags = ensure_images(("gateway", "browser"))
    labels = {**owner_labels(), RUN_LABEL: running.run_id, TOPOLOGY_LABEL: running.topology.name}
    running.browser_driver = running.browser_driver or browser_node.BrowserDriver()
    _start_plans(running, _browser_plans(running, tags, labels))
    running.browser = _browser_endpoint(running)


def replace_node(running: RunningTopology, node: Node) -> None:
    """Recreate one node's container from its image for ``running.options`` (another proxy
    release), on the same networks under the same names; the rest of the topology keeps
    running. Readiness is the caller's to wait for."""
    if node.shares_host_with or any(other.shares_host_with == node.name for other in running.topology.nodes):
        raise LabError(f"{node.name} shares a network namespace: recreate the topology instead")
    tags = ensure_images((image_of(node),), release=running.options.proxy_release)
    labels = {**owner_labels(), RUN_LABEL: running.run_id, TOPOLOGY_LABEL: running.topology.name}
    _remove_quietly(running.containers.pop(node.name))
    _start_plans(running, [_node_plan(running, node, tags[image_of(node)], labels)])


@dataclass(frozen=True)
class _Plan:
    """One container to create: where it starts, what else it joins, what it holds."""

    name: str
    container_name: str
    image: str
    run_kwargs: dict[str, object]
    first_network: str
    networks: dict[str, tuple[str, ...]]  # network key → aliases
    files: Sequence[ContainerFile]
    client: docker.DockerClient
    network_names: dict[str, str]
    shares_host_with: str | None = None


def _node_plan(running: RunningTopology, node: Node, image: str, labels: dict[str, str]) -> _Plan:
    topology = running.topology
    provision = running.options.provisioner or catalog_provisioner(running.options.drop_ins, running.options.http2)
    setup = provision(topology, node, running.tls)
    running.provisioned[node.name] = setup
    kwargs: dict[str, object] = {"labels": {**labels, NODE_LABEL: node.name}, "init": True,
                                 "environment": {**setup.environment,
                                                 **_seal_environment(running, topology.networks_of(node))},
                                 "cap_add": SEAL_CAPABILITIES}
    if setup.command:
        kwargs["command"] = setup.command
    if node.kind == "stub" and running.shared_home is not None:
        kwargs["volumes"] = {running.shared_home.name: {"bind": SHARED_REPOSITORIES, "mode": "rw"}}
    files = _with_run_keys(setup.files, running.ssh_keys) if node.kind == "stub" else setup.files
    if node.shares_host_with:
        return _Plan(node.name, f"lab-{running.run_id}-{node.name}", image, kwargs, "", {}, files,
                     running.client, _network_names(running), node.shares_host_with)
    kwargs["hostname"] = node.name
    kwargs["dns"] = SEALED_DNS
    networks = {net: (*aliases, node.name) if net not in node.firewall else aliases
                for net, aliases in node.networks.items()}
    return _Plan(node.name, f"lab-{running.run_id}-{node.name}", image, kwargs, _primary_network(topology, node),
                 networks, files, running.client, _network_names(running))


def _with_run_keys(files: Sequence[ContainerFile], keys: SshKeys) -> list[ContainerFile]:
    """A Bitbucket node's files with the run's own SSH host key and the lab user's public
    key. They are the run's, not the provisioner's (which knows the TLS files only): a
    reload in place compares and re-copies the provisioner's files and leaves these be."""
    key_files = [ContainerFile(SSH_HOST_KEY_PATH, keys.host_key.read_bytes(), 0o600),
                 ContainerFile(SSH_AUTHORIZED_KEYS_PATH, keys.user_public_key.read_bytes())]
    return [item for item in files if item.path not in {key.path for key in key_files}] + key_files


def _gateway_plan(running: RunningTopology, network: str, image: str, labels: dict[str, str]) -> _Plan:
    """The gateway starts on the publishing bridge (so its port can be published) and
    joins its lab network; it lets users reach exactly the names of that network."""
    name = f"gateway-{network}"
    kwargs: dict[str, object] = {
        "labels": {**labels, NODE_LABEL: name}, "init": True, "cap_add": SEAL_CAPABILITIES, "dns": SEALED_DNS,
        "environment": {"LAB_ALLOW_NAMES": " ".join(running.topology.gateway_allows(network)),
                        **_seal_environment(running, (PUBLISH_NETWORK, network), (GATEWAY_PORT,))},
        # Published on loopback only: the docker SDK takes (address, None) for "any free port".
        "ports": {f"{GATEWAY_PORT}/tcp": ("127.0.0.1", None)},
    }
    networks: dict[str, tuple[str, ...]] = {PUBLISH_NETWORK: (), network: ()}
    return _Plan(name, f"lab-{running.run_id}-{name}", image, kwargs, PUBLISH_NETWORK, networks, (),
                 running.client, _network_names(running))


def _browser_plans(running: RunningTopology, tags: dict[str, str], labels: dict[str, str]) -> list[_Plan]:
    """The browser node (publishing bridge for its DevTools port, then the users' network,
    no alias) and the PKI node (users' network only, as ``pki.lab.test``); both sealed."""
    users = browser_node.USERS_NETWORK
    if users not in running.networks:
        raise LabError(f"topology {running.topology.name} has no {users!r} network for the browser node")
    sealed: dict[str, object] = {"init": True, "cap_add": SEAL_CAPABILITIES, "dns": SEALED_DNS}
    name, pki = browser_node.BROWSER_NODE, browser_node.PKI_NODE
    browser_kwargs: dict[str, object] = {**sealed, "labels": {**labels, NODE_LABEL: name}, "hostname": name,
                                         "ports": {f"{browser_node.CDP_PORT}/tcp": ("127.0.0.1", None)},
                                         "environment": {"LAB_BROWSER_NAMES": " ".join(
                                             browser_node.web_names(running.topology.gateway_allows(users))),
                                             **_seal_environment(running, (PUBLISH_NETWORK, users),
                                                                 (browser_node.CDP_PORT,))}}
    pki_kwargs: dict[str, object] = {**sealed, "labels": {**labels, NODE_LABEL: pki}, "hostname": pki,
                                     "command": browser_node.PKI_COMMAND,
                                     "environment": {**browser_node.PKI_ENVIRONMENT,
                                                     **_seal_environment(running, (users,))}}
    return [
        _Plan(name, f"lab-{running.run_id}-{name}", tags["browser"], browser_kwargs, PUBLISH_NETWORK,
              {PUBLISH_NETWORK: (), users: ()}, browser_node.browser_files(running.tls), running.client,
              _network_names(running)),
        _Plan(pki, f"lab-{running.run_id}-{pki}", tags["gateway"], pki_kwargs, users,
              {users: browser_node.PKI_ALIASES}, browser_node.pki_files(running.tls), running.client,
              _network_names(running)),
    ]


def _browser_endpoint(running: RunningTopology) -> BrowserEndpoint:
    """The browser node's DevTools on the host, once they answer (bounded; its log on a timeout)."""
    container = running.containers[browser_node.BROWSER_NODE]
    port = _published_port(container, browser_node.CDP_PORT)
    log = functools.partial(running.logs, browser_node.BROWSER_NODE, 40)
    version = browser_node.wait_for_devtools(port, log)
    artifacts = Path(tempfile.gettempdir()) / f"bitbucket-lab-{running.run_id}"
    url = f"http://127.0.0.1:{port}"
    assert running.browser_driver is not None
    running.browser_driver.connect_soon(url, log)
    return BrowserEndpoint(url, artifacts, version, log, running.browser_driver)


def _seal_environment(running: RunningTopology, networks: Iterable[str],
                      published: Sequence[int] = ()) -> dict[str, str]:
    return seal_environment([running.networks[key] for key in networks], published)


def _network_names(running: RunningTopology) -> dict[str, str]:
    return {key: str(network.name) for key, network in running.networks.items()}


def _create(plan: _Plan, host: Container | None = None) -> Container:
    if host is not None:
        container = plan.client.containers.create(plan.image, name=plan.container_name, detach=True,
                                                  network_mode=f"container:{host.id}", **plan.run_kwargs)
    else:
        first = plan.network_names[plan.first_network]
        endpoint = plan.client.api.create_endpoint_config(aliases=list(plan.networks[plan.first_network]) or None)
        container = plan.client.containers.create(
            plan.image, name=plan.container_name, detach=True, network=first,
            networking_config={first: endpoint}, **plan.run_kwargs)
    if plan.files:
        container.put_archive("/", tar_files(plan.files))
    return container


def _start_and_connect(running: RunningTopology, plan: _Plan) -> None:
    """Every network is connected before the start: the entrypoint's seal sees all the
    routes Docker will give the container, none arrives after it."""
    container = running.containers[plan.name]
    for network, aliases in plan.networks.items():
        if network != plan.first_network:
            running.networks[network].connect(container, aliases=list(aliases) or None)
    container.start()


def tar_files(files: Sequence[ContainerFile]) -> bytes:
    """A tar of ``files`` at their absolute paths, with every parent directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directories: set[str] = set()
        for item in files:
            parents = Path(item.path.lstrip("/")).parents
            for parent in reversed([p.as_posix() for p in parents if p.as_posix() != "."]):
                if parent not in directories:
                    directories.add(parent)
                    info = tarfile.TarInfo(parent)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                    archive.addfile(info)
            info = tarfile.TarInfo(item.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(item.data), item.mode, int(time.time())
            archive.addfile(info, io.BytesIO(item.data))
    return buffer.getvalue()


def _published_port(container: Container, port: int = GATEWAY_PORT) -> int:
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
    if not bindings:
        raise LabError(f"{container.name}: Docker published no port for {port}")
    return int(bindings[0]["HostPort"])


def _primary_network(topology: Topology, node: Node) -> str:
    """The network a node is created on: the one it shares with Bitbucket; the others are
    connected before it starts."""
    shared = [net for net in node.networks if net in topology.bitbucket.networks]
    return shared[0] if shared else next(iter(node.networks))


def _remove_network_quietly(network: Network) -> None:
    with contextlib.suppress(APIError, NotFound):
        network.remove()


def _remove_quietly(container: Container) -> None:
    with contextlib.suppress(APIError, NotFound):
        container.remove(force=True, v=True)
