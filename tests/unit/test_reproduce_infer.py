"""The public URL is where users arrive: the proxy decides it, the properties only when there is no proxy."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import trustme

from lab.errors import LabError
from lab.reproduce import read_bundle
from lab.reproduce.model import CustomerSetup

NGINX_SITE = """\
server {
    listen 80;
    server_name git.acme.example;
    return 301 https://$host$request_uri;
}

server {
    listen 443 ssl;
    server_name git.acme.example;
    ssl_certificate /etc/nginx/ssl/git.acme.example.crt;
    ssl_certificate_key /etc/nginx/ssl/git.acme.example.key;

    location /bitbucket {
        proxy_pass http://10.0.0.12:7990;
    }
}
"""

APACHE_SITE = """\
<VirtualHost *:8443>
    ServerName git.acme.example
    SSLEngine on
    SSLCertificateFile /etc/ssl/certs/git.pem
    SSLCertificateKeyFile /etc/ssl/private/git.key
    ProxyPass /scm-web http://localhost:7990/scm-web
</VirtualHost>
"""

HAPROXY_CFG = """\
frontend https
    bind :443 ssl crt /etc/haproxy/git.pem
    default_backend bitbucket

backend bitbucket
    server bb 10.0.0.12:7990
"""

UNDER_TEST = "server.proxy-name=wrong.acme.example\nsetup.baseUrl=https://other.acme.example/x\nserver.context-path=/x\n"


def test_the_nginx_front_door_gives_host_scheme_and_path_with_the_lines_behind_them(tmp_path):
    setup = reproduce(tmp_path, {"sites-enabled/bitbucket": NGINX_SITE})
    assert setup.public_url == "https://git.acme.example/bitbucket"
    assert setup.public_url_reason == (
        "host from server_name git.acme.example at sites-enabled/bitbucket:9; "
        "https from listen 443 ssl at sites-enabled/bitbucket:8; "
        "path from location /bitbucket at sites-enabled/bitbucket:13")


def test_the_properties_under_test_never_replace_the_host_the_proxy_names(tmp_path):
    setup = reproduce(tmp_path, {"sites-enabled/bitbucket": NGINX_SITE, "bitbucket.properties": UNDER_TEST})
    assert setup.public_url == "https://git.acme.example/bitbucket"
    assert setup.properties_values["server.proxy-name"] == "wrong.acme.example"


def test_a_proxy_that_names_no_host_takes_the_host_of_setup_base_url(tmp_path):
    site = NGINX_SITE.replace("server_name git.acme.example;", "server_name _;")
    setup = reproduce(tmp_path, {"sites-enabled/bitbucket": site, "bitbucket.properties": UNDER_TEST})
    assert setup.public_url == "https://other.acme.example/bitbucket"
    assert "host from setup.baseUrl in bitbucket.properties" in setup.public_url_reason


def test_a_proxy_that_names_no_host_falls_back_to_proxy_name_then_bitbucket(tmp_path):
    site = NGINX_SITE.replace("server_name git.acme.example;", "server_name _;")
    with_name = reproduce(tmp_path / "a", {"b": site, "bitbucket.properties": "server.proxy-name=Git.Acme.Example\n"})
    without = reproduce(tmp_path / "b", {"b": site})
    assert with_name.public_url == "https://git.acme.example/bitbucket"
    assert without.public_url == "https://bitbucket/bitbucket"


def test_a_front_door_on_a_non_default_port_keeps_the_port(tmp_path):
    setup = reproduce(tmp_path, {"bitbucket.conf": APACHE_SITE})
    assert setup.public_url == "https://git.acme.example:8443/scm-web"
    assert "https from <VirtualHost *:8443> at bitbucket.conf:1" in setup.public_url_reason


def test_a_proxy_without_tls_is_http(tmp_path):
    site = "server {\n    listen 80;\n    server_name git.acme.example;\n    location / { proxy_pass http://bb:7990; }\n}\n"
    assert reproduce(tmp_path, {"b": site}).public_url == "http://git.acme.example"


def test_haproxy_with_no_host_acl_takes_the_host_from_the_properties(tmp_path):
    setup = reproduce(tmp_path, {"haproxy.cfg": HAPROXY_CFG,
                                 "bitbucket.properties": "setup.baseUrl=https://git.acme.example\n"})
    assert setup.public_url == "https://git.acme.example"
    assert setup.proxy is not None and setup.proxy.kind == "haproxy"


def test_properties_alone_mean_tomcat_serves_users_on_its_connector(tmp_path):
    properties = ("server.port=8443\nserver.ssl.enabled=true\nserver.context-path=/bitbucket/\n"
                  "setup.baseUrl=https://git.acme.example:8443/bitbucket\n")
    setup = reproduce(tmp_path, {"var/atlassian/application-data/bitbucket/shared/bitbucket.properties": properties})
    assert setup.proxy is None
    assert setup.public_url == "https://git.acme.example:8443/bitbucket"
    assert "https from server.ssl.enabled=true" in setup.public_url_reason


def test_properties_without_tls_or_names_mean_plain_http_on_7990(tmp_path):
    setup = reproduce(tmp_path, {"bitbucket.properties": "plugin.ssh.port=7999\n"})
    assert setup.public_url == "http://bitbucket:7990"


def test_public_url_given_on_the_command_line_overrides_everything(tmp_path):
    write(tmp_path, {"b": NGINX_SITE})
    setup = read_bundle([tmp_path], public_url="https://git.acme.example:9443/bb/")
    assert (setup.public_url, setup.public_url_reason) == ("https://git.acme.example:9443/bb", "--public-url")


def test_a_public_url_without_scheme_is_refused(tmp_path):
    write(tmp_path, {"b": NGINX_SITE})
    with pytest.raises(LabError, match="--public-url git.acme.example: expected"):
        read_bundle([tmp_path], public_url="git.acme.example")


def test_the_properties_in_shared_win_over_a_copy_bitbucket_ignores(tmp_path):
    home = "var/atlassian/application-data/bitbucket"
    setup = reproduce(tmp_path, {f"{home}/bitbucket.properties": "server.port=1\n",
                                 f"{home}/shared/bitbucket.properties": "server.port=7991\n"})
    assert setup.properties is not None and setup.properties.relpath.endswith("shared/bitbucket.properties")
    assert setup.public_url == "http://bitbucket:7991"
    assert setup.ignored == (f"{home}/bitbucket.properties",)


def test_two_loose_properties_files_are_ambiguous(tmp_path):
    with pytest.raises(LabError, match="several bitbucket.properties"):
        reproduce(tmp_path, {"a/bitbucket.properties": "server.port=1\n", "b/bitbucket.properties": "server.port=2\n"})


def test_notes_are_ignored_and_a_saved_version_is_a_hint(tmp_path):
    setup = reproduce(tmp_path, {"b": NGINX_SITE, "notes.txt": "413 on push\n", "nginx-v.txt": "nginx version: nginx/1.18.0\n"})
    assert setup.ignored == ("notes.txt",)
    assert setup.version_hint == "nginx/1.18.0"


def test_without_a_saved_version_there_is_no_hint(tmp_path):
    assert reproduce(tmp_path, {"b": NGINX_SITE}).version_hint is None


def test_a_certificate_is_matched_to_its_directive_by_base_name_and_described(tmp_path):
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("git.acme.example", "bitbucket.acme.example")
    fullchain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    setup = reproduce(tmp_path, {"b": NGINX_SITE}, {"certs/git.acme.example.crt": fullchain})
    (certificate,) = setup.certificates
    assert certificate.for_path == "/etc/nginx/ssl/git.acme.example.crt"
    assert certificate.subjects == ("git.acme.example", "bitbucket.acme.example")
    assert (certificate.count, certificate.ordered, certificate.includes_root, certificate.expired) == (2, True, False, False)
    assert certificate.key_type.startswith("ec-") or certificate.key_type.startswith("rsa-")


def test_a_chain_in_the_wrong_order_with_its_root_is_described_so(tmp_path):
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("git.acme.example")
    shuffled = intermediate.cert_pem.bytes() + leaf.cert_chain_pems[0].bytes() + root.cert_pem.bytes()
    setup = reproduce(tmp_path, {"b": NGINX_SITE}, {"chain.pem": shuffled})
    (certificate,) = setup.certificates
    assert certificate.for_path is None
    assert (certificate.count, certificate.ordered, certificate.includes_root) == (3, False, True)


def test_an_expired_certificate_is_marked_expired(tmp_path):
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    leaf = trustme.CA().issue_cert("git.acme.example", not_before=past, not_after=past + datetime.timedelta(days=90))
    setup = reproduce(tmp_path, {"b": NGINX_SITE}, {"etc/nginx/ssl/git.acme.example.crt": leaf.cert_chain_pems[0].bytes()})
    (certificate,) = setup.certificates
    assert certificate.expired and certificate.for_path == "/etc/nginx/ssl/git.acme.example.crt"


def reproduce(directory: Path, files: dict[str, str], binary: dict[str, bytes] | None = None) -> CustomerSetup:
    write(directory, files)
    for relpath, data in (binary or {}).items():
        (directory / relpath).parent.mkdir(parents=True, exist_ok=True)
        (directory / relpath).write_bytes(data)
    return read_bundle([directory])


def write(directory: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        (directory / relpath).parent.mkdir(parents=True, exist_ok=True)
        (directory / relpath).write_text(text)
