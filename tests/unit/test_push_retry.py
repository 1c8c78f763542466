"""A push stalled on its tail (libcurl's HTTP/2 upload bug): which push Bitbucket's records
call stalled (against the real stub), and the retry policy — with scripted pushes, because a
real stall comes about one push in twenty and cannot be ordered. How the stub records a body
cut short is tested in test_stub_request_bodies.py, the live watch that ends a stalled push
in test_client_trust.py."""

from __future__ import annotations

import socket

import pytest

from lab.checks import git, records, retries
from lab.checks.base import CheckTarget, Verdict, failed, passed
from lab.client import Vantage, request_id
from tests.unit.stubutil import raw_request, running_stub

TARGET = CheckTarget(public_url="http://bitbucket.lab.test", users=Vantage(socks_port=None, ca_file=None))
"""Scripted pushes never reach it; its kind (none) has no fault that cuts responses."""
STALLED = records.BodyTiming(first_byte_at=1.0, last_byte_at=2.0, size=20 << 20, complete=None)


def _script(monkeypatch: pytest.MonkeyPatch, outcomes: list[tuple[Verdict, bool]]) -> list[int]:
    """Each push returns the next verdict, and Bitbucket's record then says stalled or not."""
    pushes: list[int] = []

    def push_once(target, payload, git_options=None):
        pushes.append(len(pushes) + 1)
        return outcomes[len(pushes) - 1][0]

    def stalled(target, size):
        return STALLED if outcomes[len(pushes) - 1][1] else None

    monkeypatch.setattr(git, "_push_once", push_once)
    monkeypatch.setattr(retries, "stalled_on_the_tail", stalled)
    return pushes


STALL = (failed("git exited 124: ended by the lab", "push succeeds", "timeout"), True)
THROUGH = (passed("pushed 20 MB to lab-check/1", "push succeeds"), False)
REFUSED = (failed("git exited 1: HTTP 413", "push succeeds", "raise client_max_body_size"), False)


def test_a_push_through_at_the_first_try_is_pushed_once_and_has_no_note(monkeypatch):
    pushes = _script(monkeypatch, [THROUGH])
    verdict = git.push_payload(TARGET, b"x")
    assert verdict.ok is True and verdict.note == "" and pushes == [1]


def test_a_stalled_push_through_at_the_third_try_passes_naming_the_client_bug(monkeypatch):
    pushes = _script(monkeypatch, [STALL, STALL, THROUGH])
    verdict = git.push_payload(TARGET, b"x")
    assert verdict.ok is True and "at try 3" in verdict.observed and verdict.note == retries.H2_TAIL_STALL_NOTE
    assert pushes == [1, 2, 3]


def test_a_push_stalled_every_time_fails_after_three_tries_naming_the_client_bug(monkeypatch):
    pushes = _script(monkeypatch, [STALL, STALL, STALL, THROUGH])
    verdict = git.push_payload(TARGET, b"x")
    assert verdict.ok is False and "3 times in a row" in verdict.observed and verdict.fix == retries.H2_TAIL_STALL_NOTE
    assert pushes == [1, 2, 3]


def test_another_failure_after_a_stall_is_judged_as_itself(monkeypatch):
    pushes = _script(monkeypatch, [STALL, REFUSED])
    verdict = git.push_payload(TARGET, b"x")
    assert verdict == REFUSED[0] and pushes == [1, 2]


def test_a_failure_that_is_not_a_stall_is_not_pushed_again(monkeypatch):
    pushes = _script(monkeypatch, [REFUSED, THROUGH])
    assert git.push_payload(TARGET, b"x") == REFUSED[0] and pushes == [1]


def _send_cut_short(port: int, tag: str, length: int, sent: int) -> None:
    """A login POST announcing ``length`` bytes that ends after ``sent``: the connection closes
    with the body's tail missing, as a stalled push's does."""
    head = (f"POST /bitbucket/j_atl_security_check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Request-ID: {tag}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"x" * sent)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def test_a_push_is_judged_stalled_by_its_own_body_not_by_an_earlier_push_that_stalled(tmp_path):
    tag = "lab-git.push-large-test"
    with running_stub(tmp_path / "home", "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        port = stub.ports[0]
        target = CheckTarget(f"http://127.0.0.1:{port}/bitbucket", Vantage(None, None))
        token = request_id.set(tag)
        try:
            _send_cut_short(port, tag, 60_000, 59_000)
            assert retries.stalled_on_the_tail(target, 60_000) is not None  # the one push so far stalled
            raw_request(port, "/bitbucket/j_atl_security_check", {"Host": f"127.0.0.1:{port}", "X-Request-ID": tag},
                        "POST", body=b"j_username=admin")  # the next one arrived whole (or was refused whole)
            assert retries.stalled_on_the_tail(target, 60_000) is None
        finally:
            request_id.reset(token)
