"""Sweeping: the lab's containers, networks and volumes by label — a dead run's, or everything.

Every object the lab creates carries ``org.bitbucket-lab`` plus the run, the owning
process (``pid:start-time``) and the host; a run whose owner is gone is swept by the next
start, ``down --all`` removes exactly what the lab owns and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import APIError, NotFound

from lab.docker_env import HOST_LABEL, LAB_LABEL, PID_LABEL, RUN_LABEL, docker_client


def owner_labels() -> dict[str, str]:
    """The labels that tie an object to this process on this host."""
    return {LAB_LABEL: "1", PID_LABEL: owner_token(os.getpid()), HOST_LABEL: socket.gethostname()}


def owner_token(pid: int) -> str:
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
        return owner_token(int(pid_text)) == token
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


STUCK_NETWORK = ("Docker refuses to remove it (\"active endpoints\") though no container is attached: a fault "
                 "of the Docker daemon; restarting the daemon clears it")


def stuck_networks(client: docker.DockerClient | None = None) -> list[str]:
    """The lab's networks that are still there, tried once more: those Docker refuses for
    "active endpoints" (a stale endpoint, no container attached) — the lab cannot remove
    them, only say so."""
    client = client or docker_client()
    stuck = []
    for network in client.networks.list(filters={"label": LAB_LABEL}):
        try:
            network.remove()
        except NotFound:
            continue
        except APIError as error:
            if "active endpoints" in str(error):
                stuck.append(str(network.name))
    return sorted(stuck)


def _remove_labelled(client: docker.DockerClient, should_remove: Callable[[dict[str, str]], bool],
                     filters: dict[str, str] | None = None) -> int:
    removed = 0
    filters = filters or {"label": LAB_LABEL}
    for container in client.containers.list(all=True, filters=filters, ignore_removed=True):
        if should_remove(container.labels):
            with contextlib.suppress(APIError, NotFound):
                container.remove(force=True, v=True)
                removed += 1
    for network in client.networks.list(filters=filters):
        if should_remove(network.attrs.get("Labels") or {}):
            with contextlib.suppress(APIError, NotFound):
                network.remove()
                removed += 1
    for volume in client.volumes.list(filters=filters):  # a cluster's shared home
        if should_remove(volume.attrs.get("Labels") or {}):
            with contextlib.suppress(APIError, NotFound):
                volume.remove(force=True)
                removed += 1
    return removed


def remove_run(client: docker.DockerClient, run_id: str) -> int:
    """Every container, network and volume of one run, recorded or not."""
    return _remove_labelled(client, lambda labels: True, {"label": f"{RUN_LABEL}={run_id}"})
