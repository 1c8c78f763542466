"""What readiness observes of a running container, through Docker: each function here is
the body of a probe the strategies (:mod:`lab.readiness.strategies`) are given; they
themselves never talk to Docker.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable

import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from lab.readiness.strategies import Exit

SERVER_STARTS = "LAB-SERVER-STARTS:"
"""What a proxy's start script prints once its config test is over, just before the server runs."""
DOCKER_DNS_HEX = "0B00007F"  # 127.0.0.11, Docker's embedded DNS, listens in every container


def printed(container: Container, line: str) -> bool:
    """Whether the container's stdout has ``line``. The lines the start scripts print are
    among its first: the log is streamed and closed at the line, not read whole."""
    try:
        lines = container.logs(stream=True, stdout=True, stderr=False)
    except (APIError, NotFound):
        return False
    try:
        return any(line.encode() in chunk for chunk in lines)
    finally:
        lines.close()


def has_workers(container: Container, program: str) -> bool:
    """Whether ``program`` runs worker processes (an exec that fails counts as no)."""
    try:
        return bool(workers(container, program))
    except (APIError, NotFound):
        return False


def workers(container: Container, program: str) -> set[int]:
    """Worker processes of ``program`` (every process of it but the master, whose parent is init)."""
    output = container.exec_run(["sh", "-c", f'for p in $(pidof {program}); do echo $p $(cut -d" " -f4 /proc/$p/stat); done'])
    pairs = [line.split() for line in output.output.decode().splitlines() if len(line.split()) == 2]
    return {int(pid) for pid, parent in pairs if parent != "1"}


def listening_ports(container: Container) -> list[int] | None:
    """TCP ports the container listens on (from /proc/net/tcp*), or None when unknown."""
    try:
        result = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    except (APIError, NotFound):
        return None
    ports = set()
    for line in result.output.decode("ascii", "replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:  # 0A: LISTEN
            address, port = fields[1].rsplit(":", 1)
            if address != DOCKER_DNS_HEX:
                ports.add(int(port, 16))
    return sorted(ports)


def exit_of(container: Container, log: Callable[[], str]) -> Exit | None:
    """The container's exit (code, and ``log()`` read then), or None while it runs."""
    container.reload()
    if container.status not in ("exited", "dead"):
        return None
    return Exit(container.attrs["State"].get("ExitCode"), log())


def status_of(session: requests.Session, url: str) -> int | None:
    """The status ``url`` answers without following redirects, or None without an HTTP
    answer (refused, a failed handshake, 5 s of silence)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the session may skip TLS verification: no warning per poll
        try:
            return session.get(url, timeout=5, allow_redirects=False).status_code
        except requests.RequestException:
            return None


def serves_certificate_named(connect: Callable[[], socket.socket], server_name: str, common_name: str) -> bool:
    """Whether the TLS server at ``connect()`` presents, for ``server_name``, a certificate
    whose subject CN is ``common_name``; False without a handshake (the checks judge that)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with connect() as raw, context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return False
    if der is None:
        return False
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return any(name.value == common_name for name in names)
