"""A customer's Caddyfile read for reproduce (issue 27): sites, routes, upstreams, and the
certificates Caddy would obtain itself placed where it keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.proxies.caddy.reader import ACME_STORAGE, parse_caddy, storage_meta
from lab.reproduce import read_bundle
from lab.reproduce.bundle import classify
from tests.unit.reproduceutil import parsed, ports, tls


def caddy(tmp_path: Path, text: str, name: str = "Caddyfile"):
    return parsed(tmp_path, {name: text}, parse_caddy)


def test_a_site_with_automatic_https_gets_the_labs_leaf_where_caddy_keeps_the_one_it_obtains(tmp_path):
    setup = caddy(tmp_path, "git.initech.example {\n\tencode gzip\n\treverse_proxy localhost:7990\n}\n")
    assert setup.server_names == ("git.initech.example",)
    assert ports(setup.listeners) == {443: "tls+h2", 80: "redirect"}
    assert [(u.host, u.port) for u in setup.upstreams] == [("localhost", 7990)]
    stored = f"{ACME_STORAGE}/git.initech.example/git.initech.example"
    assert tls(setup) == [("automatic HTTPS", f"{stored}.crt", "fullchain"), ("automatic HTTPS", f"{stored}.key", "key")]
    assert json.loads(storage_meta(setup.tls_files)[f"{stored}.json"]) == {"sans": ["git.initech.example"]}


def test_tls_with_files_names_the_customers_paths_and_nothing_in_caddys_storage(tmp_path):
    setup = caddy(tmp_path, "https://git.initech.example {\n"
                            "\ttls /etc/ssl/git/fullchain.pem /etc/ssl/git/privkey.pem\n"
                            "\treverse_proxy http://10.0.0.5:7990\n}\n")
    assert tls(setup) == [("tls", "/etc/ssl/git/fullchain.pem", "fullchain"), ("tls", "/etc/ssl/git/privkey.pem", "key")]
    assert storage_meta(setup.tls_files) == {}


def test_the_path_of_a_handle_or_a_named_matcher_is_the_route_prefix(tmp_path):
    handled = caddy(tmp_path / "a", "atl.initech.example {\n\thandle_path /bitbucket* {\n"
                                    "\t\treverse_proxy bitbucket:7990\n\t}\n}\n")
    matched = caddy(tmp_path / "b", "atl.initech.example {\n\t@stash path /stash*\n"
                                    "\treverse_proxy @stash stash.internal:7990\n}\n")
    assert (handled.route_prefix, matched.route_prefix) == ("/bitbucket", "/stash")


def test_jira_beside_bitbucket_is_a_neighbour_and_a_snippet_is_imported(tmp_path):
    setup = caddy(tmp_path, "(common) {\n\tencode gzip\n}\n"
                            "jira.initech.example {\n\timport common\n\treverse_proxy jira:8080\n}\n"
                            "git.initech.example {\n\timport common\n\treverse_proxy bitbucket:7990\n}\n")
    assert [(u.host, u.port) for u in setup.upstreams] == [("bitbucket", 7990)]
    assert [(n.app, n.upstream.port) for n in setup.neighbours] == [("Jira", 8080)]
    assert setup.server_names == ("git.initech.example",)


def test_a_caddyfile_of_one_site_without_braces_and_http_only_listens_on_80(tmp_path):
    setup = caddy(tmp_path, "http://git.initech.example\nreverse_proxy {$UPSTREAM:bitbucket:7990}\n")
    assert ports(setup.listeners) == {80: "plain"}
    assert [(u.host, u.port) for u in setup.upstreams] == [("bitbucket", 7990)]
    assert setup.tls_files == ()


@pytest.mark.parametrize("text, message", [
    ("git.initech.example {\n\treverse_proxy bitbucket:7990\n", "Caddyfile:1: this block is never closed"),
    ("git.initech.example {\n\timport sites/*.caddy\n}\n", "Caddyfile:2: `import sites/*.caddy` names a file"),
])
def test_what_the_reader_cannot_follow_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    with pytest.raises(LabError) as raised:
        caddy(tmp_path, text)
    assert str(raised.value).startswith(message)


def test_a_file_named_caddyfile_is_a_caddy_config_and_an_nginx_site_is_not():
    assert classify("git.example.com {\n\treverse_proxy localhost:7990\n}\n", "Caddyfile") == "caddy"
    assert classify("example.com {\n\treverse_proxy 127.0.0.1:7990\n}\n", "bitbucket.site") == "caddy"
    assert classify("server {\n    listen 80;\n    location / { proxy_pass http://b:7990; }\n}\n", "default") == "nginx"


def test_a_bundle_of_a_caddyfile_infers_its_public_url_and_assumes_bitbucket_settings(tmp_path):
    (tmp_path / "Caddyfile").write_text("git.initech.example {\n\treverse_proxy localhost:7990\n}\n")
    setup = read_bundle([tmp_path])
    assert setup.proxy is not None and setup.proxy.kind == "caddy"
    assert setup.public_url == "https://git.initech.example"
    assert ("server.scheme", "https") in [(key, value) for key, value, _ in setup.assumed]


def test_a_neighbour_behind_a_placeholder_host_is_named_by_its_sites_name_not_the_placeholder(tmp_path):
    # Caddy's own Jira example (tests/cases/caddyserver-examples-caddy-jira-v2-bitbucket): `yourip` is the placeholder.
    setup = caddy(tmp_path, "jira.example.com {\n    reverse_proxy yourip:8080\n}\n\n"
                            "wiki.example.com {\n    reverse_proxy yourip:9000\n}\n\n"
                            "bitbucket.example.com {\n    reverse_proxy yourip:7990\n}\n")
    assert [(n.app, n.upstream.port) for n in setup.neighbours] == [("Jira", 8080), ("Confluence", 9000)]
    # negative control: a site whose name says nothing keeps the upstream's name
    plain = caddy(tmp_path, "apps.example.com {\n    reverse_proxy nexus:8081\n}\n\n"
                            "bitbucket.example.com {\n    reverse_proxy yourip:7990\n}\n")
    assert [n.app for n in plain.neighbours] == ["nexus"]
