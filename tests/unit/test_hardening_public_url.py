"""Issue 28, without Docker: a --public-url the lab cannot serve is one line and exit 2 before
anything starts — never an IDNAError traceback from the PKI; one it can serve goes on in ASCII.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography import x509

from lab.errors import LabError
from lab.hostnames import ascii_public_url
from lab.pki import make_pki
from lab.topology import check_public_url

LONG_LABEL = "x" * 64
LONG_NAME = ".".join(["abcdefghi"] * 26) + ".example"


@pytest.mark.parametrize("url,message", [
    ("https://a..b", "has no usable host name: it has an empty label"),
    (f"https://{LONG_LABEL}.example", "has no usable host name: its label xxxxxxxxxxxx… has 64 characters (at most 63)"),
    (f"https://{LONG_NAME}", f"has no usable host name: it has {len(LONG_NAME)} characters (at most 253)"),
    ("https://☃.example", "has no usable host name: it cannot be written in IDNA"),
    ("https://git.acme.example:70000", "has a bad port: give a number from 1 to 65535"),
    ("https://git.acme.example:0", "has port 0"),
    ("ftp://git.acme.example", "is not an http:// or https:// URL"),
    ("https://10.0.0.5/bitbucket", "names an IP address, and the sealed lab reaches its front door by name only"),
    ("http://[2001:db8::1]:7990", "names an IP address"),
])
def test_a_public_url_the_lab_cannot_serve_is_one_line_and_exit_2_before_anything_starts(url, message):
    for command in (["check", "--topology", "nginx-https"], ["reproduce", "nowhere/"]):
        result = subprocess.run([sys.executable, "-m", "lab", *command, "--public-url", url],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: public URL {url!r} {message}"), result.stderr
        assert "--public-url" not in result.stderr      # it was passed: the fix is never "pass --public-url"


def test_a_public_url_the_lab_can_serve_passes_and_goes_on_to_the_docker_engine():
    result = subprocess.run([sys.executable, "-m", "lab", "check", "--topology", "nginx-https", "--public-url",
                             "https://bücher.example:8443/bitbucket"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 2 and "no Docker engine answers" in result.stderr, result.stderr


@pytest.mark.parametrize("url,ascii_url", [
    ("https://bücher.example/bitbucket", "https://xn--bcher-kva.example/bitbucket"),
    ("https://BÜCHER.Example:8443", "https://xn--bcher-kva.example:8443"),
    ("http://git.acme.example:7990/bb", "http://git.acme.example:7990/bb"),
])
def test_a_unicode_host_is_written_in_idna_and_an_ascii_one_is_kept(url, ascii_url):
    assert ascii_public_url(url) == ascii_url
    check_public_url(ascii_url)


def test_the_topology_loader_refuses_what_the_cli_refuses_in_the_same_words():
    with pytest.raises(LabError, match=r"^public URL 'https://a\.\.b' has no usable host name: it has an empty label"):
        check_public_url("https://a..b")
    with pytest.raises(LabError, match=r"^public URL 'http://127\.0\.0\.9' names an IP address"):
        check_public_url("http://127.0.0.9")


def test_the_pki_refuses_a_name_no_certificate_can_carry_in_one_line_instead_of_an_idna_error(tmp_path):
    with pytest.raises(LabError, match=r"^the lab certificate cannot name 'a\.\.b': it has an empty label"):
        make_pki(tmp_path, ["a..b"])
    with pytest.raises(LabError, match=rf"^the lab certificate cannot name '{LONG_LABEL}\.example': its label"):
        make_pki(tmp_path, ["git.acme.example"], backend_names=[f"{LONG_LABEL}.example"])


def test_the_pki_names_a_unicode_host_in_idna_and_an_address_as_an_ip(tmp_path):
    make_pki(tmp_path, ["bücher.example", "bitbucket", "10.0.0.5"])
    leaf = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.example", "bitbucket"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
