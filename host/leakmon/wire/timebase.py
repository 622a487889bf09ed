"""Unwrapping the node's wrapping microsecond ticks into a monotonic device time."""

from __future__ import annotations

import numpy as np


class TickUnwrapper:
    """Maps ticks (mod 2**bits) onto unwrapped microseconds, assuming frames in order
    and no gap longer than half a wrap period (9 min at 30 bits)."""

    def __init__(self, bits: int) -> None:
        self.period = 1 << bits
        self._last_raw: int | None = None
        self._last_us = 0

    def unwrap_many(self, ticks_us: np.ndarray) -> np.ndarray:
        """Unwrapped microseconds (int64) of ticks in order: each step from the last tick is
        taken mod the period, and one a little backwards (reordered) stays signed."""
        if not len(ticks_us):
            return np.empty(0, np.int64)
        ticks = np.asarray(ticks_us, np.int64)
        prev = np.empty(len(ticks), np.int64)
        first = self._last_raw is None
        prev[0] = ticks[0] if self._last_raw is None else self._last_raw
        prev[1:] = ticks[:-1]
        step = (ticks - prev) % self.period
        step[step > self.period // 2] -= self.period
        us = np.cumsum(step)
        us += int(ticks[0]) if first else self._last_us
        self._last_raw = int(ticks[-1])
        self._last_us = int(us[-1])
        return us

    def unwrap(self, ticks_us: int) -> int:
        return int(self.unwrap_many(np.array([ticks_us], np.int64))[0])
