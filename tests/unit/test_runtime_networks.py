"""Issue 28, items 5–7 without Docker: the lab's address pool, per-run SSH keys, and a
teardown that a second Ctrl-C does not cut short."""

from __future__ import annotations

import ipaddress
import os
import random
import signal
import socket
import struct
import types
from ipaddress import IPv4Network

import pytest
from docker.errors import APIError

from lab.errors import LabError
from lab.networks import (DEFAULT_POOL, PUBLISH_NETWORK, PoolExhausted, create_networks, host_routes, network_sizes,
                          pick_subnets, prefix_for, subnet_pool)
from lab.sshkeys import make_ssh_keys
from lab.sweep import owner_line, signals_held, sweep_dead_key_folders
from lab.topology import load_topology

DOCKER_DEFAULT_POOLS = [IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)] + [IPv4Network("192.168.0.0/16")]


def test_each_network_gets_the_smallest_subnet_that_holds_its_containers():
    assert [prefix_for(n) for n in (1, 13, 14, 29, 30)] == [28, 28, 27, 27, 26]
    sizes = network_sizes(load_topology("nginx-https-cluster"))
    # outside: proxy, bitbucket-1 (its SSH port), gateway, browser, PKI node; inside: proxy, two nodes, gateway
    assert sizes == {"outside": 5, "inside": 4, PUBLISH_NETWORK: 3}
    assert {prefix_for(n) for n in sizes.values()} == {28}


def test_picked_subnets_overlap_neither_each_other_nor_any_subnet_in_use():
    pool = IPv4Network("10.213.0.0/22")  # 64 slots of /28: crowded enough to collide often
    rng = random.Random(7)
    for _ in range(200):
        used = [IPv4Network((int(pool.network_address) + 16 * rng.randrange(64), 28)) for _ in range(20)]
        used.append(IPv4Network("10.213.1.0/24"))  # a wide one, as a host route can be
        picked = pick_subnets({"outside": 5, "inside": 20, PUBLISH_NETWORK: 3}, used, pool, rng)
        assert picked["inside"].prefixlen == 27 and picked["outside"].prefixlen == 28
        everything = [*used, *picked.values()]
        for subnet in picked.values():
            assert subnet.subnet_of(pool)
            assert sum(subnet.overlaps(other) for other in everything) == 1, (subnet, everything)


def test_a_full_pool_is_one_line_naming_the_cause_the_pool_and_down_all():
    pool = IPv4Network("10.213.0.0/26")
    used = [IPv4Network("10.213.0.0/27"), IPv4Network("10.213.0.32/28")]
    assert pick_subnets({"a": 2}, used, pool)["a"] == IPv4Network("10.213.0.48/28")  # the one slot left
    with pytest.raises(PoolExhausted) as refused:
        pick_subnets({"a": 2, "b": 2}, used, pool)
    message = str(refused.value)
    assert "\n" not in message and "10.213.0.0/26" in message and "no free /28" in message
    assert "`python -m lab down --all`" in message and "LAB_SUBNET_POOL" in message


def test_the_default_pool_is_clear_of_dockers_default_pools_and_lab_subnet_pool_overrides_it():
    assert subnet_pool({}) == IPv4Network(DEFAULT_POOL)
    assert not any(IPv4Network(DEFAULT_POOL).overlaps(pool) for pool in DOCKER_DEFAULT_POOLS)
    assert subnet_pool({"LAB_SUBNET_POOL": "198.18.0.0/15"}) == IPv4Network("198.18.0.0/15")
    for bad in ("10.213.0.0/29", "fd00::/64", "not-a-range"):
        with pytest.raises(LabError, match=r"LAB_SUBNET_POOL=.* is not an IPv4 range of /28 or larger"):
            subnet_pool({"LAB_SUBNET_POOL": bad})


