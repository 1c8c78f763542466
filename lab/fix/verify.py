"""A verified fix: edit working copies of the customer's files, reload, check again.

For each finding whose cause has a file remedy (:mod:`lab.fix.remedies`) the edits go into
a copy of the customer's own file — the proxy file that routes Bitbucket, or the file
Bitbucket's setting came from — never the original. The patched bundle is written to a
folder, read again as any bundle is, and the running topology reloads in place with it;
the checks run again. Rounds repeat while a new finding has an edit that changes something
(at most one round per cause). What is left is the patch (a unified diff against the
customer's paths), the verdicts before and after, and the findings no file edit fixes —
listed as instructions.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.checks import CheckResult
from lab.findings import Finding, findings
from lab.fix.edit import apply_edits, shifted, unified_diff
from lab.fix.model import Anchor, Edit, SetDirective, SetSetting, Status
from lab.fix.remedies import CHAIN_INCOMPLETE, FROM_HINT, Remedy, remedy_for, setting_edits, value_from_hint
from lab.fix.syntax import edited_kinds, editor_of
from lab.reproduce.model import BundleFile, CustomerSetup

PROXY_KINDS_EDITED = edited_kinds()
"""The proxy kinds whose files ``--fix`` edits (their package names a ``ConfigEditor``)."""
SETTING_FILE_KINDS = ("properties", "env", "compose")
"""Files a Bitbucket setting can be patched in; Helm values and server.xml get an instruction."""


@dataclass(frozen=True)
class FilePatch:
    """One customer file, before and after the fix."""

    relpath: str
    kind: str
    before: str
    after: str

    @property
    def diff(self) -> str:
        return unified_diff(self.relpath, self.before, self.after)


@dataclass
class FixResult:
    """What ``--fix`` found: the patch, the verdicts of the first and last run, and what no
    file edit fixes."""

    before: list[CheckResult]
    after: list[CheckResult]
    patches: list[FilePatch] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    rounds: int = 0
    bundle: Path | None = None

    @property
    def verified(self) -> bool:
        """True only when the last run, with the patch, has no failed check."""
        return bool(self.patches) and not any(result.ok is False for result in self.after)

    @property
    def proxy_patch(self) -> str:
        return "".join(p.diff for p in self.patches if p.kind in PROXY_KINDS_EDITED)

    @property
    def settings_patch(self) -> str:
        return "".join(p.diff for p in self.patches if p.kind not in PROXY_KINDS_EDITED)

    @property
    def patch(self) -> str:
        return self.proxy_patch + self.settings_patch

    def verdict_line(self) -> str:
        applicable = [r for r in self.after if r.ok is not None]
        if not self.patches:
            return "no patch: no finding has a fix in the customer's files"
        if self.verified:
            return f"verified: all {len(applicable)} applicable checks pass after this patch"
        still = [r.id for r in self.after if r.ok is False]
        return f"not verified: after this patch {len(still)} check(s) still fail: {', '.join(still)}"

    def changed_verdicts(self) -> list[tuple[str, str, str]]:
        """(check id, verdict as sent, verdict patched) of each check the patch changed."""
        after = {r.id: _verdict(r) for r in self.after}
        return [(r.id, _verdict(r), after[r.id]) for r in self.before if r.id in after and after[r.id] != _verdict(r)]

    def to_json(self) -> dict[str, object]:
        return {"patch": self.patch, "files": {p.relpath: p.after for p in self.patches},
                "verified": self.verified, "instructions": self.instructions, "rounds": self.rounds,
                "before": {r.id: _verdict(r) for r in self.before}, "after": {r.id: _verdict(r) for r in self.after}}


def _verdict(result: CheckResult) -> str:
    if result.blocked_by:
        return "blocked"
    return {True: "pass", False: "fail", None: "n/a"}[result.ok]


Rerun = Callable[[Path], list[CheckResult]]
"""Reload the running topology from a patched bundle folder and run the checks again."""


def verify_fix(setup: CustomerSetup, results: list[CheckResult], work: Path, rerun: Rerun) -> FixResult:
    """Patch, reload and check until no finding has an edit that changes a file (bounded:
    one round per cause). ``work``: where the patched bundle goes (``work``/bundle)."""
    texts = {file.relpath: _original_text(file) for file in setup.bundle if _editable(file)}
    originals = dict(texts)
    fix = FixResult(before=results, after=results)
    tried: set[str] = set()
    inserted: dict[str, list[int]] = {}
    while True:
        found = findings(fix.after)
        changed = False
        for finding in found:
            if finding.cause in tried:
                continue
            tried.add(finding.cause)
            changed |= _apply_finding(finding, setup, texts, inserted)
        if not changed:
            break
        fix.rounds += 1
        fix.bundle = write_bundle(setup.bundle, texts, work / "bundle")
        fix.after = rerun(fix.bundle)
    fix.patches = [FilePatch(relpath, _kind(setup, relpath), originals[relpath], text)
                   for relpath, text in texts.items() if text != originals[relpath]]
    fix.instructions = [f"[{f.number}] {f.fix}" for f in findings(fix.after)]  # what the patch left failing
    fix.instructions += [f"{remedy.text} — the patch points the server at the full chain in the bundle; deploy that "
                         "file where the patch names it" for remedy in _patched_but_instructed(fix.before, setup)]
    return fix


def _apply_finding(finding: Finding, setup: CustomerSetup, texts: dict[str, str],
                   inserted: dict[str, list[int]]) -> bool:
    """Apply one finding's edits; ``inserted``: lines added to each file so far (anchors move down)."""
    changed = False
    for relpath, kind, anchor, edits in planned_edits(finding, setup):
        if relpath not in texts:
            continue
        result = apply_edits(texts[relpath], kind, edits, shifted(anchor, inserted.get(relpath, [])))
        if result.applied:
            texts[relpath] = result.text
            changed = True
            for outcome in result.outcomes:
                if outcome.status is Status.APPLIED and "added" in outcome.reason and outcome.line:
                    inserted.setdefault(relpath, []).append(outcome.line)
    return changed


