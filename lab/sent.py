"""What each check sent, by its request id (``X-Request-ID``).

A proxy's error log names the request it failed (nginx: ``request: "POST /x HTTP/1.1"``)
but not the id the request carried. The lab's clients record here every request line
they send under the id of the check that sent it, so :mod:`lab.evidence` can tie such a
line to the one check that sent that request — and to no check when several did.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Sequence

_SENT: dict[str, set[str]] = {}
_LOCK = threading.Lock()
_GIT_SERVICES = {"push": "git-receive-pack", "send-pack": "git-receive-pack"}
"""git subcommands that push; every other subcommand that takes a URL fetches (upload-pack)."""


def record(tag: str | None, method: str, url: str) -> None:
    """Note that the check ``tag`` sent ``METHOD path?query`` (the URL's origin is dropped)."""
    if not tag:
        return
    with _LOCK:
        _SENT.setdefault(tag, set()).add(request_line(method, url))


def record_git(tag: str | None, args: Sequence[str]) -> None:
    """The requests git's smart HTTP makes for ``git <args>``: the ref advertisement and
    the pack exchange of the service the subcommand uses, for every http(s) URL in args."""
    command = next((arg for arg in args if not arg.startswith("-") and "=" not in arg), "")
    service = _GIT_SERVICES.get(command, "git-upload-pack")
    for url in (arg for arg in args if arg.startswith(("http://", "https://"))):
        base = url.rstrip("/")
        record(tag, "GET", f"{base}/info/refs?service={service}")
        record(tag, "POST", f"{base}/{service}")


def request_line(method: str, url: str) -> str:
    """``METHOD path?query`` of ``url`` (absolute or already a path), credentials dropped."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    return f"{method.upper()} {target}?{parts.query}" if parts.query else f"{method.upper()} {target}"


def sent_by(tag: str) -> frozenset[str]:
    """The request lines the check ``tag`` sent."""
    with _LOCK:
        return frozenset(_SENT.get(tag, ()))


def senders(line: str, tags: Sequence[str]) -> list[str]:
    """Which of ``tags`` sent the request ``line`` (``METHOD path?query``)."""
    with _LOCK:
        return [tag for tag in tags if line in _SENT.get(tag, ())]
