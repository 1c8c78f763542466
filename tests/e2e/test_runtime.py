"""The foundation with real containers: networks as firewalls, readiness, cleanup, images."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import requests

from lab.docker_env import RUN_LABEL, docker_client
from lab.images import ensure_images
from lab.progress import Progress
from lab.runtime import sweep_dead_runs


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_users_reach_the_proxy_by_public_name_but_not_tomcat_on_the_inside_network(lab_topology):
    running = lab_topology("nginx-http")
    users, admin = running.vantage("outside").session(), running.vantage("inside").session()
    assert users.get("http://bitbucket.lab.test/status", timeout=10).json() == {"state": "RUNNING"}
    with pytest.raises(requests.ConnectionError):
        users.get("http://bitbucket:7990/status", timeout=10)
    assert admin.get("http://bitbucket:7990/status", timeout=10).status_code == 200


@pytest.mark.xdist_group("direct-http")  # shares the kept topology of its group
def test_gateways_are_published_on_loopback_only(lab_topology):
    running = lab_topology("direct-http")
    container = running.containers["gateway-outside"]
    bindings = container.attrs["HostConfig"]["PortBindings"]["1080/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    assert not container.attrs["HostConfig"]["Privileged"]
    assert container.attrs["HostConfig"]["Init"] is True


def test_a_passing_run_leaves_nothing_behind(tmp_path):
    run_id = _run_script(tmp_path, "pass")
    assert _objects_of(run_id) == []


def test_a_run_with_the_browser_node_carries_the_runs_labels_and_leaves_nothing_behind(tmp_path):
    from lab.runtime import LabOptions, start
    from lab.topology import load_topology

    running = start(load_topology("direct-http"), LabOptions(certs_dir=tmp_path, browser=True))
    try:
        assert {"browser", "pki"} <= set(_objects_of(running.run_id) and running.containers)
        assert {f"lab-{running.run_id}-browser", f"lab-{running.run_id}-pki"} <= set(_objects_of(running.run_id))
    finally:
        running.stop()
    assert _objects_of(running.run_id) == []
    with pytest.raises(requests.ConnectionError):  # its DevTools went with it
        requests.get(f"{running.browser.cdp_url}/json/version", timeout=5)


def test_a_failing_test_leaves_nothing_behind(tmp_path):
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(textwrap.dedent("""
        def test_that_fails(lab_topology):
            running = lab_topology("direct-http")
            print("RUN", running.run_id, flush=True)
            assert False, "deliberate"
    """))
    result = subprocess.run([sys.executable, "-m", "pytest", "-s", "-p", "lab.pytest_plugin", str(test_file)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 1, result.stdout[-2000:]
    run_id = re.search(r"RUN (\S+)", result.stdout).group(1)
    assert _objects_of(run_id) == []


@pytest.mark.xdist_group("direct-http")  # shares the kept topology of its group
def test_a_killed_run_is_swept_by_the_next_run_and_a_live_one_is_not(tmp_path, lab_topology):
    process = subprocess.Popen([sys.executable, "-c", _SCRIPT.format(mode="hang", certs=str(tmp_path))],
                               stdout=subprocess.PIPE, text=True)
    run_id = process.stdout.readline().split()[1]
    assert _objects_of(run_id) != []
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    live = lab_topology("direct-http")
    sweep_dead_runs()
    assert _objects_of(run_id) == []
    assert _objects_of(live.run_id) != []


def test_a_second_images_build_builds_nothing():
    ensure_images()
    output = io.StringIO()
    tags = ensure_images(progress=Progress(stream=output))
    assert "building" not in output.getvalue()
    assert ensure_images() == tags


_SCRIPT = """
import sys, time
from pathlib import Path
from lab.runtime import up, LabOptions
from lab.topology import load_topology
with up(load_topology("direct-http"), LabOptions(certs_dir=Path({certs!r}) / "certs")) as running:
    print("RUN", running.run_id, flush=True)
    if "{mode}" == "hang":
        time.sleep(600)
"""


def _run_script(tmp_path, mode: str) -> str:
    result = subprocess.run([sys.executable, "-c", _SCRIPT.format(mode=mode, certs=str(tmp_path))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


def _objects_of(run_id: str) -> list[str]:
    client = docker_client()
    label = {"label": f"{RUN_LABEL}={run_id}"}
    return ([c.name for c in client.containers.list(all=True, filters=label, ignore_removed=True)]
            + [n.name for n in client.networks.list(filters=label)])
