"""Issue 17: the example config repository works as a new user copies it — with the lab
installed from its wheel, outside this checkout — and a bad edit fails on the right check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "config-repo"
REPO = EXAMPLE.parents[1]


def installed_lab_outside_the_checkout(cwd: Path) -> bool:
    found = subprocess.run([sys.executable, "-c", "import lab; print(lab.__file__)"], cwd=cwd,
                           capture_output=True, text=True, timeout=60, env=_clean_env())
    return found.returncode == 0 and Path(found.stdout.strip()).parent != REPO / "lab"  # not the source tree


@pytest.fixture
def config_repo(tmp_path: Path) -> Path:
    copy = tmp_path / "config-repo"
    shutil.copytree(EXAMPLE, copy)
    if not installed_lab_outside_the_checkout(copy):
        pytest.skip("the lab is not installed as a package in this interpreter (nox -s tests installs its wheel)")
    return copy


def test_the_example_ci_command_gives_junit_with_one_case_per_check(config_repo):
    from lab.checks import CHECK_IDS

    result = subprocess.run(["bitbucket-lab", "check", "--topology", "nginx-https", "--proxy-config",
                             "bitbucket.conf", "--properties", "bitbucket.properties", "--no-keep",
                             "--junit", "reports/lab.xml"], cwd=config_repo, capture_output=True, text=True,
                            timeout=300, env={**_clean_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stdout + result.stderr
    suite = ElementTree.parse(config_repo / "reports" / "lab.xml").getroot().find("testsuite")
    assert [case.get("name") for case in suite.iter("testcase")] == list(CHECK_IDS)
    assert suite.get("failures") == "0"


def test_the_example_tests_pass_and_a_bad_edit_fails_naming_git_push_large(config_repo):
    passing = _pytest(config_repo)
    assert passing.returncode == 0, passing.stdout[-3000:]
    site = config_repo / "bitbucket.conf"
    site.write_text(site.read_text().replace("    client_max_body_size 0;\n", ""))
    failing = _pytest(config_repo)
    assert failing.returncode == 1
    report = ElementTree.parse(config_repo / "report.xml").getroot()
    failed = {case.get("name"): case.find("failure").get("message") for case in report.iter("testcase")
              if case.find("failure") is not None}
    assert "test_our_proxy_passes[git.push-large]" in failed
    assert "client_max_body_size" in failed["test_our_proxy_passes[git.push-large]"]


def _pytest(config_repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=report.xml",
                           "tests"], cwd=config_repo, capture_output=True, text=True, timeout=600, env=_clean_env())


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH pointing back into this checkout."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
