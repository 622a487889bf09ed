"""Which model holds over a record, its current rate, hole size and time to a limit.

Into vacuum the flow is choked, mdot proportional to P, so P/T = a exp(-t/tau) with
tau = V / (Cd A c*) (REFERENCE 2); a slow leak is a straight line. Real leaks also change
(a crack sealing, ice forming): then neither holds, and a rate over the whole record is
neither the start rate nor the end rate. So each model gets a lack-of-fit test (the
curvature of y, or of ln y, against its long-run standard error); the line is kept while it
fits, the exponential when it fits a decay the line cannot, and otherwise the model is
"neither", with a reason and a local rate over a recent window (rule: `local_rate`).
The current rate under the model that holds is the headline everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from leakmon import units
from leakmon.analysis import lrv
from leakmon.analysis.fit import FloatArray, SlopeFit, _as_series, fit_slope, fit_slopes

LACK_OF_FIT_Z: Final = 4.0  # |curvature z| above which a model is rejected
LOF_DEGREE: Final = 4  # the lack-of-fit noise comes from a quartic's residuals ...
LOF_FIRST_MODE: Final = 5  # ... and its modes 5.. (a smooth misfit lives below)
LOF_MIN_N: Final = 2 * (LOF_DEGREE + 1)  # below: too few residual degrees of freedom, no test
LOCAL_MIN_N: Final = 64  # the shortest local window, in samples
CD_DEFAULT: Final = 0.6
Model = Literal["linear", "exponential", "neither"]


@dataclass(frozen=True)
class ExpFit:
    """y = a exp(-(t - t_ref_s) / tau_s), fitted on ln y."""

    a: float  # y at t_ref_s
    t_ref_s: float  # the window's mean time
    tau_s: float  # inf if not decaying
    tau_ci95_low_s: float
    tau_ci95_high_s: float  # inf if the rate's interval reaches zero
    log_fit: SlopeFit[float]  # the fit of ln y: slope = -1/tau

    def predict(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Model value at t_s."""
        return self.a * np.exp(-(np.asarray(t_s, dtype=np.float64) - self.t_ref_s) / self.tau_s)


@dataclass(frozen=True)
class CurrentRate:
    """The slope of y (y units per second, negative when falling) at time t_s, with its 95 %
    interval, under the model that holds; `source` says where it comes from."""

    slope: float
    ci95_low: float
    ci95_high: float
    stderr: float
    t_s: float
    source: str


@dataclass(frozen=True)
class LocalRate:
    """The line over the record's last stretch (rule in `local_rate`), and how fast the rate
    changed from the stretch before it (y units per second per second; 0 if none)."""

    fit: SlopeFit[float]
    t_start_s: float
    lack_of_fit_z: float
    rate_change_per_s: float


@dataclass(frozen=True)
class DecayModel:
    """Which model holds over a window, why, both fits, and the current rate."""

    model: Model
    reason: str  # one line; empty when the line holds
    lack_of_fit_linear_z: float  # curvature of y / its stderr (positive: convex, a decay)
    lack_of_fit_exponential_z: float | None  # the same on ln y; None if y is not all positive
    linear: SlopeFit[float]
    exponential: ExpFit | None  # None when y is not all positive
    local: LocalRate | None  # the last stretch's line: made only when neither model holds
    current: CurrentRate

    @property
    def curvature_z(self) -> float:
        return self.lack_of_fit_linear_z


def exp_from_log_fit(lf: SlopeFit[float]) -> ExpFit:
    """The exponential whose ln is the line lf; tau's interval from the log slope's."""

    def tau(k: float) -> float:
        return -1.0 / k if k < 0.0 else math.inf

    low, high = sorted((tau(lf.ci95_low), tau(lf.ci95_high)))
    return ExpFit(math.exp(lf.intercept), lf.t_mid_s, tau(lf.slope), low, high, lf)


