"""Issue 28, without Docker: where --report, --junit and --save may write, decided from the
parsed arguments before anything starts; and writes that fail at the end say so in one line.

Every refusal is paired with the path the lab accepts beside it.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lab.checks import CheckResult
from lab.checks.base import Verdict
from lab.cli import _parser
from lab.errors import LabError
from lab.html_report import html_report
from lab.junit import junit_suites
from lab.outputs import is_lab_output, validate_output_paths, write_private, writing
from lab.pki import make_pki
from lab.runtime import LabOptions, RunningTopology
from lab.topology import load_topology

NOT_THE_LABS = "my notes, not a report\n"


def test_an_existing_file_the_lab_did_not_write_is_refused_and_force_overwrites_it(tmp_path):
    notes = tmp_path / "notes.html"
    notes.write_text(NOT_THE_LABS)
    with pytest.raises(LabError, match=rf"^--report {notes} exists and the lab did not write it: choose another "
                                       r"path, or pass --force to overwrite it$"):
        validate("check", "--report", str(notes))
    validate("check", "--report", str(notes), "--force")


def test_a_junit_file_the_lab_did_not_write_is_refused_and_one_it_wrote_is_overwritten(tmp_path):
    theirs, ours = tmp_path / "theirs.xml", tmp_path / "ours.xml"
    theirs.write_text("<?xml version='1.0'?><testsuites name='pytest'/>\n")
    ours.write_bytes(junit_suites([("nginx-https", "https://bitbucket.lab.test", [CheckResult("reach.front-door",
                                                                                                Verdict(True, "ok", "ok"))])]))
    with pytest.raises(LabError, match=r"^--junit .*theirs.xml exists and the lab did not write it"):
        validate("reproduce", "bundle", "--junit", str(theirs))
    validate("reproduce", "bundle", "--junit", str(ours))


def test_a_report_the_lab_wrote_is_overwritten_and_so_is_the_junit_beside_it(tmp_path):
    report = tmp_path / "nginx-https.html"
    report.write_text(html_report(_running(tmp_path), [CheckResult("reach.front-door", Verdict(True, "ok", "ok"))]))
    report.with_suffix(".xml").write_bytes(junit_suites([("nginx-https", "https://bitbucket.lab.test", [])]))
    assert is_lab_output(report) and is_lab_output(report.with_suffix(".xml"))
    validate("up", "--report", str(report))


def test_the_junit_beside_a_report_is_guarded_too(tmp_path):
    (tmp_path / "lab.xml").write_text(NOT_THE_LABS)
    with pytest.raises(LabError, match=r"^--report \(its JUnit XML beside it\) .*lab.xml exists and the lab did not"):
        validate("check", "--report", str(tmp_path / "lab.html"))
    validate("check", "--report", str(tmp_path / "other.html"))


def test_a_fresh_path_in_folders_still_to_be_made_is_fine(tmp_path):
    validate("check", "--report", str(tmp_path / "a" / "b" / "lab.html"), "--junit", str(tmp_path / "c" / "lab.xml"))


def test_an_empty_file_is_overwritten_without_force_since_nothing_is_lost(tmp_path):
    (tmp_path / "empty.xml").touch()
    validate("check", "--junit", str(tmp_path / "empty.xml"))


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_a_device_is_refused_even_with_force(device):
    with pytest.raises(LabError, match=rf"^--junit {device} is a device, not a file: give the path of a file$"):
        validate("check", "--junit", device, "--force")


def test_a_directory_is_refused_naming_a_file_path_in_it(tmp_path):
    with pytest.raises(LabError, match=rf"^--report {tmp_path} is a directory: give a file path in it"):
        validate("check", "--report", str(tmp_path))


def test_a_link_at_the_path_is_refused_even_when_it_leads_to_a_lab_report(tmp_path):
    target = tmp_path / "real.xml"
    target.write_bytes(junit_suites([]))
    (tmp_path / "link.xml").symlink_to(target)
    with pytest.raises(LabError, match=r"^--junit .*link.xml is a symbolic link, and the lab never writes through"):
        validate("check", "--junit", str(tmp_path / "link.xml"), "--force")
    validate("check", "--junit", str(target))


def test_a_folder_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LabError, match=r"^--report .*file/sub/lab.html: cannot create the folder .*file/sub: "
                                       r".*file is not a directory$"):
        validate("check", "--report", str(tmp_path / "file" / "sub" / "lab.html"))


def test_a_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    with pytest.raises(LabError, match=r"^--junit .*locked/x/lab.xml: cannot write in .*locked \(permission denied\)"):
        validate("check", "--junit", str(locked / "x" / "lab.xml"))
    validate("check", "--junit", str(tmp_path / "open" / "lab.xml"))


def test_a_report_named_xml_is_refused_since_its_junit_would_overwrite_it(tmp_path):
    with pytest.raises(LabError, match=r"^--report .*lab.xml: the JUnit XML goes beside the report as lab.xml"):
        validate("check", "--report", str(tmp_path / "lab.xml"))


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "", "a..b", "-x"])
def test_a_case_name_that_is_not_one_plain_word_is_refused(tmp_path, name):
    with pytest.raises(LabError, match=r"a case name is one plain word"):
        validate("reproduce", "bundle", f"--save={name}", "--cases-dir", str(tmp_path))


def test_a_plain_case_name_is_fine_and_an_existing_case_is_refused(tmp_path):
    validate("reproduce", "bundle", "--save", "nginx-413_on-push.v2", "--cases-dir", str(tmp_path))
    (tmp_path / "taken").mkdir()
    with pytest.raises(LabError, match=r"^--save taken: .*taken exists already: choose another name$"):
        validate("reproduce", "bundle", "--save", "taken", "--cases-dir", str(tmp_path))


def test_a_cases_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LabError, match=r"^--cases-dir .*cannot create the folder"):
        validate("reproduce", "bundle", "--save", "case", "--cases-dir", str(tmp_path / "file" / "cases"))


@pytest.mark.parametrize("args,message", [
    (["check", "--topology", "direct-http", "--junit", "/dev/full"], "--junit /dev/full is a device"),
    (["up", "--report", "/dev/null"], "--report /dev/null is a device"),
    (["reproduce", "nowhere/", "--save", "../../x"], "--save '../../x': a case name is one plain word"),
])
def test_the_cli_refuses_a_bad_output_in_one_line_before_anything_starts(args, message):
    # no Docker engine answers there: an output error first proves nothing was started
    result = subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {message}")


def test_a_full_disk_at_the_end_is_one_line_naming_the_file():
    with pytest.raises(LabError, match=r"^cannot write /dev/full: No space left on device$"):
        with writing(Path("/dev/full")), open("/dev/full", "wb") as handle:
            handle.write(b"x" * 65536)
            handle.flush()


def test_a_lost_permission_at_the_end_is_one_line_and_other_errors_pass_through(tmp_path):
    with pytest.raises(LabError, match=r"^cannot write .*lab.html: Permission denied$"):
        with writing(tmp_path / "lab.html"):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "lab.html"))
    with pytest.raises(KeyError):
        with writing(tmp_path / "lab.html"):
            raise KeyError("a bug stays a bug")


def test_write_private_creates_a_file_only_its_owner_reads_and_narrows_an_existing_one(tmp_path):
    fresh, existing = tmp_path / "new" / "report.html", tmp_path / "old.html"
    existing.write_text("old")
    existing.chmod(0o644)
    write_private(fresh, b"customer config")
    write_private(existing, b"customer config")
    for path in (fresh, existing):
        assert path.read_bytes() == b"customer config"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.rglob(".*")] == []      # no temporary file left


def test_write_private_refuses_a_link_at_the_destination_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("untouched")
    (tmp_path / "report.html").symlink_to(target)
    with pytest.raises(LabError, match=r"^cannot write .*report.html: it is a symbolic link"):
        write_private(tmp_path / "report.html", b"customer config")
    assert target.read_text() == "untouched" and (tmp_path / "report.html").is_symlink()
    with pytest.raises(LabError, match=r"^cannot write /dev/null: it is a device, not a file$"):
        write_private(Path("/dev/null"), b"customer config")


def validate(*argv: str) -> None:
    validate_output_paths(_parser().parse_args(list(argv)))


def _running(tmp_path: Path) -> RunningTopology:
    topology = load_topology("nginx-https")
    tls = make_pki(tmp_path / "certs", topology.tls_names)
    running = RunningTopology(topology, LabOptions(), "unit-1", tls, client=None)  # type: ignore[arg-type]
    running.provisioned = {}
    return running
