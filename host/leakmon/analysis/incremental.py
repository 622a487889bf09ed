"""`fit_slope` over the trailing window of a live stream, in O(batch) per update."""

from __future__ import annotations

import math
from collections import deque
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import (
    FloatArray,
    SlopeFit,
    _as_series,
    _finish_one,
    _from_sums,
)

_MIN_BLOCK: Final = 64


def _run_sums(tt: FloatArray, yy: FloatArray) -> FloatArray:
    """The nine window sums of one contiguous run of samples (pairs inside the run only)."""
    ta, tb, ya, yb = tt[:-1], tt[1:], yy[:-1], yy[1:]
    return np.array([tt.sum(), yy.sum(), tt @ tt, tt @ yy, yy @ yy,
                     ta @ tb, ta @ yb, ya @ tb, ya @ yb])  # fmt: skip


def _pair_sums(t_a: float, y_a: float, t_b: float, y_b: float) -> FloatArray:
    """The pair terms of two neighbouring samples that lie in different runs."""
    return np.array([0.0, 0.0, 0.0, 0.0, 0.0, t_a * t_b, t_a * y_b, y_a * t_b, y_a * y_b])


class IncrementalSlope:
    """`fit_slope` over a trailing time window of a live stream, O(batch) per `add`.

    Keeps the window's samples (a deque of batches) and their sums taken from an origin near
    the window, so adding and dropping samples never re-sums history. Once as many samples
    have arrived as the window holds, it is re-summed from its first sample (amortized O(1)
    per sample), which keeps rounding and cancellation from building up over long runs.
    """

    def __init__(self, window_s: float | None = None) -> None:
        """window_s: keep the samples with t >= t_latest - window_s; None keeps them all."""
        if window_s is not None and not (window_s > 0.0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive finite number or None, got {window_s}")
        self.window_s = window_s
        self._batches: deque[tuple[FloatArray, FloatArray]] = deque()
        self._head = 0  # samples of the first batch already dropped
        self._n = 0
        self._origin = (0.0, 0.0)
        self._first = (np.float64(0.0), np.float64(0.0))  # the window's first sample
        self._sums = np.zeros(9)
        self._since_rebase = 0

    def __len__(self) -> int:
        return self._n

    def add(self, t_s: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Append a batch of finite samples; times must not go backwards."""
        t, v = _as_series(t_s, y, 0)
        if t.size == 0:
            return
        t, v = t.copy(), v.copy()  # the caller may reuse its buffers
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ValueError("samples must be finite (a NaN would poison the running sums)")
        if np.any(np.diff(t) < 0.0) or (self._n and t[0] < self._batches[-1][0][-1]):
            raise ValueError("sample times must not decrease")
        if self._n == 0:
            self._origin, self._first = (float(t[0]), float(v[0])), (t[0], v[0])
        t0, y0 = self._origin
        self._sums += _run_sums(t - t0, v - y0)
        if self._n:
            lt, ly = self._batches[-1][0][-1], self._batches[-1][1][-1]
            self._sums += _pair_sums(lt - t0, ly - y0, t[0] - t0, v[0] - y0)
        self._batches.append((t, v))
        self._n += t.size
        self._since_rebase += t.size
        if self.window_s is None:  # growing forever: only the newest sample is needed
            while len(self._batches) > 1:
                self._batches.popleft()
        else:
            self._drop_before(float(t[-1]) - self.window_s)
            if self._since_rebase >= max(self._n, _MIN_BLOCK):
                self._rebase()

    def _drop_before(self, cutoff_s: float) -> None:
        t0, y0 = self._origin
        while True:  # whole batches, then part of one; the newest sample always stays
            bt, by = self._batches[0]
            h = self._head
            k = int(np.searchsorted(bt[h:], cutoff_s, side="left"))
            if k == 0:
                return
            gone_t, gone_y = bt[h : h + k] - t0, by[h : h + k] - y0
            whole = h + k == bt.size
            nb, j = (self._batches[1], 0) if whole else ((bt, by), h + k)  # first kept sample
            nt, ny = self._first = nb[0][j], nb[1][j]
            self._sums -= _run_sums(gone_t, gone_y)
            self._sums -= _pair_sums(gone_t[-1], gone_y[-1], nt - t0, ny - y0)
            self._n -= k
            if not whole:
                self._head += k
                return
            self._batches.popleft()
            self._head = 0

    def _rebase(self) -> None:
        """Re-sum the window exactly from its first sample, merging the batches into one."""
        t = np.concatenate([b[0] for b in self._batches])[self._head :]
        v = np.concatenate([b[1] for b in self._batches])[self._head :]
        self._batches, self._head, self._since_rebase = deque([(t, v)]), 0, 0
        self._origin, self._first = (float(t[0]), float(v[0])), (t[0], v[0])
        self._sums = _run_sums(t - t[0], v - v[0])

    def window(self) -> tuple[FloatArray, FloatArray]:
        """Copies of the window's (t, y): for fits that need the samples, e.g. the
        exponential model of `decay` (O(window), so call it less often than `add`)."""
        if self.window_s is None:
            raise ValueError("window_s=None keeps only running sums, not the samples")
        t = np.concatenate([b[0] for b in self._batches])[self._head :]
        v = np.concatenate([b[1] for b in self._batches])[self._head :]
        return t, v

    def fit(self) -> SlopeFit[float] | None:
        """The fit of the current window; None below 3 samples or if all share one time."""
        if self._n < 3:
            return None
        # numpy float64 scalars throughout: a zero Sxx divides to inf instead of raising.
        t0, y0 = self._origin
        first = (self._first[0] - t0, self._first[1] - y0)
        t_end, y_end = self._batches[-1][0][-1], self._batches[-1][1][-1]
        last = (t_end - t0, y_end - y0)
        b, sxx, sse, lag, tm, ym = _from_sums(self._n, tuple(self._sums), first, last)
        if not sxx > 0.0:
            return None
        return _finish_one(self._n, b, sxx, sse, lag, tm + t0, ym + y0, t_end)
