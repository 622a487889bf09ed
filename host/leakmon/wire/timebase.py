"""Unwrapping the node's wrapping microsecond ticks into a monotonic device time."""

from __future__ import annotations


class TickUnwrapper:
    """Maps ticks (mod 2**bits) onto unwrapped microseconds, assuming frames in order
    and no gap longer than one wrap period (17.9 min at 30 bits)."""

    def __init__(self, bits: int) -> None:
        self.period = 1 << bits
        self._last_raw: int | None = None
        self._last_us = 0

    def unwrap(self, ticks_us: int) -> int:
        if self._last_raw is None:
            self._last_raw = ticks_us
            self._last_us = ticks_us
            return ticks_us
        step = (ticks_us - self._last_raw) % self.period
        if step > self.period // 2:  # a little backwards (reordered): keep it signed
            step -= self.period
        self._last_raw = ticks_us
        self._last_us += step
        return self._last_us
