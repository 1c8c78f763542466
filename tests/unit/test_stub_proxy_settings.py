"""Issue 24 (items 3 and 4): the bitbucket.properties keys a customer sets for a proxy, read
as Bitbucket reads them — the request-header limit, the keys that switch forwarded headers
on, and an SSH base URL without a user. Each case sits beside the one that must not pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from lab.stub.app import with_ssh_user
from lab.stub.config import ConfigError, load_settings, settings_from_properties
from lab.stub.connector import IncomingRequest, view_request
from tests.unit.stubutil import RawResponse, raw_request, request_head, running_stub

HOST = "bitbucket.lab.test"
KB = 1024


def cookie_of(size: int) -> dict[str, str]:
    return {"Host": HOST, "Cookie": "lab_sso=" + "x" * size}


# --- the request-header limit (server.max-http-header-size) ---------------------------------

def test_the_default_limit_refuses_a_12_kb_cookie_with_tomcats_400_and_passes_a_7_kb_one(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        refused = raw_request(stub.ports[0], "/status", cookie_of(12 * KB))
        passed = raw_request(stub.ports[0], "/status", cookie_of(7 * KB))
    assert_tomcat_header_too_large(refused)
    assert (passed.status, json.loads(passed.body)) == (200, {"state": "RUNNING"})


def test_a_64kb_limit_lets_the_12_kb_cookie_through(tmp_path):
    with running_stub(tmp_path, "server.port=0\nserver.max-http-header-size=64KB\n") as stub:
        assert raw_request(stub.ports[0], "/status", cookie_of(12 * KB)).status == 200
        over_64kb = dict(cookie_of(33 * KB), **{"X-Lab-Padding": "x" * 33 * KB})  # Python reads lines up to 64 KB
        assert_tomcat_header_too_large(raw_request(stub.ports[0], "/status", over_64kb))


def test_the_limit_counts_the_request_line_and_every_header_line_with_its_crlf(tmp_path):
    # Tomcat's Http11InputBuffer holds the request line, the header lines and the empty line.
    limit = 2000
    fits = cookie_of(0)
    fits["Cookie"] += "x" * (limit - len(request_head("/status", fits)))
    one_over = dict(fits, Cookie=fits["Cookie"] + "x")
    assert len(request_head("/status", fits)) == limit
    with running_stub(tmp_path, f"server.port=0\nserver.max-http-header-size={limit}\n") as stub:
        assert raw_request(stub.ports[0], "/status", fits).status == 200
        assert_tomcat_header_too_large(raw_request(stub.ports[0], "/status", one_over))


@pytest.mark.parametrize("properties,limit", [
    ({}, 8192),
    ({"server.max-http-header-size": "16384"}, 16384),
    ({"server.max-http-header-size": "8KB"}, 8192),
    ({"server.max-http-header-size": "64kb"}, 65536),
    ({"server.max-http-header-size": "1MB"}, 1 << 20),
    ({"server.max-http-request-header-size": "32KB"}, 32768),
    ({"server.max-http-request-header-size": "32KB", "server.max-http-header-size": "1MB"}, 32768),
    ({"server.max-http-header-size": "0"}, 8192),
    ({"server.max-http-header-size": "-1"}, 8192),
])
def test_the_header_limit_is_read_as_spring_boot_reads_data_sizes(tmp_path, properties, limit):
    assert settings_from_properties(properties, tmp_path).max_header_bytes == limit


@pytest.mark.parametrize("value", ["lots", "8 KB", "8KiB"])
def test_a_header_limit_spring_cannot_read_stops_the_stub_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError, match="server.max-http-header-size"):
        settings_from_properties({"server.max-http-header-size": value}, tmp_path)


def test_the_header_limit_comes_from_the_environment_by_relaxed_binding(tmp_path):
    assert load_settings(tmp_path, {"SERVER_MAXHTTPHEADERSIZE": "64KB"}).max_header_bytes == 65536
    assert load_settings(tmp_path, {"SERVER_MAX_HTTP_REQUEST_HEADER_SIZE": "16KB"}).max_header_bytes == 16384
    assert load_settings(tmp_path, {"server_maxhttpheadersize": "64KB"}).max_header_bytes == 8192  # not upper case


def test_the_diagnostics_report_the_header_limit_bitbucket_applies(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        default = diagnostics(stub.ports[0], {"Host": HOST})
    with running_stub(tmp_path / "raised", "server.port=0\nserver.max-http-request-header-size=64KB\n") as stub:
        raised = diagnostics(stub.ports[0], {"Host": HOST})
    assert (default["max_http_header_size"], raised["max_http_header_size"]) == (8192, 65536)


# --- the keys that switch Tomcat's RemoteIpValve on -----------------------------------------

SWITCHED_ON = [
    "server.forward-headers-strategy=NATIVE",
    "server.use-forward-headers=true",
    "server.tomcat.remoteip.protocol-header=X-Forwarded-Proto",
    "server.tomcat.remoteip.remote-ip-header=X-Forwarded-For",
    "server.tomcat.protocol-header=x-forwarded-proto",
    "server.tomcat.remote-ip-header=x-forwarded-for",
]
LEFT_OFF = [
    "",
    "server.use-forward-headers=false",
    "server.forward-headers-strategy=NONE\nserver.use-forward-headers=true",
    "server.tomcat.remoteip.port-header=X-Forwarded-Port\nserver.tomcat.remoteip.host-header=X-Forwarded-Host",
]
FROM_TLS_PROXY = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize("key", SWITCHED_ON)
def test_each_key_that_switches_forwarded_headers_on_makes_x_forwarded_proto_count(tmp_path, key):
    with running_stub(tmp_path, f"server.port=0\n{key}\n") as stub:
        response = raw_request(stub.ports[0], "/", FROM_TLS_PROXY)
        seen = diagnostics(stub.ports[0], FROM_TLS_PROXY)
    assert response.location == f"https://{HOST}/dashboard"
    assert (seen["secure"], seen["remote_addr"], seen["forwarded_headers_enabled_by"]) == \
        (True, "203.0.113.7", key.partition("=")[0])


@pytest.mark.parametrize("properties", LEFT_OFF)
def test_without_such_a_key_x_forwarded_proto_changes_nothing(tmp_path, properties):
    with running_stub(tmp_path, f"server.port=0\n{properties}\n") as stub:
        response = raw_request(stub.ports[0], "/", FROM_TLS_PROXY)
        seen = diagnostics(stub.ports[0], FROM_TLS_PROXY)
    assert response.location == f"http://{HOST}/dashboard"
    assert (seen["secure"], seen["remote_addr"], seen["forwarded_headers_enabled_by"]) == (False, "127.0.0.1", None)


def test_a_protocol_header_key_names_the_header_the_valve_reads(tmp_path):
    with running_stub(tmp_path, "server.port=0\nserver.tomcat.remoteip.protocol-header=X-Scheme\n") as stub:
        named = raw_request(stub.ports[0], "/", {"Host": HOST, "X-Scheme": "https"})
        other = raw_request(stub.ports[0], "/", {"Host": HOST, "X-Forwarded-Proto": "https"})
    assert (named.location, other.location) == (f"https://{HOST}/dashboard", f"http://{HOST}/dashboard")


# (headers, remote address) → (scheme, secure, server name, port, client address): RemoteIpValve's rules
VALVE_RULES = [
    ({"x-forwarded-proto": "https"}, "10.0.0.2", ("https", True, "internal", 443, "10.0.0.2")),
    ({"x-forwarded-proto": "https", "x-forwarded-port": "8443"}, "10.0.0.2",
     ("https", True, "internal", 8443, "10.0.0.2")),
    ({"x-forwarded-port": "8443"}, "10.0.0.2", ("http", False, "internal", 7990, "10.0.0.2")),
    ({"x-forwarded-proto": "https, http"}, "10.0.0.2", ("http", False, "internal", 80, "10.0.0.2")),
    ({"x-forwarded-proto": "HTTPS, https"}, "10.0.0.2", ("https", True, "internal", 443, "10.0.0.2")),
    ({"x-forwarded-host": "public.example:8443"}, "10.0.0.2", ("http", False, "public.example", 7990, "10.0.0.2")),
    ({"x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.0.0.9"}, "10.0.0.2",
     ("http", False, "internal", 7990, "203.0.113.7")),
    ({"x-forwarded-for": "10.0.0.8, 10.0.0.9"}, "10.0.0.2", ("http", False, "internal", 7990, "10.0.0.8")),
    ({"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}, "198.51.100.20",
     ("http", False, "internal", 7990, "198.51.100.20")),
]


@pytest.mark.parametrize("forwarded_headers,remote_addr,seen", VALVE_RULES)
def test_forwarded_headers_follow_tomcats_remote_ip_valve(forwarded_headers, remote_addr, seen):
    settings = settings_from_properties({"server.forward-headers-strategy": "NATIVE"}, Path("/nonexistent"))
    request = IncomingRequest("GET", "/", "HTTP/1.1", {"host": "internal:7990", **forwarded_headers},
                              remote_addr, "10.0.0.3", 7990)
    view = view_request(settings.connectors[0], request, settings.forwarded)
    assert (view.scheme, view.secure, view.server_name, view.server_port, view.remote_addr) == seen


# --- plugin.ssh.baseurl without a user -------------------------------------------------------

@pytest.mark.parametrize("base_url,with_user", [
    ("ssh://bitbucket.example.com:7999/", "ssh://git@bitbucket.example.com:7999"),
    ("ssh://bitbucket.example.com/", "ssh://git@bitbucket.example.com"),
    ("ssh://git@bitbucket.example.com:7999", "ssh://git@bitbucket.example.com:7999"),
    ("ssh://deploy@bitbucket.example.com:7999/", "ssh://deploy@bitbucket.example.com:7999"),
])
def test_an_ssh_base_url_gets_bitbucket_git_user_only_when_it_names_none(base_url, with_user):
    assert with_ssh_user(base_url) == with_user


def test_the_helm_charts_ssh_base_url_gives_a_git_at_clone_link_without_a_doubled_slash(tmp_path):
    environ = {"PLUGIN_SSH_BASEURL": "ssh://bitbucket.example.com:7999/"}  # as the Helm chart sets it
    with running_stub(tmp_path, "server.port=0\nsetup.baseUrl=https://bitbucket.example.com\n", environ) as stub:
        response = requests.get(f"http://127.0.0.1:{stub.ports[0]}/rest/api/1.0/projects/LAB/repos/repo",
                                auth=("admin", "admin"), timeout=10)
    links = {link["name"]: link["href"] for link in response.json()["links"]["clone"]}
    assert links["ssh"] == "ssh://git@bitbucket.example.com:7999/lab/repo.git"


# --- helpers ---------------------------------------------------------------------------------

def diagnostics(port: int, headers: dict[str, str]) -> dict[str, object]:
    response = raw_request(port, "/rest/lab/1.0/request", headers)
    assert response.status == 200, response.body[:300]
    return json.loads(response.body)


def assert_tomcat_header_too_large(response: RawResponse) -> None:
    """Tomcat's own 400: its HTML error report, the connection closed, none of Bitbucket's headers."""
    page = response.body.decode("utf-8")
    assert response.status == 400, page[:300]
    assert "<title>HTTP Status 400 \u2013 Bad Request</title>" in page
    assert "<p><b>Message</b> Request header is too large</p>" in page
    assert response.headers["content-type"] == "text/html;charset=utf-8"
    assert response.headers["connection"] == "close"
    assert "x-arequestid" not in response.headers
