"""Leak onset detection: a CUSUM on the standardized leak rate of consecutive blocks.

Overlapping sliding-window slopes are strongly correlated, which breaks the CUSUM's false-
alarm arithmetic, so the record is cut into non-overlapping blocks of block_n samples. Each
block's loss rate (-slope), minus a baseline, over its standard error is N(0, 1) without a
leak (white noise), independent block to block. The one-sided upper CUSUM
S_b = max(0, S_(b-1) + z_b - k) alarms above h (k = 0.5, h = 5 by default); the expected
blocks between false alarms (ARL0) follow Siegmund's approximation, and the onset estimate is
the end of the last block where S was zero. After an alarm S restarts from zero.
`cusum_scan` does a whole record at once; `LeakCusum.update` the same on a live stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import FloatArray, _as_series

K_DEFAULT: Final = 0.5
H_DEFAULT: Final = 5.0


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Average run length, in blocks, of the one-sided CUSUM (reference k, limit h, both in
    sigma) when z has mean `shift`: ARL0 for shift 0 (false alarms), ARL1 (delay) otherwise.
    Siegmund: (exp(-2 D b) + 2 D b - 1) / (2 D^2), D = shift - k, b = h + 1.166."""
    d, b = shift - k, h + 1.166
    if abs(d) < 1e-9:
        return b * b
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


@dataclass(frozen=True)
class Alarm:
    """One CUSUM alarm: when it fired, and the estimated onset (last zero of S before it)."""

    t_alarm_s: float  # end of the block that crossed h
    t_onset_s: float  # end of the last block with S = 0 before the alarm
    block: int  # index of the alarming block


def _block_stats(t: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row (one block each): loss rate (-slope), SSE of the line, and Sxx."""
    tc = t - t.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxx = np.einsum("ij,ij->i", tc, tc)
    slope = np.einsum("ij,ij->i", tc, yc) / sxx
    r = yc - slope[:, None] * tc
    return -slope, np.einsum("ij,ij->i", r, r), sxx


@dataclass
class _Cusum:
    """CUSUM state over blocks (shared by the live class and the whole-record scan)."""

    k: float
    h: float
    baseline: float
    noise_sigma: float | None
    s: float = 0.0
    t_last_zero_s: float = math.nan
    sse_sum: float = 0.0
    dof_sum: float = 0.0
    blocks: int = 0
    span_s: float = 0.0  # summed first-to-last-sample spans of the blocks
    alarms: list[Alarm] = field(default_factory=list)

    def arl0_s(self, block_n: int) -> float:
        """ARL0 in seconds: blocks times the mean block duration (n samples, n - 1 gaps)."""
        if self.blocks == 0:
            return math.nan
        return siegmund_arl(self.k, self.h) * self.span_s / self.blocks * block_n / (block_n - 1)

    def step(self, rate: float, sse: float, sxx: float, dof: float, t_end: float,
             t_start: float) -> tuple[float, float]:  # fmt: skip
        """Advance by one block; returns (z, S)."""
        self.sse_sum += sse
        self.dof_sum += dof
        sigma = self.noise_sigma or math.sqrt(self.sse_sum / self.dof_sum)
        z = (rate - self.baseline) / (sigma / math.sqrt(sxx))
        if self.blocks == 0:
            self.t_last_zero_s = t_start  # S = 0 before the first block
        self.s = max(0.0, self.s + z - self.k)
        if self.s == 0.0:
            self.t_last_zero_s = t_end
        elif self.s > self.h:
            self.alarms.append(Alarm(t_end, self.t_last_zero_s, self.blocks))
            self.s, self.t_last_zero_s = 0.0, t_end
        self.blocks += 1
        self.span_s += t_end - t_start
        return z, self.s


@dataclass(frozen=True)
class CusumResult:
    """A whole record scanned block by block."""

    t_block_end_s: FloatArray
    leak_rate: FloatArray  # per block, series units per second, positive = losing
    z: FloatArray
    statistic: FloatArray  # S after each block (0 right after an alarm)
    alarms: list[Alarm]
    arl0_blocks: float  # expected blocks between false alarms (Siegmund)
    arl0_s: float  # the same in seconds, from the mean block duration


def cusum_scan(
    t_s: npt.ArrayLike, y: npt.ArrayLike, block_n: int, k: float = K_DEFAULT,
    h: float = H_DEFAULT, baseline_loss_rate: float = 0.0, noise_sigma: float | None = None,
) -> CusumResult:  # fmt: skip
    """CUSUM of a record (y falls when leaking, e.g. P/T); a trailing partial block is
    ignored. noise_sigma None pools the blocks' residual sigma so far (white noise)."""
    if block_n < 3:
        raise ValueError(f"block_n must be >= 3, got {block_n}")
    t, v = _as_series(t_s, y, 0)
    nb = t.size // block_n
    tb, yb = t[: nb * block_n].reshape(nb, block_n), v[: nb * block_n].reshape(nb, block_n)
    rate, sse, sxx = _block_stats(tb, yb)
    state = _Cusum(k, h, baseline_loss_rate, noise_sigma)
    z, s = np.empty(nb), np.empty(nb)
    for i in range(nb):  # the recursion is sequential; nb is samples / block_n, small
        z[i], s[i] = state.step(float(rate[i]), float(sse[i]), float(sxx[i]), block_n - 2.0,
                                float(tb[i, -1]), float(tb[i, 0]))  # fmt: skip
    return CusumResult(tb[:, -1].copy(), rate, z, s, state.alarms, siegmund_arl(k, h),
                       state.arl0_s(block_n))  # fmt: skip


class LeakCusum:
    """`cusum_scan` on a live stream: update(batch) in O(batch), same alarms to rounding."""

    def __init__(
        self, block_n: int, k: float = K_DEFAULT, h: float = H_DEFAULT,
        baseline_loss_rate: float = 0.0, noise_sigma: float | None = None,
    ) -> None:  # fmt: skip
        if block_n < 3:
            raise ValueError(f"block_n must be >= 3, got {block_n}")
        self.block_n = block_n
        self.arl0_blocks = siegmund_arl(k, h)
        self._state = _Cusum(k, h, baseline_loss_rate, noise_sigma)
        self._t: list[FloatArray] = []
        self._y: list[FloatArray] = []
        self._pending = 0

    @property
    def statistic(self) -> float:
        return self._state.s

    @property
    def arl0_s(self) -> float:
        """Expected seconds between false alarms, from the blocks seen so far (NaN before)."""
        return self._state.arl0_s(self.block_n)

    @property
    def alarms(self) -> list[Alarm]:
        return list(self._state.alarms)

    def update(self, t_s: npt.ArrayLike, y: npt.ArrayLike) -> list[Alarm]:
        """Add samples; returns the alarms raised by the blocks they completed."""
        t, v = _as_series(t_s, y, 0)
        self._t.append(t.copy())
        self._y.append(v.copy())
        self._pending += t.size
        before = len(self._state.alarms)
        if self._pending >= self.block_n:
            tt, yy = np.concatenate(self._t), np.concatenate(self._y)
            nb = tt.size // self.block_n
            used = nb * self.block_n
            tb, yb = tt[:used].reshape(nb, -1), yy[:used].reshape(nb, -1)
            rate, sse, sxx = _block_stats(tb, yb)
            for i in range(nb):
                self._state.step(float(rate[i]), float(sse[i]), float(sxx[i]),
                                 self.block_n - 2.0, float(tb[i, -1]), float(tb[i, 0]))  # fmt: skip
            self._t, self._y, self._pending = [tt[used:]], [yy[used:]], tt.size - used
        return self._state.alarms[before:]
