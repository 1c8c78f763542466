"""Issue 28, without Docker: secrets never leave the lab. What it writes out — the HTML
report's configuration, a saved case — has secret values masked and key material left out;
the live run still gets the customer's real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.html_report import html_report
from lab.pki import keystore, make_pki
from lab.provision import ContainerFile, NodeSetup
from lab.redact import MASK, is_key_material, mask_secrets
from lab.reproduce.bundle import collect_bundle
from lab.reproduce.cases import save_case
from lab.runtime import LabOptions, RunningTopology
from lab.topology import load_topology

PROPERTIES = (
    "# Acme's bitbucket.properties\r\n"
    "setup.displayName=Acme Git\r\n"
    "setup.baseUrl=https://git.acme.example\r\n"
    "jdbc.url=jdbc:postgresql://bitbucket:db-s3cret@db.acme.example:5432/bitbucket\r\n"
    "jdbc.user=bitbucket\r\n"
    "jdbc.password=hunter2\r\n"
    "setup.sysadmin.password = admin-pw\r\n"
    "server.ssl.key-store-password: changeit\r\n"
    "plugin.acme.api-token=tok-123\r\n"
    "plugin.acme.client-secret=cs-456\r\n"
    "plugin.acme.passphrase=pp-789\r\n"
    "setup.license=AAABLic\\\r\n"
    "    moreLicense\\\r\n"
    "    endLicense\r\n"
    "export DB_PASSWORD=\"env pw\"\r\n"
    "feature.access-tokens=true\r\n"
    "plugin.acme.token=\r\n"
    "! password=this is a comment\r\n"
    "\r\n"
    "server.context-path=/\r\n"
)
SECRETS = ("hunter2", "admin-pw", "changeit", "tok-123", "cs-456", "pp-789", "AAABLic", "moreLicense",
           "endLicense", "env pw", "db-s3cret")
PRIVATE_KEY = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"


def test_masking_keeps_every_non_secret_line_byte_for_byte_and_each_secret_key_and_line():
    masked = mask_secrets(PROPERTIES)
    before, after = PROPERTIES.splitlines(keepends=True), masked.splitlines(keepends=True)
    assert len(after) == len(before)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [new for _, new in changed] == [
        f"jdbc.url=jdbc:postgresql://bitbucket:{MASK}@db.acme.example:5432/bitbucket\r\n",
        f"jdbc.password={MASK}\r\n",
        f"setup.sysadmin.password = {MASK}\r\n",
        f"server.ssl.key-store-password: {MASK}\r\n",
        f"plugin.acme.api-token={MASK}\r\n",
        f"plugin.acme.client-secret={MASK}\r\n",
        f"plugin.acme.passphrase={MASK}\r\n",
        f"setup.license={MASK}\\\r\n",
        f"    {MASK}\\\r\n",
        f"    {MASK}\r\n",
        f'export DB_PASSWORD="{MASK}"\r\n',
    ]
    assert not any(secret in masked for secret in SECRETS)


def test_text_without_secrets_is_returned_unchanged():
    text = "server.port=7990\nserver.proxy-name=git.acme.example\n# jdbc.password is set elsewhere\n"
    assert mask_secrets(text) == text


def test_key_material_is_known_by_content_and_config_text_is_not(tmp_path):
    make_pki(tmp_path, ["git.acme.example"])
    p12 = keystore((tmp_path / "privkey.pem").read_bytes(), (tmp_path / "cert.pem").read_bytes(), b"", "t", "pw")
    for data in (PRIVATE_KEY, b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", p12, b"\xfe\xed\xfe\xed\x00\x00\x00\x02"):
        assert is_key_material(data)
    for data in (b"server {\n    listen 443 ssl;\n}\n", (tmp_path / "cert.pem").read_bytes(), PROPERTIES.encode(), b"0"):
        assert not is_key_material(data)


def test_the_report_never_prints_key_material_whatever_the_file_is_called(tmp_path):
    running = _running(tmp_path, {
        "proxy": [ContainerFile("/etc/nginx/conf.d/tls.conf", PRIVATE_KEY),
                  ContainerFile("/etc/nginx/conf.d/bitbucket.conf", b"server {\n    listen 443 ssl;\n}\n")],
    })
    page = html_report(running, [])
    assert "PRIVATE KEY" not in page and "MIGHAgEAMBMG" not in page
    assert "<code>/etc/nginx/conf.d/tls.conf</code> holds key material (a private key or keystore): not shown" in page
    assert "listen 443 ssl;" in page        # the config beside it is shown


def test_the_report_shows_properties_with_their_secrets_masked(tmp_path):
    running = _running(tmp_path, {"bitbucket": [ContainerFile("/var/atlassian/application-data/bitbucket/shared/"
                                                              "bitbucket.properties", PROPERTIES.encode())]})
    page = html_report(running, [])
    assert "jdbc.password=********" in page and "jdbc.user=bitbucket" in page
    assert not any(secret in page for secret in SECRETS)


def test_a_saved_case_masks_the_properties_and_the_bundle_keeps_the_real_values(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bitbucket.properties").write_bytes(b"\xef\xbb\xbf" + PROPERTIES.encode())
    (bundle / "site.conf").write_text("server {\n    listen 80;\n    location / { proxy_pass http://bb:7990; }\n}\n")
    case = save_case(tmp_path / "cases", "acme", collect_bundle([bundle]), "https://git.acme.example", None, [])
    saved = (case / "bundle" / "bitbucket.properties").read_bytes()
    assert saved == b"\xef\xbb\xbf" + mask_secrets(PROPERTIES).encode()
    assert (case / "bundle" / "site.conf").read_bytes() == (bundle / "site.conf").read_bytes()
    assert b"hunter2" in (bundle / "bitbucket.properties").read_bytes()     # the live run's file is untouched


@pytest.mark.parametrize("line", ["feature.access-tokens=false", "plugin.acme.token=", "plugin.x.password = ON"])
def test_a_switch_or_an_empty_value_hides_nothing_and_is_kept(line):
    assert mask_secrets(line + "\n") == line + "\n"


def _running(tmp_path: Path, files: dict[str, list[ContainerFile]]) -> RunningTopology:
    topology = load_topology("nginx-https")
    tls = make_pki(tmp_path / "certs", topology.tls_names)
    running = RunningTopology(topology, LabOptions(), "unit-1", tls, client=None)  # type: ignore[arg-type]
    running.provisioned = {node: NodeSetup(items, {}) for node, items in files.items()}
    return running
