"""Large leaks: the exponential (choked-flow) model, which model holds, hole size, time to limit.

Into vacuum the flow is choked, mdot proportional to P, so P/T = a exp(-t/tau) with
tau = V / (Cd A c*) (REFERENCE 2). Over a short window that is a straight line; once the
curvature is significant against the linear fit's own residuals (a t-test on the quadratic
term, AR(1)-inflated like the slope), the exponential holds and tau gives the equivalent hole.
The exponential is fitted log-linearly (OLS of ln y on t), fine while the noise is small
against y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from leakmon import units
from leakmon.analysis.fit import RHO_MAX, SlopeFit, _as_series, fit_slope

CURVATURE_Z: Final = 4.0  # |quadratic / its stderr| above which the line is rejected
CD_DEFAULT: Final = 0.6


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
class DecayModel:
    """Which model holds over a window, and both fits."""

    model: Literal["linear", "exponential"]
    curvature_z: float  # quadratic coefficient / its stderr (positive: convex, as a decay)
    linear: SlopeFit[float]
    exponential: ExpFit | None  # None when y is not all positive


def fit_exponential(t_s: npt.ArrayLike, y: npt.ArrayLike) -> ExpFit:
    """Log-linear fit of y = a exp(-t/tau) (y > 0); tau's interval from the log slope's."""
    t, v = _as_series(t_s, y, 3)
    if np.any(v <= 0.0):
        raise ValueError("the exponential model needs y > 0 everywhere")
    lf = fit_slope(t, np.log(v))

    def tau(k: float) -> float:
        return -1.0 / k if k < 0.0 else math.inf

    low, high = sorted((tau(lf.ci95_low), tau(lf.ci95_high)))
    return ExpFit(math.exp(lf.intercept), lf.t_mid_s, tau(lf.slope), low, high, lf)


def curvature_z(t_s: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """t statistic of the quadratic term of y on t, with the AR(1) inflation of the slope."""
    t, v = _as_series(t_s, y, 5)
    tc = t - t.mean()
    x = tc / max(float(np.abs(tc).max()), 1e-300)
    design = np.column_stack([np.ones_like(x), x, x * x])
    coef, *_ = np.linalg.lstsq(design, v - v.mean(), rcond=None)
    r = v - v.mean() - design @ coef
    sse = float(r @ r)
    if sse <= 0.0:
        return math.inf if coef[2] != 0.0 else 0.0
    rho = min(max(float(r[:-1] @ r[1:]) / sse, 0.0), RHO_MAX)
    cov = np.linalg.inv(design.T @ design) * sse / (t.size - 3) * (1.0 + rho) / (1.0 - rho)
    return float(coef[2] / math.sqrt(cov[2, 2]))


def choose_model(t_s: npt.ArrayLike, y: npt.ArrayLike, z_limit: float = CURVATURE_Z) -> DecayModel:
    """Linear unless the curvature is significant, convex (a decay) and y > 0 throughout."""
    t, v = _as_series(t_s, y, 5)
    z = curvature_z(t, v)
    exp_fit = fit_exponential(t, v) if np.all(v > 0.0) else None
    convex_decay = z > z_limit and exp_fit is not None and exp_fit.tau_s < math.inf
    return DecayModel("exponential" if convex_decay else "linear", z, fit_slope(t, v), exp_fit)


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

    model: Literal["linear", "exponential"]
    t_limit_s: float  # absolute time (the series' clock)
    t_limit_ci95_low_s: float
    t_limit_ci95_high_s: float
    remaining_s: float  # from the window's last sample; 0 if already past the limit


def _level_halfwidth(fit: SlopeFit[float]) -> float:
    """95 % half-width of the fitted level at the window's middle: t * sigma / sqrt(n_eff)
    (for centred times the level and the slope are uncorrelated)."""
    if fit.stderr <= 0.0:
        return 0.0
    q = (fit.ci95_high - fit.slope) / fit.stderr
    return q * fit.residual_sigma / math.sqrt(fit.n_eff)


def time_to_limit(decay: DecayModel, y_floor: float) -> TimeToLimit:
    """When the series falls to y_floor (same units as the fitted y: for P/T pass
    limit_pa / T). The range comes from the slope's 95 % interval (linear) or tau's
    (exponential), widened by the fitted level's own interval, which matters when the floor
    is near. A series already at or below the floor gives its crossing time (or the
    window's middle); one not falling gives inf."""
    lin = decay.linear
    e = decay.exponential
    if decay.model == "exponential" and e is not None:
        widen = _level_halfwidth(e.log_fit)  # in ln y

        def exp_at(tau_s: float, side: float) -> float:
            if y_floor <= 0.0 or not math.isfinite(tau_s):
                return math.inf
            return e.t_ref_s + tau_s * (math.log(e.a / y_floor) + side * widen)

        t0 = exp_at(e.tau_s, 0.0)
        early, late = exp_at(e.tau_ci95_low_s, -1.0), exp_at(e.tau_ci95_high_s, 1.0)
    else:
        widen = _level_halfwidth(lin)

        def lin_at(slope: float, side: float) -> float:
            if slope >= 0.0:
                return lin.t_mid_s if lin.intercept <= y_floor else math.inf
            return lin.t_mid_s + (y_floor - lin.intercept - side * widen) / slope

        t0, early, late = lin_at(lin.slope, 0.0), lin_at(lin.ci95_low, -1.0), \
            lin_at(lin.ci95_high, 1.0)  # fmt: skip
    return TimeToLimit(decay.model, t0, min(early, late), max(early, late),
                       max(t0 - lin.t_end_s, 0.0))  # fmt: skip