def planned_edits(finding: Finding, setup: CustomerSetup) -> list[tuple[str, str, Anchor | None, tuple[Edit, ...]]]:
    """(relpath, kind, anchor, edits) for a finding: its remedy's proxy edits in the file that
    routes Bitbucket, or its settings in the files they came from."""
    remedy = remedy_for(finding.cause)
    if remedy is None:
        return []
    if remedy.settings_from_hint:
        return _setting_plan(setting_edits(finding.fix), setup)
    if remedy is CHAIN_INCOMPLETE:
        return _fullchain_plan(setup)
    proxy = setup.proxy
    edits = remedy.edits_for(proxy.kind) if proxy is not None else ()
    if proxy is None or not edits or proxy.route_source is None:
        return []
    valued = tuple(_with_hint_value(edit, finding.fix) for edit in edits)
    if any(edit is None for edit in valued):
        return []
    relpath, line = _anchor(setup)
    return [(relpath, proxy.kind, Anchor(line), tuple(edit for edit in valued if edit is not None))]


def _with_hint_value(edit: Edit, fix_text: str) -> Edit | None:
    """``edit`` with a :data:`FROM_HINT` value replaced by the one the finding's fix text gives
    its directive (None when the text does not say)."""
    if not isinstance(edit, SetDirective) or edit.value != FROM_HINT:
        return edit
    value = value_from_hint(edit.directive, fix_text)
    return dataclasses.replace(edit, value=value) if value else None



