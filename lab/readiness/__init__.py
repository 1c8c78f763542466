"""Readiness: a topology counts as up when users could use it, not when Docker says so.

Each node is up once one of its ports accepts a connection made *through the gateway on
its network* (Docker's port proxy accepts before the server inside listens) — a proxy's
only after its start script said the server itself starts (``nginx -t`` opens every
listener for a moment, so a port may accept during the config test and refuse just
after it, before the server binds it again); a node that
exits, or listens only elsewhere, is reported at once with its own words; a proxy that
health-checks Bitbucket is waited for until it stops answering 503/504.

Each condition is a strategy (:mod:`lab.readiness.strategies`, where each says why it
exists); :mod:`lab.readiness.loop` is the one loop that asks them, with the deadline and
the poll interval; :mod:`lab.readiness.probes` is what is observed through Docker. This
module composes them: which strategies a node gets, in which order, on which probes.
"""

from __future__ import annotations

import functools
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.proxies import KINDS
from lab.readiness import probes
from lab.readiness.loop import POLL_S, SYSTEM_CLOCK, Clock, ask_once, wait
from lab.readiness.probes import DOCKER_DNS_HEX, SERVER_STARTS, listening_ports, workers
from lab.readiness.strategies import (
    LISTEN_GRACE_S, ROUTES_SETTLE_S, AllOf, Exit, ListenersFinal, ListensOnItsHostsLoopback,
    ListensWhereExpected, LogLineSeen, PortAccepts, RoutesLive, Round, StillRunning, Strategy, UpstreamUp)
from lab.topology import Node

if TYPE_CHECKING:
    from lab.runtime import RunningTopology

__all__ = ["DOCKER_DNS_HEX", "LISTEN_GRACE_S", "READY_TIMEOUT_S", "ROUTES_SETTLE_S", "SERVER_STARTS",
           "UPSTREAM_UP_TIMEOUT_S", "NodeProbes", "listening_ports", "node_strategies", "raise_if_exited",
           "upstream_strategies", "wait_for_node", "wait_until_ready", "workers"]

READY_TIMEOUT_S = 60
UPSTREAM_UP_TIMEOUT_S = 15
UPSTREAM_POLL_S = 0.2


@dataclass(frozen=True)
class NodeProbes:
    """What the loop may observe of one node: Docker's answers in a run, fakes in a test."""

    accepts: Callable[[], bool]
    """One of its ports accepts through the gateway of its network."""
    exit: Callable[[], Exit | None]
    listening: Callable[[], list[int] | None]
    log_tail: Callable[[], str]
    """Its last 20 lines, for the timeout message."""
    server_started: Callable[[], bool] | None = None
    """A proxy: its start script printed SERVER_STARTS (None: nothing to wait for)."""
    has_workers: Callable[[], bool] | None = None
    """A proxy whose master opens its listeners before its workers (None: no such sign)."""
    host_exit: Callable[[], Exit | None] | None = None
    """A guest: the exit of the node whose network namespace it shares."""


def wait_until_ready(running: RunningTopology) -> None:
    """Each node is up once one of its ports accepts through the gateway of its first
    network (:class:`PortAccepts` says why one port suffices); then the public URL, when
    a proxy serves it, until it answers as it will (bounded; no error when it does not)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    # Bitbucket first: when it refuses to start, its own error is the one to report,
    # not the proxy's "host not found in upstream" that follows from it.
    # Then a customer's other applications, whose names the proxy resolves when it starts.
    for node in sorted(running.topology.nodes, key=lambda n: (n.kind != "stub", n.kind != "neighbour")):
        networks = running.topology.networks_of(node)
        network = next(iter(networks))
        address = networks[network][0]
        host_node = running.topology.node(node.shares_host_with) if node.shares_host_with else None
        wait_for_node(node, address, _node_probes(running, node, network, address), deadline,
                      running.options.proxy_release, host_node)
    proxy = running.topology.proxy
    if proxy is not None:
        session = running.vantage("outside").session()
        session.verify = False  # TLS is judged by the checks; here any HTTP answer will do
        status = functools.partial(probes.status_of, session, running.public_url + "/status")
        # Routes that land ~0.6 s after the listeners are looked for as often as a node's port.
        poll_s = POLL_S if _routes_after_listening(proxy) else UPSTREAM_POLL_S
        placeholder = _placeholder_probe(running, proxy)
        wait(upstream_strategies(proxy, status, placeholder), time.monotonic() + UPSTREAM_UP_TIMEOUT_S, poll_s)


def _placeholder_probe(running: RunningTopology, proxy: Node) -> Callable[[], bool] | None:
    """Whether the front door still serves its kind's placeholder certificate; None for a
    kind without one or a plain-HTTP public URL."""
    placeholder = KINDS[proxy.kind].placeholder_certificate if proxy.kind in KINDS else ""
    parts = urllib.parse.urlsplit(running.public_url)
    if not placeholder or parts.scheme != "https" or parts.hostname is None:
        return None
    vantage, host, port = running.vantage("outside"), parts.hostname, parts.port or 443
    return functools.partial(probes.serves_certificate_named, lambda: vantage.connect(host, port), host, placeholder)


def wait_for_node(node: Node, address: str, seen: NodeProbes, deadline: float, release: str,
                  host_node: Node | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    """Wait until ``node`` is up (its strategies: :func:`node_strategies`) or raise a
    LabError: its own failure, or past ``deadline`` one line ending with its log's last lines."""
    def timed_out(_: object) -> str:
        ports = ", ".join(str(port) for port in node.ports)
        return (f"{node.name} did not answer on {address} port {ports} within {READY_TIMEOUT_S} s; "
                f"its log: {' | '.join(seen.log_tail().splitlines())}")

    wait(node_strategies(node, seen, release, host_node), deadline, POLL_S, timed_out=timed_out, clock=clock)


