"""JUnit XML for CI systems' test tabs: one test case per check.

A failed check is a ``<failure>`` carrying what was observed, what was expected and the
fix; a check that does not apply, or is blocked by another's failure, is ``<skipped>``
with the reason. Written with the standard library's ElementTree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

from lab.checks import CheckResult
from lab.checks.base import Outcome
from lab.findings import findings


Suite = tuple[str, str, Sequence[CheckResult]]
"""(topology name, public URL, its results)."""


def junit_xml(suite: str, public_url: str, results: Sequence[CheckResult]) -> bytes:
    """The JUnit document for one topology's checks (``suite`` names the topology)."""
    return junit_suites([(suite, public_url, results)])


def junit_suites(suites: Sequence[Suite]) -> bytes:
    """One JUnit document, a ``<testsuite>`` per topology."""
    everything = [result for _, _, results in suites for result in results]
    root = ElementTree.Element("testsuites", name="bitbucket-lab", tests=str(len(everything)),
                               failures=str(sum(1 for r in everything if r.outcome.failed)),
                               skipped=str(sum(1 for r in everything if _skipped(r))))
    for suite, public_url, results in suites:
        _testsuite(root, suite, public_url, results)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _testsuite(root: ElementTree.Element, suite: str, public_url: str, results: Sequence[CheckResult]) -> None:
    failures = sum(1 for r in results if r.outcome.failed)
    skipped = sum(1 for r in results if _skipped(r))
    testsuite = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                                       failures=str(failures), skipped=str(skipped), errors="0",
                                       time=f"{sum(r.seconds for r in results):.3f}")
    ElementTree.SubElement(ElementTree.SubElement(testsuite, "properties"), "property",
                           name="public_url", value=public_url)
    found = findings(results)
    for result in results:
        case = ElementTree.SubElement(testsuite, "testcase", classname=f"bitbucket-lab.{suite}",
                                      name=result.id, time=f"{result.seconds:.3f}")
        finding = next((finding for finding in found if result.id in finding.checks), None)
        verdict = result.verdict
        if result.outcome.failed:
            fix = f"finding [{finding.number}]: {finding.fix}" if finding else f"fix: {verdict.fix}"
            failure = ElementTree.SubElement(case, "failure", message=f"{verdict.observed} — {fix}",
                                             type="CheckFailed")
            failure.text = f"observed: {verdict.observed}\nexpected: {verdict.expected}\n{fix}\n"
            if finding and len(finding.checks) + len(finding.blocked) > 1:
                failure.text += f"the same cause breaks: {', '.join([*finding.checks, *finding.blocked])}\n"
        elif _skipped(result):
            reason = f"blocked by {result.blocked_by}" if result.outcome is Outcome.BLOCKED else verdict.observed
            ElementTree.SubElement(case, "skipped", message=reason)
        else:
            ElementTree.SubElement(case, "system-out").text = verdict.observed


def _skipped(result: CheckResult) -> bool:
    """Not run here: it does not apply, or another check's failure blocked it."""
    return result.outcome in (Outcome.NOT_APPLICABLE, Outcome.BLOCKED)


def write_junit(path: Path, suites: Sequence[Suite]) -> None:
    """Write the JUnit file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_suites(suites))
