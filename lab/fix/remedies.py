"""One table: a finding's cause → its fix in words and, where one exists, its edit per file kind.

The checks' hints for these causes quote :attr:`Remedy.text` (``lab.checks.git``,
``lab.checks.http``, ``lab.logsigs``), and ``--fix`` applies :meth:`Remedy.edits_for` to the
customer's files, so a hint and its patch cannot disagree. The causes and their words live
here; each proxy kind's package gives its edit for a cause in its own syntax
(``lab/proxies/<kind>/edits.py``: ``ConfigEditor.edits``, keyed by :attr:`Remedy.cause`, and
tests/unit/test_proxy_kinds.py holds every key to a cause of :data:`REMEDIES`). A cause with
no entry, or an entry with no edit for the proxy at hand, is an instruction only: the base
URL in Bitbucket's database, a certificate to reissue, a firewall, a git client's libcurl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.fix.model import Edit, SetSetting


@dataclass(frozen=True)
class Remedy:
    """What fixes one cause: the words a hint gives; the edits come from each proxy kind's
    package (:meth:`edits_for`), Bitbucket's settings from :func:`setting_edits`."""

    cause: str
    text: str
    instruction_too: bool = False
    """Its words stay an instruction even beside a patch (the customer must deploy a file)."""
    settings_from_hint: bool = False
    """Its edits are the ``server.*=value`` settings the finding's own fix text names
    (:func:`setting_edits`): the hint says which values, the patch sets exactly those."""

    def edits_for(self, kind: str) -> tuple[Edit, ...]:
        """The edits that fix this cause in a ``kind`` file (its package's ``ConfigEditor``); () for none."""
        from lab.fix.syntax import editor_of  # the kinds' packages import this table

        editor = editor_of(kind)
        return editor.edits.get(self.cause, ()) if editor is not None else ()


FROM_HINT = "<the value the hint names>"
"""A :class:`SetDirective` value taken from the finding's fix text, where the directive is
quoted in backticks (`` `large_client_header_buffers 4 64k;` ``): the value depends on what the
check measured, and the patch can never disagree with the hint."""


BODY_LIMIT = Remedy(
    "body-limit",
    "the proxy refuses large request bodies: nginx `client_max_body_size 0;` (default 1m), Apache `LimitRequestBody 0`")
PROXY_TIMEOUT = Remedy(
    "proxy-timeout",
    "the proxy gave up waiting for Bitbucket: raise nginx `proxy_read_timeout` / Apache `ProxyTimeout` (or ProxyPass "
    "`timeout=`) / HAProxy `timeout server` (and the frontend's `timeout client`) well above 60 s — Bitbucket may think for minutes before a big clone streams")
PATH_REWRITTEN = Remedy(
    "proxy-rewrites-path",
    "the proxy decodes or rewrites the path before Bitbucket sees it: nginx `proxy_pass` must have no URI part "
    "(`proxy_pass http://bitbucket:7990;`), Apache needs `nocanon` on ProxyPass and `AllowEncodedSlashes NoDecode`, "
    "HAProxy must not `set-path`/`replace-path` or normalise the URI")
ENCODED_SLASH_REFUSED = Remedy(
    "encoded-slash-refused",
    "the proxy answered %2F with its own 404: Apache needs `AllowEncodedSlashes NoDecode` inside the <VirtualHost> "
    "(it is not inherited) and `nocanon` on ProxyPass")
APACHE_VERIFY_DEPTH = Remedy(
    "apache-verify-depth",
    "Apache verifies only 1 certificate of Bitbucket's chain by default, and Bitbucket's leaf is issued by an "
    "intermediate: set `SSLProxyVerifyDepth 2` (or more) beside `SSLProxyVerify require`")
CHAIN_INCOMPLETE = Remedy(
    "chain-incomplete",
    "the server sends the leaf without its intermediate: serve fullchain.pem (nginx `ssl_certificate`, Apache "
    "`SSLCertificateFile`, HAProxy `crt` PEM with the chain); browsers may hide this by fetching the intermediate "
    "from the leaf's Authority Information Access URL, git never does and fails with 'unable to get local issuer "
    "certificate'",
    instruction_too=True)
"""Its patch, when the bundle holds the full chain beside the leaf, is made per bundle
(``lab.fix.verify``): the certificate directive pointed at that file."""
CONNECTOR = Remedy(
    "bitbucket-connector",
    "Bitbucket's connector settings (server.proxy-name, -port, scheme, secure, context path) must say where users "
    "arrive", settings_from_hint=True)
CONTEXT_PATH = Remedy(
    "context-path",
    "the proxy path and Bitbucket's context path must match: server.context-path is the path users see",
    settings_from_hint=True)
REDIRECT_LOOP = Remedy(
    "redirect-loop",
    "a redirect loop behind a TLS proxy: Tomcat must know the connection is secure (server.secure, server.scheme)",
    settings_from_hint=True)
HEADER_LIMIT = Remedy(
    "proxy-header-limit",
    "the proxy refuses request headers Bitbucket accepts: raise its header limit to what Bitbucket accepts")
SESSION_AFFINITY = Remedy(
    "session-affinity",
    "requests of one session alternate between Bitbucket nodes, and each node knows only its own sessions: give the "
    "load balancer session affinity (nginx `ip_hash;` in the upstream, Caddy `lb_policy cookie`, HAProxy a `cookie` "
    "per server, Apache `stickysession=` with a `route=` per member)")
LEGACY_TLS = Remedy(
    "tls-legacy-protocols",
    "must be off: nginx `ssl_protocols TLSv1.2 TLSv1.3;`, Apache `SSLProtocol -all +TLSv1.2 +TLSv1.3`, HAProxy "
    "`ssl-min-ver TLSv1.2` on the bind")

REMEDIES: dict[str, Remedy] = {remedy.cause: remedy for remedy in (
    BODY_LIMIT, PROXY_TIMEOUT, PATH_REWRITTEN, ENCODED_SLASH_REFUSED, APACHE_VERIFY_DEPTH, CHAIN_INCOMPLETE, CONNECTOR,
    CONTEXT_PATH, REDIRECT_LOOP, HEADER_LIMIT, SESSION_AFFINITY, LEGACY_TLS)}

_SETTING = re.compile(r"\b(server\.[a-z.-]+)=(\(empty\)|[^\s,;()]+)")


def remedy_for(cause: str) -> Remedy | None:
    """The remedy of a finding's cause: its own, or the one a log signature (``log:<name>``) names."""
    if cause.startswith("log:"):
        from lab.logsigs import SIGNATURES

        signature = next((s for s in SIGNATURES if s.name == cause[4:]), None)
        return REMEDIES.get(signature.remedy) if signature and signature.remedy else None
    return REMEDIES.get(cause)


def setting_edits(fix_text: str) -> tuple[SetSetting, ...]:
    """The ``server.*=value`` settings a connector finding's fix names (``(empty)`` → "")."""
    return tuple(SetSetting(key, "" if value == "(empty)" else value) for key, value in _SETTING.findall(fix_text))


def value_from_hint(directive: str, fix_text: str) -> str | None:
    """What ``fix_text`` gives ``directive`` in backticks (`` `ssl_protocols TLSv1.2 TLSv1.3;` `` →
    ``TLSv1.2 TLSv1.3``), or None when it does not quote it."""
    match = re.search(rf"`{re.escape(directive)}\s+([^;`]+?);?`", fix_text)
    return match.group(1) if match else None
