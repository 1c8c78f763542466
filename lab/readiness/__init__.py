"""Readiness: a topology counts as up when users could use it, not when Docker says so.

Each node is up once one of its ports accepts a connection made *through the gateway on
its network* (Docker's port proxy accepts before the server inside listens) — a proxy's
only after its start script said the server itself starts (``nginx -t`` opens every
listener for a moment, so a port may accept during the config test and refuse just
after it, before the server binds it again); a node that
exits, or listens only elsewhere, is reported at once with its own words; a proxy that
health-checks Bitbucket is waited for until it stops answering 502/503.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import requests
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from lab.errors import LabError
from lab.proxies import KINDS
from lab.releases import rejection_hint
from lab.topology import Node

if TYPE_CHECKING:
    from lab.runtime import RunningTopology

READY_TIMEOUT_S = 60
UPSTREAM_UP_TIMEOUT_S = 15
LISTEN_GRACE_S = 5
ROUTES_SETTLE_S = 8
"""How long a proxy whose routes come after its listeners (``ProxyKind.routes_after_listening``)
may answer 404 or fail the handshake before that counts as its answer (Traefik: ~0.6 s idle)."""
DOCKER_DNS_HEX = "0B00007F"  # 127.0.0.11, Docker's embedded DNS, listens in every container
SERVER_STARTS = "LAB-SERVER-STARTS:"
"""What a proxy's start script prints once its config test is over, just before the server runs."""


def wait_until_ready(running: RunningTopology) -> None:
    """Each node is up once one of its ports accepts through the gateway of its first
    network. One port suffices: every listener of a node opens before it serves, and a
    customer's drop-in config may not listen on all the ports the topology names."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    # Bitbucket first: when it refuses to start, its own error is the one to report,
    # not the proxy's "host not found in upstream" that follows from it.
    # Then a customer's other applications, whose names the proxy resolves when it starts.
    for node in sorted(running.topology.nodes, key=lambda n: (n.kind != "stub", n.kind != "neighbour")):
        networks = running.topology.networks_of(node)
        network = next(iter(networks))
        _wait_for_any_port(running, node, network, networks[network][0], deadline)
    if running.topology.proxy is not None:
        _wait_for_upstream_up(running)


def _wait_for_upstream_up(running: RunningTopology) -> None:
    """A proxy that health-checks its upstream (HAProxy `check`, Apache's worker retry)
    answers 503 until it has seen Bitbucket up a few times; wait (bounded) until the public
    URL answers anything else, so the first check does not race the health check. A 502 is
    not waited on: the proxy tried Bitbucket just now and failed (a refused connection, a
    TLS name that does not match) — a finding for the checks, not a state that passes."""
    session = running.vantage("outside").session()
    session.verify = False  # TLS is judged by the checks; here any HTTP answer will do
    proxy = running.topology.proxy
    routing = proxy is not None and proxy.kind in KINDS and KINDS[proxy.kind].routes_after_listening
    deadline = time.monotonic() + UPSTREAM_UP_TIMEOUT_S
    routed_by = time.monotonic() + ROUTES_SETTLE_S
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while time.monotonic() < deadline:
            try:
                status: int | None = session.get(running.public_url + "/status", timeout=5,
                                                 allow_redirects=False).status_code
            except requests.RequestException:
                status = None  # no HTTP answer at all: the checks will name why
            if routing and status in (None, 404) and time.monotonic() < routed_by:
                time.sleep(0.1)  # its routes (and certificates) are not applied yet
                continue
            if status not in (503, 504):
                return
            time.sleep(0.2)


def _wait_for_any_port(running: RunningTopology, node: Node, network: str, host: str, deadline: float) -> None:
    vantage = running.vantage(network)
    running_since = time.monotonic()
    next_look = running_since + 1  # a proxy's workers, asked at most once a second (a docker exec each)
    started = False
    while True:
        started = started or _server_started(running, node)  # first: a listener seen after it is the server's
        if started and any(vantage.reaches(host, port, timeout=2) for port in node.ports):
            return
        if node.shares_host_with and set(listening_ports(running.containers[node.name]) or ()) & set(node.ports):
            return  # on its host's loopback only (server.address=127.0.0.1): up, though users cannot reach it
        raise_if_exited(running, node)
        if node.shares_host_with:  # its host gone (a proxy that rejected its config): that is the reason
            raise_if_exited(running, running.topology.node(node.shares_host_with))
        now = time.monotonic()
        looked = now > next_look and _has_workers(running, node)
        if now > next_look:
            next_look = now + 1
        if looked or now - running_since > LISTEN_GRACE_S:
            _raise_if_listening_elsewhere(running, node)
        if time.monotonic() > deadline:
            ports = ", ".join(str(port) for port in node.ports)
            raise LabError(f"{node.name} did not answer on {host} port {ports} within {READY_TIMEOUT_S} s; "
                           f"its log: {' | '.join(running.logs(node.name, 20).splitlines())}")
        time.sleep(0.1)


def _server_started(running: RunningTopology, node: Node) -> bool:
    """Whether the node's server runs (not a proxy's config test, which listens briefly too).
    The line is among the first its container prints: the log is read only up to it, not a
    kept proxy's whole log at every reload."""
    if node.kind not in KINDS:
        return True
    try:
        lines = running.containers[node.name].logs(stream=True, stdout=True, stderr=False)
    except (APIError, NotFound):
        return False
    try:
        return any(SERVER_STARTS.encode() in line for line in lines)
    finally:
        lines.close()


