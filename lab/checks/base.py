"""The check contract: target in, verdict out, and the one registry of checks.

A check is registered once, with :func:`check`: its id (part of the CLI and JSON
contract), what it proves, the hop of the topology it judges, the checks whose failure
makes it pointless (``needs``) and when it applies. The runner, the report's hops, the
CLI's list and the topology loader all read this registry; nothing else lists checks.
"""

from __future__ import annotations

import dataclasses
import enum
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.client import Vantage

if TYPE_CHECKING:
    from lab.browser import BrowserEndpoint

USERS_TO_FRONT_DOOR = "users → front door"
FRONT_DOOR_TO_BITBUCKET = "front door → Bitbucket"
TOMCAT_PORT = "Tomcat's own port"
SSH = "users → Bitbucket's SSH"
CLUSTER = "load balancer → cluster nodes"
HOPS: tuple[str, ...] = (USERS_TO_FRONT_DOOR, FRONT_DOOR_TO_BITBUCKET, TOMCAT_PORT, SSH, CLUSTER)
FRONT_DOOR = "reach.front-door"
THROUGH_FRONT_DOOR = (FRONT_DOOR, "tls.chain", "tls.hostname")
"""A request to the public URL means nothing when users cannot reach or trust the front door."""
GATEWAY_GONE_HINT = "the lab itself broke (its gateway container stopped?): start the topology again"


@dataclass(frozen=True)
class CheckTarget:
    """What a check needs to know about a topology, and where to stand.

    ``users`` is the vantage point of users (the outside network); ``inside`` that of an
    admin on Bitbucket's own network, when the topology has one apart from the users'.
    ``slow_repos`` are the repositories the stub is told to be slow for (``lab.slow-repos``).
    ``browser`` is the browser node on the users' network, when the run has one.
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
    slow_repos: tuple[str, ...] = ()
    browser: BrowserEndpoint | None = None
    ssh_command: str | None = None
    """``GIT_SSH_COMMAND`` through the users' gateway with the lab key and the pinned host
    key; None when the lab made no SSH keys for this run."""
    ssh_base_url_known: bool = True
    """False: the SSH base URL may be set in Bitbucket's database, which the lab cannot see."""
    proxy_kind: str | None = None
    """The front door's kind (``lab.proxies.KINDS``): which directives a hint names, which known
    faults of its server a check allows for."""
    bitbucket_nodes: tuple[str, ...] = ("bitbucket",)
    stop_node: Callable[[str], Callable[[], None]] | None = None
    """Stops a Bitbucket node and returns what starts it again (``cluster.failover``)."""

    @property
    def clustered(self) -> bool:
        return len(self.bitbucket_nodes) > 1

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
    def https(self) -> bool:
        return self.parts.scheme == "https"

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
class Verdict:
    """What a check function returns: the runner adds the id and the timing.

    ``fix`` and ``note`` are never both said: a failed verdict carries the fix (what to
    change), a passed one may carry a note (a limit worth knowing, not a fault). The
    constructor refuses any other mix, so no reader has to guess which a text is."""

    ok: bool | None
    observed: str
    expected: str
    fix: str = ""
    note: str = ""
    attachments: tuple[Path, ...] = ()
    cause: str | None = None
    """A stable name of a specific cause (``body-limit``, ``chain-incomplete``): failures of
    different checks with one cause become one finding (:mod:`lab.findings`). None: the
    failure says nothing more specific than its fix."""

    def __post_init__(self) -> None:
        if self.fix and self.ok is not False:
            raise ValueError(f"a fix on a verdict that did not fail ({self.observed!r}): say it as a note")
        if self.note and self.ok is not True:
            raise ValueError(f"a note on a verdict that did not pass ({self.observed!r}): say it as a fix")


LAB_FAULT = "lab-fault"
"""The cause of a failure that is the lab's own (a lab node stopped), not the topology's."""