def fit_exponential(t_s: npt.ArrayLike, y: npt.ArrayLike) -> ExpFit:
    """Log-linear fit of y = a exp(-t/tau) (y > 0); tau's interval from the log slope's."""
    t, v = _as_series(t_s, y, 3)
    if np.any(v <= 0.0):
        raise ValueError("the exponential model needs y > 0 everywhere")
    return exp_from_log_fit(fit_slope(t, np.log(v)))


def _powers(x: FloatArray) -> FloatArray:
    """(LOF_DEGREE + 1, n): 1, x, .., x^LOF_DEGREE by repeated products (as np.vander makes
    them, bit for bit, without its strided accumulate: a third of a lack-of-fit test)."""
    d = np.empty((LOF_DEGREE + 1, x.size))
    d[0] = 1.0
    d[1] = x
    for k in range(2, LOF_DEGREE + 1):
        np.multiply(d[k - 1], x, out=d[k])
    return d


def lack_of_fit_rows(t_s: npt.ArrayLike, ys: npt.ArrayLike) -> FloatArray:
    """`lack_of_fit` of each row of ys (rows, n) against the one time axis t_s: the series
    and its log share the design, its Gram matrix and the batch edges."""
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(ys, dtype=np.float64)
    if t.ndim != 1 or v.ndim != 2 or v.shape[1] != t.size or t.size < 5:
        raise ValueError(f"t_s must be (n >= 5,) and ys (rows, n), got {t.shape} and {v.shape}")
    n = t.size
    if n < LOF_MIN_N:  # a quartic through 5-9 samples leaves (nearly) only rounding: z would be
        return np.zeros(v.shape[0])  # rounding over rounding, so no curvature can be told
    x = t - t.sum() / n  # (np.mean's operations, less overhead)
    x /= max(float(np.abs(x).max()), 1e-300)
    vc = v - v.sum(axis=1, keepdims=True) / n
    design = _powers(x)  # 1, x, .., x^4 on [-1, 1]
    gram, moments = design @ design.T, design @ vc.T  # well conditioned for degree 4
    coef = np.linalg.solve(gram[:3, :3], moments[:3])  # the quadratic's coefficients
    quartic = np.linalg.solve(gram, moments)  # (LOF_DEGREE + 1, rows)
    # sum of squares of x^2 made orthogonal to 1 and x (a Schur complement of the Gram)
    qq = float(gram[2, 2] - gram[2, :2] @ np.linalg.solve(gram[:2, :2], gram[:2, 2]))
    if n >= lrv.MIN_SAMPLES:
        # The quartic's residuals only as batch sums: the series' batch sums less the fitted
        # combination of the powers' (the residuals themselves are never formed).
        edges = lrv.batch_edges(n)
        return curvature_z(n, coef[2], quartic, qq, np.add.reduceat(design, edges[:-1], axis=1).T,
                           np.add.reduceat(vc, edges[:-1], axis=1).T)  # fmt: skip
    r = vc - quartic.T @ design  # the quartic's residuals
    r -= r.mean(axis=1, keepdims=True)
    omega = np.einsum("ij,ij->i", r, r) / max(n - LOF_DEGREE - 1.0, 1.0)
    return _z(coef[2], omega, qq, np.ones(v.shape[0]))


