"""Reaching the Docker engine (one docker SDK client per process), and the lab's labels.

The lab drives containers with the docker SDK by label, not with testcontainers: its
Ryuk reaper cannot be pulled without a registry (the lab sweeps its own containers by
label instead), it guesses a 172.x host on machines with ``/.dockerenv``, and it opens a
client per container object. The lab only ever talks to ports published on 127.0.0.1.
"""

from __future__ import annotations

import functools

import docker
from docker.errors import DockerException

from lab.errors import LabError

LAB_LABEL = "org.bitbucket-lab"
"""Every container and network the lab creates carries this label (value "1")."""
RUN_LABEL = "org.bitbucket-lab.run"
"""The run a container or network belongs to: ``<pid>-<random>``."""
PID_LABEL = "org.bitbucket-lab.pid"
"""The process that owns the run; a run whose process is gone is swept."""
HOST_LABEL = "org.bitbucket-lab.host"
"""The machine the owning process runs on; only runs of this machine are swept by pid."""


@functools.cache
def docker_client() -> docker.DockerClient:
    """A client for the local engine, or a LabError naming what to do when none answers."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        raise LabError(
            "no Docker engine answers (is dockerd running? `docker info` must work): "
            f"{_first_line(exc)}"
        ) from None
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
