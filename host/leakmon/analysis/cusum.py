"""Leak onset detection: a CUSUM on the leak rate of consecutive blocks, designed in time.

The user states the false-alarm spacing they accept per channel (default 30 days) and,
optionally, the leak they must catch; `design` turns them into the CUSUM's reference k and
limit h (Siegmund's approximation) and the expected detection delay. Overlapping windows
are strongly correlated, so the record is cut into non-overlapping blocks of block_n
samples, one loss rate (-slope) per block.

Why the block rates are whitened before they are summed. Siegmund's ARL holds for
independent increments. Block rates of real noise are not independent: the slope of a slow
component is a difference, so consecutive rates are anti-correlated, and a slow wander
carries the correlation over many blocks (white + 3x AR(1) of 30 s, 10 s blocks: rho1..6
from -0.09 to -0.02). What sets a CUSUM's false-alarm rate is the correlation over its own
memory (a few to a few tens of blocks), which neither one block's variance nor the
infinite-horizon one describes. Measured (bench/validate_analysis.py section 3, and while
designing this on 2-20 M samples with the covariances known): standardizing the rates by
half their mean squared successive difference (the previous design) gave false alarms up
to 30x rarer than stated on such noise, by their own spread 1.4-30x rarer, by the
long-run variance of the rate series (batch means) 10x more often. An AR(p) fitted to the
block rates (Yule-Walker by Levinson, order by AIC up to MAX_ORDER) turns them into
innovations e_b = x_b - sum phi_j x_(b-j), independent to the precision of the fit, and
Siegmund holds again: with the covariances known, order 16 gave 0.95-1.05x the stated
spacing on white, AR(1) of 10-100 s, white + AR(1) and flicker (1.12x on white + 3x
flicker); order 1 gave up to 3.8x. A leak delta shifts the innovations by
delta (1 - sum phi), which in innovation standard errors is delta / sqrt(long-run variance
of the block rates): the leak to catch is measured against the long-run variance, at the
blocks' own scale. The innovations reach that shift over the filter's order (a transient
the expected delay accounts for).

The first WARMUP_BLOCKS blocks only learn the noise; the model is refitted, and the design
redone, at 2^j blocks or soon after where S is zero (covariances centred on the mean rate,
anew after an alarm, so a steady or a flagged leak does not look like noise; a leak that
stays below the alarm inflates the noise estimate, the safe side). Neither standard error
goes below the white-noise standard error pooled from the block fits (an innovation
variance, and a long-run one, is at least that of its white part; innovations measured
1.0-12x above it), and both are inflated for the error of a model learnt from few blocks
(`NoiseModel.inflated`: without it the first 2 h ran 1.3-3x the stated false-alarm rate,
bench/RESULTS.md). Then
S_b = max(0, S_(b-1) + z_b - k) alarms above h, the onset estimate is the end of the last
block where S was zero, and S restarts from zero. `cusum_scan` does a whole record at once;
`LeakCusum.update` the same on a live stream (the same steps, the same numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import FloatArray, RowSums, _as_series, row_sums

BLOCK_S: Final = 10.0  # one leak-rate estimate per block: the one home of this constant
FALSE_ALARM_DAYS: Final = 30.0  # default spacing between false alarms, per channel
SHIFT_DEFAULT: Final = 1.0  # without a leak to catch: a shift of one long-run standard error
WARMUP_BLOCKS: Final = 6  # blocks that only learn the noise (1 min of 10 s blocks)
# Whitening order: with the covariances known, order 8 brought every measured family within
# 1.13x of the stated spacing and 16 within 1.05x (1.12x on white + 3x flicker).
MAX_ORDER: Final = 16
BLOCKS_PER_LAG: Final = 32
# An early fit's order is at most blocks / BLOCKS_PER_LAG: from 64-256 blocks, orders up to
# n / 10 fitted sum phi = -0.5 to -0.7 where the truth was -0.1 to -0.3, so a slow drift
# looked 1.3-1.5x larger than it was. Measured, 300 drawn 2 h records in each of 4 families,
# 30-day design, 3.3 false alarms expected: n / 10 gave 16, n / 32 gave 6. The estimate's
# remaining error is paid for by `NoiseModel.inflated`.
MIN_SEGMENT: Final = 2 * MAX_ORDER  # blocks before an alarm may start a new noise segment


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Average run length, in blocks, of the one-sided CUSUM (reference k, limit h, both in
    sigma) when z has mean `shift`: ARL0 for shift 0 (false alarms), ARL1 (delay) otherwise.
    Siegmund: (exp(-2 D b) + 2 D b - 1) / (2 D^2), D = shift - k, b = h + 1.166."""
    d, b = shift - k, h + 1.166
    if abs(d) < 1e-9:
        return b * b
    if -2.0 * d * b > 700.0:
        return math.inf  # beyond any record (and beyond a float's exp)
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


