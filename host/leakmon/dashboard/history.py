"""Bounded history in memory: columns of float64 per channel, oldest dropped first.

Each Ring keeps its rows contiguous and in time order (what searchsorted and the
decimation need) in a buffer a quarter larger than its capacity: rows are appended at the
end, and when the end is reached the newest rows move to the front (each row is copied
about four times over its life). Memory is fixed from the start: 1.25 * capacity * columns
* 8 bytes (24 h of 10 Hz from 4 sensors: about 100 MB).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from leakmon.dashboard.decimate import FloatArray, minmax_per_pixel

RAW_COLUMNS = ("t_s", "pressure_pa", "temperature_k")
UPDATE_COLUMNS = ("t_s", "pressure_pa", "temperature_k", "leak_rate_pa_per_s",
                  "ci95_low_pa_per_s", "ci95_high_pa_per_s")


class Ring:
    """Rows of named float64 columns, at most `capacity` of them, the first column sorted."""

    def __init__(self, columns: Sequence[str], capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.columns = tuple(columns)
        self.capacity = capacity
        self._buf = np.empty((len(self.columns), capacity + max(capacity // 4, 1)))
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, cols: Sequence[FloatArray]) -> None:
        n = len(cols[0])
        if n > self.capacity:
            cols = [c[-self.capacity:] for c in cols]
            n = self.capacity
        if self._end + n > self._buf.shape[1]:
            keep = min(len(self), self.capacity - n)
            self._buf[:, :keep] = self._buf[:, self._end - keep:self._end]
            self._start, self._end = 0, keep
        for i, c in enumerate(cols):
            self._buf[i, self._end:self._end + n] = c
        self._end += n
        if len(self) > self.capacity:
            self._start = self._end - self.capacity

    def view(self) -> FloatArray:
        """The rows as a (columns, n) view: valid until the next append."""
        return self._buf[:, self._start:self._end]


class History:
    """Per channel: raw samples (10 Hz) and leak updates (one a block), both bounded."""

    def __init__(self, raw_capacity: int, update_capacity: int) -> None:
        self.raw_capacity = raw_capacity
        self.update_capacity = update_capacity
        self.raw: dict[int, Ring] = {}
        self.updates: dict[int, Ring] = {}
        self.lock = threading.Lock()

    def add_raw(self, channel: int, t_s: FloatArray, pressure_pa: FloatArray, temperature_k: FloatArray) -> None:
        with self.lock:
            ring = self.raw.get(channel)
            if ring is None:
                ring = self.raw[channel] = Ring(RAW_COLUMNS, self.raw_capacity)
            ring.append([t_s, pressure_pa, temperature_k])

    def add_update(self, channel: int, row: Sequence[float]) -> None:
        with self.lock:
            ring = self.updates.get(channel)
            if ring is None:
                ring = self.updates[channel] = Ring(UPDATE_COLUMNS, self.update_capacity)
            ring.append([np.array([v], dtype=float) for v in row])

    def span_s(self) -> tuple[float, float] | None:
        """Earliest and latest raw sample time over all channels."""
        with self.lock:
            spans = [(r.view()[0, 0], r.view()[0, -1]) for r in self.raw.values() if len(r)]
        if not spans:
            return None
        return float(min(s[0] for s in spans)), float(max(s[1] for s in spans))

    def raw_range(self, channel: int, t0_s: float, t1_s: float, width_px: int) -> dict[str, list[float]]:
        """Min/max-per-pixel of one channel's raw samples over [t0_s, t1_s]."""
        with self.lock:
            ring = self.raw.get(channel)
            if ring is None or not len(ring):
                return {c: [] for c in RAW_COLUMNS}
            v = ring.view()
            t, (p, temp) = minmax_per_pixel(v[0], [v[1], v[2]], t0_s, t1_s, width_px)
        return {"t_s": t.tolist(), "pressure_pa": p.tolist(), "temperature_k": temp.tolist()}

    def raw_rows(self, channel: int, t0_s: float, t1_s: float) -> FloatArray:
        """Every raw sample of a channel in [t0_s, t1_s] (a copy), shape (3, n): for CSV."""
        with self.lock:
            ring = self.raw.get(channel)
            if ring is None:
                return np.empty((3, 0))
            v = ring.view()
            lo = int(np.searchsorted(v[0], t0_s, side="left"))
            hi = int(np.searchsorted(v[0], t1_s, side="right"))
            return v[:, lo:hi].copy()

    def update_range(self, channel: int, t0_s: float, t1_s: float, width_px: int) -> dict[str, list[float]]:
        """Leak updates of a channel over [t0_s, t1_s], thinned to about 2*width_px rows."""
        with self.lock:
            ring = self.updates.get(channel)
            if ring is None or not len(ring):
                return {c: [] for c in UPDATE_COLUMNS}
            v = ring.view()
            lo, hi = np.searchsorted(v[0], t0_s, side="left"), np.searchsorted(v[0], t1_s, side="right")
            step = max(1, (hi - lo) // max(2 * width_px, 1))
            sel = v[:, lo:hi:step]
            return {c: sel[i].tolist() for i, c in enumerate(UPDATE_COLUMNS)}
