"""Debian releases the lab's proxies can come from, and what differs between them.

``--proxy-version`` picks one (default bookworm); its base image is made with debootstrap
on first use. The versions below are what Debian's mirror served when they were measured
(2026-11-30); ``python -m lab list --versions`` reads the real ones from the built images.
They are used to pick the release closest to a version line a customer sent, and to say
which release accepts a directive another one rejects.
"""

from __future__ import annotations

import re

from lab.proxies import KINDS

RELEASES: tuple[str, ...] = ("bullseye", "bookworm", "trixie", "forky")
DEFAULT_RELEASE = "bookworm"


def check_release(release: str) -> str:
    from lab.errors import LabError

    if release not in RELEASES:
        raise LabError(f"unknown proxy version {release!r}; choose one of: {', '.join(RELEASES)}")
    return release


def rejection_hint(kind: str, message: str, release: str) -> str:
    """"(… exists from nginx 1.25.1: --proxy-version trixie accepts it)" when another
    release would accept what ``release`` rejected, else ""."""
    rejections = KINDS[kind].rejections if kind in KINDS else ()
    for rejection in rejections:
        if rejection.pattern.search(message) and release not in rejection.accepted_by:
            choices = " or ".join(f"--proxy-version {name} ({kind} {KINDS[kind].debian_versions[name]})"
                                  for name in rejection.accepted_by)
            return f" ({rejection.why}: {choices} accepts it; this run used {release})"
    return ""


def release_for(kind: str, version: str) -> tuple[str, str]:
    """(release, why) whose ``kind`` version is closest to ``version`` ("1.24.0")."""
    wanted = _numbers(version)
    known = KINDS[kind].debian_versions
    best = min(RELEASES, key=lambda name: _distance(_numbers(known[name]), wanted))
    return best, f"{kind} {version} in the bundle is closest to Debian {best}'s {kind} {known[best]}"


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _distance(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(abs(a - b) for a, b in zip(have + (0, 0, 0), want + (0, 0, 0), strict=False))[:3]
