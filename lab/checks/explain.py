"""Hints that quote what Bitbucket saw, from the stub's diagnostic endpoint."""

from __future__ import annotations

import urllib.parse

import requests

from lab.checks.base import CheckTarget, Verdict, failed

DIAGNOSTICS_PATH = "/rest/lab/1.0/request"


def bitbucket_view(target: CheckTarget) -> dict[str, object] | None:
    """What Bitbucket's connector saw for a request to the public URL, or None when the
    diagnostic endpoint cannot be reached through the topology."""
    try:
        response = target.users.session().get(target.url(DIAGNOSTICS_PATH), allow_redirects=False,
                                              timeout=10)
        return response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def connector_hint(target: CheckTarget, view: dict[str, object] | None = None) -> str:
    """"Bitbucket saw scheme=http host=bitbucket port=7990; users use https://… — set …"."""
    view = view if view is not None else bitbucket_view(target)
    if view is None:
        return (f"Bitbucket's view could not be read through {target.public_url}; make sure "
                f"server.proxy-name={target.host}, server.proxy-port={target.port}, "
                f"server.scheme={target.parts.scheme}, server.secure={str(target.parts.scheme == 'https').lower()} "
                f"and server.context-path={target.context_path or '(empty)'}")
    fixes = connector_fixes(target, view)
    saw = (f"Bitbucket saw scheme={view['scheme']} host={view['server_name']} port={view['server_port']} "
           f"secure={str(view['secure']).lower()} context-path={view['context_path'] or '(empty)'}; "
           f"users use {target.public_url}")
    host_note = _host_header_note(target, view)
    if not fixes:
        return saw + host_note
    return f"{saw} — set {', '.join(fixes)}{host_note}"


CONNECTOR_CAUSE = "bitbucket-connector"
"""The cause of every failure whose fix is Bitbucket's connector settings (server.proxy-name, -port,
scheme, secure, context path) or the Host header the proxy sends: one finding for all of them."""


def connector_failure(target: CheckTarget, observed: str, expected: str, prefix: str = "") -> Verdict:
    """A failed verdict whose fix is :func:`connector_hint`, named as the connector's cause
    when Bitbucket's view differs from the public URL (else it names no cause)."""
    view = bitbucket_view(target)
    differs = view is not None and (connector_fixes(target, view) or _host_header_note(target, view))
    return failed(observed, expected, prefix + connector_hint(target, view), CONNECTOR_CAUSE if differs else None)


def connector_fixes(target: CheckTarget, view: dict[str, object]) -> list[str]:
    """The ``server.*`` settings that would make Bitbucket's view equal the public URL."""
    https = target.parts.scheme == "https"
    fixes = []
    if view["server_name"] != target.host:
        fixes.append(f"server.proxy-name={target.host}")
    if view["server_port"] != target.port:
        fixes.append(f"server.proxy-port={target.port}")
    if view["scheme"] != target.parts.scheme:
        fixes.append(f"server.scheme={target.parts.scheme}")
    if bool(view["secure"]) != https:
        fixes.append(f"server.secure={str(https).lower()}")
    if (view["context_path"] or "") != target.context_path:
        fixes.append(f"server.context-path={target.context_path or '(empty)'}")
    return fixes


def _host_header_note(target: CheckTarget, view: dict[str, object]) -> str:
    host_header = str(view.get("host_header") or "")
    if host_header and urllib.parse.urlsplit(f"//{host_header}").hostname != target.host:
        return (f" (the proxy sends Host: {host_header}; preserve the user's Host with "
                "nginx `proxy_set_header Host $host` or Apache `ProxyPreserveHost On`)")
    return ""


def base_url_hint(target: CheckTarget, configured: object) -> str:
    return (f"Bitbucket's base URL is {configured or '(unset)'} but users use {target.public_url}: "
            f"set it in Administration → Server settings (or setup.baseUrl={target.public_url}); "
            "clone URLs, mails and links are built from it")


def loop_hint(location: str | None) -> str:
    """A redirect loop at the public URL: almost always require-ssl behind a TLS proxy."""
    return (f"redirect loop at {location}: Tomcat has server.require-ssl=true but does not know the "
            "connection is secure behind the TLS proxy — set server.secure=true and server.scheme=https "
            "(or drop require-ssl; the proxy's port-80 redirect does the job)")
