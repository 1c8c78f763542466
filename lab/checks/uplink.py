"""A relay between git and the lab's gateway, on this machine's loopback only, that can hold
an upload back — to see whether a proxy streams a push or spools it.

The relay listens on 127.0.0.1 and forwards every connection to the users' gateway at full
speed, except once: when an upload has passed ``hold_at`` bytes, the relay stops passing on
what git sends and asks ``arrived()`` (Bitbucket's own record, every few milliseconds) until
it says the body is arriving or ``hold_for`` seconds have passed; then the rest goes through.
A proxy that streams has handed Bitbucket the first bytes within milliseconds, so the hold
ends at once; one that spools waits for a body end that cannot come while git is held, so
the hold runs out. The verdict comes from an answer, not from pacing and a clock.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

CHUNK = 65536
POLL_S = 0.02


@dataclass
class Hold:
    """The one hold of a relay: where it held an upload, how long, and whether the body
    arrived (None: no upload reached ``at`` bytes)."""

    at: int
    longest_s: float
    arrived: Callable[[], bool]
    seconds: float = 0.0
    released_by_arrival: bool | None = None

    def __post_init__(self) -> None:
        self._claimed = threading.Lock()

    def claim(self) -> bool:
        """True for the first upload to reach ``at`` bytes; later ones pass unheld."""
        return self._claimed.acquire(blocking=False)

    def wait(self, stop: threading.Event) -> None:
        """Until ``arrived()`` says yes or ``longest_s`` is over (an error in asking counts as no)."""
        started = time.monotonic()
        released = False
        while not stop.is_set() and time.monotonic() - started < self.longest_s:
            with contextlib.suppress(Exception):  # noqa: BLE001 — a failed question is a "not yet"
                released = self.arrived()
            if released:
                break
            time.sleep(POLL_S)
        self.seconds, self.released_by_arrival = time.monotonic() - started, released


@contextlib.contextmanager
def held_uplink(gateway_port: int, hold: Hold) -> Iterator[int]:
    """Yield the port of a relay on 127.0.0.1 to ``gateway_port`` that holds the first upload
    reaching ``hold.at`` bytes (see :class:`Hold`); the relay ends with the block."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    thread = threading.Thread(target=_accept, args=(listener, gateway_port, hold, stop), daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def _accept(listener: socket.socket, gateway_port: int, hold: Hold, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=_relay, args=(client, gateway_port, hold, stop), daemon=True).start()


def _relay(client: socket.socket, gateway_port: int, hold: Hold, stop: threading.Event) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", gateway_port), timeout=30)
    except OSError:  # the lab's gateway is gone: git sees the connection close; the run names the gateway
        client.close()
        return
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client, stop, None), daemon=True)
        back.start()
        _pump(client, upstream, stop, hold)
        back.join()


def _pump(source: socket.socket, target: socket.socket, stop: threading.Event, hold: Hold | None) -> None:
    """Copy until EOF, holding once at ``hold.at`` bytes when this upload is the one held.
    No read timeout: one direction may stay quiet for as long as the other is busy (git's
    own bound ends the whole exchange)."""
    sent = 0
    source.settimeout(None)
    while not stop.is_set():
        try:
            data = source.recv(CHUNK)
        except OSError:
            break
        if not data:
            break
        try:
            if hold is not None and sent + len(data) >= hold.at:
                if hold.claim():
                    head = hold.at - sent
                    target.sendall(data[:head])
                    sent, data = sent + head, data[head:]
                    hold.wait(stop)
                hold = None  # one hold per relay: any other upload passes
            target.sendall(data)
        except OSError:
            break
        sent += len(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
