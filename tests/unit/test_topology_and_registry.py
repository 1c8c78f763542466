"""The topology loader, --public-url, and the one registry of checks — no Docker needed."""

from __future__ import annotations

import socket

import pytest

from lab.checks import CHECK_IDS, HOPS, REGISTRY, CheckTarget, run_checks
from lab.client import Vantage
from lab.errors import LabError
from lab.topology import CATALOG_DIR, catalog, check_public_url, load_topology, load_topology_file


@pytest.mark.parametrize("url", ["notaurl", "ftp://x", "https://", "http://host:99999", "https://h/x?q=1",
                                 "https://user:pw@h/", "http://bad_host!/"])
def test_a_public_url_that_is_not_http_host_port_path_is_refused_in_one_line(url):
    with pytest.raises(LabError) as raised:
        check_public_url(url)
    assert "\n" not in str(raised.value) and url in str(raised.value)


@pytest.mark.parametrize("url", ["https://git.acme.example/bitbucket", "http://scm.globex.example:7990",
                                 "https://bitbucket.lab.test"])
def test_an_ordinary_public_url_is_accepted(url):
    check_public_url(url)


def test_a_public_url_moves_every_url_and_alias_that_named_the_catalog_host():
    topology = load_topology("direct-https").with_public_url("https://git.acme.example:8443")
    assert topology.public_url == "https://git.acme.example:8443"
    assert topology.http_url == "http://git.acme.example:7990"
    assert topology.tomcat_url == "https://git.acme.example:8443"
    assert "git.acme.example" in topology.names_on("outside")
    assert topology.tls_names[0] == "git.acme.example"


def test_a_public_url_leaves_inside_names_alone():
    topology = load_topology("nginx-https").with_public_url("https://git.acme.example/bitbucket")
    assert topology.tomcat_url == "http://bitbucket:7990/bitbucket"
    assert "git.acme.example" not in topology.names_on("inside") or topology.proxy is not None
    assert "git.acme.example" in topology.proxy.networks["outside"]
    assert "git.acme.example" not in topology.bitbucket.networks.get("inside", ())


@pytest.mark.parametrize("name", ["../nginx-https", "/etc/passwd", "lab/topologies/nginx-https.toml", "nginx-https.toml"])
def test_topology_takes_catalog_names_only_never_a_path(name):
    with pytest.raises(LabError, match="unknown topology"):
        load_topology(name)


def test_a_topology_file_of_ones_own_loads_under_its_stem(tmp_path):
    path = tmp_path / "acme site.toml"
    path.write_text((CATALOG_DIR / "nginx-http.toml").read_text())
    assert load_topology_file(path).name == "acme-site"


def test_a_topology_file_naming_an_unknown_check_is_refused_in_one_line(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('checks = ["reach.status", "git.teleport"]\n' + (CATALOG_DIR / "nginx-http.toml").read_text())
    with pytest.raises(LabError, match="unknown check id 'git.teleport'"):
        load_topology_file(path)


def test_a_topology_file_that_is_not_toml_is_refused_in_one_line(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("this is [not toml\n")
    with pytest.raises(LabError, match="not TOML"):
        load_topology_file(path)


def test_every_registered_check_has_a_hop_and_needs_only_checks_registered_before_it():
    assert list(REGISTRY) == list(CHECK_IDS)
    for position, spec in enumerate(REGISTRY.values()):
        assert spec.hop in HOPS
        assert all(CHECK_IDS.index(need) < position for need in spec.needs)


def test_every_catalog_topology_loads_against_the_registry():
    for name in catalog():
        topology = load_topology(name)
        assert topology.checks is None or set(topology.checks) <= set(CHECK_IDS)


def test_a_dead_gateway_is_one_finding_and_every_other_check_is_blocked_by_it():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused = probe.getsockname()[1]  # closed again: nothing listens there
    target = CheckTarget("https://bitbucket.lab.test/bitbucket", Vantage(unused, None),
                         http_url="http://bitbucket.lab.test/bitbucket", tomcat_url="http://bitbucket:7990")
    results = run_checks(target)
    failures = [r for r in results if r.ok is False]
    assert [r.id for r in failures] == ["reach.front-door"]
    assert "gateway" in failures[0].observed
    assert {r.blocked_by for r in results if r.id != "reach.front-door"} == {"reach.front-door"}
    assert not any("crashed" in r.observed for r in results)


def test_a_check_that_does_not_apply_is_not_blocked_and_says_why():
    target = CheckTarget("http://bitbucket.lab.test", Vantage(None, None))
    spec = REGISTRY["tls.chain"]
    assert spec.applies(target) == "the public URL is not https"
    assert REGISTRY["git.clone-slow"].applies(target) is not None
    assert REGISTRY["git.clone-slow"].applies(CheckTarget("http://x", Vantage(None, None),
                                                          slow_repos=("LAB/slow",))) is None


def test_the_tls_probe_knows_which_versions_this_machines_openssl_can_speak():
    import ssl

    from lab.checks.tls_client import client_speaks

    assert client_speaks(ssl.TLSVersion.TLSv1_2) and client_speaks(ssl.TLSVersion.TLSv1_3)
    assert not client_speaks(ssl.TLSVersion.SSLv3)  # OpenSSL 3 is built without it: "cannot tell", never "refused"
