"""bitbucket.properties as Java and Spring read it, and the one-line refusals."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.pki import make_pki
from lab.stub.config import ConfigError, load_settings
from lab.stub.properties import apply_environment, parse_properties
from lab.stub.server import RESTARTING, start_stub
from tests.unit.stubutil import raw_request

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_java_properties_syntax_is_parsed_like_java():
    text = (
        "# comment\n! also a comment\n"
        "server.port=7990\n"
        "server.proxy-name : bitbucket.lab.test\n"
        "server.scheme https\n"
        "setup.baseUrl=https://bitbucket.lab.test/\\\n    bitbucket\n"
        "lab.users=admin\\:x:secret\n"
        "unicode=caf\\u00e9\n"
        "   indented = value with spaces  \n"
        "empty=\n"
    )
    assert parse_properties(text) == {
        "server.port": "7990", "server.proxy-name": "bitbucket.lab.test", "server.scheme": "https",
        "setup.baseUrl": "https://bitbucket.lab.test/bitbucket", "lab.users": "admin:x:secret",
        "unicode": "café", "indented": "value with spaces  ", "empty": "",
    }


def test_environment_variables_override_properties_by_relaxed_binding():
    properties = {"server.proxy-name": "from-file", "server.port": "7990"}
    environ = {"SERVER_PROXY_NAME": "from-env", "SERVER_ADDITIONALCONNECTOR_1_PORT": "8443",
               "SETUP_BASEURL": "https://x/", "PATH": "/bin"}
    merged = apply_environment(properties, environ, ["server.additional-connector.1.port", "setup.baseUrl"])
    assert merged == {"server.proxy-name": "from-env", "server.port": "7990",
                      "server.additional-connector.1.port": "8443", "setup.baseUrl": "https://x/"}


def test_unknown_keys_are_ignored(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "bitbucket.properties").write_text("jdbc.url=whatever\nplugin.x=1\n")
    assert load_settings(tmp_path, {}).connectors[0].port == 7990


BAD_VALUES = [
    ("server.port=abc", "server.port=abc is not a port number"),
    ("server.port=70000", "server.port=70000 is not a port number"),
    ("server.proxy-port=x443", "server.proxy-port=x443 is not a port number"),
    ("server.secure=yes", "server.secure=yes is not true or false"),
    ("server.scheme=ftp", "server.scheme=ftp is not http or https"),
    ("server.context-path=bitbucket", "server.context-path=bitbucket must start with '/'"),
    ("server.forward-headers-strategy=SOMETIMES", "server.forward-headers-strategy=SOMETIMES"),
    ("server.additional-connector.1.scheme=https", "server.additional-connector.1.port is missing"),
    ("server.ssl.enabled=true\nserver.ssl.key-store=/nope.p12", "server.ssl.key-store=/nope.p12: no such keystore"),
    ("server.ssl.enabled=true\nserver.ssl.key-store=KS\nserver.ssl.key-store-type=JKS",
     "server.ssl.key-store-type=JKS"),
    ("server.ssl.enabled=true\nserver.ssl.key-store=KS\nserver.ssl.key-store-password=wrong",
     "server.ssl.key-store-password: wrong password"),
    ("server.ssl.enabled=true\nserver.ssl.key-store=KS\nserver.ssl.key-alias=other",
     "server.ssl.key-alias=other: no key entry"),
]


@pytest.mark.parametrize("properties,message", BAD_VALUES, ids=[row[0].split("\n")[-1] for row in BAD_VALUES])
def test_a_bad_value_stops_the_stub_with_one_line_naming_the_key(tmp_path, properties, message):
    keystore = make_pki(tmp_path / "pki", ["bitbucket.lab.test"]).keystore
    home = tmp_path / "home"
    (home / "shared").mkdir(parents=True)
    (home / "shared" / "bitbucket.properties").write_text(properties.replace("=KS", f"={keystore}") + "\n")
    result = subprocess.run([sys.executable, "-m", "lab.stub", "--home", str(home)],
                            capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
                            cwd=str(REPO_ROOT))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_the_same_keystore_with_the_right_password_starts(tmp_path):
    keystore = make_pki(tmp_path / "pki", ["bitbucket.lab.test"]).keystore
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "bitbucket.properties").write_text(
        f"server.port=0\nserver.ssl.enabled=true\nserver.ssl.key-store={keystore}\n")
    stub = start_stub(load_settings(tmp_path, {}), tmp_path)
    stub.stop()


def test_config_error_is_raised_in_process_too(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "bitbucket.properties").write_text("server.port=abc\n")
    with pytest.raises(ConfigError, match="server.port"):
        load_settings(tmp_path, {})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_until(process: subprocess.Popen[str], wanted: str, timeout: float = 20) -> str:
    """Lines of the stub's stdout up to the first containing ``wanted`` (bounded)."""
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        if not select.select([process.stdout], [], [], 0.2)[0]:
            continue
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if wanted in line:
            return "".join(lines)
    raise AssertionError(f"no {wanted!r} from the stub; it printed {''.join(lines)!r}")


