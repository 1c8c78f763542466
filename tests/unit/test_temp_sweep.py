"""Issue 28: what runs leave in $TMPDIR (screenshots, Playwright's empty folders) is swept."""

from __future__ import annotations

import os
from pathlib import Path

from lab.sweep import PLAYWRIGHT_IDLE_S, TEMP_KEEP_S, sweep_temp_leftovers

NOW = 1_900_000_000.0


def aged(path: Path, seconds: float, *, file: str | None = None) -> Path:
    path.mkdir()
    if file:
        (path / file).write_text("x")
    os.utime(path, (NOW - seconds, NOW - seconds))
    return path


def test_old_screenshot_folders_and_idle_empty_playwright_folders_are_swept_and_nothing_else(tmp_path):
    old_run = aged(tmp_path / "bitbucket-lab-123-abcdef", TEMP_KEEP_S + 60, file="browser-login.png")
    recent_run = aged(tmp_path / "bitbucket-lab-456-abcdef", 60, file="browser-login.png")
    idle_empty = aged(tmp_path / "playwright-artifacts-AbC", PLAYWRIGHT_IDLE_S + 60)
    young_empty = aged(tmp_path / "playwright-artifacts-DeF", 5)
    idle_in_use = aged(tmp_path / "playwright-artifacts-GhI", PLAYWRIGHT_IDLE_S + 60, file="trace.zip")
    someone_elses = aged(tmp_path / "bitbucket-lab-chromium", TEMP_KEEP_S + 60)

    assert sweep_temp_leftovers(tmp_path, NOW) == 2

    assert not old_run.exists() and not idle_empty.exists()
    assert recent_run.exists() and young_empty.exists() and idle_in_use.exists() and someone_elses.exists()
