"""Printing results for people: a table of verdicts and a picture of the topology."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence

from lab.checks import HOPS, REGISTRY, CheckResult
from lab.topology import Topology

MARKS = {True: "✔", False: "✘", None: "·"}


def results_table(results: Sequence[CheckResult], timings: bool = False) -> str:
    """One line a check (mark, id, observation); failures get their hint underneath.
    A root cause is shown once, with its fix; the checks it blocked name it in one line."""
    width = max(60, shutil.get_terminal_size((120, 20)).columns) - 32 - (8 if timings else 0)
    lines = []
    for result in results:
        observed = result.observed if len(result.observed) <= width else result.observed[: width - 1] + "…"
        seconds = f"{result.seconds:6.1f}s " if timings and result.seconds else ("        " if timings else "")
        mark = "⊘" if result.blocked_by else MARKS[result.ok]
        lines.append(f" {mark} {result.id:<24} {seconds}{observed}")
        if result.ok is True and result.hint:  # a finding that is not a failure
            lines.append(f"   {'':<24} note: {result.hint}")
        if result.ok is False:
            lines.append(f"   {'':<24} expected: {result.expected}")
            lines.append(f"   {'':<24} fix: {result.hint}")
            lines += [f"   {'':<24} log: {line[:width]}" for line in telling_lines(result)]
    lines.append(summary_line(results))
    return "\n".join(lines)


def telling_lines(result: CheckResult, most: int = 3) -> list[str]:
    """The 1–3 evidence lines worth reading on a terminal: proxy errors first, then what
    Bitbucket saw (or that nothing arrived)."""
    if result.evidence is None:
        return []
    proxy = [f"proxy: {line}" for line in result.evidence.proxy if " rid=" not in line][-2:]
    proxy = proxy or [f"proxy: {line}" for line in result.evidence.proxy][-1:]
    bitbucket = [f"bitbucket: {line}" for line in result.evidence.bitbucket][-1:]
    note = [result.evidence.note] if result.evidence.note else []
    return (proxy + (bitbucket or note))[:most]


def summary_line(results: Sequence[CheckResult]) -> str:
    """"N passed, N failed, N not applicable[, N blocked by X]"."""
    passed = sum(1 for r in results if r.ok is True)
    failed = sum(1 for r in results if r.ok is False)
    blocked = [r for r in results if r.blocked_by]
    skipped = sum(1 for r in results if r.ok is None and not r.blocked_by)
    line = f"{passed} passed, {failed} failed, {skipped} not applicable"
    if blocked:
        causes = ", ".join(dict.fromkeys(r.blocked_by or "" for r in blocked))
        line += f", {len(blocked)} blocked by {causes}"
    return line


def topology_picture(topology: Topology, public_url: str, results: Sequence[CheckResult]) -> str:
    """The topology's diagram, then which failed checks sit on which hop."""
    failed = {r.id for r in results if r.ok is False}
    blocked = {r.id for r in results if r.blocked_by}
    lines = [f"{topology.name}: {topology.summary}", f"public URL: {public_url}", "", topology.diagram, ""]
    for hop in HOPS:
        ids = [spec.id for spec in REGISTRY.values() if spec.hop == hop]
        bad = [i for i in ids if i in failed]
        unknown = [i for i in ids if i in blocked]
        state = "failed: " + ", ".join(bad) if bad else ("not checked: blocked" if unknown else "ok")
        lines.append(f"  {'✘' if bad else '?' if unknown else '✔'} {hop:<24} {state}")
    return "\n".join(lines)


def results_json(topology: str, public_url: str, results: Sequence[CheckResult],
                 extra: Mapping[str, object] | None = None) -> str:
    """The JSON contract of ``check --json`` (``reproduce`` adds ``proxy`` and ``mapping``)."""
    document: dict[str, object] = {"topology": topology, "public_url": public_url, **(extra or {}),
                                   "checks": [r.to_json() for r in results]}
    return json.dumps(document, indent=2, ensure_ascii=False)


def error_json(message: str) -> str:
    """What ``--json`` prints on stdout when the run could not happen (exit 2)."""
    return json.dumps({"error": message}, ensure_ascii=False)
