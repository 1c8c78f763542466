"""Findings: one per cause, above the list of checks.

Several checks often fail for one reason — a chain without its intermediate, a wrong
context path, Apache refusing Bitbucket's certificate — and a support engineer needs that
reason once: what is wrong, the fix, its evidence, and the checks it breaks. A failed
check belongs to the finding of

1. its own specific cause, when it names one (:attr:`Verdict.cause`, or a known log
   signature tied to its own requests): every check with that cause shares the finding;
2. else the finding of a failed check that explains it (:attr:`CheckSpec.explained_by`:
   ``reach.status`` failing with a 404 explains ``git.clone`` failing with a 404);
3. else the finding of every check that gives the same fix, word for word;
4. else a finding of its own.

A check blocked by another's failure is listed under that check's finding. The findings
are numbered from the one that breaks the most checks; a run where every check passed
has none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from lab.checks.base import REGISTRY, CheckResult, Evidence


@dataclass(frozen=True)
class Finding:
    """One cause: its fix, what the first check it explains saw, that check's evidence,
    the failed checks it explains (``checks``, the first is the one quoted) and the checks
    that were not run because of it (``blocked``)."""

    number: int
    cause: str
    fix: str
    observed: str
    evidence: Evidence | None
    checks: tuple[str, ...]
    blocked: tuple[str, ...] = ()

    @property
    def breaks(self) -> int:
        return len(self.checks) + len(self.blocked)

    def to_json(self) -> dict[str, object]:
        return {"number": self.number, "cause": self.cause, "fix": self.fix, "observed": self.observed,
                "checks": list(self.checks), "blocked": list(self.blocked),
                "evidence": self.evidence.to_json() if self.evidence else None}


def findings(results: Sequence[CheckResult]) -> list[Finding]:
    """The findings of a run's results, the one that breaks most first."""
    owners = _owners(results)
    groups: dict[str, list[CheckResult]] = {}
    for result in results:
        if result.outcome.failed:
            groups.setdefault(owners[result.id], []).append(result)
    blocked: dict[str, list[str]] = {}
    for result in results:
        if result.blocked_by and result.blocked_by in owners:
            blocked.setdefault(owners[result.blocked_by], []).append(result.id)
    made = [_finding(owner, members, blocked.get(owner, [])) for owner, members in groups.items()]
    made.sort(key=lambda finding: -finding.breaks)  # stable: registry order among equals
    return [dataclasses.replace(finding, number=number) for number, finding in enumerate(made, 1)]


def with_findings(results: Sequence[CheckResult]) -> list[CheckResult]:
    """``results``, each failed or blocked check carrying the number of its finding."""
    number_of: dict[str, int] = {}
    for finding in findings(results):
        number_of.update({check_id: finding.number for check_id in (*finding.checks, *finding.blocked)})
    return [dataclasses.replace(result, finding=number_of.get(result.id)) for result in results]


def explained_elsewhere(result: CheckResult, found: Sequence[Finding]) -> Finding | None:
    """The finding that explains ``result`` when ``result`` is not the check it quotes."""
    for finding in found:
        if result.id in finding.checks[1:]:
            return finding
    return None


def _finding(owner: str, members: list[CheckResult], blocked: list[str]) -> Finding:
    first = next((member for member in members if member.id == owner), members[0])
    ordered = [first, *(member for member in members if member is not first)]
    verdict = first.verdict
    return Finding(0, verdict.cause or verdict.fix, verdict.fix, verdict.observed, first.evidence,
                   tuple(member.id for member in ordered), tuple(blocked))


def _owners(results: Sequence[CheckResult]) -> dict[str, str]:
    """Each failed check's group key: the id of the check whose finding lists it."""
    failed = {result.id: result for result in results if result.outcome.failed}
    by_cause: dict[str, str] = {}
    owners: dict[str, str] = {}

    def owner(result: CheckResult, seen: frozenset[str] = frozenset()) -> str:
        if result.id in owners:
            return owners[result.id]
        if result.verdict.cause:
            found = by_cause.setdefault(result.verdict.cause, result.id)
        else:
            root = _failed_explainer(result, failed, seen)
            found = owner(failed[root], seen | {result.id}) if root else by_cause.setdefault(
                "fix:" + result.verdict.fix, result.id)
        owners[result.id] = found
        return found

    for result in failed.values():
        owner(result)
    return owners


def _failed_explainer(result: CheckResult, failed: dict[str, CheckResult], seen: frozenset[str]) -> str | None:
    spec = REGISTRY.get(result.id)
    explainers = spec.explained_by if spec else ()
    return next((root for root in explainers if root in failed and root not in seen and root != result.id), None)
