"""Sweeping: the lab's containers, networks and volumes by label — a dead run's, or everything.

Every object the lab creates carries ``org.bitbucket-lab`` plus the run, the owning
process (``pid:start-time``) and the host; a run whose owner is gone is swept by the next
start, ``down --all`` removes exactly what the lab owns and nothing else. A run's SSH keys
(``certs/<topology>/ssh-<run id>/``) name their owner the same way, in a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
from docker.errors import APIError, NotFound

from lab.docker_env import HOST_LABEL, LAB_LABEL, PID_LABEL, RUN_LABEL, docker_client
from lab.sshkeys import OWNER_FILE, SSH_DIR


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


def owner_line() -> str:
    """This process and host in one line, for files a run leaves on disk (its SSH keys)."""
    return f"{owner_token(os.getpid())} {socket.gethostname()}"


def sweep_dead_key_folders(certs_dir: Path) -> int:
    """Remove the SSH key folders under ``certs_dir`` of runs whose owning process on this
    host is gone (a run killed outright leaves its keys). Returns how many."""
    removed, here = 0, socket.gethostname()
    for owner in certs_dir.glob(f"{SSH_DIR}-*/{OWNER_FILE}"):
        with contextlib.suppress(OSError, ValueError):
            token, host = owner.read_text().split()
            if host == here and not _owner_alive(token):
                shutil.rmtree(owner.parent, ignore_errors=True)
                removed += 1
    return removed


TEMP_KEEP_S = 3 * 24 * 3600
"""How long a run's screenshots stay in $TMPDIR (``--json`` names them; the report inlines them)."""
PLAYWRIGHT_IDLE_S = 600
"""An empty ``playwright-artifacts-*`` folder this old belongs to no driver that still writes it."""


def sweep_temp_leftovers(temp: Path | None = None, now: float | None = None) -> int:
    """Remove what runs leave in $TMPDIR: screenshot folders (``bitbucket-lab-<run>/``)
    older than TEMP_KEEP_S, and the empty ``playwright-artifacts-*`` folders Playwright's
    driver leaves after connecting over DevTools, once idle. Returns how many."""
    temp = temp or Path(tempfile.gettempdir())
    now = time.time() if now is None else now
    removed = 0
    for folder, keep in [*((f, TEMP_KEEP_S) for f in temp.glob("bitbucket-lab-*-*")),
                         *((f, PLAYWRIGHT_IDLE_S) for f in temp.glob("playwright-artifacts-*"))]:
        with contextlib.suppress(OSError):
            if folder.is_symlink() or not folder.is_dir() or now - folder.stat().st_mtime < keep:
                continue
            if folder.name.startswith("playwright-artifacts-") and any(folder.iterdir()):
                continue
            shutil.rmtree(folder)
            removed += 1
    return removed


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


def run_objects(client: docker.DockerClient, run_id: str) -> list[str]:
    """What is left of one run on the engine: ``container NAME``, ``network NAME``, ``volume NAME``."""
    label = {"label": f"{RUN_LABEL}={run_id}"}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=label, ignore_removed=True)]
            + [f"network {n.name}" for n in client.networks.list(filters=label)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=label)])


def remove_run(client: docker.DockerClient, run_id: str) -> int:
    """Every container, network and volume of one run, recorded or not."""
    return _remove_labelled(client, lambda labels: True, {"label": f"{RUN_LABEL}={run_id}"})


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held(what: str) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the block runs (removing a run must not stop halfway),
    then deliver the first one held to the handler that was there. The first one held says
    so on stderr; Ctrl-\\ (SIGQUIT) still ends the process at once. Only the main thread
    takes signals: elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: object) -> None:
        if not held:
            print(f"\n{what}: Ctrl-C is held until everything is removed (Ctrl-\\ quits at once and leaves the "
                  "rest to `python -m lab down`)", file=sys.stderr)
        held.append(signum)

    previous = {number: signal.getsignal(number) for number in HELD_SIGNALS}
    previous = {number: handler for number, handler in previous.items() if handler is not None}  # set outside Python
    for number in previous:
        signal.signal(number, hold)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if held:
        signal.raise_signal(held[0])
