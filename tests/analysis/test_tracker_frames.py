"""A node's frame ingested in one pass (LeakTracker.ingest_many) against block by block."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leakmon.analysis.incremental import TrailingWindow
from leakmon.analysis.tracker import LeakTracker
from leakmon.wire.stream import SampleBlock

RATE_HZ = 10.0
ROWS = 10  # samples a frame


def _frames(rng: np.random.Generator, channels: int, frames: int, onset_s: float,
            leak_pa_per_s: float = 2.0) -> list[list[SampleBlock]]:
    """Frames of `channels` channels on one time axis; channel 1 starts leaking at onset_s.
    The noise is drawn per channel: white, plus a slow AR(1) on every other channel."""
    n = frames * ROWS
    t = 1000.0 + np.arange(n) / RATE_HZ
    out = np.empty((channels, 2, n))
    for c in range(channels):
        noise = rng.normal(0.0, rng.uniform(0.5, 3.0), n)
        if c % 2:
            ar = np.empty(n)
            ar[0] = 0.0
            e = rng.normal(0.0, 0.5, n)
            for i in range(1, n):
                ar[i] = 0.995 * ar[i - 1] + e[i]
            noise += ar
        leak = np.where(t > t[0] + onset_s, (t - t[0] - onset_s) * leak_pa_per_s, 0.0) if c == 1 else 0.0
        out[c, 0] = 101_325.0 + noise - leak
        out[c, 1] = 293.15 + 0.01 * rng.normal(size=n)
    return [[SampleBlock(c, f, t[f * ROWS:(f + 1) * ROWS], out[c, 0, f * ROWS:(f + 1) * ROWS],
                         out[c, 1, f * ROWS:(f + 1) * ROWS]) for c in range(channels)]
            for f in range(frames)]  # fmt: skip


def _assert_same_state(one: LeakTracker, each: LeakTracker, firsts_one: list[bool], firsts_each: list[bool]) -> None:
    """The same first alarms, onset detectors and windows (to the bit) in both trackers."""
    assert firsts_one == firsts_each and any(firsts_one), "the leak must raise an alarm (else nothing is shown)"
    for ch, c in each._cusums.items():
        d = one._cusums[ch]
        assert d.alarms == c.alarms and d.plan == c.plan
        assert d.statistic == pytest.approx(c.statistic, rel=1e-9, abs=1e-12)
        w, v = one._windows[ch], each._windows[ch]
        assert (w.first_index, w.added) == (v.first_index, v.added)
        for a, b in zip(w.columns(), v.columns()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("seed", "block_s", "phase"), [(1, 10.0, 0.0), (2, 0.7, 0.0), (3, 3.0, 0.0), (4, 10.0, 0.37)])
def test_a_frame_in_one_pass_gives_what_block_by_block_gives(seed: int, block_s: float, phase: float) -> None:
    """block_s 0.7: a frame completes one or two CUSUM blocks and leaves samples pending.
    phase 0.37: the CUSUM blocks start 37 samples in, mid-frame (a gateway's node)."""
    rng = np.random.default_rng(seed)
    frames = _frames(rng, int(rng.integers(2, 8)), 900, onset_s=float(rng.uniform(300.0, 600.0)),
                     leak_pa_per_s=20.0 / block_s)  # shorter blocks see a leak less sharply
    one, each = LeakTracker(120.0, block_s=block_s, phase=phase), LeakTracker(120.0, block_s=block_s, phase=phase)
    firsts_one: list[bool] = []
    firsts_each: list[bool] = []
    for blocks in frames:
        firsts_one += one.ingest_many(blocks)
        firsts_each += [each.ingest(b) for b in blocks]
    _assert_same_state(one, each, firsts_one, firsts_each)
    for ch in each._cusums:
        u, v = one.update(frames[-1][ch]), each.update(frames[-1][ch])
        assert u is not None and v is not None
        assert u.leak_rate_pa_per_s == pytest.approx(v.leak_rate_pa_per_s, rel=1e-12)
    assert one._cusums[1].alarms and not any(one._cusums[ch].alarms for ch in one._cusums if ch != 1)


def _rows_of(frames: list[list[SampleBlock]]) -> list[list[SampleBlock]]:
    """The same frames as the stream core hands them out: each block one row of (frames,
    rows) arrays shared by the frame's channels (SampleBlock.same_times holds)."""
    t = np.stack([f[0].t_s for f in frames])
    chans = range(len(frames[0]))
    p = {c: np.stack([f[c].pressure_pa for f in frames]) for c in chans}
    k = {c: np.stack([f[c].temperature_k for f in frames]) for c in chans}
    return [[SampleBlock(c, j, t, p[c], k[c], row=j) for c in chans] for j in range(len(frames))]


@pytest.mark.parametrize(("seed", "subsets"), [(11, True), (12, True), (13, False), (14, False)])
def test_frames_of_changing_channel_sets_and_single_blocks_give_what_block_by_block_gives(seed: int, subsets: bool) -> None:
    """Windows filled together are cut once for all (TrailingWindow.add_rows), kept in one
    array and read in one slice, and the onset detectors share their pending times
    (LeakCusum.update_rows): a frame of some of the channels (subsets), or a block ingested
    alone, must leave the others as block-by-block does. (A frame without a channel puts
    that channel's window a frame behind for good: never in step with the others again.)"""
    rng = np.random.default_rng(seed)
    frames = _rows_of(_frames(rng, 4, 700, onset_s=float(rng.uniform(200.0, 400.0)), leak_pa_per_s=2.0))
    assert frames[5][0].same_times(frames[5][3]) and not frames[5][0].same_times(frames[6][0])
    one, each = LeakTracker(60.0, phase=0.37), LeakTracker(60.0, phase=0.37)
    firsts_one: list[bool] = []
    firsts_each: list[bool] = []
    for j, blocks in enumerate(frames):
        how = rng.uniform() if j < len(frames) - 100 else 0.5  # whole frames at the end: the windows share again
        if how < 0.15 and subsets:  # some channels only: the others' windows fall behind by a frame
            blocks = [b for b in blocks if rng.uniform() < 0.6]
        if how > 0.95:  # one at a time
            firsts_one += [one.ingest(b) for b in blocks]
        else:
            firsts_one += one.ingest_many(blocks)
        firsts_each += [each.ingest(b) for b in blocks]
    _assert_same_state(one, each, firsts_one, firsts_each)
    # The gateway's estimates from running sums, read from the windows' shared array (one
    # slice) against windows each on its own buffer (np.stack): the same numbers.
    wins = list(one._windows.values())
    assert (TrailingWindow._shared_of(wins) is not None) == (not subsets)
    assert all(v._shared is None for v in each._windows.values())
    for _ in range(3):
        for u, v in zip(one.update_many(frames[-1]), each.update_many(frames[-1])):
            assert u is not None and v is not None
            assert (u.leak_rate_pa_per_s, u.leak_rate_ci95_low_pa_per_s, u.model) == (
                v.leak_rate_pa_per_s, v.leak_rate_ci95_low_pa_per_s, v.model)


def test_odd_frames_go_block_by_block_with_the_same_refusals() -> None:
    rng = np.random.default_rng(7)
    frames = _frames(rng, 3, 40, onset_s=1e9)
    tr = LeakTracker(60.0)
    for blocks in frames[:20]:
        tr.ingest_many(blocks)
    n = len(tr._windows[0])
    # a channel on another time axis (a second group of the layout): each block alone
    f = frames[20]
    shifted = [f[0], SampleBlock(1, 20, f[1].t_s + 0.05, f[1].pressure_pa, f[1].temperature_k), f[2]]
    tr.ingest_many(shifted)
    assert tr._windows[1].columns()[0][-1] == pytest.approx(float(f[1].t_s[-1]) + 0.05)
    # a NaN refuses as ingest() refuses it, and the channels before it are in as with ingest()
    bad_p = frames[21][2].pressure_pa.copy()
    bad_p[3] = math.nan
    bad = [frames[21][0], frames[21][1], SampleBlock(2, 21, frames[21][2].t_s, bad_p, frames[21][2].temperature_k)]
    with pytest.raises(ValueError, match="finite"):
        tr.ingest_many(bad)
    assert len(tr._windows[0]) == n + 2 * ROWS and len(tr._windows[2]) == n + ROWS
    # time going back in one window: refused as ingest() refuses it
    back = [SampleBlock(c, 22, frames[19][c].t_s, frames[19][c].pressure_pa, frames[19][c].temperature_k)
            for c in range(3)]  # fmt: skip
    with pytest.raises(ValueError, match="decrease"):
        tr.ingest_many(back)


def test_add_rows_refuses_without_adding() -> None:
    wins = [TrailingWindow(10.0, 3) for _ in range(2)]
    t = np.arange(5.0)
    vals = np.ones((2, 2, 5))
    assert TrailingWindow.add_rows(wins, t, vals) and [len(w) for w in wins] == [5, 5]
    for t_bad, v_bad in ((t + 5.0, np.full((2, 2, 5), math.inf)),  # not finite
                         (np.array([6.0, 5.0, 7.0, 8.0, 9.0]), vals),  # times going back inside
                         (t + 3.0, vals),  # before the windows' last sample
                         (t + 5.0, np.ones((2, 3, 5)))):  # fmt: skip  # not one row a window
        assert not TrailingWindow.add_rows(wins, t_bad, v_bad)
        assert [len(w) for w in wins] == [5, 5] and wins[0].added == 5
    assert TrailingWindow.add_rows(wins, t + 20.0, vals)
    assert [len(w) for w in wins] == [5, 5] and wins[1].columns()[0][0] == 20.0  # the front cut to 10 s
