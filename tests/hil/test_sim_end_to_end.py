"""End to end: the firmware in real MicroPython on the virtual board, its bytes
through a pseudo-terminal opened by pyserial, the host's leak rate checked
against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from leakmon.analysis.tracker import LeakTracker, LeakUpdate
from leakmon.cli.session import monitor_updates
from leakmon.link.node import Node
from leakmon.sim import scenario as scenario_mod
from leakmon.sim.board import VirtualBoard

pytestmark = pytest.mark.hil


def run_once(name: str, seed: int, duration_s: float) -> tuple[LeakUpdate, float, Node]:
    sc = scenario_mod.load(name)
    with VirtualBoard(sc, seed=seed, speed=0) as board:
        with Node.open(board.port) as node:
            hello = node.handshake()
            assert hello.board == "sim" and [c.chip_name for c in hello.channels] == ["BMP390"]
            last = None
            for last in monitor_updates(node, LeakTracker(window_s=None), duration_s):
                pass
            assert last is not None
            truth = sc.chamber().leak_rate_pa_per_s(last.temperature_k)
            return last, truth, node


def test_leak_rate_matches_truth_and_interval_is_honest(micropython):
    seeds = range(1, 21)
    inside = 0
    est, se = [], []
    for seed in seeds:
        u, truth, node = run_once("steady_leak", seed, duration_s=60)
        st = node.stream.stats
        assert st.lost_frames == 0 and node.stream.decoder.stats.crc_errors == 0
        assert u.n_samples >= 600
        inside += u.leak_rate_ci95_low_pa_per_s <= truth <= u.leak_rate_ci95_high_pa_per_s
        est.append(u.leak_rate_pa_per_s - truth)
        se.append(u.leak_rate_stderr_pa_per_s)
    n = len(seeds)
    # 95% intervals: P(15 or fewer of 20 cover) is 0.0003 when honest.
    assert inside >= 16, f"truth inside the 95% interval in {inside}/{n} runs"
    # Honest also means not padded: the scatter of the estimates matches the typical stated
    # error (the median: a long-run variance from 14 modes has a long upper tail, by design
    # where it cannot tell white noise from a slow drift).
    # Bounds: the scatter of 20 draws is sigma * sqrt(chi2(19) / 19), below 0.53 sigma one time
    # in 1000 (Wilson-Hilferty), and a long-run variance's median sits ~1.13x the white
    # error (bench/RESULTS.md, issue 11 planner): 0.45. It was 0.6, which these seeds pass at
    # 0.602, so any change to the estimator or the board's noise could flip it by chance. A
    # stated error padded 2.2x gives ~0.4 and fails in most draws.
    ratio = float(np.std(est, ddof=1) / np.median(se))
    assert 0.45 < ratio < 1.6, f"scatter/stated stderr = {ratio:.2f}"
    # And precise enough to matter: 60 s resolves this 0.05 Pa/s leak to a few percent. The
    # typical (median) error, for the reason above: the mean follows the upper tail, which
    # grew when a mode-2 spike on white noise may be read as a walk under a white floor
    # (mean 4.5 -> 5.2 %, median 3.9 -> 4.1 % of the leak on these seeds).
    assert np.median(se) < 0.05 * truth


def test_live_onset_alarm_rings_for_a_leak_and_says_when_it_began(micropython):
    u, truth, _ = run_once("steady_leak", seed=6, duration_s=240)
    # The CUSUM learns the noise over its first 6 blocks (60 s), then rings within the delay
    # it states for a one-standard-error shift (this leak is about two).
    assert u.expected_delay_s is not None
    assert truth > 0 and u.alarm_t_s is not None and u.alarm_t_s <= 60.0 + u.expected_delay_s, u
    assert u.alarm_onset_t_s is not None and u.alarm_onset_t_s <= 72.0  # the leak is there from the start
    assert u.false_alarm_spacing_s == pytest.approx(30 * 86400.0, rel=1e-6)  # the default design
    assert u.expected_delay_s is not None and u.expected_delay_s < 600.0


def test_sealed_chamber_with_temperature_swing_reads_no_leak(micropython):
    u, truth, _ = run_once("sealed", seed=3, duration_s=120)
    assert truth == 0.0
    assert u.leak_rate_ci95_low_pa_per_s <= 0.0 <= u.leak_rate_ci95_high_pa_per_s, u
    # Without temperature compensation the swing alone would look like a leak of
    # ~0.1 Pa/s (dP = P dT / T); the P/T fit stays two orders of magnitude below.
    assert abs(u.leak_rate_pa_per_s) < 0.003
    assert u.alarm_t_s is None, u  # and no onset alarm from the swing
