"""Issue 4: every catalog topology comes up and works; broken PKI and broken proxy configs
are caught; a customer's own files are used verbatim."""

from __future__ import annotations

import os
import ssl

import pytest
import requests

from lab.docker_env import PID_LABEL, docker_client
from lab.errors import LabError
from lab.sweep import owner_token
from lab.topology import catalog


@pytest.mark.parametrize("name", catalog())
def test_catalog_topology_answers_running_over_verified_tls_and_redirects_to_the_public_url(lab_topology, name):
    running = lab_topology(name)
    users = running.vantage("outside").session()  # trusts the lab CA and nothing else
    status = users.get(f"{running.public_url}/status", timeout=15)
    first = users.get(f"{running.public_url}/", allow_redirects=False, timeout=15)
    assert status.json() == {"state": "RUNNING"}
    assert first.headers["Location"] == f"{running.public_url}/dashboard"


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_a_leaf_served_without_its_intermediate_fails_verification_against_the_lab_ca(lab_topology):
    running = lab_topology("nginx-https", tls_variant="no-intermediate")
    with pytest.raises(requests.exceptions.SSLError, match="unable to get local issuer certificate"):
        running.vantage("outside").session().get(f"{running.public_url}/status", timeout=15)


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_the_same_topology_with_the_full_chain_verifies(lab_topology):
    running = lab_topology("nginx-https", tls_variant="good")
    assert running.vantage("outside").session().get(f"{running.public_url}/status", timeout=15).ok


@pytest.mark.parametrize("name,site,message", [
    ("nginx-https", "server {\n    listen 443 ssl\n    server_name x;\n}\n",
     'nginx rejected the proxy config: [emerg] invalid parameter "server_name" in /etc/lab/site.conf:3'),
    ("apache-https", "<VirtualHost *:443>\n    FrobnicateAll On\n</VirtualHost>\n",
     "apache rejected the proxy config: AH00526: Syntax error on line 2 of /etc/lab/site.conf: "
     "Invalid command 'FrobnicateAll'"),
    ("haproxy-https", "frontend users\n    bind :443\n    frobnicate yes\n",
     "haproxy rejected the proxy config: [ALERT] config : parsing [/etc/lab/site.conf:3] : "
     "unknown keyword 'frobnicate' in 'frontend' section"),
    ("caddy-https", "bitbucket.lab.test {\n\tfrobnicate yes\n}\n",
     "caddy rejected the proxy config: adapting config using caddyfile: /etc/lab/site.conf:2: "
     "unrecognized directive: frobnicate"),
    ("traefik-https", "entryPoints:\n  websecure:\n    address: \":443\"\n    frobnicate: yes\n",
     "traefik rejected the proxy config: command traefik error: field not found, node: frobnicate"),
])
def test_a_config_the_proxy_rejects_gives_its_own_error_and_leaves_nothing(lab_topology, tmp_path, name, site, message):
    site_file = tmp_path / "site.conf"
    site_file.write_text(site)
    mine = {"label": f"{PID_LABEL}={owner_token(os.getpid())}"}
    before = _names(docker_client().containers.list(all=True, filters=mine, ignore_removed=True))
    before_networks = docker_client().networks.list(filters=mine)
    with pytest.raises(LabError) as raised:
        lab_topology(name, proxy_config=site_file)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    # Nothing of the failed start is left (the worker's kept topologies, if any, were there before).
    assert _names(docker_client().containers.list(all=True, filters=mine, ignore_removed=True)) <= before
    assert _names(docker_client().networks.list(filters=mine)) <= _names(before_networks)


CUSTOMER_SITE = """\
# acme corp's site file, as the customer sent it
server {
    listen 443 ssl;
    server_name bitbucket.lab.test;
    ssl_certificate /etc/lab/tls/fullchain.pem;
    ssl_certificate_key /etc/lab/tls/privkey.pem;
    client_max_body_size 0;
    add_header X-Acme-Site "verbatim-7f3a" always;
    location /bitbucket {
        proxy_pass http://bitbucket:7990;
        proxy_set_header Host $host;
    }
}
"""
CUSTOMER_PROPERTIES = """\
# acme corp's bitbucket.properties
server.context-path=/bitbucket
server.proxy-name=bitbucket.lab.test
server.proxy-port=443
server.scheme=https
server.secure=true
setup.baseUrl=https://bitbucket.lab.test/bitbucket-acme-7f3a
"""


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_a_customer_site_file_and_properties_are_used_verbatim(lab_topology, tmp_path):
    (tmp_path / "site.conf").write_text(CUSTOMER_SITE)
    (tmp_path / "bitbucket.properties").write_text(CUSTOMER_PROPERTIES)
    running = lab_topology("nginx-https", proxy_config=tmp_path / "site.conf",
                           properties=tmp_path / "bitbucket.properties")
    users = running.vantage("outside").session()
    response = users.get(f"{running.public_url}/rest/lab/1.0/request", timeout=15)
    assert response.headers["X-Acme-Site"] == "verbatim-7f3a"
    assert response.json()["configured_base_url"] == "https://bitbucket.lab.test/bitbucket-acme-7f3a"
    served = running.containers["proxy"].exec_run(["cat", "/etc/lab/site.conf"]).output.decode()
    assert served == CUSTOMER_SITE
    with pytest.raises(requests.ConnectionError):  # the customer has no port-80 server
        users.get("http://bitbucket.lab.test/bitbucket/status", timeout=15)


@pytest.mark.xdist_group("direct-https")  # shares the kept topology of its group
def test_the_pki_keeps_the_ca_key_private_and_writes_a_trust_readme(lab_topology):
    running = lab_topology("direct-https")
    directory = running.tls.directory
    assert oct((directory / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    assert "sslCAInfo" in (directory / "README.md").read_text()
    context = ssl.create_default_context(cafile=str(running.tls.ca))
    assert context.cert_store_stats()["x509_ca"] == 1


def _names(objects) -> set[str]:  # type: ignore[no-untyped-def]
    return {str(item.name) for item in objects}