def curvature_z(
    n: int, c2: FloatArray, quartic: FloatArray, qq: FloatArray | float, design_sums: FloatArray,
    series_sums: FloatArray,
) -> FloatArray:  # fmt: skip
    """The lack-of-fit z of windows of n >= lrv.MIN_SAMPLES samples from their quadratic
    coefficients c2 (..., rows), quartic coefficients (..., LOF_DEGREE + 1, rows), the
    Schur complement qq (...), and the batch sums of the powers (..., BATCHES, LOF_DEGREE + 1)
    and of the centred series (..., BATCHES, rows): what the one-shot test and the live
    sums (analysis.windowsums) share."""
    sums = series_sums - design_sums @ quartic
    lengths = lrv.batch_lengths(n)[:, None]
    sums -= lengths * (sums.sum(axis=-2, keepdims=True) / n)  # the residuals' mean: rounding
    modes = lrv.modes_of_sums(np.moveaxis(sums, -2, 0), n)
    var, beta, _ = lrv.spectral_variance(modes, n, 1.0, LOF_FIRST_MODE)
    omega, widen = np.asarray(var, dtype=np.float64), lrv.BASE + lrv.WIDEN * np.asarray(beta)
    return _z(c2, omega, np.asarray(qq, dtype=np.float64)[..., None], widen)


