"""Issue 24: what a failed check's fix must rest on, for the e2e tests that judge fixes."""

from __future__ import annotations

from lab.findings import findings
from lab.logsigs import gist


def fix_shown(result, results) -> str:
    """The fix a user reads for a failed check: its finding's (the check points at it)."""
    finding = next((f for f in findings(results) if result.id in f.checks), None)
    return finding.fix if finding else result.hint


def assert_every_fix_rests_on_its_own_evidence(results) -> None:
    """Issue 24: a fix taken from a log line quotes a line tied to that very check (a JSON line
    as :func:`lab.logsigs.gist` quotes it), and a finding's fix is that of a check it lists."""
    for result in results:
        if result.ok is False and (result.verdict.cause or "").startswith("log:"):
            quoted = result.hint.split("(the proxy logged: ", 1)[1].rstrip(")")
            assert any(quoted in gist(line) for line in result.evidence.proxy), (result.id, quoted, result.evidence)
    for finding in findings(results):
        assert finding.fix == next(r.hint for r in results if r.id == finding.checks[0])
