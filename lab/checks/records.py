"""What Bitbucket recorded about one check's requests: the stub's ``/rest/lab/1.0/<records>?id=``.

Every request a check sends carries its id (``X-Request-ID``), and the stub keeps, per id,
the timings of each request body it read (``body-timings``) and what it answered
(``answers``). The git checks ask them to tell a push the proxy spooled from one it
streamed, a push stalled on its tail, and a response cut in the front door although
Bitbucket gave it (:mod:`lab.checks.retries`). The question itself carries the check's id
but is the lab's own bookkeeping, not the check's traffic: evidence leaves it out
(:func:`is_records_question`).
"""

from __future__ import annotations

import dataclasses
import re

from lab.checks.base import CheckTarget
from lab.client import request_id

RECORDS_PATH = "/rest/lab/1.0/{endpoint}?id={tag}"
_RECORDS_QUESTION = re.compile(r"/rest/lab/1\.0/[\w-]+\?id=")


def is_records_question(text: str) -> bool:
    """Whether a log line is about the lab's question :data:`RECORDS_PATH`."""
    return _RECORDS_QUESTION.search(text) is not None


@dataclasses.dataclass(frozen=True)
class BodyTiming:
    """One request body Bitbucket read: when its first and last bytes came, how many."""

    first_byte_at: float
    last_byte_at: float
    size: int
    complete: bool | None  # None: the stub does not know yet (still reading)


def receiving_body(target: CheckTarget, tag: str | None) -> bool:
    """Whether a Bitbucket node is reading a request body of the check ``tag`` right now (some
    bytes in, not yet all: git's 4-byte auth probe before a big push has ended by then). One
    quick question to whichever node answers: it is asked again and again during a hold."""
    response = target.users.session().get(target.url(RECORDS_PATH.format(endpoint="body-timings", tag=tag)), timeout=5)
    return any(record.get("first_byte_at") and record.get("complete") is None
               for record in response.json().get("requests", []))


def latest_body(target: CheckTarget) -> BodyTiming | None:
    """Bitbucket's record of the latest request body this check sent (by its X-Request-ID):
    the push under way or just ended — git's small auth probe comes before a big push's
    body, and a check that pushes again is judged by its last push, never by an earlier one
    that stalled."""
    try:
        records = [BodyTiming(float(str(r["first_byte_at"])), float(str(r["last_byte_at"])), int(str(r["bytes"])),
                              _known_bool(r.get("complete")))
                   for r in bitbucket_records(target, "body-timings", "requests") if r.get("first_byte_at")]
    except (ValueError, KeyError, TypeError):
        return None
    return max(records, key=lambda record: record.first_byte_at, default=None)


def _known_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def bitbucket_answered(target: CheckTarget, since: float) -> bool:
    """Whether Bitbucket answered this check's requests since ``since`` — a POST among them
    (git's transfer) — and none with a server error: the response git lost was given."""
    try:
        answers = [(str(a["method"]), int(str(a["status"]))) for a in bitbucket_records(target, "answers", "answers")
                   if float(str(a["at"])) >= since]
    except (KeyError, TypeError, ValueError):
        return False
    return any(method == "POST" for method, _ in answers) and all(status < 500 for _, status in answers)


def bitbucket_records(target: CheckTarget, endpoint: str, key: str) -> list[dict[str, object]]:
    """The stub's records ``endpoint`` about this check's requests (by its X-Request-ID), from
    every node: each node of a cluster keeps its own records, so the proxy is asked until
    every node has answered."""
    tag, records, nodes_seen = request_id.get(), [], set()
    for _ in range(3 * len(target.bitbucket_nodes)):
        response = target.users.session().get(target.url(RECORDS_PATH.format(endpoint=endpoint, tag=tag)), timeout=15)
        node = response.headers.get("X-Lab-Node", "")
        if node not in nodes_seen:
            nodes_seen.add(node)
            try:
                records += list(response.json().get(key, []))
            except ValueError:
                return []
        if len(nodes_seen) >= len(target.bitbucket_nodes):
            break
    return records
