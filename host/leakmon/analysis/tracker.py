"""Live leak estimation per channel: compensated blocks in, leak-rate updates out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from leakmon import units
from leakmon.analysis.cusum import LeakCusum
from leakmon.analysis.slope import IncrementalSlope
from leakmon.wire.stream import SampleBlock

CUSUM_BLOCK_S = 10.0  # one leak-rate estimate per block for the onset detector


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
    # Onset detection: the CUSUM's first alarm (device time), its estimated onset, and the
    # expected time between false alarms (None until the CUSUM has seen a block).
    alarm_t_s: float | None = None
    alarm_onset_t_s: float | None = None
    false_alarm_spacing_s: float | None = None

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class LeakTracker:
    """Per channel: an IncrementalSlope of P/T over a sliding window (None = all), and
    a CUSUM on block slopes of P/T for the onset of a leak (analysis.cusum)."""

    def __init__(self, window_s: float | None = 600.0, block_s: float = CUSUM_BLOCK_S) -> None:
        self.window_s = window_s
        self.block_s = block_s
        self._fits: dict[int, IncrementalSlope] = {}
        self._cusums: dict[int, LeakCusum] = {}

    def _cusum(self, block: SampleBlock) -> LeakCusum | None:
        c = self._cusums.get(block.channel)
        if c is None and len(block.t_s) > 1:
            dt = float(block.t_s[1] - block.t_s[0])
            c = self._cusums[block.channel] = LeakCusum(max(int(round(self.block_s / dt)), 3))
        return c

    def add(self, block: SampleBlock) -> LeakUpdate | None:
        fit = self._fits.get(block.channel)
        if fit is None:
            fit = self._fits[block.channel] = IncrementalSlope(self.window_s)
        y = block.pressure_pa / block.temperature_k
        fit.add(block.t_s, y)
        cusum = self._cusum(block)
        if cusum is not None:
            cusum.update(block.t_s, y)
        alarm = cusum.alarms[0] if cusum is not None and cusum.alarms else None
        spacing = cusum.arl0_s if cusum is not None else math.nan
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
            alarm_t_s=alarm.t_alarm_s if alarm else None,
            alarm_onset_t_s=alarm.t_onset_s if alarm else None,
            false_alarm_spacing_s=spacing if math.isfinite(spacing) else None,
        )
