"""A git transfer cut short in the front door although Bitbucket answered it: tried once
more only through a kind whose server has that known fault (the Go front doors), with the
fault as the pass's note; through any other kind, or cut every time, it fails as itself.

The cut is real: a relay between git and the in-process stub forwards the response
headers of git's first POST and then closes both connections — what Go's transport does
when it drops its connection to Bitbucket (golang/go#40747)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Iterator

import pytest

from lab.checks.base import CheckTarget
from lab.checks.git import git_clone, git_push
from lab.checks.http2 import _over
from lab.client import Vantage, request_id
from lab.proxies import KINDS
from tests.unit.stubutil import running_stub

GO_KIND = next(kind.name for kind in KINDS.values() if kind.cuts_answered_responses)
OTHER_KIND = next(kind.name for kind in KINDS.values() if not kind.cuts_answered_responses)


class CuttingRelay:
    """Relays 127.0.0.1:<port> to the stub; cuts the response to the first ``cuts`` POSTs
    after their header block — or, ``forged``, never passes those POSTs on and answers them
    itself with headers and a cut body (a proxy cutting on its own: Bitbucket saw nothing)."""

    def __init__(self, upstream_port: int, cuts: int, forged: bool = False) -> None:
        self.upstream_port, self.cuts_left, self.forged = upstream_port, cuts, forged
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
                state = {"post": False}
                threading.Thread(target=self._to_stub, args=(client, upstream, state), daemon=True).start()
                threading.Thread(target=self._to_git, args=(upstream, client, state), daemon=True).start()

    def _to_stub(self, client: socket.socket, upstream: socket.socket, state: dict[str, bool]) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if b"POST " in data:
                    state["post"] = True
                    if self.forged and self._take_cut():
                        client.sendall(b"HTTP/1.1 200 \r\nContent-Length: 100\r\n\r\n")
                        break
                upstream.sendall(data)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _to_git(self, upstream: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if state["post"] and b"\r\n\r\n" in data and self._take_cut():
                    client.sendall(data[:data.index(b"\r\n\r\n") + 4])
                    break
                client.sendall(data)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _take_cut(self) -> bool:
        with self.lock:
            if self.cuts_left <= 0:
                return False
            self.cuts_left -= 1
            return True

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def front_door(tmp_path) -> Iterator:
    """Make (kind, cuts) → a CheckTarget whose public URL is the relay in front of the stub."""
    relays: list[CuttingRelay] = []
    with running_stub(tmp_path / "home", "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        def make(kind: str, cuts: int, forged: bool = False) -> CheckTarget:
            relay = CuttingRelay(stub.ports[0], cuts, forged)
            relays.append(relay)
            return CheckTarget(public_url=f"http://127.0.0.1:{relay.port}/bitbucket",
                               users=Vantage(socks_port=None, ca_file=None), proxy_kind=kind)
        token = request_id.set("lab-test-cut")
        try:
            yield make
        finally:
            request_id.reset(token)
            for relay in relays:
                relay.close()


def test_a_clone_cut_once_through_a_go_front_door_passes_at_its_second_try_with_the_fault_as_note(front_door):
    verdict = git_clone(front_door(GO_KIND, cuts=1))
    assert verdict.ok is True and "at try 2" in verdict.observed
    assert verdict.note == KINDS[GO_KIND].cuts_answered_responses and "golang/go#40747" in verdict.note


def test_a_clone_cut_once_through_a_front_door_without_that_fault_fails_as_itself(front_door):
    verdict = git_clone(front_door(OTHER_KIND, cuts=1))
    assert verdict.ok is False and "at try 2" not in verdict.observed and not verdict.note


def test_a_clone_cut_by_the_front_door_on_its_own_is_not_tried_again_bitbucket_never_answered_it(front_door):
    verdict = git_clone(front_door(GO_KIND, cuts=1, forged=True))
    assert verdict.ok is False and "curl 18" in verdict.observed and not verdict.note


def test_a_clone_cut_every_time_through_a_go_front_door_fails_as_itself(front_door):
    verdict = git_clone(front_door(GO_KIND, cuts=2))
    assert verdict.ok is False and "git exited" in verdict.observed and not verdict.note


def test_a_clone_not_cut_through_a_go_front_door_passes_at_its_first_try_without_a_note(front_door):
    verdict = git_clone(front_door(GO_KIND, cuts=0))
    assert verdict.ok is True and "at try" not in verdict.observed and not verdict.note


def test_a_push_cut_once_through_a_go_front_door_passes_at_its_second_try_with_the_fault_as_note(front_door):
    verdict = git_push(front_door(GO_KIND, cuts=1))
    assert verdict.ok is True and "at try 2" in verdict.observed
    assert verdict.note == KINDS[GO_KIND].cuts_answered_responses


def test_http2_gits_clone_cut_once_through_a_go_front_door_goes_on_to_its_push_with_the_fault_as_note(front_door):
    problem, note = _over(front_door(GO_KIND, cuts=1), "HTTP/1.1")
    assert problem is None and note == KINDS[GO_KIND].cuts_answered_responses


def test_http2_gits_clone_refused_names_gits_error_and_is_not_made_again(front_door):
    target = dataclasses.replace(front_door(GO_KIND, cuts=0), password="not-the-password")
    problem, note = _over(target, "HTTP/1.1")
    assert problem is not None and problem.startswith("clone: ") and "Authentication failed" in problem and note == ""
