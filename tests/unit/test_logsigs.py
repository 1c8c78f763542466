"""Known proxy log lines name their cause; lines of another proxy or unknown lines do not."""

from __future__ import annotations

import json

import pytest

from lab.logsigs import SIGNATURES, explain, gist

MEASURED = {  # lines as the real proxies wrote them in the lab's failure catalog
    ("apache", "AH02040 chain too long"): "[ssl:error] [pid 9] AH02040: Certificate Verification: Certificate Chain "
                                          "too long (chain has 2 certificates, but maximum allowed are only 1)",
    ("apache", "TLS to port 7990"): "[proxy:error] (20014)Internal error: [client 10.0.0.3:1] AH01084: pass request "
                                    "body failed to 192.168.160.3:7990 (bitbucket)",
    ("apache", "AH00898/AH01084 TLS to Bitbucket"): "[proxy:error] [client 10.0.0.3:1] AH00898: Error during SSL "
                                                    "Handshake with remote server returned by /bitbucket/status",
    ("nginx", "nginx body limit"): "2026/11/30 23:44:31 [error] 13#13: *58 client intended to send too large chunked "
                                   "body: 1048960+32768 bytes, client: 10.0.0.3",
    ("nginx", "nginx read timeout"): "[error] 13#13: *3 upstream timed out (110: Connection timed out) while reading "
                                     "response header from upstream",
    ("nginx", "nginx upstream TLS verify"): '[error] 13#13: *1 upstream SSL certificate does not match "x" while SSL '
                                            "handshaking to upstream",
    ("nginx", "nginx connect refused"): "[error] 13#13: *1 connect() failed (111: Connection refused) while "
                                        "connecting to upstream",
    ("haproxy", "haproxy server timeout"): '10.0.0.3:5 [30/Nov/2026:23:00:00.000] https~ bitbucket/bitbucket '
                                           '0/0/0/-1/1001 504 194 sH-- 1/1/0/0/0 "POST /x HTTP/1.1" rid=lab-x',
}


@pytest.mark.parametrize("kind,name", list(MEASURED))
def test_a_measured_log_line_names_its_cause(kind, name):
    signature, line = explain([MEASURED[(kind, name)]], kind)
    assert signature.name == name and line == MEASURED[(kind, name)]


def test_a_line_of_another_proxy_or_an_ordinary_line_explains_nothing():
    assert explain([MEASURED[("apache", "AH02040 chain too long")]], "nginx") is None
    assert explain(['10.0.0.3 "GET /bitbucket/status HTTP/1.1" 200 21 rid=lab-x'], "nginx") is None


def test_every_signature_has_a_fix_and_a_measured_example_or_a_pattern_of_its_own():
    names = [signature.name for signature in SIGNATURES]
    assert len(names) == len(set(names))
    assert all(signature.fix for signature in SIGNATURES)


CADDY_413 = json.dumps({  # the shape of Caddy 2.6.2's access line for a push it refused (measured, shortened)
    "level": "error", "ts": 1796620112.6565707, "logger": "http.log.access", "msg": "handled request",
    "request": {"remote_ip": "10.213.158.147", "remote_port": "46980", "proto": "HTTP/2.0", "method": "POST",
                "host": "git.initech.example", "uri": "/scm/LAB/repo.git/git-receive-pack",
                "headers": {"X-Request-Id": ["lab-git.push-large-a765467a"], "User-Agent": ["git/2.39.5"]}},
    "bytes_read": 0, "user_id": "", "duration": 0.0012, "size": 0, "status": 413, "resp_headers": {"Server": ["Caddy"]}})


def test_a_json_log_line_is_quoted_with_its_status_and_request_first_so_a_cut_quote_still_tells_them():
    quoted = gist(CADDY_413)
    assert quoted[:120].startswith("status=413 request.method=POST request.uri=/scm/LAB/repo.git/git-receive-pack")
    assert 'msg="handled request"' in quoted and "X-Request-Id" not in quoted  # headers (lists) are left out
    assert CADDY_413[:200].find('"status"') == -1  # what the plain cut showed: no status at all


def test_a_line_that_is_not_a_json_object_is_quoted_as_it_is():
    access = '10.0.0.3 "POST /x HTTP/1.1" 413 0 rid=lab-x'
    assert gist(f"  {access}\n") == access
    assert gist("[1, 2]") == "[1, 2]" and gist("{not json") == "{not json"
