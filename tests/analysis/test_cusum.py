"""CUSUM onset detection: false-alarm spacing, delay and onset against known leaks."""

from __future__ import annotations

import numpy as np
import pytest
from leakmon.analysis.cusum import LeakCusum, cusum_scan, siegmund_arl


def test_siegmund_matches_the_reference_figure() -> None:
    # REFERENCE 3: k = 0.5, h = 5 gives about 465 samples between false alarms (two-sided).
    assert siegmund_arl(0.5, 5.0) / 2 == pytest.approx(465, rel=0.02)
    assert siegmund_arl(0.5, 5.0, shift=1.0) == pytest.approx(10.4, abs=0.3)  # textbook ARL1


def test_false_alarm_spacing_on_white_noise_matches_siegmund() -> None:
    rng = np.random.default_rng(7)
    blocks, block_n = 150_000, 4
    t = np.arange(blocks * block_n, dtype=float)
    r = cusum_scan(t, rng.normal(0.0, 1.0, t.size), block_n, noise_sigma=1.0)
    arl = blocks / len(r.alarms)
    assert arl == pytest.approx(r.arl0_blocks, rel=0.25), f"{len(r.alarms)} alarms"
    assert r.arl0_s == pytest.approx(r.arl0_blocks * block_n, rel=1e-9)


def leak_record(rng: np.random.Generator, onset_s: float, rate: float, n: int = 60_000):
    t = 1e5 + 0.1 * np.arange(n)
    drop = np.where(t - t[0] > onset_s, rate * (t - t[0] - onset_s), 0.0)
    return t, 345.0 - drop + rng.normal(0.0, 0.01, n)


def test_detects_a_leak_soon_after_onset_and_dates_it() -> None:
    # Blocks of 100 samples (10 s): slope stderr = 0.01 * sqrt(12 / (100 * 9999)) / 0.1.
    block_n, se = 100, 0.01 * np.sqrt(12 / (100 * 9999)) / 0.1
    delays, onsets = [], []
    for seed in range(20):
        t, y = leak_record(np.random.default_rng(seed), 3000.0, 1.0 * se)  # a 1-sigma shift
        r = cusum_scan(t, y, block_n)
        after = [a for a in r.alarms if a.t_alarm_s - t[0] > 3000.0]
        assert after, f"seed {seed}: no alarm after the onset"
        delays.append((after[0].t_alarm_s - t[0] - 3000.0) / 10.0)
        onsets.append(after[0].t_onset_s - t[0])
    arl1 = siegmund_arl(0.5, 5.0, shift=1.0)
    assert np.mean(delays) == pytest.approx(arl1, rel=0.35)
    assert abs(np.median(onsets) - 3000.0) < 5 * 10.0  # within 5 blocks


def test_live_updates_give_the_same_alarms_as_the_whole_record() -> None:
    rng = np.random.default_rng(3)
    t, y = leak_record(rng, 2000.0, 3e-4)
    whole = cusum_scan(t, y, 50)
    live = LeakCusum(50)
    got = []
    i = 0
    while i < t.size:
        k = int(rng.integers(1, 400))
        got += live.update(t[i : i + k], y[i : i + k])
        i += k
    assert got == whole.alarms and len(got) >= 1
    assert live.statistic == pytest.approx(whole.statistic[-1], abs=1e-9)
    assert live.arl0_s == pytest.approx(whole.arl0_s, rel=1e-9)
    assert whole.arl0_s == pytest.approx(whole.arl0_blocks * 50 * 0.1, rel=1e-6)
    with pytest.raises(ValueError, match="block_n"):
        LeakCusum(2)
