"""A slow link between git and the lab's gateway, on this machine's loopback only.

To see whether a proxy streams a push or spools it, the push must take a while to send:
this relay listens on 127.0.0.1, forwards every connection to the users' gateway, and
paces what the client sends to ``bytes_per_second``. Answers flow back at full speed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

CHUNK = 16384


class Uplink:
    """The relay's port, and when each connection's upload passed each byte count."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.uploads: list[list[tuple[float, int]]] = []  # per connection: (time, bytes sent so far)
        self._lock = threading.Lock()

    def new_upload(self) -> list[tuple[float, int]]:
        timeline: list[tuple[float, int]] = []
        with self._lock:
            self.uploads.append(timeline)
        return timeline

    def sent_share_at(self, share: float) -> float | None:
        """When the biggest upload had sent ``share`` of its bytes (wall clock)."""
        with self._lock:
            biggest = max(self.uploads, key=lambda timeline: timeline[-1][1] if timeline else 0, default=[])
        if not biggest:
            return None
        wanted = share * biggest[-1][1]
        return next(at for at, sent in biggest if sent >= wanted)


@contextlib.contextmanager
def slow_uplink(gateway_port: int, bytes_per_second: int) -> Iterator[Uplink]:
    """Yield a relay on 127.0.0.1 to ``gateway_port`` with the upload paced and timed."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    uplink = Uplink(listener.getsockname()[1])
    thread = threading.Thread(target=_accept, args=(listener, gateway_port, bytes_per_second, stop, uplink),
                              daemon=True)
    thread.start()
    try:
        yield uplink
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def _accept(listener: socket.socket, gateway_port: int, rate: int, stop: threading.Event, uplink: Uplink) -> None:
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=_relay, args=(client, gateway_port, rate, stop, uplink.new_upload()),
                         daemon=True).start()


def _relay(client: socket.socket, gateway_port: int, rate: int, stop: threading.Event,
           timeline: list[tuple[float, int]]) -> None:
    with client, socket.create_connection(("127.0.0.1", gateway_port), timeout=30) as upstream:
        back = threading.Thread(target=_pump, args=(upstream, client, 0, stop, None), daemon=True)
        back.start()
        _pump(client, upstream, rate, stop, timeline)
        back.join()


def _pump(source: socket.socket, target: socket.socket, rate: int, stop: threading.Event,
          timeline: list[tuple[float, int]] | None) -> None:
    """Copy until EOF; with ``rate``, no faster than that many bytes a second. Quiet time
    earns no credit: after git packs for a second on an open connection, the push that
    follows is still paced from its first byte (a burst of seconds' worth of credit would
    make a streaming proxy look like one that spools). No read timeout: one direction may
    stay quiet for as long as the other is busy (git's own bound ends the whole exchange)."""
    next_free = time.monotonic()
    source.settimeout(None)
    while not stop.is_set():
        try:
            data = source.recv(CHUNK)
        except OSError:
            break
        if not data:
            break
        if rate:
            now = time.monotonic()
            send_at = max(next_free, now)
            if send_at > now:
                time.sleep(send_at - now)
            next_free = send_at + len(data) / rate
        try:
            target.sendall(data)
        except OSError:
            break
        if timeline is not None:
            timeline.append((time.time(), (timeline[-1][1] if timeline else 0) + len(data)))
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
