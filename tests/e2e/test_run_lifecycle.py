"""Issue 28, items 5–7: runs that overlap, and runs that end, leave each other (and nothing) behind.

- a second Ctrl-C while a run is being taken down no longer leaves its networks;
- two runs of one topology at once keep their own SSH keys: a kept run's pinned host key
  and printed clone command stay valid while another run of it comes and goes;
- the lab's networks are small subnets of its own pool, so runs do not eat Docker's.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time

from lab.docker_env import RUN_LABEL, docker_client
from lab.runtime import LabOptions, start
from lab.networks import subnet_pool
from lab.targets import check_running
from lab.topology import load_topology

UP_TIMEOUT_S = 180
END_TIMEOUT_S = 90


def test_a_second_ctrl_c_during_teardown_still_removes_every_object_of_the_run(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "lab", "up", "--topology", "direct-http", "--no-browser"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = read_until(process, "press Ctrl-C to take it down", UP_TIMEOUT_S)
        run_id = re.search(r"\(run (\S+)\)", output).group(1)
        containers = len(objects_of(run_id)["containers"])
        process.send_signal(signal.SIGINT)
        wait_for(lambda: len(objects_of(run_id)["containers"]) < containers, "the teardown to begin")
        process.send_signal(signal.SIGINT)  # mid-teardown: the containers are going, the networks not yet
        rest, _ = process.communicate(timeout=END_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 130, output + rest
    assert objects_of(run_id) == {"containers": [], "networks": []}, output + rest
    assert "held until everything is removed" in rest, rest
    assert not list((tmp_path / "certs" / "direct-http").glob(f"ssh-{run_id}")), "the run's SSH keys are left"


def test_two_runs_of_one_topology_keep_their_own_ssh_keys_and_the_first_still_clones_over_ssh(tmp_path):
    certs = tmp_path / "certs"  # one folder for both, as two CLI runs of a topology share certs/<topology>/
    topology = load_topology("nginx-http")
    first = start(topology, LabOptions(certs_dir=certs))
    try:
        pinned = first.ssh_keys.known_hosts.read_bytes()
        second = start(topology, LabOptions(certs_dir=certs))
        try:
            assert second.ssh_keys.directory != first.ssh_keys.directory
            assert second.ssh_keys.known_hosts.read_bytes() != pinned
        finally:
            second.stop()
        assert not second.ssh_keys.directory.exists()
        assert first.ssh_keys.known_hosts.read_bytes() == pinned
        results = {r.id: r for r in check_running(first, ["links.clone", "ssh.clone"])}
        assert results["ssh.clone"].ok, results["ssh.clone"]
    finally:
        first.stop()
    assert not first.ssh_keys.directory.exists()


def test_a_runs_networks_are_small_subnets_of_the_labs_pool(tmp_path):
    running = start(load_topology("nginx-http"), LabOptions(certs_dir=tmp_path))
    try:
        subnets = {key: ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
                   for key, network in running.networks.items()}
    finally:
        running.stop()
    assert all(subnet.subnet_of(subnet_pool()) and subnet.prefixlen >= 27 for subnet in subnets.values()), subnets


def test_runs_started_at_once_get_disjoint_subnets_of_the_pool_and_all_come_up(tmp_path):
    topology = load_topology("direct-http")
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        starts = [pool.submit(start, topology, LabOptions(certs_dir=tmp_path / f"certs-{i}")) for i in range(3)]
        runs = [future.result(timeout=UP_TIMEOUT_S) for future in starts]
    try:
        subnets = [ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
                   for running in runs for network in running.networks.values()]
        assert len(subnets) == 6 and all(subnet.subnet_of(subnet_pool()) for subnet in subnets)
        assert all(a == b or not a.overlaps(b) for a in subnets for b in subnets), subnets
    finally:
        for running in runs:
            running.stop()


def test_a_full_address_pool_is_one_line_naming_the_pool_and_down_all_and_leaves_nothing(tmp_path):
    pool = "10.213.255.240/28"  # room for one network; direct-http has two
    result = subprocess.run([sys.executable, "-m", "lab", "check", "--topology", "direct-http", "--no-browser",
                             "--no-keep"], cwd=tmp_path, capture_output=True, text=True, timeout=UP_TIMEOUT_S,
                            env={**os.environ, "LAB_SUBNET_POOL": pool})
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and pool in errors[0] and "`python -m lab down --all`" in errors[0], result.stderr
    run_id = re.search(r"\(run (\S+)\)", result.stderr + result.stdout).group(1)
    assert objects_of(run_id) == {"containers": [], "networks": []}


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """The process's output up to the line holding ``marker`` (AssertionError after ``timeout``)."""
    deadline, lines = time.monotonic() + timeout, []
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line)
            if marker in line:
                return "".join(lines)
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"no {marker!r} within {timeout} s:\n{''.join(lines)}")


def wait_for(condition, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def objects_of(run_id: str) -> dict[str, list[str]]:
    client, label = docker_client(), {"label": f"{RUN_LABEL}={run_id}"}
    return {"containers": [c.name for c in client.containers.list(all=True, filters=label, ignore_removed=True)],
            "networks": [n.name for n in client.networks.list(filters=label)]}
