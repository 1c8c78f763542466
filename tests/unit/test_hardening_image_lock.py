"""Issue 28, without Docker: every run on a machine takes the same image-build lock,
whatever its TMPDIR, and the lock file is never opened through a link."""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.images import build
from lab.images.build import _open_lock, images_lock_path


def test_two_runs_with_different_temp_dirs_take_the_same_lock(tmp_path, monkeypatch):
    paths = []
    for name in ("run-a", "run-b"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv("TMPDIR", str(tmp_path / name))
        monkeypatch.setattr(tempfile, "tempdir", None)      # gettempdir() reads TMPDIR again
        assert tempfile.gettempdir() == str(tmp_path / name)
        paths.append(images_lock_path())
    assert paths[0] == paths[1] and not paths[0].is_relative_to(tmp_path)
    assert paths[0] in (build.SHARED_LOCK, build.USER_LOCK.expanduser())


def test_where_var_lock_cannot_take_the_lock_it_is_in_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "SHARED_LOCK", tmp_path / "var-lock" / "bitbucket-lab-images.lock")
    assert images_lock_path() == build.USER_LOCK.expanduser()
    (tmp_path / "var-lock").mkdir()
    assert images_lock_path() == tmp_path / "var-lock" / "bitbucket-lab-images.lock"


def test_the_lock_file_is_made_readable_by_every_user_and_an_existing_one_is_shared(tmp_path):
    lock = tmp_path / "locks" / "images.lock"
    first = _open_lock(lock)
    try:
        assert stat.S_IMODE(lock.stat().st_mode) == 0o644
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = _open_lock(lock)
        try:
            with pytest.raises(BlockingIOError):      # the same file: the second run waits for the first
                fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(second)
    finally:
        os.close(first)


def test_a_link_planted_at_the_lock_path_is_refused_in_one_line(tmp_path):
    target = tmp_path / "victim"
    target.write_text("not a lock")
    (tmp_path / "images.lock").symlink_to(target)
    with pytest.raises(LabError, match=r"^cannot open the image-build lock .*images.lock: .*; remove it"):
        _open_lock(tmp_path / "images.lock")
    assert target.read_text() == "not a lock" and Path(tmp_path / "images.lock").is_symlink()
