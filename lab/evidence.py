"""Evidence for failed checks, read from the proxy's and Bitbucket's own logs.

Every request a check sends carries its id (``X-Request-ID``): the stub logs each request
it receives as a ``LAB-REQUEST`` JSON line, the catalog's proxy configs log the id in
their access logs. For a failing check the lab quotes the proxy's lines with that id and
its error-log lines from the check's time window, and says whether (and how) Bitbucket
saw each request — "no request of this check reached Bitbucket" means the proxy answered
itself. A known log signature (:mod:`lab.logsigs`) becomes the hint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import re
import time
from collections.abc import Sequence

from docker.errors import APIError, NotFound

from lab.checks import CheckResult
from lab.checks.base import REGISTRY, Evidence
from lab.checks.records import is_records_question
from lab import sent
from lab.logsigs import explain, gist, is_error_line
from lab.proxies import KINDS
from lab.runtime import RunningTopology

WINDOW_SLACK_S = 1.0  # error logs stamp whole seconds
LOG_CATCH_UP_S = 1.0
MAX_LINES = 12
LOG_FILES = tuple(dict.fromkeys(glob for kind in KINDS.values() for glob in kind.log_files))


@dataclasses.dataclass(frozen=True)
class _Line:
    at: float | None   # seconds since the epoch, when known (Docker's timestamp)
    text: str


def attach_evidence(running: RunningTopology, results: Sequence[CheckResult]) -> list[CheckResult]:
    """``results`` with evidence (and a log-derived fix and cause, when a signature matches a
    line tied to the check) on every failed check; reads the logs once."""
    failing = [r for r in results if r.outcome.failed and r.request_id]
    if not failing:
        return list(results)
    proxy = running.topology.proxy
    proxy_lines, stub_lines = _read_logs(running, [r.request_id or "" for r in failing])
    # A check that stops a node makes the proxy log errors no other check caused.
    outages = [(r.started, r.started + r.seconds) for r in results
               if r.id in REGISTRY and REGISTRY[r.id].disruptive and r.started]
    # Nor do the lines of the topology's start or last reload.
    outages.append((0.0, running.settled_at))
    run = _Run(tuple(r.request_id for r in results if r.request_id), _connections(proxy_lines),
               _apache_threads(proxy_lines))
    return [_with_evidence(r, proxy.kind if proxy else None, proxy_lines, stub_lines,
                           outages[-1:] if REGISTRY.get(r.id) and REGISTRY[r.id].disruptive else outages, run)
            if r in failing else r for r in results]


@dataclasses.dataclass(frozen=True)
class _Run:
    """What ties a log line to one check of this run: every check's request id, and the
    proxy connections each id's requests used (nginx's ``*N`` in an error line)."""

    tags: tuple[str, ...]
    connections: dict[str, str]  # connection number → the one request id seen on it
    threads: dict[str, str] = dataclasses.field(default_factory=dict)  # Apache line without id → the id of its request

    def tied(self, text: str, tag: str) -> bool:
        """Whether ``text`` is about a request of the check ``tag``, and of no other:
        it carries the id, names a connection only that check used, was logged by the
        Apache worker thread serving that check's request, or names a request line only
        that check sent."""
        if tag in text:
            return True
        if (match := _CONNECTION.search(text)) and self.connections.get(match.group(1)) == tag:
            return True
        if self.threads.get(text) == tag:
            return True
        named = _request_named(text)
        return named is not None and sent.senders(named, self.tags) == [tag]


def _connections(lines: Sequence[_Line]) -> dict[str, str]:
    """nginx connection number → request id, from the lab's access format (``rid=… conn=N``);
    a connection that carried requests of two checks is left out."""
    seen: dict[str, set[str]] = {}
    for line in lines:
        rid, conn = _RID.search(line.text), _CONN_FIELD.search(line.text)
        if rid and conn and rid.group(1) != "-":
            seen.setdefault(conn.group(1), set()).add(rid.group(1))
    return {conn: next(iter(rids)) for conn, rids in seen.items() if len(rids) == 1}


def _apache_threads(lines: Sequence[_Line]) -> dict[str, str]:
    """Apache error lines without a request id (mod_ssl's AH02040 about the connection to
    Bitbucket) → the id of the request their worker thread was serving: the next line of
    the same ``[pid P:tid T]``, logged within THREAD_TIE_S, carries it. A thread serves one
    request at a time, so nothing else can have happened in between on it."""
    ties: dict[str, str] = {}
    pending: dict[str, list[_Line]] = {}
    for line in lines:
        thread = _APACHE_THREAD.search(line.text)
        if thread is None or line.at is None:
            continue
        rid = _RID.search(line.text)
        if rid is None or rid.group(1) == "-":
            pending.setdefault(thread.group(0), []).append(line)
            continue
        for waiting in pending.pop(thread.group(0), []):
            if line.at is not None and 0 <= line.at - waiting.at <= THREAD_TIE_S:  # type: ignore[operator]
                ties[waiting.text] = rid.group(1)
    return ties


def _request_named(text: str) -> str | None:
    """``METHOD path?query`` of the request a log line names, if it names one."""
    match = _REQUEST.search(text)
    return sent.request_line(match.group(1), match.group(2)) if match else None


def _read_logs(running: RunningTopology, tags: list[str]) -> tuple[list[_Line], list[_Line]]:
    """The proxy's and every Bitbucket node's lines. A proxy logs a request once it has
    answered it, and Docker passes the line on a moment later: until every failing check's
    id shows up (bounded by LOG_CATCH_UP_S — some requests never reach a proxy), read again."""
    proxy = running.topology.proxy
    deadline = time.monotonic() + LOG_CATCH_UP_S
    while True:
        proxy_lines = _read(running, proxy.name) if proxy else []
        stub_lines = [line for stub in running.topology.bitbucket_nodes for line in _read(running, stub.name)]
        text = "\n".join(line.text for line in [*proxy_lines, *stub_lines])
        if all(tag in text for tag in tags) or time.monotonic() > deadline:
            return proxy_lines, stub_lines
        time.sleep(0.1)


def _with_evidence(result: CheckResult, kind: str | None, proxy_lines: list[_Line],
                   stub_lines: list[_Line], outages: Sequence[tuple[float, float]] = (),
                   run: _Run | None = None) -> CheckResult:
    tag = result.request_id or ""
    run = run or _Run((tag,), {})
    start, end = result.started - WINDOW_SLACK_S, result.started + result.seconds + WINDOW_SLACK_S

    def in_window(at: float | None) -> bool:
        return at is not None and start <= at <= end and not any(a <= at <= b for a, b in outages)
    # Only lines tied to this check's own requests are its evidence; a time window proves nothing
    # while checks run side by side.
    # A line tied by its connection or request line must also fall in the check's run: a kept
    # topology's log holds earlier runs' requests too.
    # The lab's own questions about the check's records carry its id but are not its traffic.
    proxy_lines = [line for line in proxy_lines if not is_records_question(line.text)]
    own = [line.text for line in proxy_lines if tag in line.text or (in_window(line.at) and run.tied(line.text, tag))]
    meanwhile = [line.text for line in proxy_lines if line.text not in own and in_window(line.at)
                 and (is_error_line(line.text) or _refused_untagged(line.text))]
    arrived = [_stub_view(line.text) for line in stub_lines
               if tag in line.text and "LAB-REQUEST" in line.text and not is_records_question(line.text)]
    note = "" if arrived else "no request of this check reached Bitbucket: the proxy answered (or refused) it itself"
    if not own:
        note += ("; " if note else "") + "the proxy logged nothing that names this check's requests"
        if meanwhile:
            note += " (other errors logged meanwhile are listed apart: they belong to other requests)"
    hint, cause, shown = result.verdict.fix, result.verdict.cause, own[-MAX_LINES:]
    if kind is not None and (found := explain(own, kind)):  # a hint only from lines that are this check's
        signature, line = found
        hint, cause = f"{signature.fix} (the proxy logged: {gist(line)[:200]})", f"log:{signature.name}"
        shown = shown if line in shown else [line, *shown[1:]]  # the line the fix quotes is always shown
    evidence = Evidence(tuple(shown), tuple(arrived[-MAX_LINES:]),
                        note if kind is not None else ("" if arrived else "no request of this check reached Bitbucket"),
                        tuple(meanwhile[-MAX_LINES:]) if kind is not None else ())
    return result.explained(hint, cause, evidence)


_RID = re.compile(r" rid=(\S+)")
_APACHE_THREAD = re.compile(r"\[pid \d+:tid \d+\]")
THREAD_TIE_S = 1.0
_CONN_FIELD = re.compile(r" conn=(\d+)")
_CONNECTION = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\] \d+#\d+: \*(\d+) ")
_REQUEST = re.compile(r'"(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH) (\S+) HTTP/[\d.]+"')
_STATUS_AFTER_REQUEST = re.compile(r'HTTP/[\d.]+" (\d{3}) ')


def _refused_untagged(text: str) -> bool:
    """An access line of a request the proxy refused before it could read its id (a 400
    for headers too large): nobody's evidence, but worth showing as logged meanwhile."""
    status = _STATUS_AFTER_REQUEST.search(text)
    return status is not None and int(status.group(1)) >= 400 and not _RID_SET.search(text)


