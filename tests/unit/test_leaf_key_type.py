"""The lab's leaf has a key type the customer's TLS 1.2 cipher list accepts: a list written
for an RSA certificate (dockerbunker's `…:!ECDSA`) gets an RSA leaf, shown in the mapping;
any other list, or none, keeps the lab's ECDSA leaf."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lab.pki import make_pki
from lab.reproduce import read_bundle
from lab.reproduce.labmap import reproduction

CASES = Path(__file__).resolve().parents[1] / "cases"


def site(ciphers: str) -> str:
    return f"""server {{
    listen 443 ssl;
    server_name git.example.org;
    ssl_certificate /etc/ssl/git.pem;
    ssl_certificate_key /etc/ssl/git.key;
    {ciphers}
    location / {{ proxy_pass http://bitbucket:7990; }}
}}
"""


def plan_for(tmp_path: Path, text: str):
    (tmp_path / "bitbucket.conf").write_text(text)
    return reproduction(read_bundle([tmp_path]), "leaf")


@pytest.mark.parametrize("ciphers", [
    "ssl_ciphers 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256';",
    "ssl_ciphers EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH:!ECDSA;",
])
def test_a_cipher_list_for_rsa_certificates_gets_an_rsa_leaf_and_a_mapping_row_naming_its_line(tmp_path, ciphers):
    plan = plan_for(tmp_path, site(ciphers))
    assert plan.leaf_key == "rsa"
    row = next(row for row in plan.mapping if row.what == "lab leaf key")
    assert "bitbucket.conf:6" in row.customer and "RSA 2048" in row.lab


@pytest.mark.parametrize("ciphers", [
    "",                                                    # OpenSSL's default: both
    "ssl_ciphers HIGH:!aNULL:!MD5;",                       # Debian's and nginx's default: both
    "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;",
    "ssl_ciphers NOT-A-CIPHER;",                           # unreadable here: the lab changes nothing
])
def test_a_cipher_list_that_accepts_ecdsa_keeps_the_labs_ecdsa_leaf_without_a_row(tmp_path, ciphers):
    plan = plan_for(tmp_path, site(ciphers))
    assert plan.leaf_key == "ecdsa"
    assert not any(row.what == "lab leaf key" for row in plan.mapping)


def test_the_published_dockerbunker_bundle_gets_an_rsa_leaf():
    plan = reproduction(read_bundle([CASES / "chaosbunker-dockerbunker-nginx-proxy-pass-slash" / "bundle"]), "x")
    assert plan.leaf_key == "rsa"


@pytest.mark.parametrize(("leaf_key", "key_class"), [("rsa", rsa.RSAPublicKey), ("ecdsa", ec.EllipticCurvePublicKey)])
def test_the_lab_pki_issues_the_leaf_with_the_key_type_asked(tmp_path, leaf_key, key_class):
    tls = make_pki(tmp_path, ["git.example.org"], leaf_key=leaf_key)
    leaf = x509.load_pem_x509_certificate((tls.directory / "cert.pem").read_bytes())
    assert isinstance(leaf.public_key(), key_class)
