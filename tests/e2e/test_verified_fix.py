"""Issue 26: a verified fix — the patch to the customer's own files that makes their setup
pass, proven in the same run, and again by reproducing the patched bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.reproduce.cases import verdict
from lab.reproduce.session import reproduce

CASES = Path(__file__).resolve().parents[1] / "cases"
TIMEOUT_S = 900


def fix_run(case: str, out: Path) -> dict:
    """``reproduce --fix --fix-out out --json`` of a saved case, as a user runs it."""
    command = [sys.executable, "-m", "lab", "reproduce", str(CASES / case / "bundle"), "--fix", "--fix-out", str(out),
               "--json", "--no-keep", "--no-browser"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=dict(os.environ))
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout)


def changed_lines(patch: str) -> list[str]:
    """The + and - lines of a unified diff, without its file headers."""
    return [line for line in patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++ ", "--- "))]


def reproduced_verdicts(bundle: Path, tmp_path: Path) -> dict[str, str]:
    with reproduce([bundle], certs_dir=tmp_path / "again") as run:
        return {result.id: verdict(result) for result in run.results}


def test_a_patch_that_fixes_the_file_causes_but_not_the_others_is_not_called_verified(tmp_path):
    fix = fix_run("nginx-debian-site-413-on-push", tmp_path / "fix")["fix"]

    assert [line.strip() for line in changed_lines(fix["patch"])] == ["+\tclient_max_body_size 0;".strip()]
    assert (fix["before"]["git.push-large"], fix["after"]["git.push-large"]) == ("fail", "pass")
    assert fix["verified"] is False and fix["after"]["links.clone"] == "fail"  # the SSH port: not a file edit
    assert any("plugin.ssh.baseurl" in instruction for instruction in fix["instructions"])


@pytest.mark.parametrize(("case", "path", "lines"), [
    ("nginx-upstream-ip-uri-part-decodes-slash", "etc/nginx/conf.d/bitbucket.conf",
     ["-        proxy_pass http://10.20.30.40:7990/bitbucket/;", "+        proxy_pass http://10.20.30.40:7990;"]),
    ("apache-reencrypt-without-verifydepth-500", None, ["+    SSLProxyVerifyDepth 2"]),
    # published by handcraftedbits (PROVENANCE.md): a location-only snippet, no trailing slash
    ("handcraftedbits-nginx-unit-location-uri-part", "etc/nginx/conf.d/nginx-unit-bitbucket.conf",
     ["-     proxy_pass http://bitbucket:7990/bitbucket;", "+     proxy_pass http://bitbucket:7990;"]),
    # the leaf is served, the full chain sits beside it in the bundle: the directive points at it
    ("nginx-leaf-served-fullchain-in-bundle", "bitbucket.conf",
     ["-    ssl_certificate /etc/nginx/ssl/git.acme.example.crt;",
      "+    ssl_certificate /etc/nginx/ssl/git.acme.example-fullchain.crt;"]),
    # Debian's apache2 layout with nocanon but no AllowEncodedSlashes: the directive goes beside ProxyPass
    ("apache-debian-no-allowencodedslashes", "etc/apache2/sites-enabled/bitbucket.conf",
     ["+\tAllowEncodedSlashes NoDecode"]),
    # published by chaosbunker (PROVENANCE.md): proxy_pass with a trailing slash normalises paths
    ("chaosbunker-dockerbunker-nginx-proxy-pass-slash", "etc/nginx/conf.d/bitbucket.example.com.conf",
     ["-\t\tproxy_pass http://bitbucket/;", "+\t\tproxy_pass http://bitbucket;"]),
    # the proxy serves plain HTTP but the properties still say https: the settings change, not the proxy
    ("nginx-http-only-with-tls-properties", "bitbucket.properties",
     ["-server.proxy-port=443", "-server.scheme=https", "-server.secure=true",
      "+server.proxy-port=80", "+server.scheme=http", "+server.secure=false"]),
])
def test_a_case_whose_causes_are_file_edits_gets_a_minimal_patch_verified_in_the_run_and_again_from_its_folder(
        case, path, lines, tmp_path):
    out = tmp_path / "fix"
    document = fix_run(case, out)
    fix = document["fix"]

    assert "fail" in fix["before"].values()  # the case fails as sent
    assert fix["verified"] is True, (fix["after"], fix["instructions"])
    assert "fail" not in fix["after"].values()
    assert [line.strip() for line in changed_lines(fix["patch"])] == [line.strip() for line in lines]
    if path:
        assert f"--- a/{path}" in fix["patch"] and path in fix["files"]
    patch_file = "settings.patch" if path == "bitbucket.properties" else "proxy.patch"
    assert (out / patch_file).read_text() == fix["patch"]
    assert (CASES / case / "bundle").exists()  # the customer's own files are untouched: the patch is of a copy
    assert reproduced_verdicts(out / "bundle", tmp_path) == fix["after"]


def test_a_leaf_only_certificate_gets_the_instruction_to_send_the_chain_and_no_patch(tmp_path):
    fix = fix_run("nginx-leaf-only-certificate", tmp_path / "fix")["fix"]

    assert fix["patch"] == "" and fix["verified"] is False
    assert any("intermediate" in instruction or "fullchain" in instruction for instruction in fix["instructions"])
    assert not any("deploy that file" in instruction for instruction in fix["instructions"])
    assert not (tmp_path / "fix" / "proxy.patch").exists()


@pytest.mark.xdist_group("nginx-https")
def test_check_fix_patches_a_drop_in_site_file_under_its_own_name_and_verifies_it(tmp_path):
    site = tmp_path / "bitbucket-site.conf"
    recommended = (Path(__file__).resolve().parents[2] / "lab" / "proxies" / "nginx" / "https.conf").read_text()
    site.write_text(recommended.replace("    client_max_body_size 0;\n", ""))
    command = [sys.executable, "-m", "lab", "check", "--topology", "nginx-https", "--proxy-config", str(site), "--fix",
               "--fix-out", str(tmp_path / "out"), "--json", "--no-keep", "--no-browser"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=dict(os.environ))
    document = json.loads(result.stdout)
    fix = document["fix"]
    assert fix["verified"] is True, fix
    assert "--- a/bitbucket-site.conf" in fix["patch"]
    assert changed_lines(fix["patch"]) == ["+    client_max_body_size 0;"]
    assert {c["id"]: c["ok"] for c in document["checks"]}["git.push-large"] is False  # the verdicts of the file as sent
    assert (tmp_path / "out" / "bundle" / "bitbucket-site.conf").read_text().count("client_max_body_size 0;") == 1
    assert site.read_text() == recommended.replace("    client_max_body_size 0;\n", "")  # never the original