def _fullchain_plan(setup: CustomerSetup) -> list[tuple[str, str, Anchor | None, tuple[Edit, ...]]]:
    """The certificate directive that serves a leaf alone, pointed at the bundle's file with
    that leaf and its chain (``cert.pem`` → ``fullchain.pem`` beside it), when there is one."""
    proxy = setup.proxy
    editor = editor_of(proxy.kind) if proxy is not None else None
    if proxy is None or editor is None or editor.certificate_scope is None or proxy.route_source is None:
        return []
    served = {cert.for_path: cert for cert in setup.certificates if cert.for_path}
    for reference in proxy.tls_files:
        leaf = served.get(reference.path)
        if reference.role != "fullchain" or leaf is None or leaf.count != 1:
            continue
        chain = next((cert for cert in setup.certificates if cert.count > 1 and cert.ordered and not cert.expired
                      and cert.subjects == leaf.subjects and cert is not leaf), None)
        if chain is not None:
            path = chain.file.mirrored_path or posixpath.join(posixpath.dirname(reference.path),
                                                               posixpath.basename(chain.file.relpath))
            relpath, line = _anchor(setup)
            edit = SetDirective(reference.directive, path, editor.certificate_scope)
            return [(relpath, proxy.kind, Anchor(line), (edit,))]
    return []


def _anchor(setup: CustomerSetup) -> tuple[str, int]:
    """The line the edits' scopes are found from: the line that routes Bitbucket (nginx's
    location, Apache's ProxyPass / <Location>), or the first server line of Bitbucket's backend
    for a kind whose editor anchors there (HAProxy: ``ConfigEditor.anchor_on_upstream``)."""
    proxy = setup.proxy
    assert proxy is not None and proxy.route_source is not None
    editor = editor_of(proxy.kind)
    if editor is not None and editor.anchor_on_upstream and proxy.upstreams:
        return proxy.upstreams[0].source.file, proxy.upstreams[0].source.line
    return proxy.route_source.file, proxy.route_source.line


def _setting_plan(edits: Sequence[SetSetting], setup: CustomerSetup) -> list[tuple[str, str, Anchor | None, tuple[Edit, ...]]]:
    """Each setting in the file it came from; a new one beside the bundle's other settings
    (bitbucket.properties first). Settings the lab assumed have no file: an instruction."""
    where: dict[str, list[Edit]] = {}
    sources = {setting.key: setting.source.file for setting in setup.settings}
    fallback = (setup.properties.relpath if setup.properties else
                next((s.source.file for s in setup.settings if _kind(setup, s.source.file) in ("env", "compose")), None))
    for edit in edits:
        relpath = sources.get(edit.key, fallback)
        if relpath is not None and _kind(setup, relpath) in SETTING_FILE_KINDS:
            where.setdefault(relpath, []).append(edit)
    return [(relpath, _kind(setup, relpath), None, tuple(items)) for relpath, items in where.items()]


def _patched_but_instructed(results: list[CheckResult], setup: CustomerSetup) -> list[Remedy]:
    """Remedies of the first run whose patch is made but whose words stay an instruction."""
    found: dict[str, Remedy] = {}
    for finding in findings(results):
        remedy = remedy_for(finding.cause)
        if remedy is not None and remedy.instruction_too and _has_file_edit(finding, setup):
            found.setdefault(remedy.cause, remedy)
    return list(found.values())


def _has_file_edit(finding: Finding, setup: CustomerSetup) -> bool:
    return bool(planned_edits(finding, setup))


def _editable(file: BundleFile) -> bool:
    return file.kind in (*PROXY_KINDS_EDITED, *SETTING_FILE_KINDS)


def _kind(setup: CustomerSetup, relpath: str) -> str:
    return next((file.kind for file in setup.bundle if file.relpath == relpath), "text")


def _original_text(file: BundleFile) -> str:
    return (file.original or file.path).read_bytes().decode("utf-8")


def write_bundle(bundle: Sequence[BundleFile], texts: dict[str, str], folder: Path) -> Path:
    """The customer's bundle with the patched texts, every other file as sent."""
    if folder.exists():
        shutil.rmtree(folder)
    for file in bundle:
        target = folder / file.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if file.relpath in texts and texts[file.relpath] != _original_text(file):
            target.write_bytes(texts[file.relpath].encode("utf-8"))
        else:
            shutil.copyfile(file.original or file.path, target)
    return folder
