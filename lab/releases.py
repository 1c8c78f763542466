"""Debian releases the lab's proxies can come from, and what differs between them.

``--proxy-version`` picks one (default bookworm); its base image is made with debootstrap
on first use. The versions below are what Debian's mirror served when they were measured
(2026-11-30); ``python -m lab list --versions`` reads the real ones from the built images.
They are used to pick the release closest to a version line a customer sent, and to say
which release accepts a directive another one rejects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION_PREFIX = {"nginx": "nginx/", "apache": "Apache/", "haproxy": "HAProxy/"}
"""How each proxy names itself in a version line (``nginx/1.22.1``)."""
RELEASES: tuple[str, ...] = ("bullseye", "bookworm", "trixie", "forky")
DEFAULT_RELEASE = "bookworm"
KNOWN_VERSIONS: dict[str, dict[str, str]] = {
    "nginx": {"bullseye": "1.18.0", "bookworm": "1.22.1", "trixie": "1.26.3", "forky": "1.30.6"},
    "haproxy": {"bullseye": "2.2.9", "bookworm": "2.6.12", "trixie": "3.0.11", "forky": "3.2.26"},
    "apache": {"bullseye": "2.4.62", "bookworm": "2.4.68", "trixie": "2.4.71", "forky": "2.4.69"},
}


@dataclass(frozen=True)
class Rejection:
    """A directive one release's proxy rejects and a later (or earlier) one accepts."""

    kind: str
    pattern: re.Pattern[str]
    accepted_by: tuple[str, ...]
    why: str


REJECTIONS: tuple[Rejection, ...] = (
    Rejection("nginx", re.compile(r'unknown directive "http2"'), ("trixie", "forky"),
              "`http2 on;` exists from nginx 1.25.1"),
    Rejection("nginx", re.compile(r'unknown directive "quic_|invalid parameter "quic"'), ("trixie", "forky"),
              "HTTP/3 (QUIC) directives exist from nginx 1.25"),
    Rejection("haproxy", re.compile(r"unknown keyword 'ssl-default-bind-curves'|unknown keyword 'curves'"),
              ("bookworm", "trixie", "forky"), "curve selection needs HAProxy 2.4+"),
    Rejection("haproxy", re.compile(r"'http-request return'|unknown keyword 'return'"), ("bookworm", "trixie", "forky"),
              "`http-request return` needs HAProxy 2.2+ with its full syntax in 2.4+"),
)


def check_release(release: str) -> str:
    from lab.errors import LabError

    if release not in RELEASES:
        raise LabError(f"unknown proxy version {release!r}; choose one of: {', '.join(RELEASES)}")
    return release


def rejection_hint(kind: str, message: str, release: str) -> str:
    """"(… exists from nginx 1.25.1: --proxy-version trixie accepts it)" when another
    release would accept what ``release`` rejected, else ""."""
    for rejection in REJECTIONS:
        if rejection.kind == kind and rejection.pattern.search(message) and release not in rejection.accepted_by:
            choices = " or ".join(f"--proxy-version {name} ({kind} {KNOWN_VERSIONS[kind][name]})"
                                  for name in rejection.accepted_by)
            return f" ({rejection.why}: {choices} accepts it; this run used {release})"
    return ""


def release_for(kind: str, version: str) -> tuple[str, str]:
    """(release, why) whose ``kind`` version is closest to ``version`` ("1.24.0")."""
    wanted = _numbers(version)
    known = KNOWN_VERSIONS[kind]
    best = min(RELEASES, key=lambda name: _distance(_numbers(known[name]), wanted))
    return best, f"{kind} {version} in the bundle is closest to Debian {best}'s {kind} {known[best]}"


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _distance(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(abs(a - b) for a, b in zip(have + (0, 0, 0), want + (0, 0, 0), strict=False))[:3]
