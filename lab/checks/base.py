"""The check contract: target in, result out, a registry of checks by id."""

from __future__ import annotations

import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from lab.client import Vantage


@dataclass(frozen=True)
class CheckTarget:
    """What a check needs to know about a topology, and where to stand.

    ``users`` is the vantage point of users (the outside network); ``inside`` that of an
    admin on Bitbucket's own network, when the topology has one apart from the users'.
    """

    public_url: str
    users: Vantage
    inside: Vantage | None = None
    http_url: str | None = None
    tomcat_url: str | None = None
    tomcat_reachable_by_users: bool = True
    username: str = "admin"
    password: str = "admin"
    applicable: tuple[str, ...] | None = None

    @property
    def parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.public_url)

    @property
    def host(self) -> str:
        return self.parts.hostname or ""

    @property
    def port(self) -> int:
        return self.parts.port or (443 if self.parts.scheme == "https" else 80)

    @property
    def context_path(self) -> str:
        return self.parts.path.rstrip("/")

    @property
    def origin(self) -> str:
        return f"{self.parts.scheme}://{self.parts.netloc}"

    def url(self, path: str) -> str:
        """The public URL of a Bitbucket path such as ``/status``."""
        return self.public_url.rstrip("/") + path

    def git_url(self, repo: str = "LAB/repo", password: str | None = None) -> str:
        """Clone URL with credentials in it (git gets no credential helper in the lab)."""
        user = urllib.parse.quote(self.username, safe="")
        secret = urllib.parse.quote(self.password if password is None else password, safe="")
        return f"{self.parts.scheme}://{user}:{secret}@{self.parts.netloc}{self.context_path}/scm/{repo}.git"


@dataclass(frozen=True)
class CheckResult:
    """One verdict. ``ok`` is None when the check does not apply to the topology."""

    id: str
    ok: bool | None
    observed: str
    expected: str
    hint: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        document = asdict(self)
        document.pop("seconds")
        return document


CheckFunction = Callable[[CheckTarget], CheckResult]
_REGISTRY: dict[str, tuple[str, CheckFunction]] = {}


def check(check_id: str, proves: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under its stable id with a one-line statement of what it proves."""
    def register(function: CheckFunction) -> CheckFunction:
        _REGISTRY[check_id] = (proves, function)
        return function
    return register


def passed(check_id: str, observed: str, expected: str) -> CheckResult:
    return CheckResult(check_id, True, observed, expected)


def failed(check_id: str, observed: str, expected: str, hint: str) -> CheckResult:
    return CheckResult(check_id, False, observed, expected, hint)


def not_applicable(check_id: str, why: str) -> CheckResult:
    return CheckResult(check_id, None, why, "")


def run_checks(target: CheckTarget, ids: Iterable[str] | None = None,
               on_start: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Run checks (default: all, in catalog order); a check that crashes is a failure
    carrying the exception, never an exception out of here. ``on_start(id)`` is called
    before each check runs (for progress)."""
    _load_all()
    wanted = list(ids) if ids is not None else list(CHECK_IDS)
    results = []
    for check_id in wanted:
        if target.applicable is not None and check_id not in target.applicable:
            results.append(not_applicable(check_id, "does not apply to this topology"))
            continue
        if on_start is not None:
            on_start(check_id)
        results.append(_run_one(check_id, target))
    return results


def _run_one(check_id: str, target: CheckTarget) -> CheckResult:
    proves, function = _REGISTRY[check_id]
    started = time.monotonic()
    try:
        result = function(target)
    except Exception as error:  # a check that crashes must still report
        where = traceback.extract_tb(error.__traceback__)[-1]
        result = failed(check_id, f"the check crashed: {type(error).__name__}: {error}",
                        proves, f"a lab bug or an unexpected answer ({where.filename}:{where.lineno})")
    return CheckResult(result.id, result.ok, result.observed, result.expected, result.hint,
                       time.monotonic() - started)


CHECK_IDS: tuple[str, ...] = (
    "reach.status", "routing.context-path", "redirects.public", "redirects.http-to-https",
    "login.browser", "tls.chain", "tls.hostname", "tls.protocols", "direct.tomcat-port",
    "git.auth-challenge", "git.clone", "git.clone-slow", "git.push", "git.push-large",
    "path.encoded-slash", "baseurl.match",
)


def _load_all() -> None:
    from lab.checks import git, http, tls  # noqa: F401  (registers the checks)