@dataclass(frozen=True)
class Design:
    """A CUSUM designed in time: k and h in standard errors of a block's innovation."""

    k: float
    h: float
    shift: float  # the leak to catch, in long-run standard errors of a block's rate
    block_s: float  # mean block duration
    false_alarm_spacing_s: float  # stated (and, by Siegmund, expected)
    expected_delay_s: float  # for the leak to catch, from its onset


def design(
    false_alarm_spacing_s: float, block_s: float, shift: float = SHIFT_DEFAULT,
    ramp: npt.ArrayLike = (),
) -> Design:  # fmt: skip
    """k = shift / 2 (optimal for that shift), h solving ARL0(k, h) = spacing / block_s.

    ramp: the share of the steady shift that the innovations of the first blocks of a new
    leak carry (`NoiseModel.ramp`; empty for white noise). The expected delay is the first
    of those blocks where their mean drift alone crosses h, else the ramp plus Siegmund's
    ARL1 for what is left of the climb."""
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
    climb = np.cumsum(shift * np.asarray(ramp, dtype=np.float64) - k)
    crossed = np.flatnonzero(climb > h)
    if crossed.size:
        blocks = float(crossed[0] + 1)
    else:
        left = h - max(float(climb[-1]), 0.0) if climb.size else h
        blocks = climb.size + siegmund_arl(k, left, shift)
    delay = (blocks + 0.5) * block_s  # + half a block: the onset falls within one
    return Design(k, h, shift, block_s, siegmund_arl(k, h) * block_s, delay)


def arl_sensitivity(k: float, h: float) -> float:
    """d ln ARL0 / d ln r^2 when the standard error the CUSUM divides by is r times the
    truth (k and h become r k, r h in true standard errors), by Siegmund, numerically."""
    eps = 1e-4
    up = siegmund_arl(k * (1.0 + eps), h * (1.0 + eps))
    down = siegmund_arl(k * (1.0 - eps), h * (1.0 - eps))
    return (math.log(up) - math.log(down)) / (4.0 * eps)


def inflation(sensitivity: float, rel_var: float, floor2: float = 0.0) -> float:
    """g >= 1 with E[exp(-c (max(g^2 X, floor2) - 1))] = 1, X chi-square with 2 / rel_var
    degrees of freedom over them, c = sensitivity (`NoiseModel.inflated` says why). By
    quadrature on a log grid of X and bisection: done at each redesign, not per block."""
    if not (sensitivity > 0.0 and rel_var > 0.0) or floor2 >= 1.0:
        return 1.0
    alpha = 1.0 / rel_var  # shape; scale rel_var, mean 1
    x = np.geomspace(1e-9, 1.0 + 60.0 * math.sqrt(rel_var) + 60.0 * rel_var, 1500)
    logw = alpha * np.log(x) - x / rel_var  # density * x: the weight per step of ln x
    w = np.exp(logw - logw.max())
    w /= w.sum()

    def excess(g2: float) -> float:  # the mean false-alarm rate over the stated one, less 1
        return float(w @ np.exp(-sensitivity * (np.maximum(g2 * x, floor2) - 1.0))) - 1.0

    if excess(1.0) <= 0.0:
        return 1.0
    lo, hi = 1.0, 2.0
    while excess(hi) > 0.0 and hi < 1e6:
        lo, hi = hi, 2.0 * hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0.0 else (lo, mid)
    return math.sqrt(hi)


@dataclass(frozen=True)
class Alarm:
    """One CUSUM alarm: when it fired, and the estimated onset (last zero of S before it)."""

    t_alarm_s: float  # end of the block that crossed h
    t_onset_s: float  # end of the last block with S = 0 before the alarm
    block: int  # index of the alarming block


