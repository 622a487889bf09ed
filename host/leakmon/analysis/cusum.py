"""Leak onset detection: a CUSUM on the leak rate of consecutive blocks, designed in time.

The user states the false-alarm spacing they accept per channel (default 30 days) and,
optionally, the leak they must catch; `design` turns them into the CUSUM's reference k and
limit h (Siegmund's approximation) and the expected detection delay. Overlapping windows
are strongly correlated, so the record is cut into non-overlapping blocks of block_n
samples. Each block's loss rate (-slope) minus a baseline is divided by the measured
spread of the block rates (half the mean squared difference of consecutive ones: a steady
leak cancels, a rate step adds one term). Why not another estimate, measured while designing
this on white noise plus an AR(1) three blocks slow: one block's own long-run
variance (lrv) came out 1.85x short in variance, since noise slower than a block is what
makes block rates wander; the long-run variance of the block-rate series (batch means) gave
10x too many false alarms, since slow noise makes consecutive block rates anti-correlated
(a slope is a difference) and the CUSUM's floor at zero stops that from cancelling. The
measured spread errs the safe way: on such noise false alarms come rarer than stated
(bench/validate_analysis.py section 3 prints it). The first WARMUP_BLOCKS
blocks only learn the noise (the design is redone as the noise estimate firms up, at
2^j blocks); then S_b = max(0, S_(b-1) + z_b - k) alarms above h, the onset
estimate is the end of the last block where S was zero, and S restarts from zero.
`cusum_scan` does a whole record at once; `LeakCusum.update` the same on a live stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import FloatArray, RowSums, _as_series, row_sums

BLOCK_S: Final = 10.0  # one leak-rate estimate per block: the one home of this constant
FALSE_ALARM_DAYS: Final = 30.0  # default spacing between false alarms, per channel
SHIFT_DEFAULT: Final = 1.0  # without a leak to catch: a one-standard-error block shift
WARMUP_BLOCKS: Final = 6  # blocks that only learn the noise (1 min of 10 s blocks)


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Average run length, in blocks, of the one-sided CUSUM (reference k, limit h, both in
    sigma) when z has mean `shift`: ARL0 for shift 0 (false alarms), ARL1 (delay) otherwise.
    Siegmund: (exp(-2 D b) + 2 D b - 1) / (2 D^2), D = shift - k, b = h + 1.166."""
    d, b = shift - k, h + 1.166
    if abs(d) < 1e-9:
        return b * b
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


@dataclass(frozen=True)
class Design:
    """A CUSUM designed in time: k and h in standard errors of a block's rate."""

    k: float
    h: float
    shift: float  # the leak to catch, in block standard errors
    block_s: float  # mean block duration
    false_alarm_spacing_s: float  # stated (and, by Siegmund, expected)
    expected_delay_s: float  # for the leak to catch, from its onset


def design(false_alarm_spacing_s: float, block_s: float, shift: float = SHIFT_DEFAULT) -> Design:
    """k = shift / 2 (optimal for that shift), h solving ARL0(k, h) = spacing / block_s."""
    if not (false_alarm_spacing_s > 0.0 and block_s > 0.0 and shift > 0.0):
        raise ValueError("the false-alarm spacing, block duration and shift must be positive")
    k, target = shift / 2.0, max(false_alarm_spacing_s / block_s, 2.0)
    lo, hi = 0.0, 1.0
    while siegmund_arl(k, hi) < target:
        hi *= 2.0
    for _ in range(100):  # ARL0 grows with h: bisect
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if siegmund_arl(k, mid) < target else (lo, mid)
    h = 0.5 * (lo + hi)
    delay = (siegmund_arl(k, h, shift) + 0.5) * block_s  # + half a block: onset within one
    return Design(k, h, shift, block_s, siegmund_arl(k, h) * block_s, delay)


@dataclass(frozen=True)
class Alarm:
    """One CUSUM alarm: when it fired, and the estimated onset (last zero of S before it)."""

    t_alarm_s: float  # end of the block that crossed h
    t_onset_s: float  # end of the last block with S = 0 before the alarm
    block: int  # index of the alarming block


