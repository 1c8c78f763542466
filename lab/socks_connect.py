"""``python -m lab.socks_connect SOCKS_PORT HOST PORT``: ssh's ProxyCommand into a topology.

Connects to ``HOST:PORT`` through the lab's SOCKS5 gateway on ``127.0.0.1:SOCKS_PORT`` —
the gateway resolves the name on the users' network, as users' machines would — and
relays stdin/stdout, so ``ssh -o ProxyCommand=…`` reaches Bitbucket's SSH port exactly
where users do. One line on stderr and exit 2 when the gateway refuses or nothing listens.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

import socks  # PySocks alone: ssh starts this once per connection, so no requests, no lab.client

from lab.connect_errors import from_pysocks


def through_gateway(socks_port: int, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``host:port`` through the lab's SOCKS5 gateway on 127.0.0.1,
    the name resolved by the gateway (socks5h). Raises OSError: a
    :class:`lab.connect_errors.ConnectFailed` when the cause is known (the gateway's reply,
    the gateway gone, no answer in time), with PySocks' message; else PySocks' own error."""
    try:
        return socks.create_connection((host, port), timeout=timeout, proxy_type=socks.SOCKS5,
                                       proxy_addr="127.0.0.1", proxy_port=socks_port)
    except socks.ProxyError as error:
        typed = from_pysocks(error)
        if typed is None:
            raise
        raise typed from error


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[0].isdigit() or not argv[2].isdigit():
        print("usage: python -m lab.socks_connect SOCKS_PORT HOST PORT", file=sys.stderr)
        return 2
    try:
        upstream = through_gateway(int(argv[0]), argv[1], int(argv[2]), timeout=10)
    except OSError as error:
        print(f"lab gateway 127.0.0.1:{argv[0]}: cannot reach {argv[1]}:{argv[2]} from the users' network "
              f"({error})", file=sys.stderr)
        return 2
    upstream.settimeout(None)
    threading.Thread(target=_copy_stdin, args=(upstream,), daemon=True).start()
    while data := upstream.recv(65536):
        os.write(1, data)
    return 0


def _copy_stdin(upstream: socket.socket) -> None:
    try:
        while data := os.read(0, 65536):
            upstream.sendall(data)
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
