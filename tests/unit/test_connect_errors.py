"""Issue 27: a failed connection raises the type of its cause, and the verdict names it by type.

Real sockets on 127.0.0.1 throughout: a closed port, a listener that never answers, and the
lab's own SOCKS5 gateway (lab/images/gateway/gateway.py, run in this process on a free port)
giving its real replies. The wordings are compared whole: e2e tests compare verdict texts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socks

from lab.checks.base import GATEWAY_GONE_HINT, CheckTarget
from lab.checks.network import describe, is_network_error
from lab.client import Vantage
from lab.connect_errors import (ConnectFailed, ConnectionRefusedByTarget, ConnectTimeout, GatewayRefused,
                                GatewayUnavailable, HostUnreachable, NameNotInLab, from_pysocks)

GATEWAY_SOURCE = Path(__file__).parents[2] / "lab" / "images" / "gateway" / "gateway.py"
TARGET = CheckTarget("https://bitbucket.lab.test", Vantage(None, None))
REFUSED_HINT = ("the front door does not listen on port {port}: check the proxy's listen/Listen/bind lines and the "
                "public URL's port")


def test_a_direct_connection_to_a_closed_port_is_refused_by_the_target_and_told_as_nothing_listens(closed_port):
    error = connect_error(Vantage(None, None), "127.0.0.1", closed_port)

    assert isinstance(error, ConnectionRefusedByTarget) and isinstance(error, ConnectionRefusedError)
    assert error.reply_code is None and "Connection refused" in str(error)
    assert describe(error, TARGET, "127.0.0.1", closed_port) == (
        f"nothing listens on 127.0.0.1:{closed_port}", REFUSED_HINT.format(port=closed_port))


def test_a_gateway_port_where_nothing_listens_is_the_gateway_gone_not_a_refusal_by_the_front_door(closed_port):
    error = connect_error(Vantage(closed_port, None), "bitbucket.lab.test", 443)

    assert isinstance(error, GatewayUnavailable) and not isinstance(error, ConnectionRefusedByTarget)
    assert str(error).startswith(f"Error connecting to SOCKS5 proxy 127.0.0.1:{closed_port}: ")  # PySocks' words
    assert describe(error, TARGET) == ("the lab's users' gateway does not answer", GATEWAY_GONE_HINT)


def test_the_gateways_reply_2_for_a_name_outside_the_lab_is_name_not_in_lab(lab_gateway):
    error = connect_error(Vantage(lab_gateway, None), "git.acme.example", 443)

    assert isinstance(error, NameNotInLab) and isinstance(error, GatewayRefused) and error.reply_code == 2
    assert str(error) == str(error.__cause__) == "Socket error: 0x02: Connection not allowed by ruleset"  # PySocks' words
    observed, hint = describe(error, TARGET, "git.acme.example", 443)
    assert observed == "git.acme.example is not resolvable inside the lab"
    assert hint.startswith("the lab is sealed and resolves only the topology's own names")


def test_the_gateways_reply_5_for_a_lab_name_with_nothing_listening_is_a_refusal_by_the_target(lab_gateway, closed_port):
    error = connect_error(Vantage(lab_gateway, None), "localhost", closed_port)

    assert isinstance(error, ConnectionRefusedByTarget) and error.reply_code == 5
    assert str(error) == str(error.__cause__) == "Socket error: 0x05: Connection refused"
    assert describe(error, TARGET, "localhost", closed_port) == (
        f"nothing listens on localhost:{closed_port}", REFUSED_HINT.format(port=closed_port))


def test_the_gateways_reply_4_for_a_lab_name_that_does_not_resolve_is_host_unreachable(lab_gateway):
    error = connect_error(Vantage(lab_gateway, None), "nowhere.invalid", 443)

    assert isinstance(error, HostUnreachable) and error.reply_code == 4
    assert describe(error, TARGET, "nowhere.invalid", 443) == (
        "nowhere.invalid:443 is unreachable from the users' network",
        "no container answers nowhere.invalid on the users' network: is the front door running?")


def test_a_gateway_that_accepts_and_never_answers_is_a_timeout(silent_port):
    error = connect_error(Vantage(silent_port, None), "bitbucket.lab.test", 443, timeout=0.3)

    assert isinstance(error, ConnectTimeout) and isinstance(error, TimeoutError)
    assert describe(error, TARGET) == (
        "bitbucket.lab.test:443 gave no answer in time",
        "the front door accepted the connection but did not answer: check its timeouts and upstream")


def test_a_refusal_inside_a_request_is_named_by_pysocks_type_through_requests_and_urllib3(lab_gateway, closed_port):
    with pytest.raises(requests.ConnectionError) as raised:
        Vantage(lab_gateway, None).session().get(f"http://localhost:{closed_port}/status", timeout=5)

    assert describe(raised.value, TARGET, "localhost", closed_port)[0] == f"nothing listens on localhost:{closed_port}"
    with pytest.raises(requests.ConnectionError) as outside:
        Vantage(lab_gateway, None).session().get("https://git.acme.example/status", timeout=5)
    assert describe(outside.value, TARGET, "git.acme.example", 443)[0] == "git.acme.example is not resolvable inside the lab"


def test_every_gateway_reply_reads_the_same_as_pysocks_error_and_an_unnamed_one_keeps_its_words():
    for code in range(1, 9):
        pysocks_error = _pysocks_reply_error(code)
        typed = from_pysocks(pysocks_error)
        assert isinstance(typed, GatewayRefused | ConnectionRefusedByTarget) and typed.reply_code == code
        try:
            raise typed from pysocks_error  # as through_gateway raises it
        except ConnectFailed as raised:
            assert describe(raised, TARGET, "h", 1) == describe(pysocks_error, TARGET, "h", 1), code
    assert describe(_pysocks_reply_error(3), TARGET, "h", 1) == (
        "GeneralProxyError: SOCKS5Error: 0x03: Network unreachable", "the request to h:1 failed before any HTTP answer")


def test_an_error_with_no_type_of_its_cause_is_read_by_its_words_and_one_without_either_is_told_as_it_is():
    curl_said = RuntimeError("curl: (7) Failed to connect to bitbucket.lab.test port 443: Connection refused")
    riddle = RuntimeError("something else went wrong")

    assert describe(curl_said, TARGET)[0] == "nothing listens on bitbucket.lab.test:443"
    assert describe(riddle, TARGET) == ("RuntimeError: RuntimeError: something else went wrong",
                                        "the request to bitbucket.lab.test:443 failed before any HTTP answer")


def test_every_typed_connection_error_is_a_network_finding_and_an_oserror_that_old_handlers_catch():
    for kind in (GatewayUnavailable, GatewayRefused, NameNotInLab, HostUnreachable, ConnectionRefusedByTarget,
                 ConnectTimeout):
        error = kind("x")
        assert isinstance(error, ConnectFailed) and isinstance(error, OSError) and is_network_error(error), kind


def test_the_ssh_proxy_command_prints_the_gateways_refusal_in_the_words_it_always_did(lab_gateway, closed_port):
    done = subprocess.run([sys.executable, "-m", "lab.socks_connect", str(lab_gateway), "localhost", str(closed_port)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)

    assert done.returncode == 2
    assert done.stderr.strip() == (f"lab gateway 127.0.0.1:{lab_gateway}: cannot reach localhost:{closed_port} from "
                                   "the users' network (Socket error: 0x05: Connection refused)")


# ---------------------------------------------------------------- helpers


def connect_error(vantage: Vantage, host: str, port: int, timeout: float = 5) -> OSError:
    """The error ``vantage.connect`` raises (the test fails if it connects)."""
    with pytest.raises(OSError) as raised:
        vantage.connect(host, port, timeout).close()
    return raised.value


def _pysocks_reply_error(code: int) -> socks.ProxyError:
    """The error PySocks raises for SOCKS5 reply ``code``: its SOCKS5Error, wrapped by its
    ``connect`` into "Socket error: …" (the chain it builds, built the same way)."""
    try:
        try:
            raise socks.SOCKS5Error(f"{code:#04x}: {socks.SOCKS5_ERRORS[code]}")
        except OSError as reply:
            raise socks.GeneralProxyError("Socket error", reply)  # noqa: B904 (PySocks chains it implicitly)
    except socks.ProxyError as error:
        return error


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago: nothing listens on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener on 127.0.0.1 that accepts (the kernel's backlog) and never says a word."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.fixture
def lab_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The lab's SOCKS5 gateway code, allowing the name ``localhost`` and ``nowhere.invalid``
    only, served on a free 127.0.0.1 port by a thread of this process."""
    monkeypatch.setenv("LAB_ALLOW_NAMES", "localhost nowhere.invalid")
    spec = importlib.util.spec_from_file_location("lab_gateway_under_test", GATEWAY_SOURCE)
    assert spec is not None and spec.loader is not None
    gateway = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gateway)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_accept_forever, args=(listener, gateway), daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _accept_forever(listener: socket.socket, gateway: object) -> None:
    with contextlib.suppress(OSError):
        while True:
            client, _ = listener.accept()
            client.settimeout(10)
            threading.Thread(target=gateway._serve_one, args=(client,), daemon=True).start()  # type: ignore[attr-defined]
