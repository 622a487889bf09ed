"""A percentage on stderr while a big file is worked through (export, analyze)."""

from __future__ import annotations

import os
import sys
from typing import IO

PROGRESS_MIN_BYTES = 8 << 20  # smaller inputs go without a progress line
PROGRESS_STEP_BYTES = 1 << 20  # decoded (and progress updated) this much at a time


class Progress:
    """A percentage on stderr for big inputs: one rewritten line on a terminal, else every 10%."""

    def __init__(self, total: int, what: str, stream: IO[str] | None = None) -> None:
        self.total = total
        self.what = what
        self.stream = stream = stream or sys.stderr
        self.enabled = total >= PROGRESS_MIN_BYTES
        self.tty = stream.isatty()
        self.color = self.tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self._shown = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        pct = min(100, done * 100 // max(self.total, 1))
        if pct == self._shown or (not self.tty and pct // 10 == self._shown // 10):
            return
        self._shown = pct
        text = f"\x1b[36m{pct:3d}%\x1b[0m" if self.color else f"{pct:3d}%"
        end = "\r" if self.tty else "\n"
        print(f"leakmon: {self.what} {text}", end=end, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=self.stream)
