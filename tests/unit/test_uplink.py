"""The relay git.push-streamed pushes through: it holds the first upload that reaches its
mark, passes nothing more until asked-for bytes have arrived (or the hold runs out), then
passes the rest."""

from __future__ import annotations

import socket
import threading

from lab.checks.uplink import Hold, held_uplink

MARK = 256 << 10
UPLOAD = 1 << 20


class _Sink:
    """A local TCP server that counts what it receives."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.received = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            while data := connection.recv(65536):
                self.received += len(data)


def _upload_through(sink: _Sink, hold: Hold) -> None:
    with sink.server, held_uplink(sink.server.getsockname()[1], hold) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"x" * UPLOAD)
            client.shutdown(socket.SHUT_WR)
            sink.thread.join(timeout=10)


def test_a_hold_ends_as_soon_as_the_bytes_before_the_mark_have_arrived():
    sink = _Sink()
    hold = Hold(MARK, 5.0, lambda: sink.received >= MARK)
    _upload_through(sink, hold)
    assert hold.released_by_arrival is True and hold.seconds < 2.0
    assert sink.received == UPLOAD


def test_nothing_past_the_mark_passes_during_a_hold_and_an_unanswered_one_runs_out():
    sink, seen_during_hold = _Sink(), []

    def never() -> bool:
        seen_during_hold.append(sink.received)
        return False

    hold = Hold(MARK, 0.5, never)
    _upload_through(sink, hold)
    assert hold.released_by_arrival is False and 0.5 <= hold.seconds < 2.0
    assert seen_during_hold and max(seen_during_hold) <= MARK  # held at the mark, not past it
    assert sink.received == UPLOAD  # the rest went through after the hold


def test_an_upload_that_never_reaches_the_mark_is_not_held():
    sink = _Sink()
    hold = Hold(UPLOAD * 2, 5.0, lambda: False)
    _upload_through(sink, hold)
    assert hold.released_by_arrival is None and sink.received == UPLOAD
