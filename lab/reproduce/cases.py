"""Customer cases as regression tests: a bundle, and the verdicts it must keep giving.

``reproduce --save NAME`` copies the bundle unchanged into ``<cases-dir>/NAME/bundle/`` and
writes ``case.toml`` from the run (public URL, proxy kind, every verdict, the hint of each
failing check); ``nox -s tests`` replays every case and fails when a verdict changes.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from lab.checks import CheckResult
from lab.errors import LabError
from lab.reproduce.model import BundleFile

VERDICTS = {True: "pass", False: "fail", None: "n/a"}


def verdict(result: CheckResult) -> str:
    """``pass``, ``fail``, ``n/a`` or ``blocked`` — how a case records a check."""
    return "blocked" if result.blocked_by else VERDICTS[result.ok]


def save_case(cases_dir: Path, name: str, bundle: Sequence[BundleFile], public_url: str, proxy: str | None,
              results: Sequence[CheckResult]) -> Path:
    """Write ``cases_dir/name/`` (bundle copied byte for byte, ``case.toml`` drafted)."""
    if not name or "/" in name or name.startswith("."):
        raise LabError(f"--save {name!r}: a case name is one plain word (letters, digits, -)")
    case = cases_dir / name
    if case.exists():
        raise LabError(f"--save {name}: {case} exists already; choose another name")
    for file in bundle:
        target = case / "bundle" / file.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.path, target)
    (case / "case.toml").write_text(_case_toml(public_url, proxy, results))
    return case


def _case_toml(public_url: str, proxy: str | None, results: Sequence[CheckResult]) -> str:
    lines = ['description = "TODO: the customer\'s complaint and its cause, in one sentence"',
             f"public_url = {_quote(public_url)}", f"proxy = {_quote(proxy or 'none')}", "", "[expected]"]
    lines += [f"{_quote(r.id)} = {_quote(verdict(r))}" for r in results]
    failing = [r for r in results if r.ok is False]
    if failing:
        lines += ["", "# a word or directive each failing check's hint must name: trim each to the cause", "[causes]"]
        lines += [f"{_quote(r.id)} = {_quote(r.hint)}" for r in failing]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
