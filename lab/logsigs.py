"""What a proxy's log line means: known signatures → cause and fix.

Each kind's package (``lab/proxies/<kind>``) lists its signatures: a regular expression over
one log line (error or access log) and the fix a support engineer would give. Unknown lines are still
quoted verbatim as evidence; only the hint comes from here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from lab.proxies import KINDS, Signature

SIGNATURES: tuple[Signature, ...] = tuple(dict.fromkeys(
    signature for kind in KINDS.values() for signature in kind.log_signatures))
"""Every kind's signatures (``lab/proxies/<kind>``), each once."""


def explain(lines: list[str], kind: str) -> tuple[Signature, str] | None:
    """The first known signature among ``lines`` written by a ``kind`` proxy, with its line."""
    for signature in KINDS[kind].log_signatures if kind in KINDS else ():
        for line in lines:
            if signature.pattern.search(line):
                return signature, line
    return None


_ERROR_LINE = re.compile(r"^(?:\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\]|\[\w{3} \w{3} [ \d]\d )")
"""nginx's (``2026/12/06 03:31:10 [error]``) and Apache's (``[Sun Dec 06 …``) error-log lines."""


def is_error_line(text: str) -> bool:
    """An error-log line of nginx or Apache, as opposed to an access-log line."""
    return bool(_ERROR_LINE.match(text))


TELLING_FIELDS = ("status", "method", "uri", "path", "host", "err", "msg")
"""Words of the JSON fields that say what happened to a request, in the order :func:`gist`
shows them: Caddy's ``status``, ``request.method``, ``request.uri``; Traefik's
``DownstreamStatus``, ``RequestMethod``, ``RequestPath``; either's ``error`` and ``msg``."""


def gist(text: str) -> str:
    """A JSON log line as ``key=value`` with its telling fields first (:data:`TELLING_FIELDS`),
    so a quote cut to a terminal's width still shows the status and the request; lists (the
    headers) are left out. Any other line as it is."""
    record = _json_record(text)
    if record is None:
        return text.strip()
    leaves = dict(_leaves(record))

    def rank(key: str) -> int:
        name = key.rsplit(".", 1)[-1].lower()
        return next((at for at, word in enumerate(TELLING_FIELDS) if word in name), len(TELLING_FIELDS))

    return " ".join(f"{key}={json.dumps(value) if isinstance(value, str) and ' ' in value else value}"
                    for key, value in sorted(leaves.items(), key=lambda item: rank(item[0])))


def _json_record(text: str) -> dict[str, object] | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        record = json.loads(stripped)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _leaves(record: dict[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in record.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value
