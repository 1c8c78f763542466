"""Issue 15: the proxies of every Debian release the lab offers (bullseye, bookworm,
trixie, forky) run the recommended topologies, and what one release rejects is explained.

Marked ``versions``: each release's images are built on first use (debootstrap + three
Dockerfiles, about a minute per release cold), so the matrix can run on its own:
``nox -s tests -- -m versions -n 2``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab.errors import LabError
from lab.provision import DropIns
from lab.proxies import KINDS
from lab.releases import DEFAULT_RELEASE, RELEASES
from lab.runtime import LabOptions, start
from lab.targets import check_running
from lab.topology import catalog, load_topology

pytestmark = pytest.mark.versions
OTHER_RELEASES = [release for release in RELEASES if release != DEFAULT_RELEASE]  # bookworm: the main matrix
PROXIED = [name for name in catalog() if load_topology(name).proxy is not None]


PAIRS = [(release, name) for release in OTHER_RELEASES for name in PROXIED  # Caddy came with bookworm
         if release in KINDS[load_topology(name).proxy.kind].debian_versions]  # type: ignore[union-attr]


@pytest.mark.parametrize("release, name", PAIRS, ids=[f"{release}-{name}" for release, name in PAIRS])
def test_recommended_topology_passes_on_every_release(release, name, lab_topology):
    running = lab_topology(name, proxy_release=release)  # a kept topology gets this release's proxy container
    results = check_running(running)
    assert {r.id: f"{r.observed} | {r.hint}" for r in results if r.ok is False} == {}


HTTP2_ON = """server {
    listen 443 ssl;
    http2 on;
    server_name bitbucket.lab.test;
    ssl_certificate /etc/lab/tls/fullchain.pem;
    ssl_certificate_key /etc/lab/tls/privkey.pem;
    client_max_body_size 0;
    location /bitbucket { proxy_pass http://bitbucket:7990; proxy_set_header Host $host; }
}
"""


def test_http2_on_is_rejected_on_bookworm_naming_the_releases_that_accept_it(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text(HTTP2_ON)
    with pytest.raises(LabError) as raised:
        start(load_topology("nginx-https"), LabOptions(DropIns(site, None), certs_dir=tmp_path / "c"))
    message = str(raised.value)
    assert 'unknown directive "http2"' in message and "--proxy-version trixie" in message and "\n" not in message


def test_http2_on_runs_on_trixie(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text(HTTP2_ON)
    running = start(load_topology("nginx-https"), LabOptions(DropIns(site, None), certs_dir=tmp_path / "c",
                                                               proxy_release="trixie"))
    try:
        results = {r.id: r for r in check_running(running, ["reach.front-door", "tls.chain", "reach.status"])}
    finally:
        running.stop()
    assert results["reach.status"].ok, results["reach.status"]


def test_list_versions_reads_each_releases_versions_from_its_images():
    result = subprocess.run([sys.executable, "-m", "lab", "list", "--versions"], capture_output=True, text=True,
                            timeout=1800)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    rows = {line.split()[0]: dict(zip(header.split()[1:], line.split()[1:], strict=True)) for line in lines}
    assert list(rows) == list(RELEASES)
    for release in RELEASES:
        nginx, apache, haproxy, openssl = (rows[release][name] for name in ("nginx", "apache", "haproxy", "openssl"))
        caddy = KINDS["caddy"].debian_versions.get(release, "-")
        assert rows[release]["caddy"].split(".")[:2] == caddy.split(".")[:2], rows[release]
        assert nginx.split(".")[:2] == KINDS["nginx"].debian_versions[release].split(".")[:2], rows[release]
        assert haproxy.split(".")[:2] == KINDS["haproxy"].debian_versions[release].split(".")[:2], rows[release]
        assert apache.startswith("2.4.") and openssl[:1] in "123", rows[release]


def test_reproduce_takes_the_release_from_the_customers_version_line(tmp_path):
    bundle = tmp_path / "acme"
    bundle.mkdir()
    (bundle / "nginx-v.txt").write_text("$ nginx -v\nnginx version: nginx/1.18.0\n")
    (bundle / "bitbucket").write_text("server {\n    listen 80;\n    server_name git.acme.example;\n"
                                      "    location / { proxy_pass http://bb.acme.example:7990; }\n}\n")
    result = subprocess.run([sys.executable, "-m", "lab", "reproduce", str(bundle), "--json", "--no-keep",
                             "--certs", str(tmp_path / "certs")], capture_output=True, text=True, timeout=900)
    document = json.loads(result.stdout)
    assert document["proxy"] == {"kind": "nginx", "version": "nginx/1.18.0"}, result.stderr[-500:]
    row = next(row for row in document["mapping"] if row["what"] == "proxy release")
    assert row["customer"] == "nginx/1.18.0" and row["lab"].startswith("bullseye:")


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_another_proxy_release_recreates_the_proxys_container_alone_and_back(lab_topology):
    from lab.reload import reload_in_place
    from lab.reproduce.session import proxy_version

    running = lab_topology("nginx-https")
    before, version = {name: c.id for name, c in running.containers.items()}, proxy_version(running)
    reload_in_place(running, LabOptions(certs_dir=running.options.certs_dir, proxy_release="trixie"))
    renewed = {name for name, c in running.containers.items() if before.get(name) != c.id}
    trixie = proxy_version(running)
    passing = [r.ok for r in check_running(running, ["reach.status", "tls.chain", "git.clone"])]
    reload_in_place(running, LabOptions(certs_dir=running.options.certs_dir))
    assert renewed == {"proxy"}
    assert trixie and trixie != version, (version, trixie)
    assert passing == [True, True, True]
    assert proxy_version(running) == version  # and back to the default release's


def test_check_json_says_which_proxy_and_version_ran_for_the_release_asked(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lab", "check", "--topology", "nginx-https", "--proxy-version",
                             "trixie", "--json", "--no-browser", "--no-keep", "--certs", str(tmp_path / "certs")],
                            capture_output=True, text=True, timeout=300)
    document = json.loads(result.stdout)
    assert document["proxy"]["kind"] == "nginx"
    assert document["proxy"]["version"].startswith("nginx/1.26"), document["proxy"]
    assert document["findings"] == [] and result.returncode == 0, (document["findings"], result.stderr[-400:])


def test_a_report_names_the_proxies_already_built_and_builds_only_the_one_that_ran():
    from lab.images.build import built_images
    from lab.images.versions import lab_versions

    release = "trixie"
    existing = built_images(tuple(KINDS), release)
    shown = lab_versions(release, ("nginx",))
    named = {label for label in shown if label in {kind.label for kind in KINDS.values()}}
    assert named == {KINDS[name].label for name in {*existing, "nginx"}}
    assert set(built_images(tuple(KINDS), release)) == {*existing, "nginx"}  # nothing else was built for it
