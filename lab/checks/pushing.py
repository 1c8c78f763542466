"""The push every push check makes: a commit of its own on a new branch, then proof it landed.

The commit is made with git's plumbing in a bare repository (``hash-object``, ``mktree``,
``commit-tree``): no work tree, no index to re-hash a 20 MB file twice. Its payload ends with
the branch name, so no two pushes share a blob — a push whose objects the remote already
advertises (another check's branch, pushed a moment before) would send an empty pack and
prove nothing.

The proof is one more round trip through the same path: deleting the branch *with a lease
on the pushed commit* (``--force-with-lease=<branch>:<commit>``) succeeds only when the
repository's own ref advertisement shows the branch at that commit. Only when that delete
fails does the lab ask ``ls-remote`` what the remote holds, to say so.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from lab.checks.base import Verdict, failed, passed
from lab.client import Vantage

PUSH_TIMEOUT_S = 60
"""A 20 MB push takes seconds here, even under load; a stalled one is known sooner."""


@dataclasses.dataclass(frozen=True)
class Push:
    """What to push where: ``url`` (https or ssh), the payload, the branch, and how git runs."""

    users: Vantage
    url: str
    payload: bytes
    branch: str
    git_options: tuple[str, ...] = ()
    ssh_command: str | None = None
    timeout: float = PUSH_TIMEOUT_S
    stalled: Callable[[], str | None] | None = None
    """Asked while the push runs: why it will not finish, to end it early (see ``run_bounded``)."""


@dataclasses.dataclass(frozen=True)
class PushOutcome:
    """How far the push got: ``local_error`` (the lab's own git failed), ``refused`` (git push
    failed: its process, for the message), else ``landed`` and what the remote holds."""

    local_error: str | None = None
    refused: subprocess.CompletedProcess[str] | None = None
    landed: bool = False
    remote_has: str = ""
    removed: bool = False


LAB_SIDE_HINT = "a problem on the lab's side (disk, git), not the topology's"


def push_verdict(outcome: PushOutcome, expected: str, pushed: str,
                 refused: Callable[[subprocess.CompletedProcess[str]], Verdict], not_landed_hint: str) -> Verdict:
    """The verdict on a push: ``pushed`` says what went through; ``refused`` judges git's
    failure (its hint is the transport's); ``not_landed_hint`` is the fix for a push git
    called good that the remote does not hold."""
    if outcome.local_error:  # never push something else and call it a pass
        return failed(outcome.local_error, expected, LAB_SIDE_HINT)
    if outcome.refused is not None:
        return refused(outcome.refused)
    if not outcome.landed:
        return failed(f"pushed, but the remote has {outcome.remote_has or 'no such branch'}", expected,
                      not_landed_hint)
    # Users clone this repository while `up` keeps the topology: the lab leaves no check branches in it.
    return passed(pushed + ("" if outcome.removed else " (could not delete it afterwards)"), expected)


class _LocalGitFailed(Exception):
    """The lab's own git failed before anything was sent (disk, git): not the topology's fault."""


def push_new_branch(push: Push) -> PushOutcome:
    """Commit ``push.payload`` (made unique by the branch name), push it to ``push.branch``,
    then delete the branch with a lease on that commit — the proof it landed."""
    with tempfile.TemporaryDirectory(prefix="lab-push-") as work:
        repository = Path(work) / "local.git"
        try:
            commit = _new_commit(push, repository)
        except _LocalGitFailed as error:
            return PushOutcome(local_error=str(error))
        ref = f"refs/heads/{push.branch}"
        pushed = _git(push, repository, ["-c", "pack.compression=0", "push", push.url, f"{commit}:{ref}"],
                      push.stalled)
        if pushed.returncode != 0:
            return PushOutcome(refused=pushed)
        removed = _git(push, repository, ["push", "-q", f"--force-with-lease={ref}:{commit}", push.url, f":{ref}"])
        if removed.returncode == 0:
            return PushOutcome(landed=True, remote_has=commit, removed=True)
        listed = _git(push, repository, ["ls-remote", push.url, ref]).stdout.split()
        return PushOutcome(landed=listed[:1] == [commit], remote_has=listed[0] if listed else "")


def _new_commit(push: Push, repository: Path) -> str:
    """A commit of one file, ``payload.bin``, in a new bare repository; its id."""
    payload = repository.parent / "payload.bin"
    payload.write_bytes(push.payload + f"\n{push.branch}\n".encode())
    _local(push, "init", ["init", "-q", "--bare", str(repository)])
    # Random bytes: compressing them is wasted time on every push (level 0).
    blob = _local(push, "hash-object", ["--git-dir", str(repository), "-c", "core.compression=0",
                                        "hash-object", "-w", str(payload)])
    tree = _local(push, "mktree", ["--git-dir", str(repository), "mktree"], f"100644 blob {blob}\tpayload.bin\n")
    return _local(push, "commit-tree", ["--git-dir", str(repository), "commit-tree", tree, "-m",
                                        f"lab check {push.branch}"])


def _local(push: Push, step: str, args: list[str], stdin: str | None = None) -> str:
    result = push.users.git(args, input=stdin)
    if result.returncode != 0:
        raise _LocalGitFailed(f"git {step} failed locally: {result.stderr.strip()[:200]}")
    return result.stdout.strip()


def _git(push: Push, repository: Path, args: list[str],
         stalled: Callable[[], str | None] | None = None) -> subprocess.CompletedProcess[str]:
    return push.users.git(["--git-dir", str(repository), *push.git_options, *args], timeout=push.timeout,
                          ssh_command=push.ssh_command, stalled=stalled)
