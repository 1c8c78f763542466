"""Printing results for people: a table of verdicts and a picture of the topology."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Mapping, Sequence

from lab.checks import HOPS, REGISTRY, CheckResult
from lab.checks.base import Evidence, Outcome
from lab.findings import Finding, findings
from lab.logsigs import gist, is_error_line
from lab.topology import Topology

MARKS = {Outcome.PASS: "✔", Outcome.PASS_WITH_NOTE: "✔", Outcome.FAIL: "✘", Outcome.LAB_FAULT: "✘",
         Outcome.NOT_APPLICABLE: "·", Outcome.BLOCKED: "⊘"}


def results_table(results: Sequence[CheckResult], timings: bool = False) -> str:
    """The findings (one per cause: its fix, evidence and the checks it breaks), then one
    line a check (mark, id, observation); a failed check points at its finding instead of
    repeating the fix."""
    width = max(60, shutil.get_terminal_size((120, 20)).columns) - 32 - (8 if timings else 0)
    found = findings(results)
    lines = findings_text(found, width)
    for result in results:
        observed = result.observed if len(result.observed) <= width else result.observed[: width - 1] + "…"
        seconds = f"{result.seconds:6.1f}s " if timings and result.seconds else ("        " if timings else "")
        lines.append(f" {MARKS[result.outcome]} {result.id:<24} {seconds}{observed}")
        if result.outcome is Outcome.PASS_WITH_NOTE:
            lines.append(f"   {'':<24} note: {result.verdict.note}")
        if result.outcome.failed:
            lines.append(f"   {'':<24} expected: {result.verdict.expected}")
            lines.append(f"   {'':<24} {_finding_reference(result, found)}")
    lines.append(summary_line(results))
    return "\n".join(lines)


def findings_text(found: Sequence[Finding], width: int = 88) -> list[str]:
    """The findings block: numbered causes, each with its fix, what was seen, the log lines
    tied to it and the checks it breaks — wrapped to the terminal."""
    if not found:
        return []
    columns = width + 32
    lines = [f"{len(found)} finding{'s' if len(found) > 1 else ''} (one per cause):"]
    for finding in found:
        lines += _wrapped(f"[{finding.number}] fix: {finding.fix}", columns, first=" ", rest="     ")
        lines.append(f"     seen by {finding.checks[0]}: {finding.observed}"[:columns])
        lines += [f"     log: {line}"[:columns] for line in _evidence_lines(finding.evidence)]
        breaks = f"breaks {len(finding.checks)}: {', '.join(finding.checks)}"
        breaks += f"; blocks {len(finding.blocked)}: {', '.join(finding.blocked)}" if finding.blocked else ""
        lines += _wrapped(breaks, columns, first="     ", rest="       ")
    lines.append("")
    return lines


def _wrapped(text: str, columns: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, columns, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False) or [first]


def _finding_reference(result: CheckResult, found: Sequence[Finding]) -> str:
    number = next((finding.number for finding in found if result.id in finding.checks), None)
    return f"→ finding [{number}]" if number is not None else f"fix: {result.verdict.fix}"


def _evidence_lines(evidence: Evidence | None, most: int = 3) -> list[str]:
    if evidence is None:
        return []
    proxy = [f"proxy: {gist(line)}" for line in evidence.proxy if is_error_line(line)][-2:]
    proxy = proxy or [f"proxy: {gist(line)}" for line in evidence.proxy][-1:]
    bitbucket = [f"bitbucket: {line}" for line in evidence.bitbucket][-1:]
    note = [evidence.note] if evidence.note else []
    return (proxy + (bitbucket or note))[:most]


def telling_lines(result: CheckResult, most: int = 3) -> list[str]:
    """The 1–3 evidence lines worth reading on a terminal: proxy errors first, then what
    Bitbucket saw (or that nothing arrived)."""
    return _evidence_lines(result.evidence, most)


def summary_line(results: Sequence[CheckResult]) -> str:
    """"N passed, N failed, N not applicable[, N blocked by X]"."""
    passed = sum(1 for r in results if r.outcome.passed)
    failed = sum(1 for r in results if r.outcome.failed)
    blocked = [r for r in results if r.outcome is Outcome.BLOCKED]
    skipped = sum(1 for r in results if r.outcome is Outcome.NOT_APPLICABLE)
    line = f"{passed} passed, {failed} failed, {skipped} not applicable"
    if blocked:
        causes = ", ".join(dict.fromkeys(r.blocked_by or "" for r in blocked))
        line += f", {len(blocked)} blocked by {causes}"
    return line


def topology_picture(topology: Topology, public_url: str, results: Sequence[CheckResult]) -> str:
    """The topology's diagram, then which failed checks sit on which hop."""
    failed = {r.id for r in results if r.outcome.failed}
    blocked = {r.id for r in results if r.outcome is Outcome.BLOCKED}
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
                                   "findings": [finding.to_json() for finding in findings(results)],
                                   "checks": [r.to_json() for r in results]}
    return json.dumps(document, indent=2, ensure_ascii=False)


def error_json(message: str) -> str:
    """What ``--json`` prints on stdout when the run could not happen (exit 2)."""
    return json.dumps({"error": message}, ensure_ascii=False)