def test_the_hosts_own_routes_count_as_in_use_but_its_default_route_does_not(tmp_path):
    table = tmp_path / "route"
    rows = [("eth0", "0.0.0.0", "0.0.0.0"), ("eth0", "10.213.4.0", "255.255.255.0"), ("docker0", "172.17.0.0", "255.255.0.0")]
    table.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" + "".join(
        f"{iface}\t{_kernel_hex(dest)}\t00000000\t0001\t0\t0\t0\t{_kernel_hex(mask)}\t0\t0\t0\n" for iface, dest, mask in rows))
    routes = host_routes(table)
    assert routes == [IPv4Network("10.213.4.0/24"), IPv4Network("172.17.0.0/16")]
    picked = pick_subnets({"a": 2}, routes, IPv4Network("10.213.4.0/23"), random.Random(0))["a"]
    assert picked.subnet_of(IPv4Network("10.213.5.0/24"))
    assert host_routes(tmp_path / "no-such-table") == []


def test_a_subnet_another_run_took_first_is_picked_again_and_the_network_made(tmp_path):
    engine = _Engine(refuse_first={"inside"})
    networks: dict[str, types.SimpleNamespace] = {}
    create_networks(engine, "lab-1-abc", load_topology("nginx-http"), {"org.bitbucket-lab": "1"}, networks)
    assert set(networks) == {"outside", "inside", PUBLISH_NETWORK}
    assert engine.refused == ["lab-1-abc-inside"]
    subnets = [ipaddress.ip_network(net.attrs["IPAM"]["Config"][0]["Subnet"]) for net in networks.values()]
    assert all(a == b or not a.overlaps(b) for a in subnets for b in subnets)


def test_two_runs_of_one_topology_get_key_folders_that_do_not_overwrite_each_other(tmp_path):
    first = make_ssh_keys(tmp_path, "100-aaaaaa", owner_line())
    pinned, key = first.known_hosts.read_bytes(), first.user_key.read_bytes()
    second = make_ssh_keys(tmp_path, "200-bbbbbb", owner_line())
    assert first.directory != second.directory and first.directory.parent == second.directory.parent == tmp_path
    assert (first.known_hosts.read_bytes(), first.user_key.read_bytes()) == (pinned, key)
    assert second.known_hosts.read_bytes() != pinned
    assert f"UserKnownHostsFile={first.known_hosts}" in first.ssh_command(1080)


def test_a_killed_runs_key_folder_is_swept_and_a_live_ones_is_not(tmp_path):
    live = make_ssh_keys(tmp_path, "live", owner_line())
    dead = make_ssh_keys(tmp_path, "dead", f"999999999:1 {socket.gethostname()}")  # no such process
    elsewhere = make_ssh_keys(tmp_path, "other-host", "999999999:1 another-machine")  # not ours to judge
    assert sweep_dead_key_folders(tmp_path) == 1
    assert live.directory.is_dir() and not dead.directory.exists() and elsewhere.directory.is_dir()


def test_ctrl_c_while_a_run_is_removed_is_held_until_the_removal_ends_then_delivered(capsys):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with signals_held("taking run 1-abc down"):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # the second Ctrl-C of the issue
            finished.append("removed")
    assert finished == ["removed"]
    assert capsys.readouterr().err.count("Ctrl-C is held until everything is removed") == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_held_during_removal_goes_to_the_handler_that_was_there_before():
    delivered = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: delivered.append(signum))
    try:
        with signals_held("taking run 1-abc down"):
            os.kill(os.getpid(), signal.SIGTERM)
            assert delivered == []
        assert delivered == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Engine:
    """Enough of a docker client for network creation: it refuses a subnet once for the
    networks named, as Docker does when another run created an overlapping one first."""

    def __init__(self, refuse_first: set[str]) -> None:
        self.refuse_first, self.refused, self.made = refuse_first, [], []
        self.networks = self

    def list(self) -> list[types.SimpleNamespace]:
        return list(self.made)

    def create(self, name: str, ipam, **kwargs) -> types.SimpleNamespace:  # type: ignore[no-untyped-def]
        config = {"Subnet": ipam["Config"][0]["Subnet"], "Gateway": ipam["Config"][0]["Gateway"]}
        key = name.rsplit("-", 1)[1]
        if key in self.refuse_first and name not in self.refused:
            self.refused.append(name)
            raise APIError("Pool overlaps with other one on this address space")
        network = types.SimpleNamespace(name=name, attrs={"IPAM": {"Config": [config]}})
        self.made.append(network)
        return network


def _kernel_hex(address: str) -> str:
    return "%08X" % struct.unpack("<I", ipaddress.IPv4Address(address).packed)[0]
