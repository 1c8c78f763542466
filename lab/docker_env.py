"""Reaching the Docker engine, and the testcontainers settings this lab depends on.

testcontainers' defaults do not fit here: its Ryuk reaper image cannot be pulled without
a registry (the lab sweeps its own containers by label instead), and on a machine with
``/.dockerenv`` it guesses it runs inside a container and hands out a 172.x gateway
address. The lab only ever talks to ports published on 127.0.0.1, so it pins both.
"""

from __future__ import annotations

import functools

import docker
from docker.errors import DockerException
from testcontainers.core.config import ConnectionMode
from testcontainers.core.config import testcontainers_config as tc_config

from lab.errors import LabError

tc_config.ryuk_disabled = True
tc_config.tc_host_override = "127.0.0.1"
tc_config.connection_mode_override = ConnectionMode.docker_host

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