_RID_SET = re.compile(r" rid=(?!-)\S")


def _stub_view(text: str) -> str:
    try:
        record = json.loads(text.split("LAB-REQUEST ", 1)[1])
    except (IndexError, ValueError):
        return text
    return f"{record['method']} {record['uri']} {record['version']} Host: {record['host']} → {record['status']}"


def _read(running: RunningTopology, node: str) -> list[_Line]:
    """The node's Docker log (with timestamps) and the proxy log files it wrote."""
    container = running.containers.get(node)
    if container is None:
        return []
    lines: list[_Line] = []
    with contextlib.suppress(APIError, NotFound):
        raw = container.logs(timestamps=True).decode("utf-8", "replace")
        lines += [_timestamped(text) for text in raw.splitlines() if text.strip()]
        files = container.exec_run(["sh", "-c", "for f in " + " ".join(LOG_FILES) +
                                    '; do [ -f "$f" ] && tail -n 300 "$f"; done; true'])
        lines += [_Line(_logged_at(text), text) for text in files.output.decode("utf-8", "replace").splitlines()
                  if text.strip()]
    return lines


_NGINX_TIME = re.compile(r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) ")
_ACCESS_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")
_APACHE_TIME = re.compile(r"^\[\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2})(\.\d+)? (\d{4})\]")


def _logged_at(text: str) -> float | None:
    """The time in an nginx or Apache error-log line (containers run in UTC) or a
    combined-format access line, else None."""
    utc = datetime.timezone.utc
    if match := _NGINX_TIME.match(text):
        return datetime.datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S").replace(tzinfo=utc).timestamp()
    if match := _ACCESS_TIME.search(text):  # the combined/common access format
        return datetime.datetime.strptime(match.group(1), "%d/%b/%Y:%H:%M:%S %z").timestamp()
    if match := _APACHE_TIME.match(text):
        stamp = datetime.datetime.strptime(f"{match.group(1)} {match.group(3)}", "%b %d %H:%M:%S %Y")
        return stamp.replace(tzinfo=utc).timestamp() + float(match.group(2) or 0)
    return None


def _timestamped(text: str) -> _Line:
    stamp, _, rest = text.partition(" ")
    try:
        at = datetime.datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return _Line(None, text)
    return _Line(at, rest)
