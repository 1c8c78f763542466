"""nginx bundles as customers send them: includes resolved against the bundle, the front door inferred."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.reproduce.bundle import collect_bundle
from lab.reproduce.model import ProxySetup
from lab.proxies.nginx.reader import parse_nginx
from lab.reproduce.tree import path_matches
from tests.unit.reproduceutil import ports, tls  # noqa: F401

DEBIAN_NGINX_CONF = """\
user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
include /etc/nginx/modules-enabled/*.conf;

events {
\tworker_connections 768;
}

http {
\tsendfile on;
\tinclude /etc/nginx/mime.types;
\tdefault_type application/octet-stream;
\tssl_protocols TLSv1.2 TLSv1.3;
\taccess_log /var/log/nginx/access.log;
\tgzip on;
\tinclude /etc/nginx/conf.d/*.conf;
\tinclude /etc/nginx/sites-enabled/*;
}
"""

BITBUCKET_SITE = """\
server {
    listen 80;
    listen [::]:80;
    server_name git.acme.example;
    return 301 https://$host$request_uri;
}

server {
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name git.acme.example;

    ssl_certificate /etc/nginx/ssl/git.acme.example.crt;
    ssl_certificate_key /etc/nginx/ssl/git.acme.example.key;
    client_max_body_size 0;

    location /bitbucket {
        proxy_pass http://10.0.0.12:7990;
        include proxy_params;
        proxy_read_timeout 600s;
    }
}
"""

RHEL_NGINX_CONF = """\
user nginx;
worker_processes auto;
error_log /var/log/nginx/error.log;
pid /run/nginx.pid;
include /usr/share/nginx/modules/*.conf;

events {
    worker_connections 1024;
}

http {
    access_log  /var/log/nginx/access.log  main;
    include             /etc/nginx/mime.types;
    include /etc/nginx/conf.d/*.conf;
}
"""


def test_a_full_debian_nginx_conf_reads_its_site_file_through_the_sites_enabled_glob(tmp_path):
    setup = nginx_setup(tmp_path, {"etc/nginx/nginx.conf": DEBIAN_NGINX_CONF,
                                   "etc/nginx/sites-enabled/bitbucket": BITBUCKET_SITE})
    assert setup.main_file is not None and setup.main_file.relpath == "etc/nginx/nginx.conf"
    assert [f.relpath for f in setup.files] == ["etc/nginx/nginx.conf", "etc/nginx/sites-enabled/bitbucket"]
    assert setup.server_names == ("git.acme.example",)
    assert ports(setup.listeners) == {80: "redirect", 443: "tls+h2"}
    assert setup.route_prefix == "/bitbucket"
    assert [(u.scheme, u.host, u.port) for u in setup.upstreams] == [("http", "10.0.0.12", 7990)]
    assert setup.includes == {
        "/etc/nginx/modules-enabled/*.conf": "distribution", "/etc/nginx/mime.types": "distribution",
        "/etc/nginx/conf.d/*.conf": "nothing", "/etc/nginx/sites-enabled/*": "etc/nginx/sites-enabled/bitbucket",
        "proxy_params": "distribution"}
    assert setup.accounts == ("www-data",)
    assert set(setup.directories) == {"/run", "/var/log/nginx"}


def test_a_site_file_only_in_sites_available_is_not_read_by_the_sites_enabled_glob(tmp_path):
    with pytest.raises(LabError, match=r"etc/nginx/sites-available/bitbucket is not included by etc/nginx/nginx.conf"):
        nginx_setup(tmp_path, {"etc/nginx/nginx.conf": DEBIAN_NGINX_CONF,
                               "etc/nginx/sites-available/bitbucket": BITBUCKET_SITE})


def test_loose_nginx_conf_and_site_file_are_joined_by_the_glob_include(tmp_path):
    setup = nginx_setup(tmp_path, {"nginx.conf": DEBIAN_NGINX_CONF, "bitbucket": BITBUCKET_SITE})
    assert setup.includes["/etc/nginx/sites-enabled/*"] == "bitbucket"
    assert setup.route_prefix == "/bitbucket"


def test_a_loose_snippet_named_by_an_include_is_not_claimed_by_a_glob(tmp_path):
    site = BITBUCKET_SITE.replace("    client_max_body_size 0;", "    include snippets/bitbucket-ssl.conf;")
    setup = nginx_setup(tmp_path, {"nginx.conf": DEBIAN_NGINX_CONF, "bitbucket.conf": site,
                                   "bitbucket-ssl.conf": "ssl_certificate /etc/ssl/acme.pem;\nssl_session_timeout 1d;\n"})
    assert setup.includes["/etc/nginx/conf.d/*.conf"] == "bitbucket.conf"
    assert setup.includes["snippets/bitbucket-ssl.conf"] == "bitbucket-ssl.conf"


def test_a_loose_rhel_bundle_puts_the_site_file_in_conf_d_not_among_the_modules(tmp_path):
    setup = nginx_setup(tmp_path, {"nginx.conf": RHEL_NGINX_CONF, "bitbucket.conf": BITBUCKET_SITE})
    assert setup.includes["/usr/share/nginx/modules/*.conf"] == "distribution"
    assert setup.includes["/etc/nginx/conf.d/*.conf"] == "bitbucket.conf"


def test_a_rhel_nginx_conf_reads_conf_d_and_runs_as_nginx(tmp_path):
    setup = nginx_setup(tmp_path, {"etc/nginx/nginx.conf": RHEL_NGINX_CONF,
                                   "etc/nginx/conf.d/bitbucket.conf": BITBUCKET_SITE})
    assert setup.includes["/etc/nginx/conf.d/*.conf"] == "etc/nginx/conf.d/bitbucket.conf"
    assert setup.accounts == ("nginx",)
    assert setup.server_names == ("git.acme.example",)


def test_an_include_outside_the_distribution_that_the_bundle_lacks_names_file_and_line(tmp_path):
    site = BITBUCKET_SITE.replace("    client_max_body_size 0;", "    include /etc/nginx/snippets/acme-ssl.conf;")
    with pytest.raises(LabError, match=r"^etc/nginx/sites-enabled/bitbucket:15: includes "
                                       r"/etc/nginx/snippets/acme-ssl.conf, which is not in the bundle"):
        nginx_setup(tmp_path, {"etc/nginx/nginx.conf": DEBIAN_NGINX_CONF,
                               "etc/nginx/sites-enabled/bitbucket": site})


def test_an_include_the_distribution_ships_is_fine_and_a_bundle_file_of_that_name_is_found(tmp_path):
    site = BITBUCKET_SITE.replace("    client_max_body_size 0;",
                                  "    include snippets/snakeoil.conf;\n    include snippets/ssl-params.conf;")
    setup = nginx_setup(tmp_path, {"sites-enabled/bitbucket": site,
                                   "ssl-params.conf": "ssl_session_cache shared:SSL:10m;\nssl_dhparam /etc/ssl/dh.pem;\n"})
    assert setup.includes["snippets/snakeoil.conf"] == "distribution"
    assert setup.includes["snippets/ssl-params.conf"] == "ssl-params.conf"
    assert ("ssl_dhparam", "/etc/ssl/dh.pem", "dhparam") in tls(setup)


def test_two_bundle_files_of_the_included_name_are_ambiguous(tmp_path):
    site = BITBUCKET_SITE.replace("    client_max_body_size 0;", "    include snippets/ssl-params.conf;")
    files = {"sites-enabled/bitbucket": site, "a/ssl-params.conf": "ssl_stapling on;\n",
             "b/ssl-params.conf": "ssl_stapling off;\n"}
    with pytest.raises(LabError, match="several bundle files are named ssl-params.conf"):
        nginx_setup(tmp_path, files)


def test_site_files_only_are_read_as_if_included_in_http_and_a_snippet_is_read_once(tmp_path):
    site = BITBUCKET_SITE.replace("        include proxy_params;", "        include bitbucket-proxy.conf;")
    setup = nginx_setup(tmp_path, {"sites-enabled/bitbucket": site,
                                   "bitbucket-proxy.conf": "proxy_set_header Host $host;\nproxy_buffering off;\n"})
    assert setup.main_file is None
    assert [f.relpath for f in setup.files] == ["sites-enabled/bitbucket", "bitbucket-proxy.conf"]
    assert setup.route_prefix == "/bitbucket"


@pytest.mark.parametrize(("location", "prefix"), [
    ("/bitbucket", "/bitbucket"), ("/bitbucket/", "/bitbucket"), ("/", ""),
    ("^~ /bitbucket/", "/bitbucket"), ("~ ^/bitbucket(/.*)?$", "/bitbucket"),
])
def test_the_routing_prefix_is_the_location_holding_proxy_pass(tmp_path, location, prefix):
    setup = nginx_setup(tmp_path, {"bitbucket": server("listen 80;", f"location {location} {{ proxy_pass http://bb:7990; }}")})
    assert setup.route_prefix == prefix


def test_a_location_without_proxy_pass_is_not_the_route(tmp_path):
    setup = nginx_setup(tmp_path, {"bitbucket": server(
        "listen 80;", "location / { return 302 /bitbucket/; }",
        "location /bitbucket { proxy_pass http://bb:7990; }")})
    assert setup.route_prefix == "/bitbucket"


def test_a_wildcard_or_catch_all_server_name_is_not_chosen(tmp_path):
    setup = nginx_setup(tmp_path, {"bitbucket": server(
        'listen 80;', 'server_name _ "" *.acme.example ~^git\\d+\\.acme$ git.acme.example;',
        "location / { proxy_pass http://bb:7990; }")})
    assert setup.server_names == ("git.acme.example",)


def test_a_server_with_only_a_catch_all_name_has_no_server_name(tmp_path):
    setup = nginx_setup(tmp_path, {"bitbucket": server("listen 80 default_server;", "server_name _;",
                                                       "location / { proxy_pass http://bb:7990; }")})
    assert setup.server_names == ()


def test_proxy_pass_to_an_upstream_block_lists_each_member(tmp_path):
    cluster = ("upstream bitbucket_cluster {\n    server 10.0.0.11:7990;\n    server node2.acme.internal:7990 backup;\n"
               "    keepalive 16;\n}\n")
    setup = nginx_setup(tmp_path, {"bitbucket": cluster + server("listen 80;", "location / { proxy_pass http://bitbucket_cluster; }")})
    assert [(u.host, u.port) for u in setup.upstreams] == [("10.0.0.11", 7990), ("node2.acme.internal", 7990)]


def test_proxy_pass_with_a_port_is_one_member_even_when_it_looks_like_a_name(tmp_path):
    setup = nginx_setup(tmp_path, {"bitbucket": server("listen 80;", "location / { proxy_pass https://bitbucket_cluster:8443/; }")})
    assert [(u.scheme, u.host, u.port) for u in setup.upstreams] == [("https", "bitbucket_cluster", 8443)]


def test_legacy_ssl_on_makes_every_listener_tls(tmp_path):
    setup = nginx_setup(tmp_path, {"bitbucket": server("listen 443;", "ssl on;", "location / { proxy_pass http://bb:7990; }")})
    assert ports(setup.listeners) == {443: "tls"}


def test_listen_443_without_ssl_is_plain_http(tmp_path):
    setup = nginx_setup(tmp_path, {"bitbucket": server("listen 443;", "location / { proxy_pass http://bb:7990; }")})
    assert ports(setup.listeners) == {443: "plain"}


def test_http2_on_turns_on_http2_and_its_absence_does_not(tmp_path):
    with_h2 = nginx_setup(tmp_path / "a", {"b": server("listen 443 ssl;", "http2 on;", "location / { proxy_pass http://bb:7990; }")})
    without = nginx_setup(tmp_path / "b", {"b": server("listen 443 ssl;", "location / { proxy_pass http://bb:7990; }")})
    assert ports(with_h2.listeners) == {443: "tls+h2"} and ports(without.listeners) == {443: "tls"}


def test_a_server_without_listen_listens_on_port_80(tmp_path):
    setup = nginx_setup(tmp_path, {"b": server("server_name git.acme.example;", "location / { proxy_pass http://bb:7990; }")})
    assert ports(setup.listeners) == {80: "plain"}


def test_a_rewrite_to_https_at_server_level_only_redirects(tmp_path):
    redirect = server("listen 80;", "server_name git.acme.example;", "rewrite ^ https://$host$request_uri permanent;")
    setup = nginx_setup(tmp_path, {"b": redirect + BITBUCKET_SITE.split("\n\n", 1)[1]})
    assert ports(setup.listeners) == {80: "redirect", 443: "tls+h2"}


def test_a_return_of_an_error_is_not_a_redirect_to_https(tmp_path):
    refuse = server("listen 80;", "server_name git.acme.example;", "return 444;")
    setup = nginx_setup(tmp_path, {"b": refuse + BITBUCKET_SITE.split("\n\n", 1)[1]})
    assert ports(setup.listeners) == {443: "tls+h2"}


def test_an_if_scheme_redirect_redirects_only_the_plain_listener_of_that_server(tmp_path):
    setup = nginx_setup(tmp_path, {"b": server(
        "listen 80;", "listen 443 ssl;", "server_name git.acme.example;",
        "if ($scheme = http) { return 301 https://$host$request_uri; }",
        "location / { proxy_pass http://bb:7990; }")})
    assert ports(setup.listeners) == {80: "redirect", 443: "tls"}


def test_tls_files_get_their_roles_and_relative_paths_start_at_etc_nginx(tmp_path):
    setup = nginx_setup(tmp_path, {"b": server(
        "listen 443 ssl;", "ssl_certificate ssl/fullchain.pem;", "ssl_certificate_key /etc/ssl/private/acme.key;",
        "ssl_trusted_certificate /etc/ssl/certs/acme-ca.pem;", "ssl_dhparam /etc/nginx/dhparam.pem;",
        "location / { proxy_pass https://bb:8443; proxy_ssl_certificate /etc/nginx/client.pem;"
        " proxy_ssl_trusted_certificate /etc/nginx/internal-ca.pem; }")})
    assert tls(setup) == [
        ("ssl_certificate", "/etc/nginx/ssl/fullchain.pem", "fullchain"),
        ("ssl_certificate_key", "/etc/ssl/private/acme.key", "key"),
        ("ssl_trusted_certificate", "/etc/ssl/certs/acme-ca.pem", "ca"),
        ("ssl_dhparam", "/etc/nginx/dhparam.pem", "dhparam"),
        ("proxy_ssl_trusted_certificate", "/etc/nginx/internal-ca.pem", "ca")]


def test_log_and_temp_directories_are_expected_but_off_and_syslog_are_not(tmp_path):
    setup = nginx_setup(tmp_path, {"b": server(
        "listen 80;", "access_log /var/log/nginx/bitbucket/access.log combined;", "error_log syslog:server=unix:/dev/log;",
        "proxy_temp_path /var/cache/nginx/proxy_temp 1 2;", "location /x { access_log off; proxy_pass http://bb:7990; }")})
    assert setup.directories == ("/var/log/nginx/bitbucket", "/var/cache/nginx/proxy_temp")


def test_daemon_on_daemonizes_and_daemon_off_is_recorded_without_daemonizing(tmp_path):
    on = nginx_setup(tmp_path / "on", {"nginx.conf": "daemon on;\n" + RHEL_NGINX_CONF, "bitbucket.conf": BITBUCKET_SITE})
    off = nginx_setup(tmp_path / "off", {"nginx.conf": "daemon off;\n" + RHEL_NGINX_CONF, "bitbucket.conf": BITBUCKET_SITE})
    absent = nginx_setup(tmp_path / "absent", {"nginx.conf": RHEL_NGINX_CONF, "bitbucket.conf": BITBUCKET_SITE})
    assert (on.daemonizes, on.daemon_source is not None) == (True, True)
    assert (off.daemonizes, off.daemon_source is not None) == (False, True)
    assert (absent.daemonizes, absent.daemon_source) == (False, None)


def test_the_bitbucket_server_is_chosen_over_another_application_on_the_same_proxy(tmp_path):
    jira = server("listen 443 ssl;", "server_name jira.acme.example;", "location / { proxy_pass http://jira:8080; }")
    setup = nginx_setup(tmp_path, {"jira": jira, "bitbucket": BITBUCKET_SITE})
    assert setup.server_names == ("git.acme.example",)
    assert setup.upstreams[0].port == 7990


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    with pytest.raises(LabError, match=r"^bitbucket:3: nginx syntax: unexpected end of file"):
        nginx_setup(tmp_path, {"bitbucket": "server {\n    listen 80;\n    location / { proxy_pass http://bb:7990; }\n"})


def test_a_well_formed_site_file_parses(tmp_path):
    assert nginx_setup(tmp_path, {"bitbucket": BITBUCKET_SITE}).route_prefix == "/bitbucket"


def test_a_glob_does_not_reach_into_subdirectories_as_nginx_glob_does_not():
    assert path_matches("/etc/nginx/sites-enabled/bitbucket", "/etc/nginx/sites-enabled/*")
    assert not path_matches("/etc/nginx/sites-enabled/old/bitbucket", "/etc/nginx/sites-enabled/*")


def test_files_that_include_each_other_are_an_include_loop(tmp_path):
    with pytest.raises(LabError, match="include loop: a.conf → b.conf → a.conf"):
        nginx_setup(tmp_path, {"a.conf": server("listen 80;", "include b.conf;"),
                               "b.conf": "include a.conf;\nproxy_buffering off;\n"})


def nginx_setup(directory: Path, files: dict[str, str]) -> ProxySetup:
    for relpath, text in files.items():
        (directory / relpath).parent.mkdir(parents=True, exist_ok=True)
        (directory / relpath).write_text(text)
    return parse_nginx(collect_bundle([directory]))


def server(*lines: str) -> str:
    return "server {\n" + "".join(f"    {line}\n" for line in lines) + "}\n\n"