def node_strategies(node: Node, seen: NodeProbes, release: str, host_node: Node | None = None) -> list[Strategy]:
    """In the order they are asked: what makes the node ready (its server started and a
    port accepts; a guest listening on its host's loopback), then what fails it (it
    exited; its host exited; its final listeners are elsewhere)."""
    where = f"port {'/'.join(str(port) for port in node.ports)}"
    started = [LogLineSeen(SERVER_STARTS, seen.server_started)] if seen.server_started else []
    strategies: list[Strategy] = [AllOf(*started, PortAccepts(where, seen.accepts))]
    if host_node is not None:
        strategies.append(ListensOnItsHostsLoopback(node.ports, seen.listening))
    strategies.append(StillRunning(node.name, node.kind, release, seen.exit))
    if host_node is not None and seen.host_exit is not None:
        strategies.append(StillRunning(host_node.name, host_node.kind, release, seen.host_exit))
    words = KINDS[node.kind].listener_words if node.kind in KINDS else "a port"
    strategies.append(AllOf(ListenersFinal(seen.has_workers),
                            ListensWhereExpected(node.name, node.kind, node.ports, words, seen.listening)))
    return strategies


def upstream_strategies(proxy: Node, status: Callable[[], int | None],
                        placeholder_served: Callable[[], bool] | None = None) -> list[Strategy]:
    """The public URL answers as it will: its routes live (a kind that applies them after
    it listens), then anything but a health check's 503/504."""
    up = UpstreamUp(status)
    routes = RoutesLive(status, placeholder_served=placeholder_served)
    return [AllOf(routes, up)] if _routes_after_listening(proxy) else [up]


def _routes_after_listening(proxy: Node) -> bool:
    return proxy.kind in KINDS and KINDS[proxy.kind].routes_after_listening


def raise_if_exited(running: RunningTopology, node: Node) -> None:
    """LabError naming why ``node`` exited (its config rejected, its seal, its properties), if it did."""
    ask_once([StillRunning(node.name, node.kind, running.options.proxy_release, _exit_probe(running, node))],
             Round(lambda: 0.0))


def _node_probes(running: RunningTopology, node: Node, network: str, address: str) -> NodeProbes:
    container = running.containers[node.name]
    vantage = running.vantage(network)
    kind = KINDS.get(node.kind)
    return NodeProbes(
        accepts=lambda: any(vantage.reaches(address, port, timeout=2) for port in node.ports),
        exit=_exit_probe(running, node),
        listening=functools.partial(listening_ports, container),
        log_tail=functools.partial(running.logs, node.name, 20),
        server_started=functools.partial(probes.printed, container, SERVER_STARTS) if kind else None,
        has_workers=functools.partial(probes.has_workers, container, kind.program)
        if kind and kind.reload_waits_for_workers else None,
        host_exit=_exit_probe(running, running.topology.node(node.shares_host_with)) if node.shares_host_with else None)


def _exit_probe(running: RunningTopology, node: Node) -> Callable[[], Exit | None]:
    return functools.partial(probes.exit_of, running.containers[node.name],
                             functools.partial(running.logs, node.name, tail=200))