class Outcome(enum.Enum):
    """What a result means, said once: every renderer asks :attr:`CheckResult.outcome`
    instead of re-deriving it from ``ok``, ``blocked_by`` and which text is set."""

    PASS = "pass"
    PASS_WITH_NOTE = "pass-with-note"   # passed; ``verdict.note`` is a limit to know, not a fix
    FAIL = "fail"                       # ``verdict.fix`` is the fix
    NOT_APPLICABLE = "not-applicable"
    BLOCKED = "blocked"                 # not run: ``blocked_by`` failed first and explains it
    LAB_FAULT = "lab-fault"             # failed because the lab failed, not the topology

    @property
    def failed(self) -> bool:
        return self in (Outcome.FAIL, Outcome.LAB_FAULT)

    @property
    def passed(self) -> bool:
        return self in (Outcome.PASS, Outcome.PASS_WITH_NOTE)


@dataclass(frozen=True)
class CheckResult:
    """One check's result: which check (``id``), its :class:`Verdict`, and what the run
    learned around it — the check that blocked it, its timing, the request id its requests
    carried, the log lines tied to them, the finding that explains it.

    The verdict is the check's, except that the logs may name a sharper cause: then
    :meth:`explained` gives the verdict the log signature's fix and cause (the observation
    stays the check's own).

    ``ok``, ``observed`` and ``hint`` read the verdict under the names of the JSON contract;
    the pytest plugin's users and the e2e suite ask them (``hint`` is the fix of a failed
    check or the note of a passed one). Renderers ask :attr:`outcome` and the verdict's
    ``fix``/``note`` instead."""

    id: str
    verdict: Verdict
    blocked_by: str | None = None
    seconds: float = 0.0
    started: float = 0.0              # wall-clock time the check began (for log windows)
    request_id: str | None = None     # the X-Request-ID its requests carried
    evidence: Evidence | None = None  # what the proxy and Bitbucket logged, for a failed check
    finding: int | None = None        # the number of the finding that explains it (lab.findings)

    @classmethod
    def blocked(cls, check_id: str, by: str, proves: str) -> CheckResult:
        """A check not run because ``by`` failed first (or was itself blocked by it)."""
        return cls(check_id, Verdict(None, f"not run: {by} failed", proves), blocked_by=by)

    @property
    def outcome(self) -> Outcome:
        if self.blocked_by:
            return Outcome.BLOCKED
        if self.verdict.ok is None:
            return Outcome.NOT_APPLICABLE
        if self.verdict.ok:
            return Outcome.PASS_WITH_NOTE if self.verdict.note else Outcome.PASS
        return Outcome.LAB_FAULT if self.verdict.cause == LAB_FAULT else Outcome.FAIL

    @property
    def ok(self) -> bool | None:
        """True passed, False failed, None not applicable or blocked (the JSON's ``ok``)."""
        return self.verdict.ok

    @property
    def observed(self) -> str:
        return self.verdict.observed

    @property
    def hint(self) -> str:
        """The JSON's ``hint``: the fix of a failed check, the note of a passed one."""
        return self.verdict.fix or self.verdict.note

    def explained(self, fix: str, cause: str | None, evidence: Evidence) -> CheckResult:
        """This result with the logs' reading: a failed verdict's fix and cause replaced by
        what the logs name (a log signature, a lab node that stopped), and the evidence."""
        verdict = dataclasses.replace(self.verdict, fix=fix, cause=cause) if self.verdict.ok is False else self.verdict
        return dataclasses.replace(self, verdict=verdict, evidence=evidence)

    def to_json(self) -> dict[str, object]:
        """The JSON contract (``ok`` as ever; ``outcome`` says the same in words); attachments
        are file paths (the HTML report inlines them)."""
        verdict = self.verdict
        return {"id": self.id, "ok": verdict.ok, "outcome": self.outcome.value, "observed": verdict.observed,
                "expected": verdict.expected,
                "hint": self.hint, "seconds": round(self.seconds, 3), "blocked_by": self.blocked_by,
                "finding": self.finding,
                "evidence": self.evidence.to_json() if self.evidence else None,
                "attachments": [str(path) for path in verdict.attachments]}