def _has_workers(running: RunningTopology, node: Node) -> bool:
    """A proxy with workers has opened every listener its config names (its master binds
    them first): what it listens on now is final — no need to sit out the grace."""
    if node.kind not in KINDS or not KINDS[node.kind].reload_waits_for_workers:
        return False  # a one-process server: its listeners are final only after the grace
    try:
        return bool(workers(running.containers[node.name], KINDS[node.kind].program))
    except (APIError, NotFound):
        return False


def workers(container: Container, program: str) -> set[int]:
    """Worker processes of ``program`` (every process of it but the master, whose parent is init)."""
    output = container.exec_run(["sh", "-c", f'for p in $(pidof {program}); do echo $p $(cut -d" " -f4 /proc/$p/stat); done'])
    pairs = [line.split() for line in output.output.decode().splitlines() if len(line.split()) == 2]
    return {int(pid) for pid, parent in pairs if parent != "1"}


def _raise_if_listening_elsewhere(running: RunningTopology, node: Node) -> None:
    """A node that runs but listens on none of the ports the topology names will never
    become ready: say so now, with the ports it does listen on, instead of waiting."""
    listening = listening_ports(running.containers[node.name])
    if listening is None or set(listening) & set(node.ports):
        return
    wanted = "/".join(str(port) for port in node.ports)
    if not listening:
        what = KINDS[node.kind].listener_words if node.kind in KINDS else "a port"
        raise LabError(f"{node.name} ({node.kind}) runs but listens on no port: its config opens no listener "
                       f"({what}); users need {wanted}")
    raise LabError(f"{node.name} ({node.kind}) listens on {', '.join(map(str, listening))}, "
                   f"not on {wanted} where the topology expects it")


def listening_ports(container: Container) -> list[int] | None:
    """TCP ports the container listens on (from /proc/net/tcp*), or None when unknown."""
    try:
        result = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    except (APIError, NotFound):
        return None
    ports = set()
    for line in result.output.decode("ascii", "replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:  # 0A: LISTEN
            address, port = fields[1].rsplit(":", 1)
            if address != DOCKER_DNS_HEX:
                ports.add(int(port, 16))
    return sorted(ports)


def raise_if_exited(running: RunningTopology, node: Node) -> None:
    """LabError naming why ``node`` exited (its config rejected, its seal, its properties), if it did."""
    container = running.containers[node.name]
    container.reload()
    if container.status not in ("exited", "dead"):
        return
    log = running.logs(node.name, tail=200)
    config_error = next((line.split("LAB-CONFIG-ERROR:", 1)[1].strip()
                         for line in log.splitlines() if "LAB-CONFIG-ERROR:" in line), None)
    if config_error:
        hint = rejection_hint(node.kind, config_error, running.options.proxy_release)
        raise LabError(f"{node.kind} rejected the proxy config: {config_error}{hint}")
    seal = next((line for line in log.splitlines() if "LAB-SEAL-ERROR:" in line), None)
    if seal:
        raise LabError(f"{node.name}: {seal.split('LAB-SEAL-ERROR:', 1)[1].strip()}")
    refusal = next((line for line in log.splitlines() if line.startswith("bitbucket.properties:")), None)
    if refusal:
        raise LabError(f"Bitbucket would not start with these properties: {refusal.split(':', 1)[1].strip()}")
    last = " | ".join(log.splitlines()[-3:])
    raise LabError(f"{node.name} ({node.kind}) exited with code "
                   f"{container.attrs['State'].get('ExitCode')}: {last}")
