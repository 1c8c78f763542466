"""Bitbucket's endpoints, as far as a proxy in front of it can tell them apart.

Paths here are relative to the context path and still raw (``%2F`` stays encoded, as
Bitbucket needs for slashed branch names). Redirect targets start with the context
path, as Bitbucket's own code writes them; the connector makes them absolute.
"""

from __future__ import annotations

import functools
import html
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from lab.stub.config import StubSettings
from lab.stub.connector import absolute_location, implied_base_url
from lab.stub.exchange import Answers, BodyTimings, Exchange, RecordsById, Response
from lab.stub.git import GitRepositories

SESSION_COOKIE = "BITBUCKETSESSIONID"
REALM = 'Basic realm="Atlassian Bitbucket"'
APPLICATION_PROPERTIES = {"version": "9.4.22", "buildNumber": "9004022",
                          "buildDate": "1730000000000", "displayName": "Bitbucket"}
ECHO_PREFIX = "/rest/lab/1.0/echo/"
"""Lab diagnostics: any path under it answers with the request line exactly as it arrived."""
_COMMITS = re.compile(r"/rest/api/1\.0/projects/([^/]+)/repos/([^/]+)/commits/([^/]+)")
_REPOSITORY = re.compile(r"/rest/api/1\.0/projects/([^/]+)/repos/([^/]+)/?")
_SCM = re.compile(r"/scm/([^/]+)/([^/]+?)(\.git)?(/.*)")


class BitbucketApp:
    """Routes an :class:`Exchange` to the endpoint that answers it."""

    def __init__(self, settings: StubSettings, home: Path) -> None:
        self.settings = settings
        self.repos = GitRepositories(home / "shared" / "data" / "repositories",
                                     settings.repos, settings.slow_repos)
        self._sessions: dict[str, str] = {}
        self.body_timings = BodyTimings()
        self.answers = Answers()
        self.node_id = socket.gethostname()
        """Which Data Center node answers (``X-Lab-Node``): the container's host name."""
        self._lock = threading.Lock()
        self._exact: dict[str, Callable[[Exchange], Response]] = {
            "/status": self._status, "/": self._root, "/dashboard": self._dashboard,
            "/login": self._login_form, "/j_atl_security_check": self._login_post,
            "/rest/api/1.0/application-properties": self._application_properties,
            "/rest/lab/1.0/request": self._diagnostics,
            "/rest/lab/1.0/body-timings": functools.partial(self._records, self.body_timings, "requests"),
            "/rest/lab/1.0/answers": functools.partial(self._records, self.answers, "answers"),
        }

    def handle(self, exchange: Exchange) -> Response:
        exchange.user = self._authenticate(exchange)
        path = exchange.path
        if path in self._exact:
            return self._exact[path](exchange)
        if match := _REPOSITORY.fullmatch(path):
            return self._repository(exchange, *match.groups())
        if match := _COMMITS.fullmatch(path):
            return self._commit(exchange, *match.groups())
        if match := _SCM.fullmatch(path):
            return self._git(exchange, match.group(1), match.group(2), match.group(4))
        if path.startswith(ECHO_PREFIX):
            return _json(200, {"raw_uri": exchange.raw_uri, "request_line": f"{exchange.method} {exchange.raw_uri} "
                                                                              f"{exchange.version}"})
        return _json(404, {"errors": [{"message": f"No resource at {exchange.raw_uri}"}]})

    def _authenticate(self, exchange: Exchange) -> str | None:
        credentials = exchange.basic_credentials()
        if credentials and self.settings.users.get(credentials[0]) == credentials[1]:
            return credentials[0]
        token = exchange.cookie(SESSION_COOKIE)
        with self._lock:
            return self._sessions.get(token) if token else None

    def _status(self, exchange: Exchange) -> Response:
        return _json(200, {"state": "RUNNING"})

    def _root(self, exchange: Exchange) -> Response:
        return _redirect(exchange, f"{exchange.context_path}/dashboard")

    def _dashboard(self, exchange: Exchange) -> Response:
        if exchange.user is None:
            return _redirect(exchange, f"{exchange.context_path}/login?next=/dashboard")
        return _html(200, "Dashboard", f"<p id='user'>Logged in as {html.escape(exchange.user)}</p>")

    def _login_form(self, exchange: Exchange, error: str = "") -> Response:
        query = urllib.parse.parse_qs(exchange.view.query)
        next_path = _safe_next(query.get("next", ["/dashboard"])[0])
        action = html.escape(f"{exchange.context_path}/j_atl_security_check")
        form = (f"<form id='login-form' method='post' action='{action}'>"
                f"<p class='error'>{html.escape(error)}</p>"
                "<input name='j_username' type='text'><input name='j_password' type='password'>"
                f"<input name='next' type='hidden' value='{html.escape(next_path)}'>"
                "<input name='submit' type='submit' value='Log in'></form>")
        return _html(200, "Log in - Bitbucket", form)

    def _login_post(self, exchange: Exchange) -> Response:
        if exchange.method != "POST":
            return _redirect(exchange, f"{exchange.context_path}/login")
        form = urllib.parse.parse_qs(exchange.read_body().decode("utf-8", "replace"))
        user, password = form.get("j_username", [""])[0], form.get("j_password", [""])[0]
        if self.settings.users.get(user) != password or not user:
            return self._login_form(exchange, "Invalid username or password.")
        token = secrets.token_hex(16)
        with self._lock:
            self._sessions[token] = user
        cookie = f"{SESSION_COOKIE}={token}; Path={exchange.context_path or '/'}; HttpOnly"
        if exchange.view.secure:
            cookie += "; Secure"
        next_path = _safe_next(form.get("next", ["/dashboard"])[0])
        response = _redirect(exchange, f"{exchange.context_path}{next_path}")
        response.headers.append(("Set-Cookie", cookie))
        return response

    def _application_properties(self, exchange: Exchange) -> Response:
        return _json(200, APPLICATION_PROPERTIES)

    def _repository(self, exchange: Exchange, project: str, slug: str) -> Response:
        """Bitbucket's repository JSON; ``links.clone`` is what users are told to clone."""
        if exchange.user is None:
            return _json(401, {"errors": [{"message": "Authentication required"}]})
        if self.repos.find(project, slug) is None:
            return _json(404, {"errors": [{"message": f"Repository {project}/{slug} does not exist."}]})
        base = (self.settings.base_url or implied_base_url(exchange.view, exchange.context_path)).rstrip("/")
        key, name = project.upper(), slug.removesuffix(".git")
        return _json(200, {
            "slug": name, "name": name, "scmId": "git", "state": "AVAILABLE", "public": False,
            "project": {"key": key, "name": key},
            "links": {"clone": [{"href": f"{base}/scm/{key.lower()}/{name}.git", "name": "http"},
                                {"href": ssh_clone_url(self.settings, base, key, name), "name": "ssh"}],
                      "self": [{"href": f"{base}/projects/{key}/repos/{name}/browse"}]},
        })

    def _commit(self, exchange: Exchange, project: str, slug: str, commit_id: str) -> Response:
        if exchange.user is None:
            return _json(401, {"errors": [{"message": "Authentication required"}]})
        repository = self.repos.find(project, slug)
        ref = urllib.parse.unquote(commit_id)
        commit = self.repos.resolve_ref(repository, ref) if repository else None
        if commit is None:
            return _json(404, {"errors": [{"message": f"Commit '{ref}' does not exist in {project}/{slug}."}]})
        return _json(200, {"id": commit, "displayId": commit[:11], "ref": ref, "rawPath": exchange.raw_uri})

    def _git(self, exchange: Exchange, project: str, slug: str, tail: str) -> Response:
        if exchange.user is None:
            return Response(401, [("WWW-Authenticate", REALM), ("Content-Type", "text/plain")],
                            b"Authentication required\n")
        return self.repos.serve(exchange, project, slug, tail)

    @staticmethod
    def _records(store: RecordsById, key: str, exchange: Exchange) -> Response:
        """The records ``store`` keeps of the requests with ``?id=<X-Request-ID>`` (lab
        diagnostics: when their bodies arrived, what Bitbucket answered them), under ``key``."""
        request_id = urllib.parse.parse_qs(exchange.view.query).get("id", [""])[0]
        return _json(200, {"id": request_id, key: store.of(request_id)})

    def _diagnostics(self, exchange: Exchange) -> Response:
        """What Bitbucket saw of this request, and the connector limits a check compares with
        (``max_http_header_size``: the request-header limit in bytes)."""
        view, forwarded = exchange.view, self.settings.forwarded
        return _json(200, {
            "scheme": view.scheme, "secure": view.secure, "server_name": view.server_name,
            "server_port": view.server_port, "request_uri": exchange.raw_uri,
            "host_header": exchange.headers.get("host"),
            "forwarded": {k: v for k, v in exchange.headers.items() if k.startswith("x-forwarded-")},
            "headers": dict(exchange.headers), "remote_addr": view.remote_addr,
            "context_path": exchange.context_path, "configured_base_url": self.settings.base_url,
            "implied_base_url": implied_base_url(view, exchange.context_path),
            "forward_headers_strategy": "NATIVE" if forwarded else "NONE",
            "forwarded_headers_enabled_by": forwarded.enabled_by if forwarded else None,
            "max_http_header_size": self.settings.max_header_bytes,
            "user": exchange.user, "time": time.time(), "protocol": exchange.version,
            "request_line": f"{exchange.method} {exchange.raw_uri} {exchange.version}",
        })