@dataclass(frozen=True)
class Evidence:
    """Log lines about one check's requests: the proxy's (access and error logs) and
    Bitbucket's (did each request arrive, with which Host and path). ``note`` says why a
    side has nothing to show."""

    proxy: tuple[str, ...] = ()
    bitbucket: tuple[str, ...] = ()
    note: str = ""
    meanwhile: tuple[str, ...] = ()
    """Error lines the proxy logged while the check ran that carry nothing of the check's
    own (not its id, connection or request): shown, never taken as its cause."""

    def to_json(self) -> dict[str, object]:
        return {"proxy": list(self.proxy), "bitbucket": list(self.bitbucket), "note": self.note,
                "meanwhile": list(self.meanwhile)}


CheckFunction = Callable[[CheckTarget], Verdict]
Applies = Callable[[CheckTarget], str | None]


@dataclass(frozen=True)
class CheckSpec:
    """A registered check. ``applies(target)`` returns why it does not apply, or None;
    ``needs`` are checks that must not have failed for this one to mean anything."""

    id: str
    proves: str
    hop: str
    function: CheckFunction
    needs: tuple[str, ...] = ()
    applies: Applies = field(default=lambda target: None)
    disruptive: bool = False
    """It breaks the topology for a while (stops a node): it runs alone, after every other."""
    slow: bool = False
    """It takes seconds (real git, ssh, the browser): the runner starts it before the quick
    ones, so the longest check does not wait behind sub-second ones for a free thread."""
    explained_by: tuple[str, ...] = ()
    """Checks whose failure explains this one's, when this one names no cause of its own:
    it still runs, but its failure is listed under their finding (``reach.status`` failing
    with 404 makes a clone fail with 404 too)."""


REGISTRY: dict[str, CheckSpec] = {}


def check(check_id: str, proves: str, hop: str, needs: tuple[str, ...] = (),
          applies: Applies | None = None, disruptive: bool = False,
          slow: bool = False, explained_by: tuple[str, ...] | None = None) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under its stable id; see :class:`CheckSpec`. ``explained_by``
    defaults to ``reach.status`` for a check that goes through the front door to Bitbucket."""
    if hop not in HOPS:
        raise ValueError(f"check {check_id}: unknown hop {hop!r}")

    def register(function: CheckFunction) -> CheckFunction:
        if check_id in REGISTRY:
            raise ValueError(f"check {check_id} is registered twice")
        missing = [need for need in needs if need not in REGISTRY]
        if missing:
            raise ValueError(f"check {check_id} needs {missing}, which must be registered before it")
        REGISTRY[check_id] = CheckSpec(check_id, proves, hop, function, needs,
                                       applies or (lambda target: None), disruptive, slow,
                                       _explained_by(check_id, needs, explained_by))
        return function
    return register


REACH_STATUS = "reach.status"


def _explained_by(check_id: str, needs: tuple[str, ...], given: tuple[str, ...] | None) -> tuple[str, ...]:
    if given is not None:
        return given
    through = set(THROUGH_FRONT_DOOR) <= set(needs)
    return (REACH_STATUS,) if through and check_id != REACH_STATUS and REACH_STATUS in REGISTRY else ()


def passed(observed: str, expected: str, note: str = "") -> Verdict:
    return Verdict(True, observed, expected, note=note)


def failed(observed: str, expected: str, fix: str, cause: str | None = None) -> Verdict:
    return Verdict(False, observed, expected, fix, cause=cause)


def only_with_browser(target: CheckTarget) -> str | None:
    """``applies`` for checks that drive the browser node."""
    return None if target.browser else "no browser node in this run (--no-browser)"


def not_applicable(why: str) -> Verdict:
    return Verdict(None, why, "")


def only_https(target: CheckTarget) -> str | None:
    """``applies`` for checks of the TLS front door."""
    return None if target.https else "the public URL is not https"
