"""``python -m lab.stub [--home DIR]``: run the stub until interrupted.

Reads ``DIR/shared/bitbucket.properties`` and ``SERVER_*`` environment variables; a bad
setting prints one line naming the key and exits 1, as Bitbucket fails to start. SIGHUP
restarts it as Bitbucket is restarted after a properties change: every listener and
connection closed, then the process runs anew (same pid, fresh state, files read again).
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import signal
import sys
from pathlib import Path

from lab.stub.config import DEFAULT_HOME, ConfigError, load_settings
from lab.stub.config import StubSettings
from lab.stub.server import RESTARTING, RunningStub, start_stub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.stub", description=__doc__)
    parser.add_argument("--home", type=Path,
                        default=Path(os.environ.get("BITBUCKET_HOME", DEFAULT_HOME)),
                        help="Bitbucket home; reads shared/bitbucket.properties under it")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr as one JSON line (LAB-REQUEST …)")
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    commands = _signal_commands()  # before RUNNING is printed: a signal right after it is handled
    stub: RunningStub | None
    try:
        settings = load_settings(args.home)
        stub = start_stub(settings, args.home, access_log=args.access_log)
    except ConfigError as error:
        print(f"bitbucket.properties: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cannot listen: {error}", file=sys.stderr)
        return 1
    _say_running(settings, stub)
    while (command := commands.wait_for_next()) != "exit":
        if command == "crash" and stub is not None:
            stub.stop()
            stub = None
            print("stub Bitbucket STOPPED (SIGUSR1, as a crashed node: nothing listens, the host stays up)",
                  flush=True)
        elif command == "recover" and stub is None:
            stub = start_stub(settings, args.home, access_log=args.access_log)
            _say_running(settings, stub)
        elif command == "restart":
            if stub is not None:
                stub.stop()
            print(RESTARTING, flush=True)  # the lab waits for this line: nothing of the old process serves
            os.execv(sys.executable, [sys.executable, "-m", "lab.stub", *arguments])
    if stub is not None:
        stub.stop()
    return 0


def _say_running(settings: StubSettings, stub: RunningStub) -> None:
    listening = ", ".join(f"{c.scheme}{'+tls' if c.tls else ''}://{c.address}:{port}"
                          for c, port in zip(settings.connectors, stub.ports, strict=True))
    ssh = f", ssh://0.0.0.0:{settings.ssh_port}" if stub.sshd else ""
    print(f"stub Bitbucket RUNNING on {listening}{ssh} context-path={settings.context_path or '/'}",
          flush=True)


COMMANDS: dict[int, str] = {signal.SIGTERM: "exit", signal.SIGINT: "exit", signal.SIGUSR1: "crash",
                            signal.SIGUSR2: "recover", signal.SIGHUP: "restart"}


class _SignalCommands:
    """SIGTERM/SIGINT end the stub; SIGUSR1 stops serving as a crashed Bitbucket does
    (every listener and connection closed, the container — the host — still up, its
    name still resolving); SIGUSR2 starts serving again with fresh sessions; SIGHUP
    restarts the process.

    The signals arrive through Python's wakeup fd: the interpreter writes each signal's
    number to a pipe from its C-level handler, which wakes the main loop. No handler takes
    a lock: one that did (an Event's) could interrupt the main thread while it held that
    very lock, and the stub then never answered a SIGHUP again (seen as "did not restart
    within 15 s of SIGHUP" in a reload). The Python handler only appends the command to a
    deque (atomic, lock-free): a flood of signals fills the pipe, whose write then fails,
    and a SIGTERM known only from the pipe would be lost."""

    def __init__(self) -> None:
        self._wakeups, wakeup = os.pipe()
        os.set_blocking(wakeup, False)  # the interpreter's write must never block its handler
        signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
        self._pending: collections.deque[str] = collections.deque()

    def handle(self, number: int, _frame: object = None) -> None:
        self._pending.append(COMMANDS[number])

    def wait_for_next(self) -> str:
        while not self._pending:
            # The handler runs at the interpreter's next check, maybe just after this read
            # returned: wake at least once a second so such a command never waits for the next signal.
            if select.select([self._wakeups], [], [], 1.0)[0]:
                os.read(self._wakeups, 4096)
        return self._pending.popleft()


def _signal_commands() -> _SignalCommands:
    commands = _SignalCommands()
    for number in COMMANDS:
        signal.signal(number, commands.handle)
    return commands


if __name__ == "__main__":
    sys.exit(main())