def _z(c2: FloatArray, omega: FloatArray, qq: FloatArray | float, widen: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        z = c2 / np.sqrt(omega / qq) / widen
    return np.where(omega > 0.0, z, np.where(c2 != 0.0, math.inf, 0.0))


def lack_of_fit(t_s: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Curvature z of y against t: the quadratic coefficient over its standard error, from
    the long-run variance (lrv) of a quartic fit's residuals (modes 5 and up), divided by
    the interval's widening (BASE + WIDEN beta) so that one limit serves every noise colour.
    The noise comes from a flexible fit, not the line's: a real curvature (and the cubic
    of an exponential) must not pass for noise and hide itself. Below LOF_MIN_N samples
    no curvature can be told from rounding: 0."""
    t, v = _as_series(t_s, y, 5)
    return float(lack_of_fit_rows(t, v[None, :])[0])


def local_rate(t: FloatArray, v: FloatArray, z_limit: float = LACK_OF_FIT_Z) -> LocalRate:
    """The rule: start from the record's last quarter (at least LOCAL_MIN_N samples) and
    halve it until the line fits there (|lack_of_fit| <= z_limit) or it is LOCAL_MIN_N
    samples long. The rate change compares it with the stretch of equal length before it."""
    n = t.size
    k = min(n, max(n // 4, LOCAL_MIN_N))
    while True:
        z = lack_of_fit(t[n - k :], v[n - k :]) if k >= 5 else 0.0
        if abs(z) <= z_limit or k // 2 < LOCAL_MIN_N:
            break
        k //= 2
    change = 0.0
    if n - 2 * k >= 0 and k >= 3:  # the stretch and the one before it in one pass
        fit, before = fit_slopes(t[n - 2 * k :].reshape(2, k)[::-1], v[n - 2 * k :].reshape(2, k)[::-1])
        change = (fit.slope - before.slope) / (fit.t_mid_s - before.t_mid_s)
    else:
        fit = fit_slope(t[n - k :], v[n - k :])
    return LocalRate(fit, float(t[n - k]), z, change)


def _exp_current(e: ExpFit, t_end: float) -> CurrentRate:
    """dy/dt of the exponential at t_end, with the interval from the log slope's."""
    lf = e.log_fit

    def slope_at(k: float) -> float:  # y' = k y for y = a exp(k (t - t_ref))
        return k * e.a * math.exp(k * (t_end - e.t_ref_s))

    ends = [slope_at(k) for k in (lf.ci95_low, lf.ci95_high)]
    y_end = e.a * math.exp(lf.slope * (t_end - e.t_ref_s))
    stderr = abs(y_end * (1.0 + lf.slope * (t_end - e.t_ref_s))) * lf.stderr  # delta method
    return CurrentRate(slope_at(lf.slope), min(ends), max(ends), stderr, t_end,
                       "the exponential at the last sample")  # fmt: skip


def _local_current(local: LocalRate, t_end: float) -> CurrentRate:
    """The local line's slope is the rate at its middle: carried to the last sample by the
    observed rate change, its interval the union of the two (the misfit widens it)."""
    f = local.fit
    shift = local.rate_change_per_s * (t_end - f.t_mid_s)
    return CurrentRate(f.slope + shift, min(f.ci95_low, f.ci95_low + shift),
                       max(f.ci95_high, f.ci95_high + shift), f.stderr, t_end,
                       f"the line over the last {t_end - local.t_start_s:.0f} s, "
                       "carried to the last sample")  # fmt: skip


def choose_model(t_s: npt.ArrayLike, y: npt.ArrayLike, z_limit: float = LACK_OF_FIT_Z) -> DecayModel:
    """Linear while the line fits; exponential when it fits a decay the line cannot;
    otherwise "neither", with a one-line reason and the local rate as the current one."""
    t, v = _as_series(t_s, y, 5)
    positive = bool(np.all(v > 0.0))
    exp_fit: ExpFit | None = None
    z_exp: float | None = None
    if positive:  # the line and the exponential share the time axis: one pass for both
        series = np.stack([v, np.log(v)])
        lin, log_fit = fit_slopes(t, series)
        z_lin, z_exp = (float(z) for z in lack_of_fit_rows(t, series))
        exp_fit = exp_from_log_fit(log_fit)
    else:
        lin, z_lin = fit_slope(t, v), lack_of_fit(t, v)
    return decide(lin, exp_fit, z_lin, z_exp, float(t[-1]), lambda: local_rate(t, v, z_limit), z_limit)


def decide(
    lin: SlopeFit[float], exp_fit: ExpFit | None, z_lin: float, z_exp: float | None, t_end: float,
    make_local: Callable[[], LocalRate], z_limit: float = LACK_OF_FIT_Z,
) -> DecayModel:  # fmt: skip
    """The rule of `choose_model`, from the fits and their lack-of-fit z; make_local gives
    the last stretch's line (a third of the cost: made only when neither model holds)."""
    local: LocalRate | None = None
    model: Model
    if abs(z_lin) <= z_limit:
        model, reason = "linear", ""
        current = CurrentRate(lin.slope, lin.ci95_low, lin.ci95_high, lin.stderr, t_end,
                              "the whole window")  # fmt: skip
    elif (exp_fit is not None and z_exp is not None and z_lin > 0.0 and abs(z_exp) <= z_limit
          and math.isfinite(exp_fit.tau_s)):  # fmt: skip
        model, reason = "exponential", ""
        current = _exp_current(exp_fit, t_end)
    else:
        model = "neither"
        if z_exp is None:
            reason = f"the line misfits (curvature z {z_lin:+.1f}) and y is not all positive"
        elif z_lin < 0.0:
            reason = f"the loss is speeding up (curvature z {z_lin:+.1f}): not a steady leak"
        else:
            reason = (f"the rate changes over the record: curvature z {z_lin:+.1f} against "
                      f"the line, {z_exp:+.1f} against the exponential")  # fmt: skip
        local = make_local()
        current = _local_current(local, t_end)
    return DecayModel(model, reason, z_lin, z_exp, lin, exp_fit, local, current)


@dataclass(frozen=True)
class HoleEstimate:
    """Equivalent orifice of a choked leak, from tau (bounds swap: a longer tau, a smaller hole)."""

    area_m2: float
    area_ci95_low_m2: float
    area_ci95_high_m2: float
    diameter_m: float
    diameter_ci95_low_m: float
    diameter_ci95_high_m: float
    discharge_coefficient: float


def hole_from_tau(
    exp_fit: ExpFit, volume_m3: float, temperature_k: float = 293.15, cd: float = CD_DEFAULT,
    gamma: float = units.GAMMA_AIR, molar_mass_kg_per_mol: float = units.M,
) -> HoleEstimate:  # fmt: skip
    """A = V / (Cd tau c*), d = sqrt(4 A / pi) (REFERENCE 2)."""
    if not (volume_m3 > 0.0 and cd > 0.0):
        raise ValueError("volume_m3 and cd must be positive")
    c_star = units.choked_flow_speed_m_per_s(temperature_k, gamma, molar_mass_kg_per_mol)

    def area(tau_s: float) -> float:
        return volume_m3 / (cd * tau_s * c_star) if tau_s > 0.0 else math.inf

    a, lo, hi = area(exp_fit.tau_s), area(exp_fit.tau_ci95_high_s), area(exp_fit.tau_ci95_low_s)
    d = [math.sqrt(4.0 * x / math.pi) for x in (a, lo, hi)]
    return HoleEstimate(a, lo, hi, d[0], d[1], d[2], cd)


@dataclass(frozen=True)
class TimeToLimit:
    """When the fitted series reaches a limit, from the chosen model; inf if never."""

    model: Model
    t_limit_s: float  # absolute time (the series' clock)
    t_limit_ci95_low_s: float
    t_limit_ci95_high_s: float
    remaining_s: float  # from the window's last sample; 0 if already past the limit


def _level_halfwidth(fit: SlopeFit[float]) -> float:
    """95 % half-width of the fitted level at the window's middle: q * sigma / sqrt(n_eff)
    (for centred times the level and the slope are uncorrelated)."""
    if fit.stderr <= 0.0:
        return 0.0
    q = (fit.ci95_high - fit.slope) / fit.stderr
    return q * fit.residual_sigma / math.sqrt(fit.n_eff)


def _line_crossings(fit: SlopeFit[float], y_floor: float, slopes: tuple[float, float, float],
                    ) -> tuple[float, float, float]:  # fmt: skip
    """Crossing times of y_floor along a line through the fit's level at three slopes
    (central, low, high), the level shifted by its own interval on the early/late side."""
    widen = _level_halfwidth(fit)

    def at(slope: float, side: float) -> float:
        if slope >= 0.0:
            return fit.t_mid_s if fit.intercept <= y_floor else math.inf
        return fit.t_mid_s + (y_floor - fit.intercept - side * widen) / slope

    return at(slopes[0], 0.0), at(slopes[1], -1.0), at(slopes[2], 1.0)


def time_to_limit(decay: DecayModel, y_floor: float) -> TimeToLimit:
    """When the series falls to y_floor (same units as the fitted y: for P/T pass
    limit_pa / T). Linear: the slope's interval and the level's. Exponential: tau's.
    Neither: the local line, its slope interval widened by how much the rate may still
    change before the crossing (the observed rate change times the horizon): a misfit
    widens the range, it never narrows it. A series at or below the floor gives its
    crossing time (or the window's middle); one not falling gives inf."""
    lin, e, t_end = decay.linear, decay.exponential, decay.linear.t_end_s
    if decay.model == "exponential" and e is not None:
        widen = _level_halfwidth(e.log_fit)  # in ln y

        def exp_at(tau_s: float, side: float) -> float:
            if y_floor <= 0.0 or not math.isfinite(tau_s):
                return math.inf
            return e.t_ref_s + tau_s * (math.log(e.a / y_floor) + side * widen)

        t0 = exp_at(e.tau_s, 0.0)
        early, late = exp_at(e.tau_ci95_low_s, -1.0), exp_at(e.tau_ci95_high_s, 1.0)
    elif decay.model == "neither" and decay.local is not None:
        f = decay.local.fit
        t0 = _line_crossings(f, y_floor, (f.slope, f.slope, f.slope))[0]
        drift = abs(decay.local.rate_change_per_s) * max(t0 - t_end, 0.0) \
            if math.isfinite(t0) else math.inf  # fmt: skip
        _, early, late = _line_crossings(f, y_floor, (f.slope, f.ci95_low - drift,
                                                      f.ci95_high + drift))  # fmt: skip
    else:
        t0, early, late = _line_crossings(lin, y_floor, (lin.slope, lin.ci95_low, lin.ci95_high))
    return TimeToLimit(decay.model, t0, min(early, late), max(early, late), max(t0 - t_end, 0.0))
