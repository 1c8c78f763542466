"""``python -m lab.stub [--home DIR]``: run the stub until interrupted.

Reads ``DIR/shared/bitbucket.properties`` and ``SERVER_*`` environment variables; a bad
setting prints one line naming the key and exits 1, as Bitbucket fails to start.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from lab.stub.config import DEFAULT_HOME, ConfigError, load_settings
from lab.stub.server import start_stub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.stub", description=__doc__)
    parser.add_argument("--home", type=Path,
                        default=Path(os.environ.get("BITBUCKET_HOME", DEFAULT_HOME)),
                        help="Bitbucket home; reads shared/bitbucket.properties under it")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr as one JSON line (LAB-REQUEST …)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.home)
        stub = start_stub(settings, args.home, access_log=args.access_log)
    except ConfigError as error:
        print(f"bitbucket.properties: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cannot listen: {error}", file=sys.stderr)
        return 1
    listening = ", ".join(f"{c.scheme}{'+tls' if c.tls else ''}://{c.address}:{port}"
                          for c, port in zip(settings.connectors, stub.ports, strict=True))
    print(f"stub Bitbucket RUNNING on {listening} context-path={settings.context_path or '/'}",
          flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    stub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
