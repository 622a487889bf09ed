"""`fit_slope` over the trailing window of a live stream."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import FloatArray, SlopeFit, _as_series, fit_slope


class TrailingWindow:
    """The samples of a live stream with t >= t_latest - window_s, as columns (t first).

    Batches are kept as they came and dropped whole or cut at the front: add() is O(batch),
    columns() is O(window). window_s None keeps everything (memory grows with the stream).
    """

    def __init__(self, window_s: float | None, n_columns: int = 2) -> None:
        if window_s is not None and not (window_s > 0.0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive finite number or None, got {window_s}")
        self.window_s = window_s
        self._cols = n_columns
        self._batches: deque[tuple[FloatArray, ...]] = deque()
        self._head = 0  # samples of the first batch already dropped
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, t_s: npt.ArrayLike, *values: npt.ArrayLike) -> None:
        """Append a batch of finite samples; times must not go backwards."""
        if len(values) != self._cols - 1:
            raise ValueError(f"expected {self._cols - 1} value column(s), got {len(values)}")
        t = np.array(t_s, dtype=np.float64)  # a copy: the caller may reuse its buffers
        cols = [np.array(v, dtype=np.float64) for v in values]
        for c in cols:
            _as_series(t, c, 0)
        if t.size == 0:
            return
        if not all(np.all(np.isfinite(c)) for c in [t, *cols]):
            raise ValueError("samples must be finite")
        if np.any(np.diff(t) < 0.0) or (self._n and t[0] < self._batches[-1][0][-1]):
            raise ValueError("sample times must not decrease")
        self._batches.append((t, *cols))
        self._n += t.size
        if self.window_s is not None:
            self._drop_before(float(t[-1]) - self.window_s)

    def _drop_before(self, cutoff_s: float) -> None:
        while True:  # whole batches, then part of one; the newest sample always stays
            bt = self._batches[0][0]
            k = int(np.searchsorted(bt[self._head :], cutoff_s, side="left"))
            if k == 0:
                return
            self._n -= k
            if self._head + k < bt.size:
                self._head += k
                return
            self._batches.popleft()
            self._head = 0

    def columns(self) -> tuple[FloatArray, ...]:
        """Copies of the window's columns (t, then the values)."""
        if not self._batches:
            return tuple(np.empty(0) for _ in range(self._cols))
        return tuple(np.concatenate([b[i] for b in self._batches])[self._head :]
                     for i in range(self._cols))  # fmt: skip


class IncrementalSlope:
    """`fit_slope` over a trailing time window of a live stream.

    add() is O(batch); fit() is O(window): the long-run variance needs the window's batch
    structure, and fitting the window's samples with `fit_slope` itself makes the live
    figures equal the offline ones exactly, not merely to rounding.
    """

    def __init__(self, window_s: float | None = None) -> None:
        """window_s: keep the samples with t >= t_latest - window_s; None keeps them all."""
        self._win = TrailingWindow(window_s)
        self.window_s = window_s

    def __len__(self) -> int:
        return len(self._win)

    def add(self, t_s: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Append a batch of finite samples; times must not go backwards."""
        self._win.add(t_s, y)

    def window(self) -> tuple[FloatArray, FloatArray]:
        """Copies of the window's (t, y)."""
        t, y = self._win.columns()
        return t, y

    def fit(self) -> SlopeFit[float] | None:
        """The fit of the current window; None below 3 samples or if all share one time."""
        if len(self._win) < 3:
            return None
        t, y = self.window()
        if not t[-1] > t[0]:
            return None
        return fit_slope(t, y)
