"""Where the lab writes its results, checked before anything starts, and written safely.

``--report PATH`` (and the JUnit file beside it, ``<stem>.xml``), ``--junit PATH`` and
``--save NAME`` / ``--cases-dir DIR`` are checked by :func:`validate_output_paths` from the
parsed arguments, before a container starts, so a run of minutes never ends in a path it
cannot write. Each refusal is one line:

- a path that is a directory, a device (``/dev/null``, ``/dev/full``), a FIFO or a socket;
- a symbolic link (the lab never writes through one);
- an existing, non-empty file the lab did not write (``--force`` overwrites it anyway). The lab
  recognises its own outputs by what they always hold: :data:`REPORT_MARKERS` (the HTML
  report's head and style) and :data:`JUNIT_MARKER` (the ``testsuites`` name);
- a folder that cannot be created (a file stands in its way) or written;
- a case name that is not one plain word (``../../x``, ``a/b``, ``.hidden``), or a case
  that exists already.

What still fails at the end (the disk fills, a permission changes) is turned into one line
by :func:`writing`. :func:`write_private` writes a file that quotes a customer's files:
mode 0600 from its creation, never through a link at the destination.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lab.errors import LabError

AUTO_REPORT = "auto"
"""``--report`` given without a path: ``reports/<topology>-<time>.html``."""

REPORT_MARKERS = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
                  "svg.topology .node{")
"""Every HTML report starts with the first and its style holds the second (lab/html_report.py);
reports from before the generator marker have only these."""
GENERATOR_MARKER = "<meta name='generator' content='bitbucket-lab'>"
"""An explicit marker a report may carry in its head; recognised as the lab's too."""
JUNIT_MARKER = '<testsuites name="bitbucket-lab"'
"""Every JUnit file the lab writes has this root (lab/junit.py)."""
SNIFF_BYTES = 16384
CASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
"""One plain word: letters, digits, ``-``, ``_``, single dots inside; never ``..`` or a ``/``."""


def validate_output_paths(args: argparse.Namespace) -> None:
    """:class:`LabError` for the first output path of ``args`` the lab must not or cannot write."""
    force = bool(getattr(args, "force", False))
    report = _report_option(args)
    if report is not None:
        if report.suffix == ".xml":
            raise LabError(f"--report {report}: the JUnit XML goes beside the report as {report.name}: "
                           "name the report .html")
        check_output_file(report, "--report", force)
        check_output_file(report.with_suffix(".xml"), "--report (its JUnit XML beside it)", force)
    elif _auto_report(args):
        from lab.html_report import default_report_path

        check_output_folder(default_report_path("x").parent, "--report")
    junit = getattr(args, "junit", None)
    if junit is not None:
        check_output_file(Path(junit), "--junit", force)
    if getattr(args, "save", None) is not None:
        check_case(Path(getattr(args, "cases_dir", "tests/cases")), args.save)
    if getattr(args, "fix_out", None) is not None:
        check_fix_out(Path(args.fix_out))


def check_fix_out(folder: Path) -> None:
    """:class:`LabError` unless ``--fix-out`` names a folder the lab can create, or an empty one:
    the patched bundle must never mix with files already there."""
    if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
        raise LabError(f"--fix-out {folder} exists and is not a folder: give a new folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise LabError(f"--fix-out {folder} is not empty: give a new or empty folder")
    check_output_folder(folder, "--fix-out")


def check_output_file(path: Path, option: str, force: bool = False) -> None:
    """:class:`LabError` unless the lab may write ``path`` (rules in the module docstring)."""
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):     # not there, or a file stands where a folder must
        check_output_folder(path.parent, option, path)
        return
    except OSError as error:
        raise LabError(f"{option} {path}: cannot look at it: {error.strerror or error}") from None
    if stat.S_ISLNK(info.st_mode):
        raise LabError(f"{option} {path} is a symbolic link, and the lab never writes through one: "
                       "give the path of a file")
    if stat.S_ISDIR(info.st_mode):
        raise LabError(f"{option} {path} is a directory: give a file path in it, e.g. {path / 'lab.html'}")
    if not stat.S_ISREG(info.st_mode):
        raise LabError(f"{option} {path} is {_file_type(info.st_mode)}, not a file: give the path of a file")
    if not force and info.st_size > 0 and not is_lab_output(path):
        raise LabError(f"{option} {path} exists and the lab did not write it: choose another path, "
                       "or pass --force to overwrite it")
    check_output_folder(path.parent, option, path)


def check_output_folder(folder: Path, option: str, path: Path | None = None) -> None:
    """:class:`LabError` unless ``folder`` exists and is writable, or can be created."""
    shown = path or folder
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LabError(f"{option} {shown}: cannot create the folder {folder}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LabError(f"{option} {shown}: cannot write in {existing} (permission denied): "
                       "choose a folder you can write")


def check_case(cases_dir: Path, name: str) -> None:
    """:class:`LabError` unless ``--save name`` can create ``cases_dir/name`` afresh."""
    check_case_name(name)
    case = cases_dir / name
    if os.path.lexists(case):
        raise LabError(f"--save {name}: {case} exists already: choose another name")
    check_output_folder(cases_dir, "--cases-dir", case)


def check_case_name(name: str) -> None:
    """:class:`LabError` unless ``name`` is one plain word (:data:`CASE_NAME`)."""
    if not CASE_NAME.fullmatch(name):
        raise LabError(f"--save {name!r}: a case name is one plain word (letters, digits, - and _), "
                       "no path: e.g. --save nginx-413-on-push")


def is_lab_output(path: Path) -> bool:
    """Whether ``path`` holds an HTML report or JUnit XML the lab wrote."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    if head.startswith("<?xml") and JUNIT_MARKER in head[:512]:
        return True
    return head.startswith(REPORT_MARKERS[0]) and (REPORT_MARKERS[1] in head or GENERATOR_MARKER in head)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` while writing ``path`` (disk full, permission) into one-line :class:`LabError`."""
    try:
        yield
    except OSError as error:
        raise write_error(path, error) from None


def write_error(path: Path, error: OSError) -> LabError:
    """The one line for a failed write of ``path``."""
    return LabError(f"cannot write {error.filename or path}: {error.strerror or error}")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600 from creation on).

    The file is written under a temporary name beside ``path`` and renamed over it, so a
    reader never sees half a file and an existing file's wider mode is not kept. A symbolic
    link (or anything but a regular file) at ``path`` is refused, never followed or replaced;
    a write error is one-line :class:`LabError`.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise write_error(path, error) from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise LabError(f"cannot write {path}: it is a symbolic link, and the lab never writes through one")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise LabError(f"cannot write {path}: it is {_file_type(info.st_mode)}, not a file")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


def _report_option(args: argparse.Namespace) -> Path | None:
    chosen = getattr(args, "report", None)
    return Path(chosen) if chosen is not None and chosen != AUTO_REPORT else None


def _auto_report(args: argparse.Namespace) -> bool:
    """Whether a report goes to ``reports/<topology>-<time>.html`` (as lab.cli._report_path decides)."""
    if not hasattr(args, "report"):
        return False
    return args.report == AUTO_REPORT or sys.stdout.isatty()


def _file_type(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"