def levinson(acov: FloatArray, order: int) -> tuple[FloatArray, float]:
    """Yule-Walker AR(order) coefficients phi_1..phi_order and the innovation variance from
    autocovariances acov[0..order] (Levinson-Durbin)."""
    phi, v = np.zeros(0), float(acov[0])
    for m in range(1, order + 1):
        if not v > 0.0:
            break
        refl = (float(acov[m]) - float(phi @ acov[m - 1 : 0 : -1])) / v
        if not abs(refl) < 1.0:
            break  # not positive definite: phi stops short of the order asked
        phi = np.append(phi - refl * phi[::-1], refl)
        v *= 1.0 - refl * refl
    return phi, v


@dataclass(frozen=True)
class NoiseModel:
    """The block rates' noise: x_b = sum phi_j x_(b-j) + e_b, e_b of standard error
    sigma_e; sigma_lr is the long-run standard error sigma_e / (1 - sum phi)."""

    phi: FloatArray
    sigma_e: float
    sigma_lr: float
    lrv_rel_var: float = 0.0  # relative variance of the long-run variance's estimate
    white_se: float = 0.0  # pooled white-noise standard error of the block fits: a floor

    def inflated(self, sensitivity: float) -> NoiseModel:
        """The model with both standard errors scaled alike (their ratio is the whitening
        filter's), so that the false-alarm rate averaged over the long-run variance's
        estimation error is the stated one, and neither below the white floor.

        Why. What sets a CUSUM's false-alarm rate is the long-run variance of what it
        sums: with sigma_lr estimated r^2 times the truth, its k and h are r times larger
        in true standard errors and ln ARL0 grows by `sensitivity` * ln r^2 (c = d ln ARL0 /
        d ln r^2: 10 for the default 30-day design, 4 for an hour). The false-alarm rate is
        convex in r^2: an estimate low by as much as another is high costs far more alarms
        than that one saves (1.3-3x the stated rate measured over the first 2 h with a fixed
        1 + 3 / n). The white floor cuts that costly low side: an independent white part
        adds its own variance to the long-run one, so sigma_lr >= white_se (the within-block
        residuals overstate the white part only for correlated noise; measured over 20 h of
        every family, fitted sigma_lr / white_se >= 0.99). So with r^2 chi-square with
        nu = 2 / V degrees of freedom over nu (V = lrv_rel_var: 2 / n for white rates, + 4 p / n
        for an AR(p), the asymptotic variance of an AR spectral estimate at frequency 0) and
        f = (white_se / sigma_lr)^2, g solves E[exp(-c (max(g^2 r^2, f) - 1))] = 1. Without
        the floor g^2 = (exp(c V) - 1) / (c V), 1 + c V / 2 for many blocks (a t quantile
        over a normal one, nothing left after a few hours); on white noise the floor holds
        the estimate and g stays near 1 (a steady leak from the start is still flagged early:
        tests/hil/test_cli_analyze.py)."""
        if not (self.sigma_e > 0.0 and self.sigma_lr > 0.0):  # rates all alike: white only
            lr = self.white_se / (1.0 - float(self.phi.sum()))
            return NoiseModel(self.phi, self.white_se, lr, self.lrv_rel_var, self.white_se)
        floor = max(self.white_se / self.sigma_e, self.white_se / self.sigma_lr)
        g = max(inflation(sensitivity, self.lrv_rel_var, floor * floor), floor)
        if g == 1.0:
            return self
        return NoiseModel(self.phi, self.sigma_e * g, self.sigma_lr * g, self.lrv_rel_var,
                          self.white_se)  # fmt: skip

    @property
    def ramp(self) -> FloatArray:
        """Block m of a new leak shifts the innovation by (1 - sum_(j<m) phi_j) of the leak:
        that as a share of the steady (1 - sum phi), m = 1..order."""
        before = np.cumsum(self.phi) - self.phi  # sum_(j<m) phi_j; empty for white noise
        return np.asarray((1.0 - before) / (1.0 - float(self.phi.sum())), dtype=np.float64)


