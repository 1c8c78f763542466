"""Stopping a Bitbucket node of a running cluster for a while, and bringing it back.

``cluster.failover`` stops the node that serves users as a crashed Bitbucket stops: the
stub closes every listener and connection (SIGUSR1) while its container — the node's
host — stays up and its name keeps resolving, so the load balancer meets refused
connections, as it would. Restoring it (SIGUSR2) serves again, with no sessions left.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from docker.errors import APIError, NotFound

from lab.errors import LabError
from lab.readiness import wait_until_ready
from lab.runtime import RunningTopology

STOPPED_WITHIN_S = 10


def node_stopper(running: RunningTopology) -> Callable[[str], Callable[[], None]]:
    """``stop(node)`` for the checks: stops a Bitbucket node, returns its restore."""
    def stop(node: str) -> Callable[[], None]:
        stubs = {stub.name: stub for stub in running.topology.bitbucket_nodes}
        if node not in stubs:
            raise LabError(f"{node} is not a Bitbucket node of {running.topology.name}")
        _signal(running, node, "SIGUSR1")
        network = next(iter(stubs[node].networks))
        vantage, port = running.vantage(network), stubs[node].ports[0]
        deadline = time.monotonic() + STOPPED_WITHIN_S
        while vantage.reaches(node, port, timeout=2):
            if time.monotonic() > deadline:
                raise LabError(f"{node} still answers on {port} {STOPPED_WITHIN_S} s after SIGUSR1; its log: "
                               + " | ".join(running.logs(node, 5).splitlines()))
            time.sleep(0.1)
        return lambda: _restore(running, node)
    return stop


def _restore(running: RunningTopology, node: str) -> None:
    _signal(running, node, "SIGUSR2")
    wait_until_ready(running)


def _signal(running: RunningTopology, node: str, name: str) -> None:
    try:
        running.containers[node].kill(signal=name)
    except (APIError, NotFound) as error:
        raise LabError(f"could not signal {node} ({name}): {error}") from None