def ssh_clone_url(settings: StubSettings, base_url: str, project: str, slug: str) -> str:
    """The ssh clone link: under ``plugin.ssh.baseurl`` when set, else the base URL's host
    and ``plugin.ssh.port`` (Bitbucket's rule)."""
    path = f"{project.lower()}/{slug}.git"
    if settings.ssh_base_url:
        return f"{with_ssh_user(settings.ssh_base_url)}/{path}"
    host = urllib.parse.urlsplit(base_url).hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"ssh://git@{host}:{settings.ssh_port}/{path}"


def with_ssh_user(ssh_base_url: str) -> str:
    """``plugin.ssh.baseurl`` with Bitbucket's SSH user ``git`` when it names none, without a
    trailing slash: ``ssh://host:7999/`` (as Atlassian's Helm chart writes it) →
    ``ssh://git@host:7999``. Assumed, not sourced: Bitbucket's SSH server answers user git only."""
    url = ssh_base_url.rstrip("/")
    scheme, separator, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        return url
    return f"{scheme}{separator}git@{rest}"


def _safe_next(next_path: str) -> str:
    """Only paths inside Bitbucket: ``/x``, never ``//evil`` or ``http://evil``."""
    return next_path if next_path.startswith("/") and not next_path.startswith("//") else "/dashboard"


def _redirect(exchange: Exchange, target: str) -> Response:
    return Response(302, [("Location", absolute_location(exchange.view, target))])


def _json(status: int, document: object) -> Response:
    return Response(status, [("Content-Type", "application/json;charset=UTF-8")],
                    json.dumps(document).encode())


def _html(status: int, title: str, body: str) -> Response:
    page = f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"
    return Response(status, [("Content-Type", "text/html;charset=UTF-8")], page.encode())
