"""Live leak estimation per channel: compensated blocks in, leak-rate updates out."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from leakmon import units
from leakmon.analysis.slope import IncrementalSlope
from leakmon.stream import SampleBlock


@dataclass(frozen=True, slots=True)
class LeakUpdate:
    """The state of one channel after a block: positive leak rate = losing gas.

    The rate is the pressure loss the volume would show at the current gas
    temperature: it comes from the slope of P/T, so temperature swings cancel.
    """

    t_s: float
    channel: int
    pressure_pa: float
    temperature_k: float
    leak_rate_pa_per_s: float
    leak_rate_ci95_low_pa_per_s: float
    leak_rate_ci95_high_pa_per_s: float
    leak_rate_stderr_pa_per_s: float
    leak_rate_mmhg_per_day: float
    n_samples: int
    n_eff: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class LeakTracker:
    """One IncrementalSlope of P/T per channel over a sliding window (None = all)."""

    def __init__(self, window_s: float | None = 600.0) -> None:
        self.window_s = window_s
        self._fits: dict[int, IncrementalSlope] = {}

    def add(self, block: SampleBlock) -> LeakUpdate | None:
        fit = self._fits.get(block.channel)
        if fit is None:
            fit = self._fits[block.channel] = IncrementalSlope(self.window_s)
        fit.add(block.t_s, block.pressure_pa / block.temperature_k)
        f = fit.fit()
        if f is None:
            return None
        temp_k = float(np.mean(block.temperature_k))
        rate = -float(f.slope) * temp_k
        lo = -float(f.ci95_high) * temp_k
        hi = -float(f.ci95_low) * temp_k
        return LeakUpdate(
            t_s=float(block.t_s[-1]),
            channel=block.channel,
            pressure_pa=float(np.mean(block.pressure_pa)),
            temperature_k=temp_k,
            leak_rate_pa_per_s=rate,
            leak_rate_ci95_low_pa_per_s=lo,
            leak_rate_ci95_high_pa_per_s=hi,
            leak_rate_stderr_pa_per_s=float(f.stderr) * temp_k,
            leak_rate_mmhg_per_day=float(units.pa_per_s_to_mmhg_per_day(rate)),
            n_samples=int(f.n),
            n_eff=float(f.n_eff),
        )
