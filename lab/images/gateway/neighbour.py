"""A neighbour of Bitbucket's: the application a customer's proxy serves beside it (Jira,
Confluence, Bamboo, …), as the lab runs it — a responder on ``LAB_NEIGHBOUR_PORTS`` that
answers every request ``200`` naming ``LAB_NEIGHBOUR_APP`` (header ``X-Lab-Neighbour``), so
the proxy starts (its upstream names resolve and answer) and a check that lands here can
say "the route ends at Jira, not Bitbucket". Standard library only; logs each request.
"""

from __future__ import annotations

import os
import socket
import threading

APP = os.environ.get("LAB_NEIGHBOUR_APP", "another application")
PORTS = [int(port) for port in os.environ.get("LAB_NEIGHBOUR_PORTS", "8080").split(",") if port.strip()]
TIMEOUT_S = 10


def answer(client: socket.socket) -> None:
    with client:
        client.settimeout(TIMEOUT_S)
        request = b""
        try:
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = client.recv(4096)
                if not chunk:
                    break
                request += chunk
            line = request.split(b"\r\n", 1)[0].decode("latin-1")
            print(f"LAB-NEIGHBOUR {APP} {line}", flush=True)
            body = f"{APP} (a neighbour of Bitbucket's in the lab: this is not Bitbucket)\n".encode()
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Lab-Neighbour: {APP}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            client.sendall(head.encode() + (b"" if line.startswith("HEAD ") else body))
        except OSError:
            return


def serve(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=answer, args=(client,), daemon=True).start()


if __name__ == "__main__":
    print(f"LAB-NEIGHBOUR {APP} listening on {', '.join(map(str, PORTS))}", flush=True)
    threads = [threading.Thread(target=serve, args=(port,), daemon=True) for port in PORTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
