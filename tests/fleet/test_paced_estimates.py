"""The paced gateway benchmark, small, against a real Mosquitto: every channel's estimate
is published once per device second and reaches a subscriber.

On 2026-12-01 bench_fleet.py printed "(0 estimates)": its synthetic 10-channel nodes
named mux channel 8 and 9, which the stream core had begun to refuse, so no sample was
decoded and nothing was estimated. This test runs the bench's own code on the bench's
node shape (10 channels), so it fails the same way if that comes back.
"""

from __future__ import annotations

import importlib.util
import secrets
import tempfile
from pathlib import Path

import pytest
import servers

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_fleet", ROOT / "bench" / "bench_fleet.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def bench_broker(server_root: Path):
    if not servers.have_mosquitto():
        servers.require("Mosquitto")
    users = {u: secrets.token_urlsafe(12) for u in ("gw", "reader")}
    b = servers.Broker(Path(tempfile.mkdtemp(dir=server_root)), users,
                       ["user gw", "topic write leakmon/#", "user reader", "topic read leakmon/#"])
    b.folder.chmod(0o755)
    b.start()
    yield b
    b.stop()


@pytest.mark.parametrize(("warm_s", "stagger"), [(0.0, False), (5.0, False), (0.0, True)])
def test_paced_run_publishes_an_estimate_per_channel_per_second(bench_broker, tmp_path: Path, warm_s: float,
                                                                 stagger: bool) -> None:
    # warm_s: windows filled first, estimated but unpublished (the steady-state run); after
    # it, one estimate per channel per second, published. stagger: the nodes' frames spread
    # over the second.
    # a frame of 10 rows at 10 Hz is one device second; the paced part is 3 of them per node
    # (paced() feeds them at their real rate, 1 s apart, the first 2 s after its start)
    nodes, channels, rows, seconds = 3, 10, 10, 2.0
    got = _bench().paced(bench_broker, nodes, channels, rows, seconds, tmp_path / "spool", estimate_every_s=1.0,
                         warm_s=warm_s, stagger=stagger)
    assert 0.0 < got["p99_due_s"] < 5.0, got  # from when a node sent its frame: never before it
    assert got["channel_seconds"] == nodes * channels * 3  # int(2 / 1) + 3 frames, 2 of them warm-up
    assert got["estimates_made"] == got["channel_seconds"], got  # the gateway: one per channel per second
    assert got["estimates_got"] == got["estimates_made"], got  # the subscriber: all of them
    assert got["messages_got"] == got["frames_fed"], got  # one estimate message per frame of a node
