"""sshd's forced command: serve the git command the client asked for, or refuse.

``SSH_ORIGINAL_COMMAND`` is what git sent, e.g. ``git-upload-pack '/lab/repo.git'`` for
``ssh://git@host:7999/lab/repo.git``. Repositories are found as HTTP finds them (project
key case-insensitive); ``lab.slow-repos`` holds the session silent before git starts, as a
busy Bitbucket does (what an idle timeout on a load balancer cuts).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from lab.stub.config import ConfigError, DEFAULT_HOME, load_settings
from lab.stub.git import GitRepositories
from lab.stub.ssh import environment_for_git

GIT_COMMANDS = {"git-upload-pack": "upload-pack", "git-receive-pack": "receive-pack",
                "git-upload-archive": "upload-archive"}
NOT_FOUND = ("Repository not found\nThe requested repository does not exist, or you do not have "
             "permission to access it.\n")


def main() -> int:
    words = _split(os.environ.get("SSH_ORIGINAL_COMMAND", ""))
    if len(words) != 2 or words[0] not in GIT_COMMANDS:
        sys.stderr.write("Bitbucket's SSH server runs git commands only; shell access is not supported.\n")
        return 1
    project, _, slug = words[1].strip("/").partition("/")
    home = Path(os.environ.get("BITBUCKET_HOME", DEFAULT_HOME))
    try:
        settings = load_settings(home, environ={})
    except ConfigError as error:
        sys.stderr.write(f"bitbucket.properties: {error}\n")
        return 1
    repos = GitRepositories(home / "shared" / "data" / "repositories", settings.repos, settings.slow_repos)
    repository = repos.find(project, slug) if project and slug and "/" not in slug else None
    if repository is None:
        sys.stderr.write(NOT_FOUND)
        return 1
    if delay := repos.delay_for(project, slug):
        time.sleep(delay)
    extra = {"GIT_PROTOCOL": os.environ["GIT_PROTOCOL"]} if "GIT_PROTOCOL" in os.environ else {}
    os.execvpe("git", ["git", GIT_COMMANDS[words[0]], str(repository)], environment_for_git(extra))
    return 1  # not reached


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return []


if __name__ == "__main__":
    sys.exit(main())
