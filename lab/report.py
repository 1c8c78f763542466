"""Printing results for people: a table of verdicts and a picture of the topology."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence

from lab.checks import CheckResult
from lab.topology import Topology

MARKS = {True: "✔", False: "✘", None: "·"}
HOPS = (
    ("users → front door", ("reach.status", "redirects.http-to-https", "tls.chain", "tls.hostname", "tls.protocols")),
    ("front door → Bitbucket", ("routing.context-path", "redirects.public", "login.browser", "path.encoded-slash",
                                "baseurl.match", "git.auth-challenge", "git.clone", "git.clone-slow", "git.push",
                                "git.push-large")),
    ("Tomcat's own port", ("direct.tomcat-port",)),
)


def results_table(results: Sequence[CheckResult]) -> str:
    """One line a check (mark, id, observation); failures get their hint underneath."""
    width = max(60, shutil.get_terminal_size((120, 20)).columns) - 32
    lines = []
    for result in results:
        observed = result.observed if len(result.observed) <= width else result.observed[: width - 1] + "…"
        lines.append(f" {MARKS[result.ok]} {result.id:<24} {observed}")
        if result.ok is False:
            lines.append(f"   {'':<24} expected: {result.expected}")
            lines.append(f"   {'':<24} fix: {result.hint}")
    passed = sum(1 for r in results if r.ok is True)
    failed = sum(1 for r in results if r.ok is False)
    skipped = sum(1 for r in results if r.ok is None)
    lines.append(f"{passed} passed, {failed} failed, {skipped} not applicable")
    return "\n".join(lines)


def topology_picture(topology: Topology, public_url: str, results: Sequence[CheckResult]) -> str:
    """The topology's diagram, then which failed checks sit on which hop."""
    failed = {r.id for r in results if r.ok is False}
    lines = [f"{topology.name}: {topology.summary}", f"public URL: {public_url}", "", topology.diagram, ""]
    for hop, ids in HOPS:
        bad = [i for i in ids if i in failed]
        lines.append(f"  {'✘' if bad else '✔'} {hop:<24} {'failed: ' + ', '.join(bad) if bad else 'ok'}")
    return "\n".join(lines)


def results_json(topology: str, public_url: str, results: Sequence[CheckResult]) -> str:
    """The JSON contract of ``check --json``."""
    return json.dumps({"topology": topology, "public_url": public_url,
                       "checks": [r.to_json() for r in results]}, indent=2, ensure_ascii=False)
