"""Reference §2, rule by rule: (connector settings, request) → (status, Location).

Each row is one measured Tomcat behaviour; the classic proxy symptoms are rows too.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from lab.stub.config import settings_from_properties
from lab.stub import server
from lab.stub.connector import IncomingRequest, absolute_location, view_request
from tests.unit.stubutil import raw_request, running_stub

HOST = "bitbucket.lab.test"
PROXIED_HTTPS = ("server.proxy-name=bitbucket.lab.test\nserver.proxy-port=443\n"
                 "server.scheme=https\nserver.secure=true\n")

# (id, properties, target, headers, status, expected Location)
REDIRECT_RULES = [
    ("host header port is kept", "", "/", {"Host": f"{HOST}:7990"}, 302, f"http://{HOST}:7990/dashboard"),
    ("no port in host means the scheme default", "", "/", {"Host": HOST}, 302, f"http://{HOST}/dashboard"),
    ("https connector defaults to 443 and drops it", "server.scheme=https\nserver.secure=true\n", "/",
     {"Host": HOST}, 302, f"https://{HOST}/dashboard"),
    ("http with port 443 keeps :443", "server.proxy-port=443\n", "/", {"Host": HOST}, 302,
     f"http://{HOST}:443/dashboard"),
    ("proxy-name replaces the host but keeps the host port", "server.proxy-name=public.example\n", "/",
     {"Host": "internal:7990"}, 302, "http://public.example:7990/dashboard"),
    ("proxy-port replaces the host port", "server.proxy-port=8080\n", "/", {"Host": f"{HOST}:7990"}, 302,
     f"http://{HOST}:8080/dashboard"),
    ("full proxy settings give the public url", PROXIED_HTTPS, "/", {"Host": "bitbucket:7990"}, 302,
     f"https://{HOST}/dashboard"),
    ("symptom: host not preserved redirects to the internal host", "", "/", {"Host": "bitbucket:7990"}, 302,
     "http://bitbucket:7990/dashboard"),
    ("symptom: tls proxy with only proxy-name set downgrades to http", f"server.proxy-name={HOST}\n", "/",
     {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}, 302,
     f"http://{HOST}/dashboard"),
    ("anonymous dashboard goes to login with next", "", "/dashboard", {"Host": HOST}, 302,
     f"http://{HOST}/login?next=/dashboard"),
    ("context root without slash gets one and keeps the query", "server.context-path=/bitbucket\n",
     "/bitbucket?a=1", {"Host": HOST}, 302, f"http://{HOST}/bitbucket/?a=1"),
    ("redirects are prefixed with the context path by bitbucket", "server.context-path=/bitbucket\n",
     "/bitbucket/", {"Host": HOST}, 302, f"http://{HOST}/bitbucket/dashboard"),
    ("require-ssl redirects to https with raw uri and query", "server.require-ssl=true\n",
     "/status?x=%2F", {"Host": f"{HOST}:7990"}, 302, f"https://{HOST}/status?x=%2F"),
    ("require-ssl uses redirect-port", "server.require-ssl=true\nserver.redirect-port=8443\n",
     "/status", {"Host": HOST}, 302, f"https://{HOST}:8443/status"),
    ("require-ssl uses proxy-name and ignores proxy-port",
     "server.require-ssl=true\nserver.proxy-name=public.example\nserver.proxy-port=8080\n",
     "/status", {"Host": "internal:7990"}, 302, "https://public.example/status"),
    ("symptom: require-ssl behind a tls proxy without secure loops to the same url",
     "server.require-ssl=true\nserver.proxy-name=bitbucket.lab.test\nserver.proxy-port=443\nserver.scheme=https\n",
     "/status", {"Host": HOST}, 302, f"https://{HOST}/status"),
    ("context root slash comes before require-ssl",
     "server.context-path=/bitbucket\nserver.require-ssl=true\n", "/bitbucket", {"Host": HOST}, 302,
     f"http://{HOST}/bitbucket/"),
    ("forwarded headers are ignored without NATIVE", "", "/",
     {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}, 302, f"http://{HOST}/dashboard"),
    ("NATIVE honours X-Forwarded-Proto", "server.forward-headers-strategy=NATIVE\n", "/",
     {"Host": HOST, "X-Forwarded-Proto": "https"}, 302, f"https://{HOST}/dashboard"),
    ("NATIVE honours X-Forwarded-Host and Port", "server.forward-headers-strategy=NATIVE\n", "/",
     {"Host": "bitbucket:7990", "X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST,
      "X-Forwarded-Port": "8443"}, 302, f"https://{HOST}:8443/dashboard"),
]


def test_the_rule_table_has_no_duplicate_rows():
    assert_no_duplicates([row[0] for row in REDIRECT_RULES])
    assert_no_duplicates([json.dumps(row[1:], sort_keys=True) for row in REDIRECT_RULES])


@pytest.mark.parametrize("properties,target,headers,status,location",
                         [row[1:] for row in REDIRECT_RULES], ids=[row[0] for row in REDIRECT_RULES])
def test_tomcat_rule_gives_the_measured_status_and_location(tmp_path, properties, target, headers, status, location):
    with running_stub(tmp_path, "server.port=0\n" + properties) as stub:
        response = raw_request(stub.ports[0], target, headers)
    assert (response.status, response.location) == (status, location)


def test_require_ssl_lets_a_secure_connector_through(tmp_path):
    with running_stub(tmp_path, "server.port=0\nserver.require-ssl=true\n" + PROXIED_HTTPS) as stub:
        response = raw_request(stub.ports[0], "/status", {"Host": HOST})
    assert response.status == 200
    assert json.loads(response.body) == {"state": "RUNNING"}


def test_http11_without_host_is_rejected_with_400(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        assert raw_request(stub.ports[0], "/status").status == 400


def test_http10_without_host_names_the_server_by_the_reverse_resolved_local_address_and_port(tmp_path):
    # Tomcat's getLocalName(): a request to 127.0.0.1 yields localhost (reference §2.2, measured).
    with running_stub(tmp_path, "server.port=0\n") as stub:
        response = raw_request(stub.ports[0], "/", version="HTTP/1.0")
        assert response.location == f"http://localhost:{stub.ports[0]}/dashboard"


def test_http10_without_host_falls_back_to_the_address_literal_when_it_does_not_resolve(tmp_path):
    connector = settings_from_properties({}, Path("/nonexistent")).connectors[0]
    request = IncomingRequest("GET", "/", "HTTP/1.0", {}, "10.0.0.1", "10.0.0.2", 7990)
    assert view_request(connector, request).server_name == "10.0.0.2"
    named = IncomingRequest("GET", "/", "HTTP/1.0", {}, "10.0.0.1", "10.0.0.2", 7990, local_name="bitbucket")
    assert (view_request(connector, named).server_name, view_request(connector, named).server_port) == ("bitbucket", 7990)


def test_the_local_name_is_the_address_literal_when_reverse_lookup_fails(monkeypatch):
    def no_reverse_dns(*_args):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getnameinfo", no_reverse_dns)
    monkeypatch.setattr(socket, "gethostbyaddr", no_reverse_dns)
    assert server.local_name("192.0.2.77") == "192.0.2.77"


def test_paths_outside_the_context_path_are_404(tmp_path):
    with running_stub(tmp_path, "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        assert raw_request(stub.ports[0], "/status", {"Host": HOST}).status == 404
        assert raw_request(stub.ports[0], "/bitbucket/status", {"Host": HOST}).status == 200


def test_diagnostics_report_what_the_connector_saw(tmp_path):
    properties = "server.port=0\nserver.context-path=/bitbucket\nsetup.baseUrl=https://bitbucket.lab.test/bitbucket\n"
    with running_stub(tmp_path, properties) as stub:
        response = raw_request(stub.ports[0], "/bitbucket/rest/lab/1.0/request?a=%2F",
                               {"Host": "bitbucket:7990", "X-Forwarded-Proto": "https"})
    seen = json.loads(response.body)
    assert (seen["scheme"], seen["secure"], seen["server_name"], seen["server_port"]) == ("http", False, "bitbucket", 7990)
    assert seen["request_uri"] == "/bitbucket/rest/lab/1.0/request?a=%2F"
    assert seen["forwarded"] == {"x-forwarded-proto": "https"}
    assert seen["implied_base_url"] == "http://bitbucket:7990/bitbucket"
    assert seen["configured_base_url"] == "https://bitbucket.lab.test/bitbucket"


def test_encoded_slash_in_the_path_arrives_undecoded(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        seen = json.loads(raw_request(stub.ports[0], "/rest/lab/1.0/request", {"Host": HOST}).body)
        encoded = raw_request(stub.ports[0], "/rest/api/1.0/projects/lab/repos/repo/commits/refs%2Fheads%2Ffeature%2Fx",
                              {"Host": HOST, "Authorization": "Basic YWRtaW46YWRtaW4="})
        decoded = raw_request(stub.ports[0], "/rest/api/1.0/projects/lab/repos/repo/commits/refs/heads/feature/x",
                              {"Host": HOST, "Authorization": "Basic YWRtaW46YWRtaW4="})
    assert seen["server_name"] == HOST
    assert encoded.status == 200 and json.loads(encoded.body)["ref"] == "refs/heads/feature/x"
    assert decoded.status == 404


def test_every_additional_connector_follows_its_own_settings(tmp_path):
    properties = ("server.port=0\nserver.additional-connector.1.port=0\n"
                  "server.additional-connector.1.proxy-name=bitbucket.lab.test\n"
                  "server.additional-connector.1.proxy-port=443\n"
                  "server.additional-connector.1.scheme=https\n"
                  "server.additional-connector.1.secure=true\n")
    with running_stub(tmp_path, properties) as stub:
        main = raw_request(stub.ports[0], "/", {"Host": "bitbucket:7990"})
        extra = raw_request(stub.ports[1], "/", {"Host": "bitbucket:7990"})
    assert main.location == "http://bitbucket:7990/dashboard"
    assert extra.location == "https://bitbucket.lab.test/dashboard"


def test_responses_carry_bitbucket_headers_and_no_reason_phrase(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        response = raw_request(stub.ports[0], "/status", {"Host": HOST})
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-arequestid"].startswith("@")
    assert "no-cache" in response.headers["cache-control"]
    assert "server" not in response.headers


@pytest.mark.parametrize("request_path,target,expected", [
    ("/a/b/c", "d", "http://h/a/b/d"),
    ("/a/b/c", "../d?x=1", "http://h/a/d?x=1"),
    ("/bitbucket/x", "/login", "http://h/login"),
    ("/a/", "./b/../c", "http://h/a/c"),
    ("/a", "https://elsewhere/x", "https://elsewhere/x"),
])
def test_relative_redirect_targets_resolve_against_the_request_directory(request_path, target, expected):
    connector = settings_from_properties({}, Path("/nonexistent")).connectors[0]
    request = IncomingRequest("GET", request_path, "HTTP/1.1", {"host": "h"}, "10.0.0.1", "10.0.0.2", 7990)
    assert absolute_location(view_request(connector, request), target) == expected


def test_native_forwarding_takes_the_client_address_from_x_forwarded_for(tmp_path):
    headers = {"Host": HOST, "X-Forwarded-For": "203.0.113.7, 10.0.0.2", "X-Forwarded-Proto": "https"}
    with running_stub(tmp_path, "server.port=0\nserver.forward-headers-strategy=NATIVE\n") as stub:
        native = json.loads(raw_request(stub.ports[0], "/rest/lab/1.0/request", headers).body)
    with running_stub(tmp_path / "none", "server.port=0\n") as stub:
        ignored = json.loads(raw_request(stub.ports[0], "/rest/lab/1.0/request", headers).body)
    assert (native["remote_addr"], native["secure"], native["implied_base_url"]) == ("203.0.113.7", True, f"https://{HOST}")
    assert (ignored["remote_addr"], ignored["secure"]) == ("127.0.0.1", False)


def assert_no_duplicates(items: list[str]) -> None:
    repeated = sorted({item for item in items if items.count(item) > 1})
    assert not repeated, f"repeated rows: {repeated}"
