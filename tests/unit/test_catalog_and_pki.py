"""The catalog as data, the PKI's variants, image tags, and the report — no Docker."""

from __future__ import annotations

import datetime
import http.client
import multiprocessing
import os
import re
import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lab.checks import CHECK_IDS, CheckResult
from lab.checks.base import Verdict
from lab.errors import LabError
from lab.images.build import SPECS, _context_files
from lab.pki import TLS_VARIANTS, _write, make_pki
from lab.report import results_json, results_table
from lab.topology import catalog, load_topology, properties_text
from tests.unit.stubutil import running_stub

CLI_CONTRACT = {"direct-http", "direct-https", "nginx-http", "apache-http", "nginx-https", "apache-https",
                "nginx-https-reencrypt", "apache-https-reencrypt", "haproxy-https", "haproxy-https-reencrypt"}


def test_the_catalog_holds_every_topology_the_cli_promises():
    assert CLI_CONTRACT <= set(catalog())


@pytest.mark.parametrize("name", catalog())
def test_each_topology_file_is_complete_and_its_properties_start_the_stub(name, tmp_path):
    topology = load_topology(name)
    assert set(topology.checks or ()) <= set(CHECK_IDS)  # None: every check that applies
    assert topology.bitbucket.ports and "outside" in topology.networks
    assert topology.public_url.startswith(("http://bitbucket.lab.test", "https://bitbucket.lab.test"))
    if topology.proxy:
        assert topology.proxy_site_file().is_file()
        assert "outside" in topology.proxy.networks
        for stub in topology.bitbucket_nodes:  # users reach Bitbucket through the proxy; at most its SSH port
            assert "outside" not in stub.networks or stub.firewall.get("outside") == (7999,)
    tls = make_pki(tmp_path / "pki", ["bitbucket.lab.test", "127.0.0.1"])
    properties = {"server.port": "0",  # the default (7990) too may be taken on this machine
                  **{key: _runnable_on_loopback(key, value, tls.keystore) for key, value in topology.properties.items()}}
    with running_stub(tmp_path / "home", properties_text(properties)) as stub:
        assert stub.servers[0].app.settings.context_path == topology.context_path
        for server, port in zip(stub.servers, stub.ports, strict=True):
            connector = server.connector
            expected = 302 if connector.require_ssl and not connector.secure else 200
            ca = tls.ca if server.tls_context else None
            assert _status(port, topology.context_path + "/status", ca) == expected, connector.prefix


def test_an_unknown_topology_names_the_catalog():
    with pytest.raises(LabError, match="unknown topology 'x'.*nginx-https"):
        load_topology("x")


def _runnable_on_loopback(key: str, value: str, keystore: Path) -> str:
    """A topology's property with its connector ports made free (0) and the keystore made real."""
    if re.fullmatch(r"server\.(additional-connector\.\d+\.)?port", key):
        return "0"
    return str(keystore) if key.endswith("key-store") else value


def _status(port: int, path: str, ca: Path | None) -> int:
    if ca is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        context = ssl.create_default_context(cafile=str(ca))
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        connection.request("GET", path, headers={"Host": "bitbucket.lab.test"})
        return connection.getresponse().status
    finally:
        connection.close()


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


def _is_good(served: list[x509.Certificate], now: datetime.datetime) -> None:
    leaf = served[0]
    assert len(served) == 2 and _dns_names(leaf) == ["bitbucket.lab.test"]
    assert leaf.not_valid_before_utc < now < leaf.not_valid_after_utc and leaf.issuer == served[1].subject


def _lacks_its_intermediate(served: list[x509.Certificate], now: datetime.datetime) -> None:
    assert len(served) == 1 and served[0].issuer != served[0].subject


def _is_expired(served: list[x509.Certificate], now: datetime.datetime) -> None:
    assert served[0].not_valid_after_utc < now


def _names_the_wrong_host(served: list[x509.Certificate], now: datetime.datetime) -> None:
    assert _dns_names(served[0]) == ["wrong.lab.test"]


def _is_self_signed(served: list[x509.Certificate], now: datetime.datetime) -> None:
    assert len(served) == 1 and served[0].issuer == served[0].subject


# What each variant must look like when served: one entry per TLS_VARIANTS key, no more.
VARIANT_SHAPES = {"good": _is_good, "no-intermediate": _lacks_its_intermediate, "expired": _is_expired,
                  "wrong-host": _names_the_wrong_host, "self-signed": _is_self_signed}


