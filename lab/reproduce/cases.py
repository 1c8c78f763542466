"""Customer cases as regression tests: a bundle, and the verdicts it must keep giving.

``reproduce --save NAME`` copies the bundle into ``<cases-dir>/NAME/bundle/`` and writes
``case.toml`` from the run (public URL, proxy kind, every verdict, the hint of each failing
check); ``nox -s tests`` replays every case and fails when a verdict changes.

The copy holds regular files only (a link in the bundle is copied as the file it leads
to, never as a link) and is byte for byte the customer's, except that secrets in
``bitbucket.properties`` are masked (:func:`lab.redact.mask_secrets`): a case lives in a
repository. The live run that made the verdicts had the real values.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from lab.checks import CheckResult
from lab.errors import LabError
from lab.outputs import check_case_name, writing
from lab.redact import mask_secrets
from lab.reproduce.model import BundleFile

_BOM = "\ufeff"

VERDICTS = {True: "pass", False: "fail", None: "n/a"}


def verdict(result: CheckResult) -> str:
    """``pass``, ``fail``, ``n/a`` or ``blocked`` — how a case records a check."""
    return "blocked" if result.blocked_by else VERDICTS[result.ok]


def save_case(cases_dir: Path, name: str, bundle: Sequence[BundleFile], public_url: str, proxy: str | None,
              results: Sequence[CheckResult]) -> Path:
    """Write ``cases_dir/name/`` (the bundle's regular files, secrets masked; ``case.toml`` drafted)."""
    check_case_name(name)
    case = cases_dir / name
    if os.path.lexists(case):
        raise LabError(f"--save {name}: {case} exists already: choose another name")
    with writing(case):
        case.mkdir(parents=True)
    try:
        with writing(case):
            for file in bundle:
                target = case / "bundle" / file.relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_new(target, saved_bytes(file))
            _write_new(case / "case.toml", _case_toml(public_url, proxy, results).encode())
    except BaseException:
        shutil.rmtree(case, ignore_errors=True)     # half a case would only block the next --save
        raise
    return case


def saved_bytes(file: BundleFile) -> bytes:
    """What a case keeps of ``file``: its bytes, read from a regular file only, with the
    secrets of a ``bitbucket.properties`` masked."""
    try:
        fd = os.open(file.original or file.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # the customer's, not a rendering
    except OSError as error:
        raise LabError(f"{file.relpath}: cannot read it to save it: {error.strerror or error}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LabError(f"{file.relpath}: not a regular file, so not saved: run the reproduction again")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(fd)
    if file.kind != "properties":
        return data
    text = data.decode("utf-8")
    bom = _BOM if text.startswith(_BOM) else ""
    return (bom + mask_secrets(text[len(bom):])).encode("utf-8")


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never through a link, never over a file) with ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


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
