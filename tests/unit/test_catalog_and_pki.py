"""The catalog as data, the PKI's variants, image tags, and the report — no Docker."""

from __future__ import annotations

import datetime
import ssl
import subprocess

import pytest
from cryptography import x509

from lab.checks import CHECK_IDS, CheckResult
from lab.errors import LabError
from lab.images.build import SPECS, _context_files
from lab.pki import TLS_VARIANTS, make_pki
from lab.report import results_json, results_table
from lab.stub.config import settings_from_properties
from lab.stub.properties import parse_properties
from lab.topology import catalog, load_topology, properties_text

CLI_CONTRACT = {"direct-http", "direct-https", "nginx-http", "apache-http", "nginx-https", "apache-https",
                "nginx-https-reencrypt", "apache-https-reencrypt", "haproxy-https", "haproxy-https-reencrypt"}


def test_the_catalog_holds_every_topology_the_cli_promises():
    assert CLI_CONTRACT <= set(catalog())


@pytest.mark.parametrize("name", catalog())
def test_each_topology_file_is_complete_and_its_properties_start_the_stub(name, tmp_path):
    topology = load_topology(name)
    assert set(topology.checks) <= set(CHECK_IDS)
    assert topology.bitbucket.ports and "outside" in topology.networks
    assert topology.public_url.startswith(("http://bitbucket.lab.test", "https://bitbucket.lab.test"))
    if topology.proxy:
        assert topology.proxy_site_file().is_file()
        assert "outside" in topology.proxy.networks and "outside" not in topology.bitbucket.networks
    keystore = tmp_path / "ks.p12"
    keystore.write_bytes(b"")
    properties = {k: (str(keystore) if k.endswith("key-store") else v) for k, v in topology.properties.items()}
    settings = settings_from_properties(parse_properties(properties_text(properties)), tmp_path)
    assert settings.context_path == topology.context_path


def test_an_unknown_topology_names_the_catalog():
    with pytest.raises(LabError, match="unknown topology 'x'.*nginx-https"):
        load_topology("x")


def _certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def test_good_pki_serves_leaf_and_intermediate_that_verify_against_the_root(tmp_path):
    tls = make_pki(tmp_path, ["bitbucket.lab.test", "bitbucket"])
    chain = _certs(tls.fullchain.read_bytes())
    assert len(chain) == 2
    result = subprocess.run(["openssl", "verify", "-CAfile", str(tls.ca), "-untrusted",
                             str(tmp_path / "chain.pem"), str(tmp_path / "cert.pem")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert oct((tmp_path / "ca-key.pem").stat().st_mode & 0o777) == "0o600"


def test_the_leaf_alone_does_not_verify_against_the_root(tmp_path):
    make_pki(tmp_path, ["bitbucket.lab.test"])
    result = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "unable to get local issuer certificate" in result.stdout + result.stderr


@pytest.mark.parametrize("variant", [v for v in TLS_VARIANTS if v != "good"])
def test_each_broken_variant_is_broken_in_its_own_way(tmp_path, variant):
    tls = make_pki(tmp_path, ["bitbucket.lab.test"], variant)
    leaf = _certs(tls.fullchain.read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    now = datetime.datetime.now(datetime.timezone.utc)
    if variant == "no-intermediate":
        assert len(_certs(tls.fullchain.read_bytes())) == 1
    elif variant == "expired":
        assert leaf.not_valid_after_utc < now
    elif variant == "wrong-host":
        assert names == ["wrong.lab.test"]
    elif variant == "self-signed":
        assert leaf.issuer == leaf.subject


def test_the_root_ca_is_reused_by_later_runs(tmp_path):
    first = make_pki(tmp_path, ["bitbucket.lab.test"]).ca.read_bytes()
    assert make_pki(tmp_path, ["bitbucket.lab.test"]).ca.read_bytes() == first


def test_an_unknown_tls_variant_is_refused(tmp_path):
    with pytest.raises(LabError, match="unknown TLS variant"):
        make_pki(tmp_path, ["x"], "rotten")


def test_image_context_covers_the_stub_source_and_not_bytecode():
    names = [name for name, _ in _context_files(SPECS["stub"])]
    assert "Dockerfile" in names and "stub/server.py" in names
    assert not any("__pycache__" in name for name in names)


def test_the_table_shows_hints_for_failures_and_json_keeps_the_contract():
    results = [CheckResult("reach.status", True, "200", "200"), CheckResult("tls.chain", False, "bad", "good", "fix it"),
               CheckResult("git.clone-slow", None, "n/a", "")]
    table = results_table(results)
    assert "✔ reach.status" in table and "✘ tls.chain" in table and "fix: fix it" in table
    assert table.splitlines()[-1] == "1 passed, 1 failed, 1 not applicable"
    assert '"ok": null' in results_json("t", "u", results)


def test_the_lab_ca_is_the_only_trust_in_a_client_context(tmp_path):
    tls = make_pki(tmp_path, ["bitbucket.lab.test"])
    context = ssl.create_default_context(cafile=str(tls.ca))
    assert context.cert_store_stats()["x509_ca"] == 1
