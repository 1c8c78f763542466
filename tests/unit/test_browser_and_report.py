"""Issue 14 without Docker: the leaf's AIA URL, the browser image's place among the
images, and the HTML report's own rendering (picture, verdicts, config, screenshots)."""

from __future__ import annotations

import base64
import html
import html.parser
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from lab.checks import CheckResult
from lab.checks.base import Evidence, Verdict
from lab.html_report import html_report, numbered, topology_svg, verdict_text
from lab.images.build import IMAGE_NAMES, OPTIONAL_IMAGES, SPECS, _context_files
from lab.pki import AIA_URL, make_pki
from lab.provision import ContainerFile, NodeSetup
from lab.runtime import LabOptions, RunningTopology
from lab.topology import load_topology

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==")


@pytest.mark.parametrize("variant", ["good", "no-intermediate", "expired", "wrong-host"])
def test_the_lab_leaf_names_where_its_issuer_can_be_fetched_and_the_der_there_is_that_issuer(tmp_path, variant):
    tls = make_pki(tmp_path, ["bitbucket.lab.test"], variant)
    leaf = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    issuer = x509.load_der_x509_certificate((tmp_path / "chain.der").read_bytes())
    access = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert [d.access_location.value for d in access if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS] \
        == [AIA_URL]
    leaf.verify_directly_issued_by(issuer)
    assert issuer == x509.load_pem_x509_certificate((tmp_path / "chain.pem").read_bytes())
    assert tls.variant == variant


def test_a_self_signed_leaf_names_no_issuer_to_fetch(tmp_path):
    make_pki(tmp_path, ["bitbucket.lab.test"], "self-signed")
    leaf = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)


def test_the_browser_image_is_built_only_when_asked_for_and_takes_chromium_from_the_security_suite():
    assert "browser" in SPECS and "browser" in OPTIONAL_IMAGES and "browser" not in IMAGE_NAMES
    files = dict(_context_files(SPECS["browser"]))
    assert set(files) == {"Dockerfile", "start.sh", "seal.sh"}
    dockerfile = files["Dockerfile"].decode()
    assert "-security" in dockerfile and "chromium" in dockerfile and "playwright install" not in dockerfile
    assert b"--remote-debugging-port=9222" in files["start.sh"] and b"certutil" in files["start.sh"]


def _running(tmp_path: Path, name: str = "nginx-https") -> RunningTopology:
    topology = load_topology(name)
    tls = make_pki(tmp_path / "certs", topology.tls_names)
    running = RunningTopology(topology, LabOptions(), "unit-1", tls, client=None)  # type: ignore[arg-type]
    running.provisioned = {
        "proxy": NodeSetup([ContainerFile("/etc/lab/site.conf", b"server {\n    listen 443 ssl;\n}\n"),
                            ContainerFile("/etc/lab/tls/privkey.pem", b"SECRET KEY")], {}),
        "bitbucket": NodeSetup([ContainerFile("/var/x/shared/bitbucket.properties", b"server.secure=true\n")], {}),
    }
    return running


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def test_the_report_holds_each_verdict_the_fix_the_evidence_the_config_with_line_numbers_and_the_screenshot(tmp_path):
    shot = tmp_path / "browser-login.png"
    shot.write_bytes(PNG)
    results = [
        CheckResult("reach.front-door", Verdict(True, "connected", "something listens"), seconds=0.1),
        CheckResult("tls.chain", Verdict(False, "verification failed", "verifies", "serve fullchain.pem"),
                    evidence=Evidence(("proxy line",), ("GET /status HTTP/1.1 Host: x → 200",), "")),
        CheckResult.blocked("git.clone", "tls.chain", "clones"),
        CheckResult("browser.login", Verdict(False, "ERR_CERT_DATE_INVALID at https://bitbucket.lab.test/", "logged in",
                                             "renew it", attachments=(shot,))),
    ]
    page = html_report(_running(tmp_path), results, versions={"nginx": "1.22.1"})
    parser = _Text()
    parser.feed(page)
    text = " ".join(parser.chunks)
    for result in results:
        assert result.id in text and verdict_text(result) in text
    cells = re.findall(r"<td class='verdict'>(.*?)</td>", page)
    assert cells == [html.escape(verdict_text(result)) for result in results]  # each row's own verdict, in words
    assert verdict_text(results[2]) == "blocked by tls.chain"
    assert "serve fullchain.pem" in text and "Host: x → 200" in text and "1.22.1" in text
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in page
    assert "SECRET KEY" not in page  # keys and certificates are never shown
    assert "1</span>     listen" not in page and "2</span>     listen 443 ssl;" in page
    assert "<script" not in page and "http://" not in page.split("<body>")[0]  # self-contained: nothing fetched


def test_report_text_is_escaped_so_a_hostile_config_line_cannot_inject_markup(tmp_path):
    running = _running(tmp_path)
    running.provisioned["proxy"] = NodeSetup([ContainerFile("/etc/lab/site.conf", b"# <script>alert(1)</script>\n")], {})
    page = html_report(running, [CheckResult("reach.front-door", Verdict(False, "<img src=x onerror=1>", ""))])
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_topology_picture_draws_every_node_network_alias_and_port_from_the_topology_data():
    topology = load_topology("nginx-https")
    svg = topology_svg(topology, [CheckResult("tls.chain", Verdict(False, "x", "y"))], browser=True)
    for text in ("proxy", "bitbucket", "network outside", "network inside", "bitbucket.lab.test", ":443", ":7990",
                 "Chromium", "pki.lab.test"):
        assert text in svg, text
    assert svg.startswith("<svg") and "class='node fail'" in svg  # the front door takes the failed hop's colour
    shared = topology_svg(load_topology("direct-http"), [])
    assert "network outside" in shared and "network inside" not in shared


def test_numbered_config_lines_count_from_one_with_padding():
    assert numbered("a\nb").count("class='ln'") == 2
    assert ">1</span> a" in numbered("a\nb") and ">10</span> j" in numbered("\n".join("abcdefghij"))


def test_a_browser_node_whose_devtools_do_not_answer_fails_the_check_naming_the_lab_not_the_topology(tmp_path):
    from lab.browser import BrowserDriver, BrowserEndpoint
    from lab.checks.base import CheckTarget
    from lab.checks.browser import browser_login
    from lab.client import Vantage

    driver = BrowserDriver()
    try:
        driver.connect_soon("http://127.0.0.1:9", lambda: "chromium: gone")  # discard port: nothing answers
        endpoint = BrowserEndpoint("http://127.0.0.1:9", tmp_path, "Chrome/0", lambda: "chromium: gone", driver)
        target = CheckTarget("https://bitbucket.lab.test/bitbucket", Vantage(None, None), browser=endpoint)
        verdict = browser_login(target)
    finally:
        driver.close()
    assert verdict.ok is False and "browser node" in verdict.observed and "chromium: gone" in verdict.observed
    assert "--no-browser" in verdict.fix and verdict.attachments == ()


def test_the_browser_resolves_what_the_users_gateway_allows_on_any_port_and_the_pki_node_nothing_else():
    from lab.browser import web_names

    allows = load_topology("nginx-https").gateway_allows("outside")
    names = web_names(allows)
    assert "bitbucket.lab.test" in names and "pki.lab.test" in names
    assert "bitbucket" not in names and not any(":" in name for name in names)  # inside-only, firewalled
    assert any(entry.startswith("ssh.bitbucket.lab.test:") for entry in allows)
