"""Can this machine's own TLS library speak a protocol version at all?

A probe that fails to connect with TLS 1.0 proves the server refuses TLS 1.0 only if the
client could have spoken it: a FIPS or strictly configured OpenSSL refuses it by itself.
This asks the local library, over a socket pair on this machine, before the lab believes
a server's refusal.
"""

from __future__ import annotations

import functools
import socket
import ssl
import tempfile
import threading
import warnings
from pathlib import Path

import trustme


@functools.cache
def client_speaks(version: ssl.TLSVersion) -> bool:
    """Whether a handshake at exactly ``version`` succeeds between two ends of this
    process's own OpenSSL (a server context and a client context, both pinned to it)."""
    try:
        server, client = _context(version, server_side=True), _context(version, server_side=False)
    except (ssl.SSLError, ValueError):
        return False
    left, right = socket.socketpair()
    outcome: list[bool] = []
    thread = threading.Thread(target=_serve_once, args=(server, right, outcome), daemon=True)
    thread.start()
    try:
        with client.wrap_socket(left, do_handshake_on_connect=False) as tls:
            tls.settimeout(5)
            tls.do_handshake()
            spoke = tls.version() == _NAMES.get(version)
    except (ssl.SSLError, OSError):
        spoke = False
    thread.join(timeout=5)
    right.close()
    return spoke and outcome == [True]


_NAMES = {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1",
          ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


def _serve_once(context: ssl.SSLContext, sock: socket.socket, outcome: list[bool]) -> None:
    try:
        with context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False) as tls:
            tls.settimeout(5)
            tls.do_handshake()
            outcome.append(True)
    except (ssl.SSLError, OSError):
        outcome.append(False)


def _context(version: ssl.TLSVersion, server_side: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    if server_side:
        _load_probe_identity(context)
    else:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@functools.cache
def _probe_identity() -> tuple[bytes, bytes]:
    leaf = trustme.CA().issue_cert("tls-probe.invalid")
    return leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()


def _load_probe_identity(context: ssl.SSLContext) -> None:
    cert, key = _probe_identity()
    with tempfile.TemporaryDirectory(prefix="lab-tls-probe-") as work:
        cert_path, key_path = Path(work, "cert.pem"), Path(work, "key.pem")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        context.load_cert_chain(cert_path, key_path)
