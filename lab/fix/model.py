"""What a fix asks for and what became of it: the edits, their outcomes, the anchor.

Plain frozen dataclasses, shared by every format's editor (:mod:`lab.fix.edit` re-exports
them; callers import from there).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    """The line of the customer's file that routes Bitbucket's traffic: nginx ``proxy_pass``,
    Apache ``ProxyPass``/``<Location>``/``BalancerMember``, HAProxy ``server``/``use_backend``
    line (1-based). Every scope is resolved from it: "the server block" is the one holding it."""

    line: int


@dataclass(frozen=True)
class SetDirective:
    """Make ``directive`` have ``value`` where it governs Bitbucket's traffic.

    scope — nginx: ``"http" | "server" | "location"``; apache: ``"server"`` (top level of the
    file) | ``"vhost"`` (the ``<VirtualHost>`` holding the anchor, or the file's top level when
    there is none); haproxy: ``"global" | "defaults" | "backend"`` (the backend holding the
    anchor line) | ``"frontend"`` (the frontend that routes to it).

    An existing directive that governs the anchor in ``scope`` or a narrower block is changed
    in place; one only in a wider block is left alone and overridden in ``scope``.
    """

    directive: str      # "client_max_body_size", "AllowEncodedSlashes", "timeout server"
    value: str          # "0", "NoDecode", "10m", "4 64k"
    scope: str


@dataclass(frozen=True)
class AddFlag:
    """Apache: add a keyword to the anchor's ProxyPass line (e.g. ``nocanon``), right after
    the URL, if it is not there. A ``<Location>`` anchor means the ProxyPass inside it; a
    ``BalancerMember`` anchor the one ProxyPass that names its ``balancer://``."""

    flag: str


@dataclass(frozen=True)
class StripUriPart:
    """nginx: ``proxy_pass http://host:7990/bitbucket/;`` inside ``location /bitbucket/`` →
    ``proxy_pass http://host:7990;`` — only when the URI part equals the location's prefix
    (Bitbucket sees the same path, now undecoded); otherwise not applicable."""


@dataclass(frozen=True)
class SetSetting:
    """A Bitbucket setting, key in ``bitbucket.properties`` form (``server.proxy-name``). In an
    env or compose file it is the official image's variable (``SERVER_PROXY_NAME``)."""

    key: str
    value: str


Edit = SetDirective | AddFlag | StripUriPart | SetSetting


class Status(enum.Enum):
    """What one edit did to the text."""

    APPLIED = "applied"                 # the text now says it (one line changed or inserted)
    SATISFIED = "already satisfied"     # the text already said it: nothing changed
    NOT_APPLICABLE = "not applicable"   # the file's shape does not allow it safely: nothing changed


@dataclass(frozen=True)
class Outcome:
    """One edit's result. ``line`` is the line changed or inserted (1-based, in the text after
    this edit), or the line that already satisfies it; ``reason`` is one line for a human."""

    edit: Edit
    status: Status
    reason: str
    line: int | None = None


@dataclass(frozen=True)
class EditResult:
    """The edited text and one :class:`Outcome` per edit, in the order given."""

    text: str
    outcomes: tuple[Outcome, ...]

    @property
    def applied(self) -> bool:
        """Whether any edit changed the text."""
        return any(outcome.status is Status.APPLIED for outcome in self.outcomes)

    @property
    def complete(self) -> bool:
        """Whether every edit now holds (applied or already satisfied)."""
        return all(outcome.status is not Status.NOT_APPLICABLE for outcome in self.outcomes)
