"""Known proxy log lines name their cause; lines of another proxy or unknown lines do not."""

from __future__ import annotations

import pytest

from lab.logsigs import SIGNATURES, explain

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
