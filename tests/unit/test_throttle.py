"""The paced uplink git.push-streamed pushes through: it paces every upload from its first
byte, even on a connection that stayed quiet before (git packs for a while between its
ref discovery and the push on one keep-alive connection)."""

from __future__ import annotations

import socket
import threading
import time

from lab.checks.throttle import slow_uplink

RATE = 1 << 20


def _sink() -> tuple[socket.socket, threading.Thread]:
    """A local TCP server that reads everything it is sent."""
    server = socket.create_server(("127.0.0.1", 0))

    def drain() -> None:
        connection, _ = server.accept()
        with connection:
            while connection.recv(65536):
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return server, thread


def _upload_after_quiet(quiet_s: float, size: int) -> float:
    """Seconds the relay took to pass ``size`` bytes sent after ``quiet_s`` of silence."""
    server, drain = _sink()
    with server, slow_uplink(server.getsockname()[1], RATE) as uplink:
        with socket.create_connection(("127.0.0.1", uplink.port), timeout=10) as client:
            client.sendall(b"GET /info/refs\r\n")
            time.sleep(quiet_s)
            client.sendall(b"x" * size)
            client.shutdown(socket.SHUT_WR)
            drain.join(timeout=10)
        timeline = max(uplink.uploads, key=len)
    after_quiet = [at for at, sent in timeline if sent > 16]
    return after_quiet[-1] - after_quiet[0]


def test_an_upload_after_a_quiet_second_is_still_paced_from_its_first_byte():
    assert _upload_after_quiet(1.0, RATE) >= 0.8  # 1 MB at 1 MB/s: no burst of a second's credit


def test_the_pacing_itself_holds_without_a_quiet_time():
    assert 0.8 <= _upload_after_quiet(0.0, RATE) <= 3.0
