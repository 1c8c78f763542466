"""How the host reaches a topology as a user does: through the lab's SOCKS gateway, by
public name and real port, trusting the lab CA and nothing else.

This machine (and users' machines) export ``REQUESTS_CA_BUNDLE``, ``GIT_SSL_CAINFO``,
``CURL_CA_BUNDLE``, ``SSL_CERT_FILE`` and proxy variables that silently win over an
explicit CA or proxy; every client made here starts from a clean environment instead.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import contextvars
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from lab import sent
from lab.connect_errors import from_os
from lab.socks_connect import through_gateway

GIT_TIMEOUT_S = 300
REQUEST_ID_HEADER = "X-Request-ID"
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The id every request made in this context carries (``X-Request-ID``), so the proxy's
and Bitbucket's logs can be matched to the check that sent it; the check runner sets it."""


@dataclass(frozen=True)
class Vantage:
    """Where a client stands: a SOCKS5 gateway on 127.0.0.1 (None: direct), and the CA
    it trusts (None: no TLS trust at all — every certificate fails)."""

    socks_port: int | None
    ca_file: Path | None

    @property
    def proxy_url(self) -> str | None:
        return f"socks5h://127.0.0.1:{self.socks_port}" if self.socks_port else None

    def session(self) -> requests.Session:
        """A requests session that ignores every ambient setting."""
        session = _RecordingSession()
        session.trust_env = False
        if tag := request_id.get():
            session.headers[REQUEST_ID_HEADER] = tag
        session.verify = str(self.ca_file) if self.ca_file else empty_ca_file()
        if self.proxy_url:
            session.proxies = {"http": self.proxy_url, "https": self.proxy_url}
        return session

    def connect(self, host: str, port: int, timeout: float = 5) -> socket.socket:
        """A TCP connection to ``host:port`` as seen from this vantage point; the gateway
        resolves the name, so inside-only names fail from outside. Raises OSError, a
        :class:`lab.connect_errors.ConnectFailed` when the cause is known."""
        if self.socks_port is None:
            try:
                return socket.create_connection((host, port), timeout=timeout)
            except OSError as error:
                typed = from_os(error)
                if typed is None:
                    raise
                raise typed from error
        return through_gateway(self.socks_port, host, port, timeout)

    def reaches(self, host: str, port: int, timeout: float = 5) -> bool:
        """Whether something accepts connections on ``host:port`` from here."""
        try:
            self.connect(host, port, timeout).close()
        except OSError:  # socks.ProxyError is an OSError too
            return False
        return True

    def git_env(self, home: Path) -> dict[str, str]:
        """Environment for the git CLI: no system or user config, the lab CA only."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
            "GIT_SSL_CAINFO": str(self.ca_file) if self.ca_file else empty_ca_file(),
            "GIT_AUTHOR_NAME": "Lab User", "GIT_AUTHOR_EMAIL": "user@lab.test",
            "GIT_COMMITTER_NAME": "Lab User", "GIT_COMMITTER_EMAIL": "user@lab.test",
        }
        return env

    def git(self, args: Sequence[str], cwd: Path | None = None, timeout: float = GIT_TIMEOUT_S,
            trace_curl: bool = False, ssh_command: str | None = None, input: str | None = None,
            stalled: Callable[[], str | None] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real git CLI from this vantage point; never raises on git's failure.
        ``trace_curl``: libcurl's trace (protocol negotiation) goes to stderr too;
        ``ssh_command``: git's ``GIT_SSH_COMMAND`` for ssh:// URLs; ``input``: git's stdin;
        ``stalled``: why git will not finish, if it will not (see :func:`run_bounded`)."""
        with tempfile.TemporaryDirectory(prefix="lab-git-home-") as home:
            command = ["git", "-c", "credential.helper=", *args]
            if tag := request_id.get():
                command[1:1] = ["-c", f"http.extraHeader={REQUEST_ID_HEADER}: {tag}"]
                sent.record_git(tag, args)
            if self.proxy_url:
                command[1:1] = ["-c", f"http.proxy={self.proxy_url}"]
            env = self.git_env(Path(home)) | ({"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"}
                                              if trace_curl else {})
            if ssh_command:
                env["GIT_SSH_COMMAND"] = ssh_command
            return run_bounded(command, cwd, env, timeout, input, stalled)


class _RecordingSession(requests.Session):
    """A session that notes each request it sends (redirects too) under its check's id."""

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        tag = request.headers.get(REQUEST_ID_HEADER)
        sent.record(str(tag) if tag else None, request.method or "GET", request.url or "/")
        return super().send(request, **kwargs)  # type: ignore[arg-type]


_RUNNING_GROUPS: set[int] = set()
"""Process groups of commands still running, ended when the lab exits (Ctrl-C, SIGTERM)."""


@atexit.register
def _end_running_groups() -> None:
    for group in list(_RUNNING_GROUPS):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


STALL_WATCH_AFTER_S = 3.0
"""A command given a ``stalled`` question is asked it once a second after this long."""


def run_bounded(command: list[str], cwd: Path | None, env: dict[str, str], timeout: float,
                input: str | None = None,
                stalled: Callable[[], str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a process group of its own and end the whole group when it is
    done, when its time is up, when ``stalled()`` names why it will not finish (asked once
    a second after the first 3 s), or when the lab exits — git's helpers (remote-https,
    send-pack) never outlive it. Ended early, it returns 124 with the reason on stderr."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                               text=True, start_new_session=True)
    _RUNNING_GROUPS.add(process.pid)
    deadline = time.monotonic() + timeout
    try:
        wait = min(timeout, STALL_WATCH_AFTER_S) if stalled else timeout
        while True:
            try:
                stdout, stderr = process.communicate(input, timeout=wait)
                return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
            except subprocess.TimeoutExpired:
                input = None  # sent by the first call; a retry must not send it again
                if time.monotonic() >= deadline:
                    why: str | None = f"git timed out after {timeout:.0f} s"
                else:
                    why = stalled() if stalled else None
                if why:
                    _kill_group(process)
                    stdout, stderr = process.communicate()
                    return subprocess.CompletedProcess(command, 124, stdout, f"{stderr}\n{why}")
                wait = max(0.01, min(1.0, deadline - time.monotonic()))
    finally:
        _kill_group(process)
        _RUNNING_GROUPS.discard(process.pid)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@functools.cache
def empty_ca_file() -> str:
    """A CA bundle that trusts nothing, for clients that must not trust any certificate.

    One per process, made by ``mkstemp`` (a fresh name, mode 0600, ours) and removed at
    exit: a fixed name in the shared temp directory could be planted beforehand by another
    user, with a CA of their choosing in it.
    """
    fd, path = tempfile.mkstemp(prefix="bitbucket-lab-empty-ca-", suffix=".pem")
    os.close(fd)
    atexit.register(_remove_quietly, path)
    return path


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
