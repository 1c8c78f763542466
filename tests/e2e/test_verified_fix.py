"""Issue 26: a verified fix — the patch to the customer's own files that makes their setup
pass, proven in the same run, and again by reproducing the patched bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.fix.dropins import drop_in_bundle, fix_drop_ins
from lab.reproduce.cases import verdict
from lab.reproduce.session import reproduce
from lab.targets import check_running
from lab.topology import load_topology
from tests.e2e.test_failure_catalog import FAILURES, _variant_properties, _variant_site

CASES = Path(__file__).resolve().parents[1] / "cases"
TIMEOUT_S = 900


def fix_run(case: str | Path, out: Path) -> dict:
    """``reproduce --fix --fix-out out --json`` of a saved case (or a bundle folder), as a user runs it."""
    bundle = case if isinstance(case, Path) else CASES / case / "bundle"
    command = [sys.executable, "-m", "lab", "reproduce", str(bundle), "--fix", "--fix-out", str(out),
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


_VERIFIED_CASES = [pytest.param(*entry) for entry in [
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
    # published by sloppycoder (PROVENANCE.md): one httpd for Jira, Stash, Fisheye and Bamboo, no <VirtualHost>
    ("sloppycoder-apache-multiapp-stash-prefix", "usr/local/apache2/conf/extra/proxy-atl.conf",
     ["+AllowEncodedSlashes NoDecode",
      "-ProxyPass        /stash http://stash:7990/stash connectiontimeout=5 timeout=300",
      "+ProxyPass        /stash http://stash:7990/stash nocanon connectiontimeout=5 timeout=300"]),
    # the proxy serves plain HTTP but the properties still say https: the settings change, not the proxy
    ("nginx-http-only-with-tls-properties", "bitbucket.properties",
     ["-server.proxy-port=443", "-server.scheme=https", "-server.secure=true",
      "+server.proxy-port=80", "+server.scheme=http", "+server.secure=false"]),
]]


@pytest.mark.parametrize(("case", "path", "lines"), _VERIFIED_CASES)
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


def test_a_caddyfile_body_limit_beside_the_bitbucket_site_is_lifted_and_the_jira_site_left_alone(tmp_path):
    from tests.e2e.test_reproduce_shapes import CADDYFILE

    jira_limit = "\trequest_body {\n\t\tmax_size 5MB\n\t}\n\treverse_proxy jira"
    caddyfile = CADDYFILE.format(limit="\trequest_body {\n\t\tmax_size 1MB\n\t}\n").replace(
        "\treverse_proxy jira", jira_limit)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "Caddyfile").write_text(caddyfile)

    fix = fix_run(tmp_path / "bundle", tmp_path / "fix")["fix"]

    assert changed_lines(fix["patch"]) == ["-\t\tmax_size 1MB", "+\t\tmax_size 0"]
    assert (fix["before"]["git.push-large"], fix["after"]["git.push-large"]) == ("fail", "pass")
    assert "max_size 5MB" in (tmp_path / "fix" / "bundle" / "Caddyfile").read_text()  # Jira's limit is Jira's


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


CASES_NOT_ALL_FILE_EDITS = {  # failing cases with a cause no file edit fixes: patched where one does, never "verified"
    "nginx-debian-site-413-on-push": "the SSH port users reach (plugin.ssh.baseurl is a choice)",
    "ahaasler-docker-stash-nginx-context-ssl-on": "Tomcat's port open to users: a firewall or server.address",
    "bflad-chef-stash-apache-vhost-bitbucket5": "Tomcat's port open to users: a firewall or server.address",
    "sloppycoder-head-apache-snippet-localhost": "Tomcat's port open to users: a firewall or server.address",
    "nginx-localhost-tomcat-port-open": "Tomcat's port open to users: a firewall or server.address",
    "nginx-leaf-only-certificate": "a certificate the customer must get: the bundle holds no full chain",
    "apache-reencrypt-preservehost-sni-mismatch": "the name in Bitbucket's certificate is not in the bundle",
    "traefik-file-provider-toml-buffering-413-on-push": "Traefik's files are translated, not yet patched by --fix",
    "traefik-traefik-docs-acme-http-labels-bitbucket": "Traefik's files are translated, not yet patched by --fix",
}


def test_every_failing_case_is_either_held_to_a_verified_patch_or_says_why_not():
    failing = {case.parent.name for case in CASES.glob("*/case.toml") if '= "fail"' in case.read_text()}
    verified = {params.values[0] for params in _VERIFIED_CASES}
    assert verified | set(CASES_NOT_ALL_FILE_EDITS) == failing
    assert not verified & set(CASES_NOT_ALL_FILE_EDITS)


CATALOG_PATCHED = {  # the failure catalog's variants whose causes are all file edits → the patch's lines (measured)
    "nginx default body limit answers a big push with 413": ["+    client_max_body_size 0;"],
    "apache without AllowEncodedSlashes 404s encoded slashes itself": ["+    AllowEncodedSlashes NoDecode"],
    "apache without nocanon keeps %2F on bookworm but changes %3B, %25 and //": [
        "-    ProxyPass /bitbucket http://bitbucket:7990/bitbucket timeout=600",
        "+    ProxyPass /bitbucket http://bitbucket:7990/bitbucket nocanon timeout=600"],
    "nginx proxy_pass with a uri part decodes encoded slashes": [
        "-        proxy_pass http://bitbucket:7990/bitbucket/;   # no URI part: %2F reaches Bitbucket undecoded",
        "+        proxy_pass http://bitbucket:7990;   # no URI part: %2F reaches Bitbucket undecoded"],
    "tls proxy without scheme, port and secure redirects to http": [
        "+server.proxy-port=443", "+server.scheme=https", "+server.secure=true"],
    "host not preserved with a proxy-name but no proxy-port redirects to :7990": ["+server.proxy-port=443"],
    "host not preserved and no proxy-name redirects to the internal host": [
        "+server.proxy-name=bitbucket.lab.test", "+server.proxy-port=443"],
    "require-ssl behind a tls proxy without secure loops": ["+server.secure=true"],
    "secure unset gives a session cookie without Secure": ["-server.secure=false", "+server.secure=true"],
    "tls 1.0 and 1.1 enabled": ["-    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_ciphers DEFAULT:@SECLEVEL=0;",
                                "+    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers DEFAULT:@SECLEVEL=0;"],
    "short proxy read timeout cuts a slow clone": ["-        proxy_read_timeout 1s;", "+        proxy_read_timeout 600s;"],
    "haproxy short server timeout cuts a slow clone": [
        "+    timeout client 10m", "-    timeout server 1s", "+    timeout server 10m"],
    "context path differs between proxy and bitbucket": ["+server.context-path=/bitbucket"],
    "apache re-encrypting without SSLProxyVerifyDepth answers 500 (AH02040)": ["+    SSLProxyVerifyDepth 2"],
    "nginx header buffers smaller than bitbucket's 8 kb cut a big sso cookie": [
        "-    large_client_header_buffers 4 4k;   # room for SSO cookies when Bitbucket allows more than its default 8 KB",
        "+    large_client_header_buffers 4 8k;   # room for SSO cookies when Bitbucket allows more than its default 8 KB"],
    "apache LimitRequestFieldSize smaller than bitbucket's 8 kb cuts a big sso cookie": [
        "-    LimitRequestFieldSize 4096", "+    LimitRequestFieldSize 8192"],
    "bitbucket allowing 64 kb of headers behind nginx at its default 8k buffers": ["+    large_client_header_buffers 4 64k;"],
    "nginx spooling pushes into its default body limit fails them": [
        "-    client_max_body_size 1m;", "+    client_max_body_size 0;"],
    "cluster without affinity logs users out": ["+    ip_hash;"],
    "caddy request_body max_size answers a big push with 413": ["-\t\tmax_size 1MB", "+\t\tmax_size 0"],
    "caddy response_header_timeout cuts a slow clone": [
        "-\t\t\t\tresponse_header_timeout 1s", "+\t\t\t\tresponse_header_timeout 10m"],
}
CATALOG_INSTRUCTED = {  # the rest: why the lab prints an instruction and no patch
    "leaf served without its intermediate": "a certificate the customer must get (no full chain in the drop-ins)",
    "certificate for the wrong host": "a certificate to reissue",
    "expired leaf": "a certificate to renew",
    "self-signed leaf": "a certificate from a CA",
    "base url differs from the public url": "the base URL lives in Bitbucket's database (setup.baseUrl is read once)",
    "proxy marks the session cookie Secure on a plain-http site": "a directive the customer added to remove",
    "proxy injects an http:// script into the https pages (mixed content)": "a sub_filter the customer added to remove",
    "proxy rewrites the login form to post over http": "a sub_filter the customer added to remove",
    "front door listens on another port than the public url": "which side is wrong (listen or public URL) is a choice",
    "proxy answers git with its own 502 while a slow repository is configured": "a location the customer added",
    "proxy forbids pushes while clones work": "a deny rule the customer added to remove",
    "no port-80 redirect to https": "a whole server block to add: no edit kind for it yet",
    "haproxy bind without ssl-min-ver accepts tls 1.0": "an option of HAProxy's bind line: no edit kind for it yet",
    "nginx re-encrypting with the wrong proxy_ssl_name": "the name in Bitbucket's certificate is not in the drop-ins",
    "nginx upstream on a port where nothing listens": "where Bitbucket listens is not in the drop-ins",
    "apache re-encrypting to tomcat's plain http port": "the scheme or the port: a choice",
    "nginx offering http2 with no concurrent streams breaks git over h2 only": "a directive the customer added to remove",
    "nginx without proxy_http_version 1.1 spools pushes": "a note on a passing check, not a failure",
    "mod_auth_basic in front of bitbucket": "an authentication block the customer added to remove",
    "ssh on 22 at the load balancer while plugin.ssh.baseurl says 7999": "which port users get is a choice",
    "ssh frontend idle timeout shorter than bitbucket's silence cuts ssh pushes": "the SSH frontend is not the anchor",
    "cluster without health checks keeps sending users to a dead node": "server-line options: no edit kind for it yet",
    "caddy handle_path strips the context path before bitbucket sees it": "a route block to rename (`handle_path` → "
                                                                          "`handle`): no edit kind for it yet",
    **dict.fromkeys([
        "traefik sanitizePath at its default merges // before bitbucket sees it",
        "traefik buffering middleware answers a big push with 413",
        "traefik stripPrefix strips the context path before bitbucket sees it",
        "traefik responseHeaderTimeout cuts a slow clone"],
        "the lab runs its translation of Traefik's files, not the files: --fix is not offered"),
}


def test_every_catalog_failure_is_either_held_to_a_verified_patch_or_says_why_it_has_none():
    assert set(CATALOG_PATCHED) | set(CATALOG_INSTRUCTED) == set(FAILURES)
    assert not set(CATALOG_PATCHED) & set(CATALOG_INSTRUCTED)


@pytest.mark.parametrize("name", list(CATALOG_PATCHED))
def test_a_catalog_failure_whose_causes_are_file_edits_gets_its_minimal_patch_verified_through_check_fix(
        name, lab_topology, tmp_path):
    failure = FAILURES[name]
    topology = load_topology(failure.topology)
    site = _variant_site(topology.proxy_site, failure.site_edits, tmp_path) if failure.site_edits else None
    properties = _variant_properties(topology.properties, failure.properties, tmp_path)
    running = lab_topology(failure.topology, proxy_config=site, properties=properties)
    before = check_running(running)
    (tmp_path / "sent").mkdir()
    setup = drop_in_bundle(running.options.drop_ins, tmp_path / "sent")

    fix = fix_drop_ins(running, setup, before, tmp_path / "fix", check_running)

    assert any(result.ok is False for result in fix.before)  # the variant fails as sent
    assert fix.verified, (fix.verdict_line(), fix.instructions)
    assert fix.instructions == []
    assert [line.strip() for line in changed_lines(fix.patch)] == [line.strip() for line in CATALOG_PATCHED[name]]
