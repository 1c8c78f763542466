"""Issue 10: the lab is sealed, and one broken thing is one finding.

The seal is proved without sending anything outside: by inspecting the networks and the
containers' routes, and by asking the gateway for names that are not the lab's (it must
refuse before any lookup) or for the gateway's own loopback address.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time

import pytest

from lab.errors import LabError
from lab.runtime import PUBLISH_NETWORK
from lab.targets import check_target


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_the_lab_networks_are_internal_and_the_publishing_bridge_does_not_masquerade(lab_topology):
    running = lab_topology("nginx-https")
    for key, network in running.networks.items():
        network.reload()
        if key == PUBLISH_NETWORK:
            assert network.attrs["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
            assert network.attrs["Internal"] is False  # Docker publishes ports only from a non-internal network
        else:
            assert network.attrs["Internal"] is True, key


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
@pytest.mark.parametrize("node", ["proxy", "bitbucket"])
def test_proxy_and_bitbucket_have_no_default_route(lab_topology, node):
    routes = lab_topology("nginx-https").containers[node].exec_run(["cat", "/proc/net/route"]).output.decode()
    destinations = [line.split()[1] for line in routes.splitlines()[1:] if line.strip()]
    assert destinations and "00000000" not in destinations, routes


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
@pytest.mark.parametrize("node,service", [("proxy", "nginx"), ("bitbucket", "python3"), ("gateway-outside", "python3")])
def test_the_services_run_without_the_capability_the_seal_used(lab_topology, node, service):
    container = lab_topology("nginx-https").containers[node]
    pid = container.exec_run(["pidof", "-s", service]).output.decode().strip()
    bounding = next(line for line in container.exec_run(["cat", f"/proc/{pid}/status"]).output.decode().splitlines()
                    if line.startswith("CapBnd:"))
    net_admin = 1 << 12  # CAP_NET_ADMIN
    assert int(bounding.split()[1], 16) & net_admin == 0, bounding


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_only_the_gateway_joins_the_publishing_bridge(lab_topology):
    running = lab_topology("nginx-https")
    on_bridge = {name for name, container in running.containers.items()
                 if running.networks[PUBLISH_NETWORK].name in container.attrs["NetworkSettings"]["Networks"]}
    browser = {"browser"} & set(running.containers)  # a kept topology may hold the browser node, idle
    assert on_bridge == {"gateway-outside", "gateway-inside"} | browser


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_the_gateway_refuses_a_name_that_is_not_the_labs_before_looking_it_up(lab_topology):
    running = lab_topology("nginx-https")
    port = running.gateway_ports["outside"]
    assert socks_connect(port, "bitbucket.lab.test", 443) == 0  # the lab's own name: allowed
    assert socks_connect(port, "example.com", 443) == 2  # 2: connection not allowed by ruleset
    assert socks_connect(port, "bitbucket", 7990) == 2  # an inside-only name, asked from outside
    refusal = "refused example.com:443: not a name of this lab (no lookup made)"
    deadline = time.monotonic() + 10  # Docker's log driver delivers the line a moment later
    while refusal not in running.logs("gateway-outside", tail=20) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert refusal in running.logs("gateway-outside", tail=20)


@pytest.mark.xdist_group("direct-http")  # shares the kept topology of its group
def test_the_gateway_refuses_address_literals_even_its_own_loopback(lab_topology):
    port = lab_topology("direct-http").gateway_ports["outside"]
    assert socks_connect(port, "127.0.0.1", 1080, literal=True) == 2


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_a_public_host_the_lab_does_not_know_is_one_finding_and_blocks_the_rest(lab_topology, lab_checks):
    running = lab_topology("nginx-https")
    target = dataclasses.replace(check_target(running), public_url="https://git.acme.example/bitbucket")
    from lab.checks import run_checks

    results = {r.id: r for r in run_checks(target)}
    failures = [r for r in results.values() if r.ok is False]
    assert [r.id for r in failures] == ["reach.front-door"]
    assert "git.acme.example is not resolvable inside the lab" in failures[0].observed
    assert all(r.ok is None for key, r in results.items() if key != "reach.front-door")
    # Blocked, every one — but those that do not apply to this topology at all (no slow repository, one
    # node, no browser node).
    assert {key for key, r in results.items() if r.ok is None and not r.blocked_by} == {
        "git.clone-slow", "session.affinity", "cluster.failover", "browser.login", "browser.git-agree"}


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_a_killed_gateway_is_one_finding_not_a_dozen(lab_topology, lab_checks):
    running = lab_topology("nginx-http")
    running.containers["gateway-outside"].kill()
    results = lab_checks(running)
    assert [r.id for r in results.values() if r.ok is False] == ["reach.front-door"]
    assert "gateway" in results["reach.front-door"].observed
    assert all(r.blocked_by == "reach.front-door" for key, r in results.items() if key != "reach.front-door")


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_a_config_that_listens_on_another_port_fails_fast_naming_the_port(lab_topology, tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("server {\n    listen 8081;\n    location / { proxy_pass http://bitbucket:7990; }\n}\n")
    with pytest.raises(LabError, match=r"proxy \(nginx\) listens on 8081, not on 80 where the topology expects it"):
        lab_topology("nginx-http", proxy_config=site)


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_a_config_that_opens_no_listener_fails_fast_and_says_so(lab_topology, tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("# the customer's site file lost its server block\n")
    with pytest.raises(LabError, match="runs but listens on no port"):
        lab_topology("nginx-http", proxy_config=site)


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_checks_leave_no_branches_in_the_repository_users_clone(lab_topology, lab_checks):
    running = lab_topology("nginx-http")
    assert lab_checks(running, ["git.push", "git.push-large"])["git.push"].ok
    target = check_target(running)
    heads = running.vantage("outside").git(["ls-remote", "--heads", target.git_url()]).stdout
    assert sorted(line.split()[1] for line in heads.splitlines()) == ["refs/heads/feature/x", "refs/heads/main"]


def socks_connect(port: int, host: str, target_port: int, literal: bool = False) -> int:
    """The SOCKS5 reply code the gateway gives for CONNECT host:target_port."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert sock.recv(2) == b"\x05\x00"
        address = b"\x01" + socket.inet_aton(host) if literal else b"\x03" + bytes([len(host)]) + host.encode()
        sock.sendall(b"\x05\x01\x00" + address + struct.pack("!H", target_port))
        reply = sock.recv(10)
    return reply[1]


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_the_browser_node_is_sealed_publishes_devtools_on_loopback_only_and_reaches_only_the_users_names(lab_topology):
    from playwright.sync_api import Error

    from lab.browser import BROWSER_NODE, PKI_NODE, browser_context

    running = lab_topology("nginx-https", browser=True)
    browser = running.containers[BROWSER_NODE]
    browser.reload()
    routes = browser.exec_run(["cat", "/proc/net/route"]).output.decode()
    assert "00000000" not in [line.split()[1] for line in routes.splitlines()[1:] if line.strip()], routes
    joined = set(browser.attrs["NetworkSettings"]["Networks"])
    assert joined == {running.networks[PUBLISH_NETWORK].name, running.networks["outside"].name}
    pki = running.containers[PKI_NODE]
    pki.reload()
    assert set(pki.attrs["NetworkSettings"]["Networks"]) == {running.networks["outside"].name}
    bindings = [b for ports in browser.attrs["NetworkSettings"]["Ports"].values() for b in ports or []]
    assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    pid = browser.exec_run(["pidof", "-s", "chromium"]).output.decode().strip()
    bounding = next(line for line in browser.exec_run(["cat", f"/proc/{pid}/status"]).output.decode().splitlines()
                    if line.startswith("CapBnd:"))
    assert int(bounding.split()[1], 16) & (1 << 12) == 0, bounding
    assert running.browser is not None
    with browser_context(running.browser) as context:
        page = context.new_page()
        assert page.goto(f"{running.public_url}/status").status == 200  # the users' name: reached, lab root trusted
        for url in ("http://bitbucket:7990/status",  # Bitbucket's inside-only name
                    "http://ssh.bitbucket.lab.test:7990/status"):  # users' firewall: its SSH port only
            with pytest.raises(Error, match="net::ERR_NAME_NOT_RESOLVED"):
                page.goto(url, timeout=20_000)
