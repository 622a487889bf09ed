"""Zooming into 24 h of 10 Hz from 4 sensors (3.46 M points) answers within 200 ms over
real HTTP, and the answer keeps the envelope of every pixel column."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dashfix import OPERATOR, Client, serve_in_thread

from leakmon.dashboard.app import build_app
from leakmon.dashboard.auth import Sessions, hash_password
from leakmon.dashboard.history import History
from leakmon.dashboard.hub import Hub
from leakmon.dashboard.site import Segment, Site
from leakmon.dashboard.store import Store

pytestmark = pytest.mark.slow

DAY_S = 86400.0
RATE_HZ = 10.0
CHANNELS = 4
ZOOM_BUDGET_MS = 200.0


def fill(hub: Hub, seed: int = 1) -> dict[int, np.ndarray]:
    """A day of 10 Hz per channel: a slow leak, a daily temperature swing, noise, spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, DAY_S, 1.0 / RATE_HZ)
    out = {}
    for ch in range(CHANNELS):
        p = 101325.0 - 0.05 * t + 30 * np.sin(2 * np.pi * t / DAY_S) + rng.normal(0, 0.5, len(t))
        p[rng.integers(0, len(t), 20)] += rng.normal(0, 50, 20)
        k = 295.0 + 0.3 * np.sin(2 * np.pi * t / 5400.0) + rng.normal(0, 0.002, len(t))
        for i in range(0, len(t), 36000):  # an hour at a time, as a feed would
            hub.history.add_raw(ch, t[i:i + 36000], p[i:i + 36000], k[i:i + 36000])
        out[ch] = p
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[int, np.ndarray]]]:
    tmp: Path = tmp_path_factory.mktemp("zoom")
    store = Store(tmp / "db.sqlite")
    store.set_user(OPERATOR[0], "operator", hash_password(OPERATOR[1]))
    site = Site("day", tuple(Segment(f"s{c}") for c in range(CHANNELS)), (), {c: f"s{c}" for c in range(CHANNELS)})
    n = int(DAY_S * RATE_HZ)
    hub = Hub(site, store, History(n, int(DAY_S)))
    truth = fill(hub)
    url, stop = serve_in_thread(build_app(hub, Sessions(store, b"k" * 32)))
    yield url, truth
    stop()
    store.close()


def timed(c: Client, path: str) -> tuple[float, Any]:
    best, body = float("inf"), None
    for _ in range(3):  # best of three: the machine is shared
        t0 = time.perf_counter()
        status, raw, _ = c.request(path)
        best = min(best, (time.perf_counter() - t0) * 1e3)
        assert status == 200
        body = json.loads(raw)
    return best, body


@pytest.mark.parametrize("t0, t1", [(0.0, DAY_S), (3600.0, 7200.0), (43200.0, 43260.0)])
def test_zoom_answers_within_budget_with_the_envelope(server: tuple[str, dict[int, np.ndarray]],
                                                      t0: float, t1: float) -> None:
    url, truth = server
    c = Client(url)
    assert c.login(*OPERATOR) == 200
    width = 1200
    for ch in range(CHANNELS):
        ms, body = timed(c, f"/api/range?ch={ch}&t0={t0}&t1={t1}&width={width}")
        assert ms < ZOOM_BUDGET_MS, f"channel {ch} [{t0}, {t1}]: {ms:.0f} ms"
        p = np.array(body["raw"]["pressure_pa"])
        assert len(p) <= 2 * width
        i0, i1 = int(np.ceil(t0 * RATE_HZ - 1e-6)), int(np.floor(t1 * RATE_HZ + 1e-6)) + 1
        window = truth[ch][i0:i1]
        assert p.min() == pytest.approx(window.min()) and p.max() == pytest.approx(window.max())
