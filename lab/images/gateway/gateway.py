"""The lab's SOCKS5 gateway: the only way from the host into a topology.

It answers CONNECT requests for the lab's own names only (``LAB_ALLOW_NAMES``, the
aliases of the network it stands on; ``name:port`` for a node behind a firewall that
lets users reach only that port) and refuses everything else *before any lookup*,
with SOCKS reply 2 ("connection not allowed by ruleset"): a customer's real host name,
an IP literal, or a name of another network never resolves or routes out of the lab.
Allowed names resolve through Docker's DNS on the lab's internal network.

Standard library only; one thread per connection; every refusal is logged on stdout.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

NOT_ALLOWED, HOST_UNREACHABLE, CONNECTION_REFUSED, COMMAND_NOT_SUPPORTED = 2, 4, 5, 7
ADDRESS_NOT_SUPPORTED = 8
CONNECT_TIMEOUT_S = 10
ALLOWED = frozenset(name.lower().rstrip(".") for name in os.environ.get("LAB_ALLOW_NAMES", "").split())


class Socks5Handler:
    """One client connection: greeting, one CONNECT, then a byte relay."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client

    def handle(self) -> None:
        with self.client:
            self._handle(self.client)

    def _handle(self, client: socket.socket) -> None:
        if not self._greet(client):
            return
        host, port = self._read_request(client)
        if host is None:
            return
        name = host.lower().rstrip(".")
        if name not in ALLOWED and f"{name}:{port}" not in ALLOWED:
            why = "a port the lab's firewall closes" if any(a.startswith(name + ":") for a in ALLOWED) \
                else "not a name of this lab"
            print(f"refused {host}:{port}: {why} (no lookup made)", flush=True)
            self._reply(client, NOT_ALLOWED)
            return
        try:
            upstream = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except socket.gaierror:
            self._reply(client, HOST_UNREACHABLE)
            return
        except ConnectionRefusedError:
            self._reply(client, CONNECTION_REFUSED)
            return
        except OSError:
            self._reply(client, HOST_UNREACHABLE)
            return
        with upstream:
            upstream.settimeout(None)
            client.settimeout(None)  # the handshake had a deadline; the relay has none
            self._reply(client, 0)
            _relay(client, upstream)

    def _greet(self, client: socket.socket) -> bool:
        header = _read_exact(client, 2)
        if len(header) < 2 or header[0] != 5:
            return False
        methods = _read_exact(client, header[1])
        if 0 not in methods:
            client.sendall(b"\x05\xff")
            return False
        client.sendall(b"\x05\x00")
        return True

    def _read_request(self, client: socket.socket) -> tuple[str | None, int]:
        header = _read_exact(client, 4)
        if len(header) < 4 or header[0] != 5:
            return None, 0
        if header[1] != 1:
            self._reply(client, COMMAND_NOT_SUPPORTED)
            return None, 0
        if header[3] != 3:  # an IP literal: never the lab's way of naming a node
            size = 4 if header[3] == 1 else 16 if header[3] == 4 else 0
            shown = _read_exact(client, size + 2)[:size]
            address = socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, shown) if size else "?"
            print(f"refused {address}: an address, not a name of this lab", flush=True)
            self._reply(client, NOT_ALLOWED if size else ADDRESS_NOT_SUPPORTED)
            return None, 0
        length = _read_exact(client, 1)
        name = _read_exact(client, length[0] if length else 0)
        port_bytes = _read_exact(client, 2)
        if len(port_bytes) < 2:
            return None, 0
        return name.decode("ascii", "replace"), struct.unpack("!H", port_bytes)[0]

    @staticmethod
    def _reply(client: socket.socket, code: int) -> None:
        try:
            client.sendall(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        except OSError:
            pass


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy both ways at once, one thread a direction: a direction that blocks on a full
    buffer never stops the other (HTTP/2 sends both ways during an upload)."""
    back = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
    back.start()
    _copy(client, upstream)
    back.join()


def _copy(source: socket.socket, target: socket.socket) -> None:
    while True:
        try:
            data = source.recv(65536)
        except OSError:
            data = b""
        if not data:
            _shutdown_write(target)
            return
        try:
            target.sendall(data)
        except OSError:
            _shutdown_write(source)
            return


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(port: int = 1080) -> None:
    listener = socket.create_server(("0.0.0.0", port), backlog=128, reuse_port=False)
    print(f"lab gateway on :{port} for {len(ALLOWED)} lab names: {' '.join(sorted(ALLOWED))}", flush=True)
    while True:
        client, _ = listener.accept()
        client.settimeout(CONNECT_TIMEOUT_S)
        threading.Thread(target=_serve_one, args=(client,), daemon=True).start()


def _serve_one(client: socket.socket) -> None:
    try:
        Socks5Handler(client).handle()
    except OSError:
        pass


if __name__ == "__main__":
    serve()
