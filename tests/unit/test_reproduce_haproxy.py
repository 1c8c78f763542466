"""HAProxy bundles as customers send them: Debian's haproxy.cfg with Bitbucket's frontends added."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.proxies.haproxy.reader import parse_haproxy, split_words
from lab.reproduce.model import ProxySetup
from tests.unit.reproduceutil import parsed, ports, tls  # noqa: F401

DEBIAN_GLOBAL = """\
global
\tlog /dev/log\tlocal0
\tchroot /var/lib/haproxy
\tstats socket /run/haproxy/admin.sock mode 660 level admin
\tstats timeout 30s
\tuser haproxy
\tgroup haproxy
\tdaemon
\tcrt-base /etc/ssl/private

defaults
\tlog\tglobal
\tmode\thttp
\toption\thttplog
\ttimeout connect 5000
\ttimeout client  50000
\ttimeout server  50000
"""

BITBUCKET_SECTIONS = """\
frontend http
    bind *:80
    http-request redirect scheme https code 301

frontend https
    bind 0.0.0.0:443 ssl crt git.acme.example.pem alpn h2,http/1.1
    option forwardfor
    acl host_git hdr(host) -i git.acme.example
    use_backend bitbucket if host_git { path_beg /bitbucket }
    default_backend nothing

frontend ssh
    mode tcp
    bind :7999
    default_backend bitbucket_ssh

backend bitbucket
    server node1 10.0.0.11:7990 check cookie node1
    server node2 10.0.0.12:7990 check cookie node2

backend bitbucket_ssh
    mode tcp
    server node1 10.0.0.11:7999 check

backend nothing
    http-request deny
