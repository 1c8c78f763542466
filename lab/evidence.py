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
from lab.logsigs import explain
from lab.runtime import RunningTopology

WINDOW_SLACK_S = 1.0  # error logs stamp whole seconds
LOG_CATCH_UP_S = 1.0
MAX_LINES = 12
LOG_FILES = ("/var/log/nginx/*.log", "/var/log/apache2/*.log", "/var/log/httpd/*log", "/etc/httpd/logs/*log",
             "/var/log/haproxy*.log")


@dataclasses.dataclass(frozen=True)
class _Line:
    at: float | None   # seconds since the epoch, when known (Docker's timestamp)
    text: str


def attach_evidence(running: RunningTopology, results: Sequence[CheckResult]) -> list[CheckResult]:
    """``results`` with evidence (and a log-derived hint, when a signature matches) on
    every failed check; reads the logs once."""
    failing = [r for r in results if r.ok is False and r.request_id]
    if not failing:
        return list(results)
    proxy = running.topology.proxy
    proxy_lines, stub_lines = _read_logs(running, [r.request_id or "" for r in failing])
    # A check that stops a node makes the proxy log errors no other check caused.
    outages = [(r.started, r.started + r.seconds) for r in results
               if r.id in REGISTRY and REGISTRY[r.id].disruptive and r.started]
    # Nor do the lines of the topology's start or last reload.
    outages.append((0.0, running.settled_at))
    return [_with_evidence(r, proxy.kind if proxy else None, proxy_lines, stub_lines,
                           outages[-1:] if REGISTRY.get(r.id) and REGISTRY[r.id].disruptive else outages)
            if r in failing else r for r in results]


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
                   stub_lines: list[_Line], outages: Sequence[tuple[float, float]] = ()) -> CheckResult:
    tag = result.request_id or ""
    start, end = result.started - WINDOW_SLACK_S, result.started + result.seconds + WINDOW_SLACK_S

    def in_window(at: float | None) -> bool:
        return at is not None and start <= at <= end and not any(a <= at <= b for a, b in outages)
    # Lines that are this check's for sure: its id, or an error line stamped inside its run.
    own = [line.text for line in proxy_lines if tag in line.text or (not _is_access(line.text) and in_window(line.at))]
    unstamped = [line.text for line in proxy_lines if line.at is None and not _is_access(line.text)
                 and line.text not in own]
    # The proxy's own answers to requests it could not read far enough to log their id (400 for
    # headers too large): untagged access lines inside the check's run.
    untagged = [line.text for line in proxy_lines if _is_access(line.text) and _untagged(line.text)
                and in_window(line.at)]
    proxy = own or untagged[-MAX_LINES:] or unstamped[-MAX_LINES:]
    arrived = [_stub_view(line.text) for line in stub_lines if tag in line.text and "LAB-REQUEST" in line.text]
    note = "" if arrived else "no request of this check reached Bitbucket: the proxy answered (or refused) it itself"
    if not own and unstamped:
        note += ("; " if note else "") + "the proxy's error lines could not be tied to this check (no time in them)"
    if not proxy:
        note += ("; " if note else "") + "the proxy logged nothing this check can be tied to (no id, no error in its time)"
    hint = result.hint
    if kind is not None and (found := explain(own, kind)):  # a hint only from lines that are this check's
        signature, line = found
        hint = f"{signature.fix} (the proxy logged: {line.strip()[:200]})"
    evidence = Evidence(tuple(proxy[-MAX_LINES:]), tuple(arrived[-MAX_LINES:]),
                        note if kind is not None else ("" if arrived else "no request of this check reached Bitbucket"))
    return dataclasses.replace(result, hint=hint, evidence=evidence)


_ACCESS = re.compile(r'"(?:GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT) [^"]*" \d{3} ')


def _untagged(text: str) -> bool:
    """An access line without a request id (``rid=-`` or none logged)."""
    return " rid=" not in text or bool(re.search(r" rid=(-|\s|$)", text))


def _is_access(text: str) -> bool:
    """An access-log line (the request, then its status) rather than an error-log line."""
    return " rid=" in text or bool(_ACCESS.search(text))


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
_APACHE_TIME = re.compile(r"^\[\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2})(\.\d+)? (\d{4})\]")


def _logged_at(text: str) -> float | None:
    """The time in an nginx or Apache error-log line (containers run in UTC), else None."""
    utc = datetime.timezone.utc
    if match := _NGINX_TIME.match(text):
        return datetime.datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S").replace(tzinfo=utc).timestamp()
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
