"""Progress for long steps: a live line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Progress:
    """Reports steps to ``stream`` (stderr by default).

    ``step`` is a lasting line ("built image stub in 12.3 s"); ``detail`` is transient
    (the current Dockerfile step) and shows only on a terminal, where it overwrites
    itself, so logs and CI output stay readable.
    """

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty()
        self._quiet = quiet
        self._lock = threading.Lock()
        self._dirty = False

    def step(self, message: str) -> None:
        if self._quiet:
            return
        with self._lock:
            self._clear()
            print(message, file=self._stream, flush=True)

    def done(self) -> None:
        """Erase a transient detail line before other output goes to the terminal."""
        with self._lock:
            self._clear()
            self._stream.flush()

    def detail(self, message: str) -> None:
        if self._quiet or not self._live:
            return
        with self._lock:
            self._clear()
            self._stream.write(message[:100])
            self._stream.flush()
            self._dirty = True

    def _clear(self) -> None:
        if self._dirty:
            self._stream.write("\r\033[K")
            self._dirty = False


SILENT = Progress(quiet=True)