def test_every_tls_variant_has_its_own_check():
    assert set(VARIANT_SHAPES) == set(TLS_VARIANTS)


@pytest.mark.parametrize("variant", TLS_VARIANTS)
def test_each_variant_is_served_in_its_own_shape(tmp_path, variant):
    tls = make_pki(tmp_path, ["bitbucket.lab.test"], variant)
    VARIANT_SHAPES[variant](_certs(tls.fullchain.read_bytes()), datetime.datetime.now(datetime.timezone.utc))


def _dns_names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


PRIVATE_FILES = ("ca-key.pem", "privkey.pem", "keystore.p12")


def test_private_files_are_never_readable_by_others_not_even_while_being_written(tmp_path, monkeypatch):
    seen = _watch_modes(tmp_path, monkeypatch)
    make_pki(tmp_path, ["bitbucket.lab.test"])
    for name in PRIVATE_FILES:
        modes = {mode for path, mode in seen if name in path}
        assert modes == {0o600}, f"{name} (or its temp file) was seen with modes {sorted(map(oct, modes))}"
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cert.pem").stat().st_mode & 0o777 == 0o644


def test_the_pki_writer_creates_a_private_temp_file_0600_before_any_data_reaches_it(tmp_path, monkeypatch):
    seen = _watch_modes(tmp_path, monkeypatch)
    _write(tmp_path / "privkey.pem", b"secret", private=True)
    assert seen and {mode for _, mode in seen} == {0o600}
    _write(tmp_path / "cert.pem", b"public")
    assert (tmp_path / "cert.pem").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "privkey.pem"]  # no temp left


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_pki_runs_in_threads_on_one_directory_leave_one_consistent_pki(tmp_path, round_):
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda _: make_pki(tmp_path, ["bitbucket.lab.test"]), range(20)))
    assert_pki_is_consistent(tmp_path)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_pki_runs_in_processes_on_one_directory_leave_one_consistent_pki(tmp_path, round_):
    with multiprocessing.get_context("spawn").Pool(20) as pool:
        pool.starmap(make_pki, [(tmp_path, ["bitbucket.lab.test"])] * 20)
    assert_pki_is_consistent(tmp_path)


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
    results = [CheckResult("reach.status", Verdict(True, "200", "200")),
               CheckResult("tls.chain", Verdict(False, "bad", "good", "fix it")),
               CheckResult("git.clone-slow", Verdict(None, "n/a", ""))]
    table = results_table(results)
    assert "✔ reach.status" in table and "✘ tls.chain" in table and "fix: fix it" in table
    assert table.splitlines()[-1] == "1 passed, 1 failed, 1 not applicable"
    assert '"ok": null' in results_json("t", "u", results)


def test_the_lab_ca_is_the_only_trust_in_a_client_context(tmp_path):
    tls = make_pki(tmp_path, ["bitbucket.lab.test"])
    context = ssl.create_default_context(cafile=str(tls.ca))
    assert context.cert_store_stats()["x509_ca"] == 1


def _watch_modes(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(file name, permission bits) of every file in ``directory`` each time the code under
    test writes, changes a mode or renames: the moments a file could be exposed."""
    seen: list[tuple[str, int]] = []

    def spy(real):
        def observed(*args, **kwargs):
            for entry in os.scandir(directory):
                if entry.is_file():
                    seen.append((entry.name, entry.stat().st_mode & 0o777))
            return real(*args, **kwargs)
        return observed

    for name in ("write", "chmod", "fchmod", "replace", "rename"):
        monkeypatch.setattr(os, name, spy(getattr(os, name)))
    return seen


def assert_pki_is_consistent(directory: Path) -> None:
    """cert.pem verifies against ca.pem through chain.pem, and each key belongs to its cert."""
    result = subprocess.run(["openssl", "verify", "-CAfile", str(directory / "ca.pem"), "-untrusted",
                             str(directory / "chain.pem"), str(directory / "cert.pem")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for key_name, cert_name in (("privkey.pem", "cert.pem"), ("ca-key.pem", "ca.pem")):
        key = serialization.load_pem_private_key((directory / key_name).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / cert_name).read_bytes())
        assert _public_bytes(key.public_key()) == _public_bytes(cert.public_key()), f"{key_name} does not match {cert_name}"


def _public_bytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
