"""The host-side client's trust: a vantage without a CA trusts nothing, privately."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile

import pytest
import trustme

from lab.client import empty_ca_file

OLD_FIXED_NAME = "bitbucket-lab-empty-ca.pem"


@pytest.fixture
def fresh_empty_ca_file(tmp_path, monkeypatch):
    """empty_ca_file() as a new process would first call it, with the temp dir in tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache_clear = getattr(empty_ca_file, "cache_clear", lambda: None)
    cache_clear()
    yield tmp_path
    cache_clear()


def test_the_trust_nothing_ca_file_is_private_to_this_process_and_empty(fresh_empty_ca_file):
    path = empty_ca_file()
    info = os.stat(path)
    assert os.path.basename(path) != OLD_FIXED_NAME
    assert os.path.dirname(path) == str(fresh_empty_ca_file)
    assert info.st_size == 0
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    assert empty_ca_file() == path  # one file per process, not one per call


def test_a_file_planted_at_the_old_predictable_path_is_not_trusted(fresh_empty_ca_file):
    planted = fresh_empty_ca_file / OLD_FIXED_NAME
    trustme.CA().cert_pem.write_to_path(str(planted))
    planted.chmod(0o644)
    path = empty_ca_file()
    assert path != str(planted)
    assert os.path.getsize(path) == 0


def test_the_trust_nothing_ca_file_is_removed_when_the_process_exits(tmp_path):
    code = "from lab.client import empty_ca_file; print(empty_ca_file())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert path.startswith(str(tmp_path)) and not os.path.exists(path)


def test_a_command_that_overruns_is_ended_with_every_process_it_started():
    import os
    import subprocess
    import time

    from lab.client import run_bounded

    marker = f"lab-orphan-{os.getpid()}"
    started = time.monotonic()
    result = run_bounded(["bash", "-c", f"bash -c 'exec -a {marker} sleep 60' & sleep 60"], None, dict(os.environ), 1)
    assert result.returncode == 124 and "timed out after 1 s" in result.stderr
    assert time.monotonic() - started < 10
    time.sleep(0.2)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a grandchild outlived its command"


def test_a_command_that_finishes_leaves_no_helper_behind():
    import os
    import subprocess
    import time

    from lab.client import run_bounded

    marker = f"lab-helper-{os.getpid()}"
    command = f"bash -c 'exec -a {marker} sleep 60' >/dev/null 2>&1 & sleep 0.3; pgrep -f {marker} >/dev/null && echo done"
    result = run_bounded(["bash", "-c", command], None, dict(os.environ), 10)
    assert result.returncode == 0 and result.stdout.strip() == "done"
    time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.strip() == ""


def test_a_command_that_says_it_is_stalled_is_ended_early_with_the_reason_and_one_that_is_not_runs_on():
    import os
    import time

    from lab.client import STALL_WATCH_AFTER_S, run_bounded

    started = time.monotonic()
    stuck = run_bounded(["sleep", "60"], None, dict(os.environ), 60, stalled=lambda: "nothing more for 2 s")
    assert stuck.returncode == 124 and stuck.stderr.strip().endswith("nothing more for 2 s")
    assert time.monotonic() - started < STALL_WATCH_AFTER_S + 5
    asked: list[float] = []
    fine = run_bounded(["bash", "-c", f"sleep {STALL_WATCH_AFTER_S + 1.5}; cat"], None, dict(os.environ), 60,
                       input="still here", stalled=lambda: asked.append(time.monotonic()) or None)
    assert fine.returncode == 0 and fine.stdout == "still here" and len(asked) >= 1  # asked, not stalled


def test_a_lab_ended_by_sigterm_takes_the_commands_it_was_running_with_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    marker = f"lab-sigterm-{os.getpid()}"
    script = tmp_path / "runner.py"
    script.write_text(
        "import os, signal, sys, threading\n"
        "from lab.client import run_bounded\n"
        "def stop(*_): raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"threading.Thread(target=run_bounded, args=(['bash', '-c', \"exec -a {marker} sleep 60\"], None,"
        " dict(os.environ), 60), daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "threading.Event().wait()\n")
    runner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert runner.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    runner.send_signal(signal.SIGTERM)
    runner.wait(timeout=10)
    time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.strip() == ""
