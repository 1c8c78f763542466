"""The wheel carries every file the lab needs at run time: a non-editable install runs
the same topologies as a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_every_file_git_tracks_under_lab_and_no_bytecode(tmp_path):
    names = _wheel_names(tmp_path)
    assert missing_from_wheel(_tracked("lab"), names) == []
    assert [name for name in names if "__pycache__" in name or name.endswith(".pyc")] == []


def test_a_tracked_file_left_out_of_the_wheel_is_reported():
    tracked = ["lab/cli.py", "lab/proxies/haproxy/haproxy.cfg", "lab/topologies/direct-http.toml"]
    in_wheel = ["lab/cli.py", "lab/topologies/direct-http.toml", "bitbucket_topology_lab-0.1.0.dist-info/RECORD"]
    assert missing_from_wheel(tracked, in_wheel) == ["lab/proxies/haproxy/haproxy.cfg"]


def missing_from_wheel(tracked: Iterable[str], wheel_names: Iterable[str]) -> list[str]:
    """Tracked paths (repository-relative) that the wheel does not contain."""
    return sorted(set(tracked) - set(wheel_names))


def _tracked(*pathspec: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *pathspec], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split("\0") if name and (REPO_ROOT / name).is_file()]


def _wheel_names(tmp_path: Path) -> list[str]:
    # Build from a copy of the tracked files: an in-tree build reuses build/lib, where a
    # file from an earlier build would hide that the current configuration drops it.
    source = tmp_path / "source"
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, source / name)
    out = tmp_path / "wheel"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()
