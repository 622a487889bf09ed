"""Unwrapping the node's wrapping microsecond ticks into a monotonic device time."""

from __future__ import annotations

import numpy as np


class TickUnwrapper:
    """Maps ticks (mod 2**bits) onto unwrapped microseconds, assuming frames in order
    and no gap longer than half a wrap period (9 min at 30 bits)."""

    def __init__(self, bits: int) -> None:
        self.period = 1 << bits
        self._bias = self.period // 2 - 1
        self._last_raw: int | None = None
        self._last_us = 0

    def unwrap_many(self, ticks_us: np.ndarray) -> np.ndarray:
        """Unwrapped microseconds (int64) of ticks in order: each step from the last tick is
        taken mod the period, and one a little backwards (reordered) stays signed.

        The signed step is ((d + h - 1) mod P) - (h - 1) for P = 2**bits and h = P / 2:
        the same as d mod P, less P above h, in three in-place operations (a live read
        calls this for every 48 frames, where each numpy call costs more than its work).
        """
        n = len(ticks_us)
        if not n:
            return np.empty(0, np.int64)
        ticks = np.asarray(ticks_us, np.int64)
        step = np.empty(n, np.int64)
        first = int(ticks[0])
        step[0] = 0 if self._last_raw is None else first - self._last_raw
        np.subtract(ticks[1:], ticks[:-1], out=step[1:])
        step += self._bias
        step &= self.period - 1
        step -= self._bias
        us = step.cumsum()
        us += first if self._last_raw is None else self._last_us
        self._last_raw = int(ticks[-1])
        self._last_us = int(us[-1])
        return us

    def unwrap_f64(self, ticks_us: np.ndarray) -> np.ndarray:
        """unwrap_many(ticks_us) as float64, in a few calls when the ticks only go forward
        and do not wrap (almost every read): each step is then the plain difference, so the
        unwrapped time is the tick plus a constant (exact in float64 below 2**53 us)."""
        n = len(ticks_us)
        if n and self._last_raw is not None:
            first, last = int(ticks_us[0]), int(ticks_us[-1])
            if 0 <= first - self._last_raw and last - self._last_raw <= self.period // 2 \
                    and (n == 1 or bool((ticks_us[1:] >= ticks_us[:-1]).all())):
                offset = self._last_us - self._last_raw
                self._last_raw, self._last_us = last, last + offset
                out: np.ndarray = np.add(ticks_us, np.float64(offset), dtype=np.float64)
                return out
        return self.unwrap_many(ticks_us).astype(np.float64)

    def unwrap(self, ticks_us: int) -> int:
        return int(self.unwrap_many(np.array([ticks_us], np.int64))[0])
