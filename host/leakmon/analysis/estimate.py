"""One channel's leak estimate from (t, P, T): the one function behind `monitor` (over its
trailing window) and `analyze` (over a record), so both give the same numbers to rounding on
the same samples. The headline rate is the current rate under the model that holds (decay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon import units
from leakmon.analysis.decay import DecayModel, choose_model, time_to_limit
from leakmon.analysis.rates import loss, pressure_loss

DEFAULT_WINDOW_S: Final = 600.0  # the one default fit window of monitor, replay and analyze
SLOW_DRIFT_EXPONENT: Final = 1.0  # residual spectra this steep read as drift, not noise


def drift_warning(noise_exponent: float) -> str:
    """One line when the residuals wander like a drift (flicker or steeper): an unmeasured
    gas-temperature drift looks exactly like this and like a leak, so say so."""
    if not noise_exponent >= SLOW_DRIFT_EXPONENT:
        return ""
    return (f"slow drift in the residuals (spectral exponent {noise_exponent:.2f}): the interval "
            "is widened for it, but a drift the sensors do not measure (gas temperature) "
            "cannot be told from a leak")


@dataclass(frozen=True)
class LeakEstimate:
    """A channel over a window; rates are pressure losses (Pa/s, positive = losing gas) at
    the window's mean gas temperature (from the slope of P/T: temperature swings cancel)."""

    t_end_s: float
    duration_s: float
    samples: int
    pressure_mean_pa: float
    temperature_mean_k: float
    model: str  # "linear", "exponential" (choked flow) or "neither"
    model_reason: str  # why neither model holds; empty otherwise
    lack_of_fit_linear_z: float
    lack_of_fit_exponential_z: float | None
    leak_rate_pa_per_s: float  # the headline: current rate under the model that holds
    leak_rate_ci95_low_pa_per_s: float
    leak_rate_ci95_high_pa_per_s: float
    leak_rate_stderr_pa_per_s: float
    leak_rate_mmhg_per_day: float
    rate_source: str  # where the headline comes from
    window_leak_rate_pa_per_s: float  # the straight line over the whole window
    window_leak_rate_ci95_pa_per_s: tuple[float, float]
    noise_exponent: float  # of the line's residuals: 0 white, 1 flicker, 2 random walk
    drift_warning: str  # one line when the residuals wander like a drift; empty otherwise
    n_eff: float
    time_to_limit_s: float | None
    time_to_limit_ci95_s: tuple[float, float] | None
    decay: DecayModel

    def as_dict(self) -> dict[str, object]:
        """The fields a program reads (JSON), without the fits behind them."""
        out = {k: v for k, v in self.__dict__.items() if k != "decay"}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()}  # fmt: skip


def estimate_leak(
    t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike, temperature_k: npt.ArrayLike,
    limit_pa: float | None = None,
) -> LeakEstimate:  # fmt: skip
    """The estimate of one window (>= 5 samples, times increasing)."""
    t = np.asarray(t_s, dtype=np.float64)
    p = np.asarray(pressure_pa, dtype=np.float64)
    tk = np.asarray(temperature_k, dtype=np.float64)
    return estimate_of(choose_model(t, p / tk), float(t[0]), float(t[-1]), int(t.size),
                       float(np.mean(p)), float(np.mean(tk)), limit_pa)  # fmt: skip


def estimate_of(
    decay: DecayModel, t_first_s: float, t_last_s: float, samples: int, pressure_mean_pa: float,
    temperature_mean_k: float, limit_pa: float | None = None,
) -> LeakEstimate:  # fmt: skip
    """The estimate of a window whose model is chosen (of P/T): the one place a decay model
    becomes the rate, its units and the time to the limit (the one-shot and live paths)."""
    t_ref = temperature_mean_k
    cur = decay.current
    rate = loss(cur.slope, cur.ci95_low, cur.ci95_high, t_ref)
    whole = pressure_loss(decay.linear, t_ref)
    ttl = ttl_ci = None
    if limit_pa is not None:
        tl = time_to_limit(decay, limit_pa / t_ref)
        end = t_last_s
        ttl = tl.remaining_s
        ttl_ci = (max(tl.t_limit_ci95_low_s - end, 0.0), max(tl.t_limit_ci95_high_s - end, 0.0))
    return LeakEstimate(
        t_end_s=t_last_s, duration_s=t_last_s - t_first_s, samples=samples,
        pressure_mean_pa=pressure_mean_pa, temperature_mean_k=t_ref,
        model=decay.model, model_reason=decay.reason,
        lack_of_fit_linear_z=decay.lack_of_fit_linear_z,
        lack_of_fit_exponential_z=decay.lack_of_fit_exponential_z,
        leak_rate_pa_per_s=rate.value, leak_rate_ci95_low_pa_per_s=rate.ci95_low,
        leak_rate_ci95_high_pa_per_s=rate.ci95_high,
        leak_rate_stderr_pa_per_s=cur.stderr * t_ref,
        leak_rate_mmhg_per_day=float(units.pa_per_s_to_mmhg_per_day(rate.value)),
        rate_source=cur.source,
        window_leak_rate_pa_per_s=whole.value,
        window_leak_rate_ci95_pa_per_s=(whole.ci95_low, whole.ci95_high),
        noise_exponent=decay.linear.noise_exponent,
        drift_warning=drift_warning(decay.linear.noise_exponent), n_eff=decay.linear.n_eff,
        time_to_limit_s=ttl, time_to_limit_ci95_s=ttl_ci, decay=decay,
    )
