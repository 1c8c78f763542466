"""How a fix is shown: on the terminal, and written as a folder ready to send."""

from __future__ import annotations

from pathlib import Path

from lab.fix.verify import FixResult


def fix_text(fix: FixResult, out: Path | None = None) -> str:
    """The patch, what it proved, and what no file edit fixes — for the terminal."""
    lines = [f"fix ({fix.rounds} round(s) of patch, reload, checks): {fix.verdict_line()}"]
    if fix.patch:
        lines += ["", fix.patch.rstrip("\n")]
    changed = fix.changed_verdicts()
    if changed:
        lines += ["", "what the patch changed: " + ", ".join(f"{check_id} {before} → {after}"
                                                           for check_id, before, after in changed)]
        lines.append("(the lab now runs the patched files; the checks above are the files as sent)")
    if fix.instructions:
        lines += ["", "still to do — no file edit here fixes it (for the customer or their admin):"]
        lines += [f"  {instruction}" for instruction in fix.instructions]
    if out is not None and fix.patches:
        lines += ["", f"patched bundle: {out / 'bundle'} (reproduce it to see these verdicts again); "
                      f"patches: {', '.join(str(out / name) for name in patch_files(fix))}"]
    return "\n".join(lines)


def patch_files(fix: FixResult) -> dict[str, str]:
    """{file name: unified diff} of the non-empty patches: one for the proxy, one for Bitbucket's settings."""
    return {name: text for name, text in (("proxy.patch", fix.proxy_patch), ("settings.patch", fix.settings_patch))
            if text}


def write_fix_out(fix: FixResult, out: Path | None) -> None:
    """The patches beside the patched bundle (which :func:`lab.fix.verify.verify_fix` wrote to ``out``/bundle)."""
    if out is None:
        return
    for name, text in patch_files(fix).items():
        (out / name).write_text(text, encoding="utf-8")
