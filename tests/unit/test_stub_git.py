"""Real git against the in-process stub, over HTTP and over HTTPS, each with its
negative control (wrong password, anonymous, untrusted CA)."""

from __future__ import annotations

import gzip
import os

import pytest
import requests
import trustme

from lab.checks.pushing import Push, push_new_branch
from lab.client import Vantage
from lab.pki import make_pki
from tests.unit.stubutil import running_stub

DIRECT = Vantage(socks_port=None, ca_file=None)


@pytest.fixture(params=["http", "https"])
def stub_scm(request, tmp_path):
    """(scm base URL, a git client trusting the right CA) for the stub over HTTP or HTTPS."""
    properties = "server.port=0\nserver.context-path=/bitbucket\n"
    client = DIRECT
    if request.param == "https":
        tls = make_pki(tmp_path / "pki", ["localhost"])
        properties += f"server.ssl.enabled=true\nserver.ssl.key-store={tls.keystore}\n"
        client = Vantage(None, tls.ca)
    with running_stub(tmp_path / "home", properties) as stub:
        yield f"{request.param}://localhost:{stub.ports[0]}/bitbucket/scm", client


@pytest.fixture
def http_stub(tmp_path):
    with running_stub(tmp_path / "home", "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        yield f"http://127.0.0.1:{stub.ports[0]}/bitbucket/scm"


def test_git_clones_and_fetches_with_credentials_and_sees_the_seed_branches(stub_scm, tmp_path):
    base, git = stub_scm
    result = git.git(["clone", f"{_with_user(base)}/LAB/repo.git", str(tmp_path / "c")])
    assert result.returncode == 0, result.stderr
    assert git.git(["fetch", "origin"], cwd=tmp_path / "c").returncode == 0
    branches = git.git(["branch", "-r"], cwd=tmp_path / "c").stdout
    assert "origin/main" in branches and "origin/feature/x" in branches


def test_project_key_is_case_insensitive(http_stub, tmp_path):
    result = DIRECT.git(["ls-remote", f"{_with_user(http_stub)}/lab/repo.git"])
    assert result.returncode == 0 and "refs/heads/feature/x" in result.stdout


def test_git_without_credentials_is_challenged_with_bitbucket_realm(http_stub):
    response = requests.get(f"{http_stub}/LAB/repo.git/info/refs?service=git-upload-pack", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Atlassian Bitbucket"'


def test_git_without_credentials_is_refused(stub_scm):
    base, git = stub_scm
    result = git.git(["ls-remote", f"{base}/LAB/repo.git"])
    assert result.returncode != 0 and "could not read Username" in result.stderr


def test_git_with_a_wrong_password_is_refused(stub_scm):
    base, git = stub_scm
    result = git.git(["ls-remote", f"{_with_user(base, 'nope')}/LAB/repo.git"])
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr or "401" in result.stderr


def test_git_pushes_50_megabytes_streamed(stub_scm, tmp_path):
    base, git = stub_scm
    url = f"{_with_user(base)}/LAB/repo.git"
    work = tmp_path / "c"
    assert git.git(["clone", url, str(work)]).returncode == 0
    (work / "big.bin").write_bytes(os.urandom(50 * 1024 * 1024))
    added = git.git(["add", "big.bin"], cwd=work)
    assert added.returncode == 0, added.stderr
    committed = git.git(["commit", "-m", "big"], cwd=work)
    assert committed.returncode == 0, committed.stderr
    pushed = git.git(["push", "origin", "HEAD:refs/heads/big"], cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    remote = git.git(["ls-remote", url, "refs/heads/big"]).stdout
    local = git.git(["rev-parse", "HEAD"], cwd=work).stdout.strip()
    assert remote.split()[0] == local


def test_gzip_request_bodies_are_accepted(http_stub):
    refs = requests.get(f"{http_stub}/LAB/repo.git/info/refs?service=git-upload-pack",
                        auth=("admin", "admin"), timeout=10).content.decode()
    head = next(line for line in refs.splitlines() if "refs/heads/main" in line).split()[0][-40:]
    want = f"want {head}\n"
    body = f"{len(want) + 4:04x}{want}00000009done\n".encode()
    response = requests.post(f"{http_stub}/LAB/repo.git/git-upload-pack", data=gzip.compress(body),
                             auth=("admin", "admin"), timeout=10,
                             headers={"Content-Type": "application/x-git-upload-pack-request",
                                      "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert b"PACK" in response.content


def test_git_over_https_verifies_against_the_lab_ca_and_not_another(tmp_path):
    tls = make_pki(tmp_path / "pki", ["localhost", "127.0.0.1"])
    properties = f"server.port=0\nserver.ssl.enabled=true\nserver.ssl.key-store={tls.keystore}\n"
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with running_stub(tmp_path / "home", properties) as stub:
        url = f"https://admin:admin@localhost:{stub.ports[0]}/scm/LAB/repo.git"
        trusted = Vantage(None, tls.ca).git(["ls-remote", url])
        untrusted = Vantage(None, other_ca).git(["ls-remote", url])
    assert trusted.returncode == 0, trusted.stderr
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower()


def test_https_connector_reports_https_and_secure(tmp_path):
    tls = make_pki(tmp_path / "pki", ["localhost"])
    properties = f"server.port=0\nserver.ssl.enabled=true\nserver.ssl.key-store={tls.keystore}\n"
    with running_stub(tmp_path / "home", properties) as stub:
        session = Vantage(None, tls.ca).session()
        seen = session.get(f"https://localhost:{stub.ports[0]}/rest/lab/1.0/request", timeout=10).json()
        first = session.get(f"https://localhost:{stub.ports[0]}/", allow_redirects=False, timeout=10)
    assert (seen["scheme"], seen["secure"]) == ("https", True)
    assert first.headers["Location"] == f"https://localhost:{stub.ports[0]}/dashboard"


def _with_user(url: str, password: str = "admin") -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://admin:{password}@{rest}"


def test_a_check_push_lands_its_commit_and_removes_its_branch_with_a_lease_on_it(http_stub):
    url = f"{_with_user(http_stub)}/LAB/repo.git"
    outcome = push_new_branch(Push(DIRECT, url, b"payload", "lab-check/unit"))
    assert outcome.landed and outcome.removed and len(outcome.remote_has) == 40
    assert DIRECT.git(["ls-remote", url, "refs/heads/lab-check/unit"]).stdout == ""


def test_a_check_push_whose_branch_the_remote_does_not_hold_afterwards_is_not_called_landed(http_stub, tmp_path):
    # A pre-receive hook that moves the branch elsewhere: git push succeeds, the lease on the
    # pushed commit must then refuse the delete, and ls-remote tells what the remote holds.
    url = f"{_with_user(http_stub)}/LAB/repo.git"
    repository = next((tmp_path / "home").rglob("LAB/repo.git"))
    hook = repository / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do git update-ref \"$ref\" refs/heads/main; done\n")
    hook.chmod(0o755)
    outcome = push_new_branch(Push(DIRECT, url, b"payload", "lab-check/moved"))
    main = DIRECT.git(["ls-remote", url, "refs/heads/main"]).stdout.split()[0]
    assert not outcome.landed and outcome.remote_has == main and not outcome.removed


def test_two_check_pushes_of_one_payload_send_different_blobs(http_stub, tmp_path):
    # Were the blob shared, a push while the other's branch exists would send an empty pack.
    url = f"{_with_user(http_stub)}/LAB/repo.git"
    first = push_new_branch(Push(DIRECT, url, b"same payload", "lab-check/one"))
    second = push_new_branch(Push(DIRECT, url, b"same payload", "lab-check/two"))
    repository = next((tmp_path / "home").rglob("LAB/repo.git"))
    blobs = {DIRECT.git(["--git-dir", str(repository), "rev-parse", f"{push.remote_has}:payload.bin"]).stdout
             for push in (first, second)}
    refused = [push.refused.stderr for push in (first, second) if push.refused is not None]
    assert first.landed and second.landed and len(blobs) == 2 and "" not in blobs, refused
