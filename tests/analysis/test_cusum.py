"""CUSUM onset detection designed in time: false-alarm spacing, delay and onset against
known leaks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon.analysis.cusum import WARMUP_BLOCKS, LeakCusum, cusum_scan, design, levinson, siegmund_arl
from synthetic import ar1, flicker


def test_siegmund_matches_the_reference_figure() -> None:
    # REFERENCE 3: k = 0.5, h = 5 gives about 465 samples between false alarms (two-sided).
    assert siegmund_arl(0.5, 5.0) / 2 == pytest.approx(465, rel=0.02)
    assert siegmund_arl(0.5, 5.0, shift=1.0) == pytest.approx(10.4, abs=0.3)  # textbook ARL1


def test_design_meets_the_stated_spacing_and_a_bigger_leak_is_caught_sooner() -> None:
    d = design(30 * 86400.0, 10.0)
    assert siegmund_arl(d.k, d.h) * 10.0 == pytest.approx(30 * 86400.0, rel=1e-6)
    assert d.false_alarm_spacing_s == pytest.approx(30 * 86400.0, rel=1e-6)
    small, big = design(30 * 86400.0, 10.0, 0.5), design(30 * 86400.0, 10.0, 2.0)
    assert big.expected_delay_s < d.expected_delay_s < small.expected_delay_s
    assert big.k == 1.0 and small.h > big.h
    with pytest.raises(ValueError, match="positive"):
        design(0.0, 10.0)


@pytest.mark.parametrize("spacing_h", [0.5, 2.0])
def test_measured_false_alarm_spacing_is_within_1_5x_of_the_stated_one(spacing_h: float) -> None:
    # The short CI version of bench/detection_table.py --spacing: white noise, 10 Hz, 10 s blocks.
    rng = np.random.default_rng(int(spacing_h * 10))
    hours = 60.0 * spacing_h
    n = int(hours * 36000)
    t = 0.1 * np.arange(n)
    r = cusum_scan(t, 1000.0 + rng.normal(0.0, 1.0, n), 100, false_alarm_spacing_s=spacing_h * 3600)
    measured = hours / max(len(r.alarms), 1)
    assert spacing_h / 1.5 <= measured <= spacing_h * 1.5, f"{len(r.alarms)} alarms"


def correlated_noise(family: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """1 Hz noise of a family with drawn parameters (time constant 3-300 s, ratio 0.3-10)."""
    tau_s, ratio = np.exp(rng.uniform(np.log(3.0), np.log(300.0))), np.exp(rng.uniform(np.log(0.3), np.log(10.0)))
    if family == "AR(1)":
        return ar1(n, np.exp(-1.0 / tau_s), rng), f"tau {tau_s:.0f} s"
    if family == "white + AR(1)":
        return rng.normal(size=n) + ratio * ar1(n, np.exp(-1.0 / tau_s), rng), f"tau {tau_s:.0f} s, {ratio:.1f}x"
    return rng.normal(size=n) + ratio * flicker(n, rng), f"flicker {ratio:.1f}x"


@pytest.mark.parametrize("family,seed", [("AR(1)", 11), ("white + AR(1)", 12), ("white + AR(1)", 13),
                                         ("white + flicker", 14)])
def test_false_alarm_spacing_holds_on_correlated_noise(family: str, seed: int) -> None:
    # The reduced bench/validate_analysis.py section 3: slow noise makes consecutive block
    # rates anti-correlated; standardizing them by their spread gave 30x fewer alarms than
    # stated. 1 Hz, 10 s blocks, a stated hour, 120 h: about 120 false alarms.
    rng = np.random.default_rng(seed)
    hours = 120.0
    n = int(hours * 3600)
    e, drawn = correlated_noise(family, n, rng)
    r = cusum_scan(np.arange(n, dtype=float), 345.0 + 1e-3 * e, 10, false_alarm_spacing_s=3600.0)
    measured = hours / max(len(r.alarms), 1)
    assert 1 / 1.5 <= measured <= 1.5, f"{family} ({drawn}): {len(r.alarms)} alarms in {hours} h"


def test_the_first_hours_hold_the_stated_false_alarm_rate_on_white_plus_flicker() -> None:
    # bench/validate_analysis.py section 6, reduced: 2000 drawn 2 h records (1 Hz, 10 s
    # blocks, flicker 0.3-10x the white, each record its own parameters) with the default
    # 30-day design: 5.6 false alarms stated. A fit on few blocks that is low by as much as
    # another is high costs far more alarms than that one saves; with 1 + 3 / n as the only
    # allowance this master seed gave 15 (2.7x; 23 of 2000 on another, 4.1x). Limit 10 (1.8x):
    # at the stated rate P(Poisson(5.6) > 10) = 0.03, at 1.5x P(Poisson(8.3) > 10) = 0.24,
    # at main's 2.7x P(Poisson(15) <= 10) = 0.12.
    n, records, spacing_s = 7200, 2000, 30 * 86400.0
    t = np.arange(n, dtype=float)
    alarms = 0
    for child in np.random.SeedSequence(1).spawn(records):
        e, _ = correlated_noise("white + flicker", n, np.random.default_rng(child))
        alarms += len(cusum_scan(t, 345.0 + 1e-3 * e, 10, false_alarm_spacing_s=spacing_s).alarms)
    stated = records * n / spacing_s
    assert alarms <= 10, f"{alarms} false alarms in the first 2 h of {records} records, {stated:.1f} stated"


def test_inflation_matches_its_closed_form_and_the_white_floor_cuts_it() -> None:
    from leakmon.analysis.cusum import inflation

    for c, v in ((10.2, 2 / 16), (10.2, 66 / 512), (3.8, 0.01)):  # no floor: (exp(cV) - 1) / (cV)
        assert inflation(c, v) ** 2 == pytest.approx(math.expm1(c * v) / (c * v), rel=1e-6)
    assert 1.0 < inflation(10.2, 0.125, 0.8) < inflation(10.2, 0.125) and inflation(10.2, 0.125, 1.0) == 1.0
    assert inflation(10.2, 0.0) == 1.0


def test_levinson_recovers_an_ar2_and_its_innovation_variance() -> None:
    # AR(2) x_b = 0.5 x_(b-1) - 0.3 x_(b-2) + e: its autocovariances from the Yule-Walker equations.
    p1, p2 = 0.5, -0.3
    r1 = p1 / (1 - p2)
    r2 = p1 * r1 + p2
    c0 = 1.0 / (1 - p1 * r1 - p2 * r2)
    phi, v = levinson(np.array([c0, c0 * r1, c0 * r2, c0 * (p1 * r2 + p2 * r1)]), 3)
    assert phi == pytest.approx([p1, p2, 0.0], abs=1e-12) and v == pytest.approx(1.0, rel=1e-12)


def leak_record(rng: np.random.Generator, onset_s: float, rate: float, n: int = 60_000):
    t = 1e5 + 0.1 * np.arange(n)
    drop = np.where(t - t[0] > onset_s, rate * (t - t[0] - onset_s), 0.0)
    return t, 345.0 - drop + rng.normal(0.0, 0.01, n)


def test_detects_a_leak_to_catch_within_its_expected_delay_and_dates_it() -> None:
    # Blocks of 100 samples (10 s): slope stderr = 0.01 * sqrt(12 / (100 * 9999)) / 0.1.
    # The delay expected is the one of the plan in force when the leak starts (learnt from
    # the blocks before it), not the last plan, which learnt from the leak's blocks as well.
    block_n, se = 100, 0.01 * np.sqrt(12 / (100 * 9999)) / 0.1
    delays, onsets, expected = [], [], []
    for seed in range(20):
        t, y = leak_record(np.random.default_rng(seed), 3000.0, 2.0 * se)
        before = cusum_scan(t[t - t[0] <= 3000.0], y[t - t[0] <= 3000.0], block_n, catch_loss_rate=2.0 * se)
        assert before.plan is not None
        expected.append(before.plan.expected_delay_s)
        r = cusum_scan(t, y, block_n, catch_loss_rate=2.0 * se)
        after = [a for a in r.alarms if a.t_alarm_s - t[0] > 3000.0]
        assert after, f"seed {seed}: no alarm after the onset"
        assert all(a.t_alarm_s - t[0] > 3000.0 for a in r.alarms), "a false alarm in 5 min"
        delays.append(after[0].t_alarm_s - t[0] - 3000.0)
        onsets.append(after[0].t_onset_s - t[0])
    assert np.mean(delays) == pytest.approx(np.mean(expected), rel=0.35)
    assert abs(np.median(onsets) - 3000.0) < 5 * 10.0  # within 5 blocks


@pytest.mark.parametrize("correlated", [False, True])
def test_live_updates_give_the_same_alarms_as_the_whole_record(correlated: bool) -> None:
    rng = np.random.default_rng(3)
    t, y = leak_record(rng, 4000.0, 3e-2)
    spacing_s = 30 * 86400.0
    if correlated:  # AR noise, a short stated spacing: false alarms, segments, whitening
        y = y + 0.05 * ar1(y.size, np.exp(-0.1 / 20.0), rng)
        spacing_s = 600.0
    whole = cusum_scan(t, y, 50, false_alarm_spacing_s=spacing_s)
    live = LeakCusum(50, false_alarm_spacing_s=spacing_s)
    got = []
    i = 0
    while i < t.size:
        k = int(rng.integers(1, 400))
        got += live.update(t[i : i + k], y[i : i + k])
        i += k
    assert got == whole.alarms and len(got) >= (3 if correlated else 1)
    assert live.statistic == pytest.approx(whole.statistic[-1], abs=1e-9)
    assert live.plan == whole.plan and whole.plan is not None
    assert whole.statistic[: WARMUP_BLOCKS - 1].max() == 0.0  # the warm-up only learns
    with pytest.raises(ValueError, match="block_n"):
        LeakCusum(2)


def test_a_flagged_leak_is_not_learnt_as_noise() -> None:
    # A leak of 3 standard errors for the last three quarters of the record: centred on one
    # mean it would add 9 * 0.75 * 0.25 = 1.7 variances; cut at the alarm it adds nothing.
    se = 0.01 * np.sqrt(12 / (100 * 9999)) / 0.1
    for seed in range(3):
        rng = np.random.default_rng(seed)
        t = 1e5 + 0.1 * np.arange(200_000)
        y = 345.0 - np.where(t - t[0] > 5000.0, 3 * se * (t - t[0] - 5000.0), 0.0) + rng.normal(0.0, 0.01, t.size)
        r = cusum_scan(t, y, 100, catch_loss_rate=3 * se)
        assert r.model is not None and r.plan is not None and r.alarms
        assert 0.85 < r.model.sigma_lr / se < 1.2, r.model
        assert r.plan.shift == pytest.approx(3 * se / r.model.sigma_lr)


def _redesign_blocks(cusum: LeakCusum, rates: np.ndarray, block_n: int, skip: int = 0) -> list[int]:
    """The CUSUM's block counts at which its design (its plan) changed, fed one block's
    worth of samples at a time; its blocks start `skip` samples in."""
    t = np.arange(block_n) * 0.1
    out, plan = [], None
    for b, y in enumerate(rates):
        cusum.update(t + b * block_n * 0.1, y)
        if cusum.plan is not plan:
            out.append(((b + 1) * block_n - skip) // block_n)
            plan = cusum.plan
    return out


def test_a_phase_spreads_the_redesigns_within_a_quarter_of_their_power_of_two() -> None:
    """Nodes a gateway starts together must not all redesign on one block: each redesign
    after 2^j blocks waits phase * 2^j / 4 blocks more (then the first renewal, at most
    another 2^j / 4). Phase 0 is the schedule the false-alarm tests validate."""
    block_n, blocks, channels = 20, 300, 16
    rng = np.random.default_rng(5)
    after_128 = {}
    for phased in (False, True):
        firsts = []
        for c in range(channels):
            phase = c / channels if phased else 0.0
            rates = rng.normal(0.0, 1.0, (blocks, block_n))  # a sealed chamber: white noise
            got = _redesign_blocks(LeakCusum(block_n, phase=phase), rates, block_n, int(phase * block_n))
            later = [b for b in got if b > WARMUP_BLOCKS + 1]
            assert len(later) >= 3
            for b in later:
                after = 1 << (b.bit_length() - 1)  # the power of 2 this redesign follows
                due = after + int(phase * (after >> 2))
                assert due <= b <= due + due // 4 + 1, (phase, b, due)
            firsts.append(min(b for b in got if b >= 128))
        after_128[phased] = len(set(firsts))
    # in step, the channels' redesigns bunch on the few blocks where S is 0 after 128
    assert after_128[True] >= 10 and after_128[True] >= 2 * after_128[False], after_128
    with pytest.raises(ValueError, match="phase"):
        LeakCusum(block_n, phase=1.0)


def test_a_phase_starts_the_blocks_later_and_changes_nothing_else() -> None:
    """A detector at phase p leaves its first int(p * block_n) samples out: what it then
    does (blocks, alarms and their dates, design) is what a detector at phase 0 does on the
    samples after them, fed in pieces that do not line up with its blocks."""
    block_n = 50
    rng = np.random.default_rng(8)
    t, y = leak_record(rng, onset_s=3000.0, rate=0.02, n=60_000)
    for phase in (0.3, 0.74):
        skip = int(phase * block_n)
        late, ref = LeakCusum(block_n, phase=phase), LeakCusum(block_n)
        cuts = np.sort(rng.integers(0, t.size, 400))
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, t.size]):
            late.update(t[a:b], y[a:b])
        ref.update(t[skip:], y[skip:])
        assert late.alarms and late.alarms == ref.alarms
        assert late.statistic == ref.statistic
        assert late.plan is not None and late.plan.k == ref.plan.k and late.plan.h == ref.plan.h


def test_a_tracker_gives_its_phase_to_its_onset_detectors() -> None:
    from leakmon.analysis.tracker import LeakTracker
    from leakmon.wire.stream import SampleBlock

    hz, secs = 10, 1000  # 100 blocks of 10 s: a redesign due after 64 (phase 0.9: 64 + 14)
    firsts = []
    for phase in (0.0, 0.9):
        rng = np.random.default_rng(2)  # the same samples for both
        tr = LeakTracker(600.0, phase=phase)
        plans, last = [], None
        for s in range(secs):
            t = s + np.arange(hz) / hz
            tr.ingest(SampleBlock(channel=0, seq=s, t_s=t, pressure_pa=1e5 + rng.normal(0, 0.5, hz),
                                  temperature_k=np.full(hz, 293.15)))
            plan = tr._cusums[0].plan
            if plan is not last:
                plans.append(s)
                last = plan
        firsts.append([s for s in plans if s >= 630])
    due_s = 10 * (64 + int(0.9 * 16)) - 1  # the second whose sample ends block 78
    assert firsts[0] and firsts[1] and firsts[0][0] < due_s <= firsts[1][0], firsts
