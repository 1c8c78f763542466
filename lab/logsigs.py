"""What a proxy's log line means: known signatures → cause and fix.

Each entry is a regular expression over one log line (error or access log), the proxy
kinds that write it, and the fix a support engineer would give. Unknown lines are still
quoted verbatim as evidence; only the hint comes from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.fix.remedies import APACHE_VERIFY_DEPTH, BODY_LIMIT, PROXY_TIMEOUT


@dataclass(frozen=True)
class Signature:
    """A log line pattern and what it means."""

    name: str
    pattern: re.Pattern[str]
    kinds: tuple[str, ...]
    fix: str
    remedy: str | None = None   # the cause in lab.fix.remedies whose edit fixes it


def _sig(name: str, pattern: str, kinds: tuple[str, ...], fix: str, remedy: str | None = None) -> Signature:
    return Signature(name, re.compile(pattern), kinds, fix, remedy)


APACHE, NGINX, HAPROXY, STUB = ("apache",), ("nginx",), ("haproxy",), ("stub",)
SIGNATURES: tuple[Signature, ...] = (
    _sig("AH02040 chain too long", r"AH02040|Certificate Chain too long", APACHE, APACHE_VERIFY_DEPTH.text,
         APACHE_VERIFY_DEPTH.cause),
    _sig("AH02411 peer name", r"AH02411|AH02005|Peer certificate CN mismatch|does not match the expected", APACHE,
         "Bitbucket's certificate does not name the host Apache checks (SSLProxyCheckPeerName; with "
         "ProxyPreserveHost On Apache checks the public name): give Bitbucket's certificate that name, or use "
         "`ProxyPreserveHost Off` with server.proxy-name, or `SSLProxyCheckPeerName off`"),
    _sig("TLS spoken to a plain port", r"wrong version number|packet length too long|http request.*SSL|SSL routines::record layer",
         APACHE + NGINX, "the proxy speaks TLS to a port of Bitbucket's that answers plain HTTP: the upstream scheme "
         "does not match the port (https:// to 7990, or http:// to Tomcat's TLS port)"),
    _sig("TLS to port 7990", r"AH01084: pass request body failed to \S+:7990\b", APACHE,
         "Apache speaks TLS to port 7990, Bitbucket's plain HTTP connector: the upstream scheme does not match the "
         "port (use http:// there, or point https:// at the TLS connector: server.port with server.ssl.*)"),
    _sig("AH00898/AH01084 TLS to Bitbucket", r"AH00898|AH01084|AH01961|AH02039|Error during SSL Handshake with remote",
         APACHE, "Apache's TLS handshake with Bitbucket failed: it needs `SSLProxyEngine on`, a "
         "`SSLProxyCACertificateFile` holding the CA that issued Bitbucket's certificate, and a certificate that "
         "names the host Apache checks (SSLProxyCheckPeerName; with ProxyPreserveHost On that is the public name) — "
         "`LogLevel ssl:info` makes Apache log which one failed"),
    _sig("AH01102 status line", r"AH01102|error reading status line from remote server", APACHE,
         "Bitbucket closed the connection before answering: the upstream scheme does not match the port "
         "(http:// to Tomcat's TLS port, or https:// to a plain one)"),
    _sig("AH00957 connect", r"AH00957|AH01114|AH00959|failed to make connection to backend", APACHE,
         "Apache cannot connect to Bitbucket: check the host and port in ProxyPass"),
    _sig("nginx body limit", r"client intended to send too large (chunked )?body", NGINX,
         "nginx refused the request body: `client_max_body_size 0;` (the default 1m stops git pushes)", BODY_LIMIT.cause),
    _sig("nginx read timeout", r"upstream timed out .*while reading", NGINX,
         "nginx stopped waiting for Bitbucket: raise `proxy_read_timeout` (and `proxy_send_timeout`) well above "
         "60 s — Bitbucket may think for minutes before a big clone streams", PROXY_TIMEOUT.cause),
    _sig("nginx upstream TLS verify", r"upstream SSL certificate verify error|upstream SSL certificate does not match",
         NGINX, "nginx could not verify Bitbucket's certificate: `proxy_ssl_trusted_certificate` must hold the "
         "issuing CA, `proxy_ssl_name` the name in Bitbucket's certificate, `proxy_ssl_verify_depth` its depth"),
    _sig("nginx upstream handshake", r"SSL_do_handshake\(\) failed .*upstream", NGINX,
         "nginx's TLS handshake with Bitbucket failed: does the upstream port speak TLS (`proxy_pass https://`), "
         "and `proxy_ssl_server_name on` when Bitbucket needs SNI?"),
    _sig("nginx upstream closed", r"upstream prematurely closed connection", NGINX,
         "Bitbucket closed the connection: an http:// upstream to Tomcat's TLS port, or Bitbucket restarted"),
    _sig("nginx connect refused", r"connect\(\) failed \(111: Connection refused\) while connecting to upstream",
         NGINX, "nothing listens where nginx's `proxy_pass` points: check the upstream host and port"),
    _sig("haproxy server timeout", r" s[HD]-- ", HAPROXY,
         "HAProxy's `timeout server` ended the request while Bitbucket was still working (termination state sH/sD): "
         "raise it well above 60 s for big clones", PROXY_TIMEOUT.cause),
    _sig("haproxy client timeout", r" c[DH]-- ", HAPROXY,
         "HAProxy's `timeout client` ended the transfer (termination state cD/cH): raise it for big pushes and clones",
         PROXY_TIMEOUT.cause),
    _sig("haproxy no server", r" SC-- | sC-- |<NOSRV>", HAPROXY,
         "HAProxy had no server to send the request to (down, or no use_backend matched): check the backend's "
         "server line and health check, and the routing acl"),
)


def explain(lines: list[str], kind: str) -> tuple[Signature, str] | None:
    """The first known signature among ``lines`` written by a ``kind`` proxy, with its line."""
    for signature in SIGNATURES:
        if kind not in signature.kinds:
            continue
        for line in lines:
            if signature.pattern.search(line):
                return signature, line
    return None


_ERROR_LINE = re.compile(r"^(?:\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\]|\[\w{3} \w{3} [ \d]\d )")
"""nginx's (``2026/12/06 03:31:10 [error]``) and Apache's (``[Sun Dec 06 …``) error-log lines."""


def is_error_line(text: str) -> bool:
    """An error-log line of nginx or Apache, as opposed to an access-log line."""
    return bool(_ERROR_LINE.match(text))