class _Noise:
    """The spread of the block rates: half the mean squared difference of consecutive rates
    (a steady leak cancels, a rate step adds one term), inflated by 1 + 3 / differences so
    that an early estimate from a few blocks does not come out small by chance, and never
    below the pooled white-noise standard error of the block fits (precise from the first
    block; correlated noise only adds to it)."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.diff2_sum, self.diffs = 0.0, 0
        self.sse, self.dof, self.inv_sxx, self.fits = 0.0, 0.0, 0.0, 0

    def add(self, rs: RowSums, i: int) -> None:
        rate = float(rs.slope[i])
        if not math.isfinite(rate):
            return
        if self.last is not None:
            self.diff2_sum += (rate - self.last) ** 2
            self.diffs += 1
        self.last = rate
        self.sse += float(rs.sse[i])
        self.dof += rs.n - 2.0
        self.inv_sxx += 1.0 / float(rs.sxx[i])
        self.fits += 1

    def sigma(self) -> float:
        if not self.fits:
            return math.nan
        white = math.sqrt(self.sse / self.dof * self.inv_sxx / self.fits)
        if not self.diffs:
            return white
        spread = math.sqrt(self.diff2_sum / self.diffs / 2.0) * (1.0 + 3.0 / self.diffs)
        return max(white, spread)


@dataclass
class _Cusum:
    """CUSUM state over blocks (shared by the live class and the whole-record scan)."""

    spacing_s: float
    catch_loss_rate: float | None  # y units per second
    baseline: float
    noise_sigma: float | None  # per sample (white); None: learnt from the blocks
    s: float = 0.0
    t_last_zero_s: float = math.nan
    noise: _Noise = field(default_factory=_Noise)
    blocks: int = 0
    span_s: float = 0.0  # summed first-to-last-sample spans of the blocks
    plan: Design | None = None
    alarms: list[Alarm] = field(default_factory=list)

    def step(self, rs: RowSums, i: int, t_end: float, t_start: float) -> tuple[float, float]:
        """Advance by block i of rs; returns (z, S)."""
        block_n = rs.n
        if math.isnan(self.t_last_zero_s):
            self.t_last_zero_s = t_start  # S = 0 before the first block
        self.noise.add(rs, i)
        self.blocks += 1
        self.span_s += t_end - t_start
        sxx = float(rs.sxx[i])
        sigma = self.noise_sigma / math.sqrt(sxx) if self.noise_sigma else self.noise.sigma()
        rate = -float(rs.slope[i])
        z = (rate - self.baseline) / sigma if sigma > 0.0 else 0.0
        if self.blocks < WARMUP_BLOCKS and self.noise_sigma is None:
            self.t_last_zero_s = t_end
            return z, 0.0
        if self.plan is None or self.blocks & (self.blocks - 1) == 0:  # redesign at 2^j blocks
            block_s = self.span_s / self.blocks * block_n / (block_n - 1)
            shift = self.catch_loss_rate / sigma if self.catch_loss_rate and sigma > 0 \
                else SHIFT_DEFAULT  # fmt: skip
            self.plan = design(self.spacing_s, block_s, shift)
        self.s = max(0.0, self.s + z - self.plan.k)
        if self.s == 0.0:
            self.t_last_zero_s = t_end
        elif self.s > self.plan.h:
            self.alarms.append(Alarm(t_end, self.t_last_zero_s, self.blocks - 1))
            self.s, self.t_last_zero_s = 0.0, t_end
        return z, self.s


@dataclass(frozen=True)
class CusumResult:
    """A whole record scanned block by block."""

    t_block_end_s: FloatArray
    leak_rate: FloatArray  # per block, series units per second, positive = losing
    z: FloatArray
    statistic: FloatArray  # S after each block (0 right after an alarm and in warm-up)
    alarms: list[Alarm]
    plan: Design | None  # None if the record is shorter than the warm-up

    @property
    def arl0_s(self) -> float:
        return self.plan.false_alarm_spacing_s if self.plan else math.nan


def cusum_scan(
    t_s: npt.ArrayLike, y: npt.ArrayLike, block_n: int,
    false_alarm_spacing_s: float = FALSE_ALARM_DAYS * 86400.0,
    catch_loss_rate: float | None = None, baseline_loss_rate: float = 0.0,
    noise_sigma: float | None = None,
) -> CusumResult:  # fmt: skip
    """CUSUM of a record (y falls when leaking, e.g. P/T); a trailing partial block is
    ignored. catch_loss_rate (y units per second) sets k; noise_sigma None pools the blocks'
    long-run variances so far."""
    if block_n < 3:
        raise ValueError(f"block_n must be >= 3, got {block_n}")
    t, v = _as_series(t_s, y, 0)
    nb = t.size // block_n
    tb, yb = t[: nb * block_n].reshape(nb, block_n), v[: nb * block_n].reshape(nb, block_n)
    state = _Cusum(false_alarm_spacing_s, catch_loss_rate, baseline_loss_rate, noise_sigma)
    z, s = np.empty(nb), np.empty(nb)
    rate = np.empty(0)
    if nb:
        rs = row_sums(tb, yb)
        rate = -rs.slope
        for i in range(nb):  # the recursion is sequential; nb is samples / block_n, small
            z[i], s[i] = state.step(rs, i, float(tb[i, -1]), float(tb[i, 0]))
    return CusumResult(tb[:, -1].copy(), rate, z, s, state.alarms, state.plan)


class LeakCusum:
    """`cusum_scan` on a live stream: update(batch) in O(batch), the same alarms."""

    def __init__(
        self, block_n: int, false_alarm_spacing_s: float = FALSE_ALARM_DAYS * 86400.0,
        catch_loss_rate: float | None = None, baseline_loss_rate: float = 0.0,
        noise_sigma: float | None = None,
    ) -> None:  # fmt: skip
        if block_n < 3:
            raise ValueError(f"block_n must be >= 3, got {block_n}")
        self.block_n = block_n
        self._state = _Cusum(false_alarm_spacing_s, catch_loss_rate, baseline_loss_rate,
                             noise_sigma)  # fmt: skip
        self._t: list[FloatArray] = []
        self._y: list[FloatArray] = []
        self._pending = 0

    @property
    def statistic(self) -> float:
        return self._state.s

    @property
    def plan(self) -> Design | None:
        """The design, once the warm-up has learnt the noise."""
        return self._state.plan

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
            rs = row_sums(tb, yb)
            for i in range(nb):
                self._state.step(rs, i, float(tb[i, -1]), float(tb[i, 0]))
            self._t, self._y, self._pending = [tt[used:]], [yy[used:]], tt.size - used
        return self._state.alarms[before:]