def test_sighup_restarts_the_stub_in_its_process_with_the_properties_read_again(tmp_path):
    port = _free_port()
    properties = tmp_path / "shared" / "bitbucket.properties"
    properties.parent.mkdir(parents=True)
    properties.write_text(f"server.port={port}\nserver.context-path=/old\n")
    stub = subprocess.Popen([sys.executable, "-m", "lab.stub", "--home", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={"PATH": "/usr/bin:/bin"}, cwd=str(REPO_ROOT))
    try:
        assert "context-path=/old" in _read_until(stub, "RUNNING")
        properties.write_text(f"server.port={port}\nserver.context-path=/new\n")
        stub.send_signal(signal.SIGHUP)
        _read_until(stub, RESTARTING)
        assert "context-path=/new" in _read_until(stub, "RUNNING")  # same process id, files read again
        assert raw_request(port, "/new/status", {"Host": "x"}).status == 200
        properties.write_text("server.port=abc\n")  # negative control: a bad file ends it as at a start
        stub.send_signal(signal.SIGHUP)
        _read_until(stub, RESTARTING)
        assert stub.wait(timeout=20) == 1
    finally:
        stub.kill()
        stub.wait(timeout=10)


_COMMAND_LOOP = """
from lab.stub.__main__ import _signal_commands
commands = _signal_commands()
print("ready", flush=True)
while commands.wait_for_next() != "exit":
    pass
"""


def test_the_stub_still_answers_a_signal_after_a_flood_of_them_arrived_while_it_was_handling_others():
    # Each signal must reach the main loop whatever the main thread was doing when it came:
    # a handler that takes a lock the interrupted code holds hangs the stub (a reload then
    # waits in vain for SIGHUP's RESTARTING). Thousands of signals land in every window.
    loop = subprocess.Popen([sys.executable, "-c", _COMMAND_LOOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=str(REPO_ROOT))
    try:
        assert "ready" in _read_until(loop, "ready")
        flood_ends = time.monotonic() + 3
        while time.monotonic() < flood_ends and loop.poll() is None:
            loop.send_signal(signal.SIGUSR2)  # "recover": the loop takes it and waits for the next
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=10) == 0, loop.stderr.read()[-2000:]  # it took SIGTERM as "exit"
    except subprocess.TimeoutExpired:
        raise AssertionError("the stub's command loop hung: SIGTERM after the flood never reached it") from None
    finally:
        loop.kill()
        loop.wait(timeout=10)


def test_an_exception_in_a_stub_request_thread_is_one_line_with_its_traceback_and_a_client_gone_is_quiet():
    from lab.stub.server import request_error_report

    try:
        {}["missing"]
    except KeyError as error:
        report = request_error_report(error, ("127.0.0.1", 52926))
    assert report.startswith("LAB-STUB-ERROR request from 127.0.0.1:52926: Traceback")
    assert "\n" not in report and "KeyError: 'missing'" in report and "test_stub_configuration.py" in report
    assert request_error_report(ConnectionResetError(104, "reset"), ("127.0.0.1", 1)) == ""  # negative control
    assert request_error_report(BrokenPipeError(32, "pipe"), ("127.0.0.1", 1)) == ""
