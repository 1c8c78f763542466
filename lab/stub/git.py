"""Git smart HTTP under ``<ctx>/scm/<PROJECT>/<repo>.git`` through ``git http-backend``.

Request bodies (chunked or not, gzip or not) are streamed into the CGI process and its
output is streamed back, so a 50 MB push never sits in memory. Seed repositories are
created at start with a ``main`` branch and ``feature/x``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from lab.stub.exchange import Exchange, Response

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Lab Admin", "GIT_AUTHOR_EMAIL": "admin@bitbucket.lab.test",
    "GIT_COMMITTER_NAME": "Lab Admin", "GIT_COMMITTER_EMAIL": "admin@bitbucket.lab.test",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


def clean_git_env(**extra: str) -> dict[str, str]:
    """An environment for git that ignores the machine's and the user's git config."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C", **extra}


class GitRepositories:
    """Bare repositories on disk, found by case-insensitive project key and slug."""

    def __init__(self, root: Path, names: tuple[str, ...], slow: Mapping[str, float]) -> None:
        self.root = root
        self.names = names
        self.slow = {name.upper(): seconds for name, seconds in slow.items()}

    def seed(self) -> None:
        for name in self.names:
            path = self.root / f"{name}.git"
            if not path.exists():
                _create_seed_repository(path, name)

    def find(self, project: str, slug: str) -> Path | None:
        path = self.root / project.upper() / f"{slug.removesuffix('.git')}.git"
        return path if path.is_dir() else None

    def resolve_ref(self, repository: Path, ref: str) -> str | None:
        """The commit id ``ref`` names in ``repository``, or None."""
        result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                                cwd=repository, capture_output=True, text=True, env=clean_git_env())
        return result.stdout.strip() or None

    def serve(self, exchange: Exchange, project: str, slug: str, tail: str) -> Response:
        """Answer one smart-HTTP request for the repository via ``git http-backend``."""
        repository = self.find(project, slug)
        if repository is None:
            return Response(404, [("Content-Type", "text/plain")],
                            f"Repository {project}/{slug} does not exist.\n".encode())
        return _run_http_backend(exchange, repository, tail, self.delay_for(project, slug))

    def delay_for(self, project: str, slug: str) -> float:
        """Seconds Bitbucket stays silent before serving this repository (``lab.slow-repos``)."""
        return self.slow.get(f"{project.upper()}/{slug.removesuffix('.git')}".upper(), 0.0)


def _create_seed_repository(path: Path, name: str) -> None:
    """Made aside and renamed into place: the nodes of a cluster share one home and may
    seed at the same moment; the first rename wins, the others discard their copy.
    Group-shared, so the SSH user (group root) can push where HTTP pushes do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    env = clean_git_env(**GIT_IDENTITY)

    def git(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=tmp, input=stdin, capture_output=True,
                              text=True, check=True, env=env).stdout.strip()

    subprocess.run(["git", "init", "--quiet", "--bare", "--shared=group", str(tmp)], check=True, env=env)
    blob = git("hash-object", "-w", "--stdin", stdin=f"# {name}\n\nSeeded by the Bitbucket lab.\n")
    tree = git("mktree", stdin=f"100644 blob {blob}\tREADME.md\n")
    commit = git("commit-tree", tree, "-m", "Initial commit")
    for branch in ("main", "feature/x"):
        git("update-ref", f"refs/heads/{branch}", commit)
    git("symbolic-ref", "HEAD", "refs/heads/main")
    git("config", "http.receivepack", "true")
    # Keep every pushed pack as it came (as git does for pushes of 100+ objects): unpacking a
    # one-blob push of random bytes into a zlib-compressed loose object cost ~0.4 s of CPU per 20 MB.
    git("config", "receive.unpackLimit", "1")
    try:
        tmp.rename(path)
    except OSError:  # another node of the cluster seeded it first
        shutil.rmtree(tmp, ignore_errors=True)


def _run_http_backend(exchange: Exchange, repository: Path, tail: str, delay: float) -> Response:
    env = clean_git_env(
        GIT_PROJECT_ROOT=str(repository.parent), GIT_HTTP_EXPORT_ALL="1",
        PATH_INFO=f"/{repository.name}{tail}", REQUEST_METHOD=exchange.method,
        QUERY_STRING=exchange.view.query, REMOTE_USER=exchange.user or "",
        REMOTE_ADDR=exchange.view.remote_addr, GATEWAY_INTERFACE="CGI/1.1",
        CONTENT_TYPE=exchange.headers.get("content-type", ""),
    )
    if "content-length" in exchange.headers and "chunked" not in exchange.headers.get("transfer-encoding", ""):
        env["CONTENT_LENGTH"] = exchange.headers["content-length"]
    if "content-encoding" in exchange.headers:
        env["HTTP_CONTENT_ENCODING"] = exchange.headers["content-encoding"]
    if "git-protocol" in exchange.headers:
        env["HTTP_GIT_PROTOCOL"] = exchange.headers["git-protocol"]
    process = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    pump = threading.Thread(target=_pump_body, args=(exchange, process), daemon=True)
    pump.start()
    status, headers = _read_cgi_headers(process)
    # http-backend answers headers first, then consumes the whole request before the
    # pack or report flows; waiting for the body here keeps one thread per TLS socket.
    pump.join()
    if delay and tail.endswith("git-upload-pack") and exchange.method == "POST":
        time.sleep(delay)  # lab.slow-repos: Bitbucket busy building the pack
    return Response(status, headers, _stream_output(process, pump))


def _pump_body(exchange: Exchange, process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    try:
        for chunk in exchange.iter_body():
            process.stdin.write(chunk)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            process.stdin.close()
        except OSError:
            pass


def _read_cgi_headers(process: subprocess.Popen[bytes]) -> tuple[int, list[tuple[str, str]]]:
    assert process.stdout is not None
    status, headers = 200, []
    while True:
        line = process.stdout.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return status, headers


def _stream_output(process: subprocess.Popen[bytes], pump: threading.Thread) -> Iterator[bytes]:
    assert process.stdout is not None
    try:
        while chunk := process.stdout.read1(65536):  # type: ignore[attr-defined]  # a BufferedReader
            yield chunk
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
