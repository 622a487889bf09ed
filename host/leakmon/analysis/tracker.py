"""Live leak estimation per channel: compensated blocks in, leak-rate updates out.

Each update is `estimate.estimate_leak` of the channel's trailing window, the function
`leakmon analyze` runs on a record: on the same samples the two agree exactly. A gateway's
estimates at its cadence (`update_many`) come from running sums instead
(analysis.windowsums): the same numbers to rounding, at a third of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from leakmon.analysis.cusum import BLOCK_S, FALSE_ALARM_DAYS, Alarm, LeakCusum
from leakmon.analysis.estimate import DEFAULT_WINDOW_S, LeakEstimate
from leakmon.analysis.incremental import TrailingWindow
from leakmon.analysis.windowsums import WindowSums, estimate_window, estimate_windows
from leakmon.wire.stream import SampleBlock


@dataclass(frozen=True, slots=True)
class LeakUpdate:
    """The state of one channel after a block: positive leak rate = losing gas.

    The rate is the pressure loss the volume would show at the window's mean gas
    temperature: it comes from the slope of P/T, so temperature swings cancel. It is the
    current rate under the model that holds (`model`); see analysis.estimate.
    """

    t_s: float
    channel: int
    pressure_pa: float  # this block's mean
    temperature_k: float  # this block's mean
    leak_rate_pa_per_s: float
    leak_rate_ci95_low_pa_per_s: float
    leak_rate_ci95_high_pa_per_s: float
    leak_rate_stderr_pa_per_s: float
    leak_rate_mmhg_per_day: float
    n_samples: int
    n_eff: float
    model: str = "linear"
    model_reason: str = ""
    lack_of_fit_linear_z: float = math.nan
    lack_of_fit_exponential_z: float | None = None
    rate_source: str = ""
    noise_exponent: float = math.nan
    drift_warning: str = ""
    reference_temperature_k: float = math.nan  # the window's mean, at which rates are quoted
    time_to_limit_s: float | None = None
    time_to_limit_ci95_s: tuple[float, float] | None = None
    # Onset detection: the CUSUM's first alarm (device time), its estimated onset, and its
    # design: the stated false-alarm spacing and the expected delay for the leak to catch
    # (None until the CUSUM has learnt the noise).
    alarm_t_s: float | None = None
    alarm_onset_t_s: float | None = None
    false_alarm_spacing_s: float | None = None
    expected_delay_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


class LeakTracker:
    """Per channel: the trailing window of (t, P, T) and its estimate after every block,
    and a CUSUM on block slopes of P/T for the onset of a leak (analysis.cusum)."""

    def __init__(
        self, window_s: float | None = DEFAULT_WINDOW_S, block_s: float = BLOCK_S,
        limit_pa: float | None = None, false_alarm_days: float = FALSE_ALARM_DAYS,
        catch_pa_per_s: float | None = None, phase: float = 0.0,
    ) -> None:  # fmt: skip
        """phase in [0, 1): this tracker's place among a gateway's nodes, which sets when
        update_many's running sums restart (windowsums.WindowSums) and where the onset
        detectors' blocks and redesigns fall (cusum.LeakCusum), so that nodes started
        together do not all do either on one frame."""
        self.window_s = window_s
        self.block_s = block_s
        self.limit_pa = limit_pa
        self.false_alarm_spacing_s = false_alarm_days * 86400.0
        self.catch_pa_per_s = catch_pa_per_s
        self._windows: dict[int, TrailingWindow] = {}
        self._cusums: dict[int, LeakCusum] = {}
        self._sums: dict[int, WindowSums] = {}  # made by update_many() only
        self.phase = phase

    def _cusum(self, block: SampleBlock) -> LeakCusum | None:
        c = self._cusums.get(block.channel)
        if c is None and len(block.t_s) > 1:
            dt = float(block.t_s[1] - block.t_s[0])
            # The leak to catch in P/T units, at the temperature when the CUSUM starts.
            catch = self.catch_pa_per_s / float(np.mean(block.temperature_k)) \
                if self.catch_pa_per_s else None  # fmt: skip
            c = self._cusums[block.channel] = LeakCusum(
                max(int(round(self.block_s / dt)), 3), self.false_alarm_spacing_s, catch,
                phase=self.phase)
        return c

    def estimate(self, channel: int) -> LeakEstimate | None:
        """The estimate of a channel's current window (None below ESTIMATE_MIN_SAMPLES)."""
        win = self._windows.get(channel)
        return None if win is None else estimate_window(win, self.limit_pa)

    def add(self, block: SampleBlock) -> LeakUpdate | None:
        """Take a block and estimate its channel's window (what `monitor` does per block)."""
        self.ingest(block)
        return self.update(block)

    def ingest(self, block: SampleBlock) -> bool:
        """Take a block into the window and the onset detector, without estimating: O(block).
        The estimate is O(window) (it chooses the model afresh), so a gateway with many
        channels ingests every block and calls update() only at its estimate cadence.
        True when this block raised the channel's first onset alarm (the one updates carry)."""
        win = self._windows.get(block.channel)
        if win is None:
            win = self._windows[block.channel] = TrailingWindow(self.window_s, 3)
        win.add(block.t_s, block.pressure_pa, block.temperature_k)
        cusum = self._cusum(block)
        if cusum is None:
            return False
        raised = cusum.update(block.t_s, block.pressure_pa / block.temperature_k)
        return bool(raised) and len(cusum.alarms) == len(raised)

    def ingest_many(self, blocks: Sequence[SampleBlock]) -> list[bool]:
        """ingest() of each block; the blocks of one frame (distinct channels on one time
        axis, as a node samples them) go into their windows and onset detectors in one pass.
        A gateway ingests every frame of every node: this is most of its work."""
        if len(blocks) < 2:
            return [self.ingest(b) for b in blocks]
        t = blocks[0].t_s
        m = t.shape[0]
        chans = [b.channel for b in blocks]
        wins = [self._windows.get(ch) for ch in chans]
        if m < 2 or None in wins or len(set(chans)) != len(chans):
            return [self.ingest(b) for b in blocks]  # a node's first blocks, or an odd frame
        b0 = blocks[0]
        if not all(b.same_times(b0) for b in blocks):  # (the core's blocks of a frame share one row)
            ts = np.stack([b.t_s for b in blocks])
            if ts.shape != (len(blocks), m) or not bool((ts == t).all()):
                return [self.ingest(b) for b in blocks]
        pk = np.array([[b.pressure_pa for b in blocks], [b.temperature_k for b in blocks]])
        if not TrailingWindow.add_rows(wins, t, pk):  # type: ignore[arg-type]
            return [self.ingest(b) for b in blocks]  # (add() says what is wrong)
        cusums = [self._cusum(b) for b in blocks]
        raised: list[list[Alarm]] | None = None
        if None not in cusums:
            raised = LeakCusum.update_rows(cusums, t, pk[0] / pk[1])  # type: ignore[arg-type]
        if raised is None:
            raised = [c.update(b.t_s, b.pressure_pa / b.temperature_k) if c is not None else []
                      for c, b in zip(cusums, blocks)]  # fmt: skip
        return [bool(r) and c is not None and len(c.alarms) == len(r) for c, r in zip(cusums, raised)]

    def update(self, block: SampleBlock) -> LeakUpdate | None:
        """The state of the channel of `block` (its latest, already ingested) after it."""
        return self._update_of(block, self.estimate(block.channel))

    def update_many(self, blocks: Sequence[SampleBlock]) -> list[LeakUpdate | None]:
        """update() of each block's channel (one block a channel), from running sums
        (analysis.windowsums): the channels of a node in one vectorized pass, O(1) in the
        window's length, equal to update() to rounding (a gateway's estimates at its cadence)."""
        pairs = []
        for b in blocks:
            sums = self._sums.get(b.channel)
            if sums is None:
                sums = self._sums[b.channel] = WindowSums(self.phase)
            pairs.append((self._windows[b.channel], sums))
        return [self._update_of(b, est) for b, est in zip(blocks, estimate_windows(pairs, self.limit_pa))]

    def _update_of(self, block: SampleBlock, est: LeakEstimate | None) -> LeakUpdate | None:
        if est is None:
            return None
        cusum = self._cusums.get(block.channel)
        alarm = cusum.alarms[0] if cusum is not None and cusum.alarms else None
        plan = cusum.plan if cusum is not None else None
        return LeakUpdate(
            t_s=float(block.t_s[-1]), channel=block.channel,
            pressure_pa=float(np.mean(block.pressure_pa)),
            temperature_k=float(np.mean(block.temperature_k)),
            leak_rate_pa_per_s=est.leak_rate_pa_per_s,
            leak_rate_ci95_low_pa_per_s=est.leak_rate_ci95_low_pa_per_s,
            leak_rate_ci95_high_pa_per_s=est.leak_rate_ci95_high_pa_per_s,
            leak_rate_stderr_pa_per_s=est.leak_rate_stderr_pa_per_s,
            leak_rate_mmhg_per_day=est.leak_rate_mmhg_per_day,
            n_samples=est.samples, n_eff=est.n_eff, model=est.model,
            model_reason=est.model_reason, lack_of_fit_linear_z=est.lack_of_fit_linear_z,
            lack_of_fit_exponential_z=est.lack_of_fit_exponential_z,
            rate_source=est.rate_source, noise_exponent=est.noise_exponent,
            drift_warning=est.drift_warning,
            reference_temperature_k=est.temperature_mean_k,
            time_to_limit_s=est.time_to_limit_s, time_to_limit_ci95_s=est.time_to_limit_ci95_s,
            alarm_t_s=alarm.t_alarm_s if alarm else None,
            alarm_onset_t_s=alarm.t_onset_s if alarm else None,
            false_alarm_spacing_s=plan.false_alarm_spacing_s if plan else None,
            expected_delay_s=plan.expected_delay_s if plan else None,
        )