"""


def test_a_debian_haproxy_cfg_gives_listeners_route_members_and_its_runtime_needs(tmp_path):
    setup = haproxy_setup(tmp_path, {"etc/haproxy/haproxy.cfg": DEBIAN_GLOBAL + BITBUCKET_SECTIONS})
    assert setup.main_file is not None and setup.main_file.relpath == "etc/haproxy/haproxy.cfg"
    assert ports(setup.listeners) == {443: "tls+h2", 80: "redirect"}
    assert setup.route_prefix == "/bitbucket"
    assert [(u.host, u.port) for u in setup.upstreams] == [("10.0.0.11", 7990), ("10.0.0.12", 7990)]
    assert setup.server_names == ("git.acme.example",)
    assert setup.directories == ("/var/lib/haproxy", "/run/haproxy")
    assert setup.accounts == ("haproxy",)
    assert setup.daemonizes and setup.daemon_source is not None
    assert tls(setup) == [("crt", "/etc/ssl/private/git.acme.example.pem", "fullchain+key")]


def test_without_daemon_haproxy_stays_in_the_foreground(tmp_path):
    setup = haproxy_setup(tmp_path, {"haproxy.cfg": DEBIAN_GLOBAL.replace("\tdaemon\n", "") + BITBUCKET_SECTIONS})
    assert not setup.daemonizes and setup.daemon_source is None


def test_the_ssh_frontend_in_tcp_mode_is_not_an_http_listener(tmp_path):
    setup = haproxy_setup(tmp_path, {"haproxy.cfg": DEBIAN_GLOBAL + BITBUCKET_SECTIONS})
    assert 7999 not in ports(setup.listeners)


def test_a_tcp_default_mode_leaves_a_frontend_without_mode_out(tmp_path):
    config = DEBIAN_GLOBAL.replace("\tmode\thttp", "\tmode\ttcp") + "frontend plain\n    bind :8080\n    default_backend b\n" \
        "backend b\n    server s 10.0.0.1:7990\n"
    assert haproxy_setup(tmp_path, {"haproxy.cfg": config}).listeners == ()


def test_an_acl_named_in_use_backend_gives_the_route_prefix(tmp_path):
    frontend = ("frontend https\n    bind :443 ssl crt /etc/haproxy/certs/\n    acl is_bitbucket path_beg /bitbucket/\n"
                "    use_backend bitbucket if is_bitbucket\n")
    setup = haproxy_setup(tmp_path, {"bitbucket.cfg": frontend + "backend bitbucket\n    server bb bitbucket:7990\n"})
    assert setup.main_file is None
    assert setup.route_prefix == "/bitbucket"
    assert tls(setup) == [("crt", "/etc/haproxy/certs/", "fullchain+key")]


def test_use_backend_unless_an_acl_is_not_a_path_prefix(tmp_path):
    frontend = ("frontend https\n    bind :443 ssl crt /etc/haproxy/certs\n    acl is_jira path_beg /jira\n"
                "    use_backend bitbucket unless is_jira\n")
    setup = haproxy_setup(tmp_path, {"bitbucket.cfg": frontend + "backend bitbucket\n    server bb bitbucket:7990\n"})
    assert setup.route_prefix == ""
    assert tls(setup) == [("crt", "/etc/haproxy/certs/", "fullchain+key")]


def test_default_backend_routes_everything(tmp_path):
    setup = haproxy_setup(tmp_path, {"b.cfg": "frontend f\n    bind :80\n    default_backend bb\nbackend bb\n    server s bb:7990\n"})
    assert setup.route_prefix == "" and setup.route_source is not None


def test_ssl_on_a_server_line_means_the_proxy_reencrypts(tmp_path):
    backend = "backend bb\n    server s1 bb1:8443 ssl verify required ca-file /etc/haproxy/internal-ca.pem\n    server s2 bb2:7990\n"
    setup = haproxy_setup(tmp_path, {"b.cfg": "frontend f\n    bind :443 ssl crt /etc/haproxy/site.pem\n    default_backend bb\n" + backend})
    assert [(u.scheme, u.port) for u in setup.upstreams] == [("https", 8443), ("http", 7990)]
    assert ("ca-file", "/etc/haproxy/internal-ca.pem", "ca") in tls(setup)
    assert ("crt", "/etc/haproxy/site.pem", "fullchain+key") in tls(setup)


def test_a_redirect_unless_ssl_redirects_only_the_plain_bind_of_that_frontend(tmp_path):
    frontend = ("frontend www\n    bind :80\n    bind :443 ssl crt /etc/haproxy/site.pem\n"
                "    redirect scheme https code 301 if !{ ssl_fc }\n    default_backend bb\n")
    setup = haproxy_setup(tmp_path, {"b.cfg": frontend + "backend bb\n    server s bb:7990\n"})
    assert ports(setup.listeners) == {80: "redirect", 443: "tls"}


def test_a_redirect_on_another_condition_is_not_a_redirect_to_https(tmp_path):
    frontend = ("frontend www\n    bind :80\n    http-request redirect scheme https if { hdr(host) -i old.acme.example }\n"
                "    default_backend bb\n")
    setup = haproxy_setup(tmp_path, {"b.cfg": frontend + "backend bb\n    server s bb:7990\n"})
    assert ports(setup.listeners) == {80: "plain"}


def test_a_listen_section_is_its_own_frontend_and_backend(tmp_path):
    setup = haproxy_setup(tmp_path, {"b.cfg": "listen bitbucket\n    bind :8080\n    server s1 10.0.0.5:7990 check\n"})
    assert ports(setup.listeners) == {8080: "plain"}
    assert [(u.host, u.port) for u in setup.upstreams] == [("10.0.0.5", 7990)]


@pytest.mark.parametrize(("line", "words"), [
    ("    bind :443 ssl crt /x.pem   # the public cert", ["bind", ":443", "ssl", "crt", "/x.pem"]),
    ('    http-request set-header X-Note "two words"', ["http-request", "set-header", "X-Note", "two words"]),
    ("    acl x path_beg /a\\ b", ["acl", "x", "path_beg", "/a b"]),
])
def test_words_are_split_as_haproxy_splits_them(line, words):
    assert split_words(line) == words


def haproxy_setup(directory: Path, files: dict[str, str]) -> ProxySetup:
    return parsed(directory, files, parse_haproxy)