class _Noise:
    """Autocovariances of the block rates at lags 0..MAX_ORDER and the pooled white-noise
    standard error of the block fits. The rates are cut into segments at alarms (segments
    of at least MIN_SEGMENT blocks), each centred on its own mean, so that a leak (a new
    mean) is not taken for noise once it has been flagged; lag products stay within a
    segment. The sum over segments of each one's biased autocovariance keeps the estimate
    positive definite, which the AR fit needs. (Tried first: covariances from the variogram,
    where a steady leak cancels, with c_0 from lags beyond the order; not positive definite,
    it gave AR fits with sum phi = -10 and 2x too many alarms on some seeds.)"""

    def __init__(self) -> None:
        self.done = np.zeros(MAX_ORDER + 1)  # centred lag sums of the finished segments
        self.done_n, self.segments = 0, 0
        self._new_segment()
        self.sse, self.dof, self.inv_sxx, self.fits = 0.0, 0.0, 0.0, 0

    def _new_segment(self) -> None:
        self.ref: float | None = None  # the segment's first rate: sums of rate - ref stay small
        self.n, self.total = 0, 0.0
        self.lagsum = np.zeros(MAX_ORDER + 1)  # sum_b x_b x_(b-j) within the segment
        self.head: list[float] = []  # its first MAX_ORDER x's
        self.recent = np.zeros(MAX_ORDER + 1)  # its last MAX_ORDER + 1 x's, newest first

    def add(self, rs: RowSums, i: int) -> None:
        rate = float(rs.slope[i])
        if not math.isfinite(rate):
            return
        if self.ref is None:
            self.ref = rate
        x = rate - self.ref
        self.recent[1:] = self.recent[:-1]
        self.recent[0] = x
        k = min(self.n + 1, MAX_ORDER + 1)
        self.lagsum[:k] += x * self.recent[:k]
        if len(self.head) < MAX_ORDER:
            self.head.append(x)
        self.n += 1
        self.total += x
        self.sse += float(rs.sse[i])
        self.dof += rs.n - 2.0
        self.inv_sxx += 1.0 / float(rs.sxx[i])
        self.fits += 1

    def split(self) -> None:
        """An alarm: what follows may have another mean; start a new segment, unless this one
        is still short (a leak that goes on alarms every few blocks: one segment holds it)."""
        if self.n < MIN_SEGMENT:
            return
        self.done += self._centred()
        self.done_n += self.n
        self.segments += 1
        self._new_segment()

    def _centred(self) -> FloatArray:
        """The segment's sums of (x_b - mean)(x_(b-j) - mean) at lags 0..MAX_ORDER."""
        n = self.n
        if n == 0:
            return np.zeros(MAX_ORDER + 1)
        m, j = self.total / n, np.arange(MAX_ORDER + 1)
        k = min(n, MAX_ORDER)
        head = np.zeros(MAX_ORDER + 1)
        head[1 : k + 1] = np.cumsum(self.head[:k])  # sums of the first j x's
        head[k + 1 :] = head[k]
        tail = np.zeros(MAX_ORDER + 1)
        tail[1 : k + 1] = np.cumsum(self.recent[:k])  # sums of the last j x's
        tail[k + 1 :] = tail[k]
        out = self.lagsum - m * (2.0 * self.total - head - tail) + (n - j) * m * m
        return np.where(j < n, out, 0.0)

    def white_se(self) -> float:
        return math.sqrt(self.sse / self.dof * self.inv_sxx / self.fits) if self.fits else 0.0

    def blocks(self) -> int:
        return self.done_n + self.n

    def acov(self, order: int) -> FloatArray:
        """Biased (positive definite) autocovariances at lags 0..order; the divisor counts
        one mean per segment (unbiased at lag 0 for independent rates)."""
        dof = self.blocks() - self.segments - (self.n > 0)
        return np.asarray((self.done + self._centred())[: order + 1] / max(dof, 1))

    def model(self) -> NoiseModel:
        """AR(p) over p <= min(MAX_ORDER, n / BLOCKS_PER_LAG) by Akaike's final prediction
        error, which is also the innovation variance used (the error of predicting blocks
        the fit has not seen, not the smaller in-sample one). Neither the white floor nor
        the allowance for the fit's own error is applied yet: `NoiseModel.inflated`."""
        white, n = self.white_se(), self.blocks()
        phi, v = np.zeros(0), 0.0
        if n >= 2:
            c = self.acov(min(MAX_ORDER, n // BLOCKS_PER_LAG))
            best = math.inf
            for p in range(c.size):
                phi_p, v_p = levinson(c, p)
                if phi_p.size < p or not v_p > 0.0:
                    break  # rounding at the edge of positive definiteness
                fpe = v_p * (n + p + 1.0) / max(n - p - 1.0, 1.0)
                if fpe < best:
                    best, phi, v = fpe, phi_p, fpe
        sigma_e = math.sqrt(max(v, 0.0))
        lrv_rel_var = (2.0 + 4.0 * phi.size) / max(n, 1)
        return NoiseModel(phi, sigma_e, sigma_e / (1.0 - float(phi.sum())), lrv_rel_var, white)


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
    next_design: int = 0  # blocks at which the next design is due
    phase: float = 0.0  # in [0, 1): the redesign after 2^j blocks falls due phase * 2^j / 4 later
    model: NoiseModel | None = None
    phi: tuple[float, ...] = ()  # the model's, as floats for the per-block sum
    past: list[float] = field(default_factory=list)  # recent loss rates above baseline
    alarms: list[Alarm] = field(default_factory=list)

    def _design(self, model: NoiseModel, block_s: float) -> Design:
        shift = self.catch_loss_rate / model.sigma_lr \
            if self.catch_loss_rate and model.sigma_lr > 0 else SHIFT_DEFAULT  # fmt: skip
        return design(self.spacing_s, block_s, shift, model.ramp)

    def step(self, rs: RowSums, i: int, t_end: float, t_start: float) -> tuple[float, float]:
        """Advance by block i of rs; returns (z, S)."""
        block_n = rs.n
        if math.isnan(self.t_last_zero_s):
            self.t_last_zero_s = t_start  # S = 0 before the first block
        self.noise.add(rs, i)
        self.blocks += 1
        self.span_s += t_end - t_start
        x = -float(rs.slope[i]) - self.baseline
        if not math.isfinite(x):
            return 0.0, self.s  # a block without a rate: skipped
        if self.noise_sigma is not None:  # known white noise: no learning, no whitening
            se = self.noise_sigma / math.sqrt(float(rs.sxx[i]))
            self.model = NoiseModel(np.zeros(0), se, se)
        elif self.blocks < WARMUP_BLOCKS:
            self.past.insert(0, x)
            self.t_last_zero_s = t_end
            return 0.0, 0.0
        # Redesign at 2^j blocks, or at the first block after it that starts with S = 0, at
        # most 2^j / 4 blocks later: Siegmund's ARL is for a run from S = 0 under one
        # (k, h, sigma), so a new design starts at such a renewal where it can. Mid-climb it
        # would rescale the S a leak has built, with a model that has just learnt the leak's
        # first blocks as noise (a hole opening 2 blocks before a redesign was flagged 14
        # blocks after it, 8 with the previous fixed allowance, 4 this way). The bound keeps
        # a leak from the start from holding the warm-up's design for ever.
        due = self.next_design
        renewal = self.s == 0.0 or self.blocks >= due + due // 4
        if self.plan is None or (self.blocks >= due and renewal):
            # The next power of 2, shifted by the phase: the channels of nodes started
            # together (a gateway's restart) would otherwise all redesign on one block, at
            # 0.2-0.5 ms each (bench/bench_redesign.py). The renewal rule above is unchanged.
            after = 1 << self.blocks.bit_length()
            self.next_design = after + int(self.phase * (after >> 2))
            block_s = self.span_s / self.blocks * block_n / (block_n - 1)
            if self.noise_sigma is None:  # a design for the model as learnt, then for its error
                fitted = self.noise.model()
                first = self._design(fitted, block_s)
                self.model = fitted.inflated(arl_sensitivity(first.k, first.h))
            assert self.model is not None
            self.plan = self._design(self.model, block_s)
            self.phi = tuple(self.model.phi.tolist())
        m = self.model
        assert m is not None
        e = x - sum(p * xp for p, xp in zip(self.phi, self.past))
        self.past.insert(0, x)
        del self.past[MAX_ORDER:]
        z = e / m.sigma_e if m.sigma_e > 0.0 else 0.0
        self.s = max(0.0, self.s + z - self.plan.k)
        if self.s == 0.0:
            self.t_last_zero_s = t_end
        elif self.s > self.plan.h:
            self.alarms.append(Alarm(t_end, self.t_last_zero_s, self.blocks - 1))
            self.s, self.t_last_zero_s = 0.0, t_end
            self.noise.split()
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
    model: NoiseModel | None  # the block rates' noise the plan was made for

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
    ignored. catch_loss_rate (y units per second) sets k; noise_sigma (per sample, white)
    None learns the noise from the blocks."""
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
    return CusumResult(tb[:, -1].copy(), rate, z, s, state.alarms, state.plan, state.model)


class LeakCusum:
    """`cusum_scan` on a live stream: update(batch) in O(batch), the same alarms."""

    def __init__(
        self, block_n: int, false_alarm_spacing_s: float = FALSE_ALARM_DAYS * 86400.0,
        catch_loss_rate: float | None = None, baseline_loss_rate: float = 0.0,
        noise_sigma: float | None = None, phase: float = 0.0,
    ) -> None:  # fmt: skip
        """phase in [0, 1): where this detector's blocks and redesigns fall, so that the
        channels of nodes started together (a gateway's restart) do not all complete a
        block, or redesign, on the same frame: the first int(phase * block_n) samples are
        left out (the blocks start there), and the redesigns due after 2^j blocks wait
        phase * 2^j / 4 blocks more (`_Cusum.step`). A gateway gives each node its own;
        0 is `cusum_scan`'s schedule."""
        if block_n < 3:
            raise ValueError(f"block_n must be >= 3, got {block_n}")
        if not 0.0 <= phase < 1.0:
            raise ValueError(f"phase must be in [0, 1), got {phase}")
        self.block_n = block_n
        self._skip = int(phase * block_n)  # samples still to leave out before the first block
        self._state = _Cusum(false_alarm_spacing_s, catch_loss_rate, baseline_loss_rate,
                             noise_sigma, phase=phase)  # fmt: skip
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
    def model(self) -> NoiseModel | None:
        """The block rates' noise the plan was made for."""
        return self._state.model

    @property
    def alarms(self) -> list[Alarm]:
        return list(self._state.alarms)

    def update(self, t_s: npt.ArrayLike, y: npt.ArrayLike) -> list[Alarm]:
        """Add samples; returns the alarms raised by the blocks they completed."""
        t, v = _as_series(t_s, y, 0)
        if self._skip:
            k = min(self._skip, t.size)
            t, v, self._skip = t[k:], v[k:], self._skip - k
        self._t = [*self._t, t.copy()]  # a new list: update_rows may share it among a node's detectors
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

    @classmethod
    def update_rows(cls, cusums: Sequence[LeakCusum], t_s: FloatArray, y: FloatArray) -> list[list[Alarm]] | None:
        """update(t_s, y[c]) of cusums[c] for each c, the blocks they complete fitted in one
        row_sums (a node's channels sample on one time axis and fill their blocks together).
        None, with nothing taken, unless all share the block size and what they hold pending."""
        if not cusums or y.shape != (len(cusums), t_s.shape[0]):
            return None
        c0 = cusums[0]
        if any(c.block_n != c0.block_n or c._pending != c0._pending or c._skip != c0._skip for c in cusums):
            return None
        for c in cusums[1:]:  # the samples pending are on one time axis (one list, or equal)
            if c._t is not c0._t and (len(c._t) != len(c0._t) or any(a is not b for a, b in zip(c._t, c0._t))):
                if c0._pending and not np.array_equal(np.concatenate(c._t), np.concatenate(c0._t)):
                    return None
        if c0._skip:
            k = min(c0._skip, t_s.shape[0])
            t_s, y = t_s[k:], y[:, k:]
            for c in cusums:
                c._skip -= k
        # The pending times, one list for all (update() replaces rather than appends to it):
        # the check above is then one identity test a detector.
        times = [*c0._t, t_s.copy()]
        for c, row in zip(cusums, y.copy()):
            c._t = times
            c._y.append(row)
            c._pending += t_s.shape[0]
        befores = [len(c._state.alarms) for c in cusums]
        if c0._pending >= c0.block_n:
            tt = np.concatenate(c0._t)
            yy = np.stack([np.concatenate(c._y) for c in cusums])
            nb = tt.size // c0.block_n
            used = nb * c0.block_n
            tb = tt[:used].reshape(nb, -1)
            rs = row_sums(np.broadcast_to(tb, (len(cusums), nb, c0.block_n)).reshape(-1, c0.block_n),
                          yy[:, :used].reshape(-1, c0.block_n))
            ends, starts = tb[:, -1].tolist(), tb[:, 0].tolist()
            rest = [tt[used:]]
            for k, c in enumerate(cusums):
                for i in range(nb):
                    c._state.step(rs, k * nb + i, ends[i], starts[i])
                c._t, c._y, c._pending = rest, [yy[k, used:]], rest[0].size
        return [c._state.alarms[b:] for c, b in zip(cusums, befores)]
