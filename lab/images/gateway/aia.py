"""The lab's PKI node (``pki.lab.test``): serves the intermediate at the leaf's AIA URL.

A browser that is sent a leaf without its intermediate fetches the issuer from the URL in
the leaf's Authority Information Access extension; this answers ``GET LAB_AIA_PATH`` with
the DER file ``LAB_AIA_FILE`` and logs every request (so the lab can tell that a browser
fetched it), 404 for anything else. Standard library only (the image has no http.server).
"""

from __future__ import annotations

import os
import socket
import threading

PATH = os.environ.get("LAB_AIA_PATH", "/lab-intermediate.crt")
FILE = os.environ.get("LAB_AIA_FILE", "/etc/lab/aia/intermediate.crt")
TIMEOUT_S = 10


def answer(client: socket.socket) -> None:
    with client:
        client.settimeout(TIMEOUT_S)
        request = b""
        try:
            while b"\r\n\r\n" not in request and len(request) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    break
                request += chunk
            method, target = (request.split(b"\r\n", 1)[0].decode("latin-1").split(" ") + ["", ""])[:2]
            if method in ("GET", "HEAD") and target.split("?", 1)[0] == PATH:
                with open(FILE, "rb") as handle:
                    body = handle.read()
                status, kind = "200 OK", "application/pkix-cert"
            else:
                body, status, kind = b"not here\n", "404 Not Found", "text/plain"
            print(f"LAB-AIA {method} {target} -> {status.split()[0]}", flush=True)
            head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            client.sendall(head.encode() + (body if method == "GET" else b""))
        except OSError:
            pass


def serve(port: int = 80) -> None:
    listener = socket.create_server(("0.0.0.0", port), backlog=64)
    print(f"lab PKI node on :{port} serving {FILE} at {PATH}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=answer, args=(client,), daemon=True).start()


if __name__ == "__main__":
    serve()
