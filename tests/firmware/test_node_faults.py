"""Sensor faults on the virtual board: NACK storms, a sensor pulled and re-plugged."""

import json
from pathlib import Path

import numpy as np
from leakmon.sim import scenario
from leakmon.wire import messages as protocol
from leakmon.wire.stream import NodeStream, SampleBlock

HERE = Path(__file__).parent


def sim_json(tmp_path, sensors, seed=11):
    cfg = scenario.load("steady_leak").sim_config(seed=seed, speed=0)
    cfg["sensors"] = sensors
    (tmp_path / "sim.json").write_text(json.dumps(cfg))


def run(run_mp, tmp_path, ticks, period_us=100000):
    res = run_mp(HERE / "mp_run_node.py", str(ticks), str(period_us), cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    summary = json.loads(res.stderr.decode().strip().splitlines()[-1])
    stream = NodeStream()
    items = stream.feed(res.stdout)
    return summary, stream, items


def test_one_percent_nacks_on_four_sensors(run_mp, tmp_path):
    sensors = [{"chip": "BMP390", "bus": bus, "addr": addr, "nack_prob": 0.01}
               for bus in (0, 1) for addr in (0x76, 0x77)]
    sim_json(tmp_path, sensors)
    summary, stream, items = run(run_mp, tmp_path, ticks=25000)
    assert summary["channels"] == 4
    # Every injected fault is counted by the node, on the right channel...
    assert summary["errors"] == summary["injected_nacks"]
    assert sum(summary["injected_nacks"]) > 500  # ~1% of >100k transactions really happened
    status = [i for i in items if isinstance(i, protocol.Status)][-1]
    assert status.i2c_errors == sum(summary["injected_nacks"])
    # ...reported as events (the first of each burst, at most one per channel per second)...
    events = [i for i in items if isinstance(i, protocol.Event) and i.name == "sensor-error"]
    assert events and {e.channel for e in events} == {0, 1, 2, 3}
    # ...and every sample the node took reaches the host intact, none corrupted by a fault.
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    n_host = sum(len(b.t_s) for b in blocks)
    assert n_host == summary["samples_taken"] >= 99_000
    assert stream.stats.lost_frames == 0 and stream.decoder.stats.crc_errors == 0
    p = np.concatenate([b.pressure_pa for b in blocks])
    assert np.all(np.abs(p - 101325) < 2000)


def test_sensor_pulled_and_replugged_comes_back_while_others_keep_streaming(run_mp, tmp_path):
    sensors = [{"chip": "BMP390", "bus": 0, "addr": 0x77},
               {"chip": "BMP390", "bus": 0, "addr": 0x76, "remove_at_s": 5.0, "replug_at_s": 12.0}]
    sim_json(tmp_path, sensors)
    summary, stream, items = run(run_mp, tmp_path, ticks=300)  # 30 s at 10 Hz
    assert stream.hello is not None
    pulled = next(c.channel for c in stream.hello.channels if c.addr == 0x76)
    healthy = 1 - pulled
    names = [(i.name, i.channel) for i in items if isinstance(i, protocol.Event)]
    assert ("sensor-lost", pulled) in names and ("sensor-back", pulled) in names
    assert names.index(("sensor-lost", pulled)) < names.index(("sensor-back", pulled))
    assert not any(ch == healthy for name, ch in names if name in ("sensor-lost", "sensor-error"))
    assert summary["lost"] == []
    t = {ch: np.concatenate([b.t_s for b in items if isinstance(b, SampleBlock) and b.channel == ch])
         for ch in (0, 1)}
    # The healthy channel never missed a slot.
    np.testing.assert_allclose(np.diff(t[healthy]), 0.1, atol=1e-9)
    assert len(t[healthy]) >= 299
    # The pulled one has a gap covering its absence, then resumes within the backoff.
    gaps = np.diff(t[pulled])
    big = np.flatnonzero(gaps > 0.15)
    assert len(big) == 1
    t_out, t_back = t[pulled][big[0]], t[pulled][big[0] + 1]
    assert 4.8 <= t_out <= 5.0
    assert 12.0 <= t_back <= 12.0 + 8.5  # next probe after 1, 2, 4 s of backoff
    assert t[pulled][-1] >= 29.0


def test_stuck_sensor_is_reported_and_dropped_while_the_other_streams(run_mp, tmp_path):
    sensors = [{"chip": "BMP390", "bus": 0, "addr": 0x77},
               {"chip": "BMP390", "bus": 0, "addr": 0x76, "stuck_from_s": 6.0, "stuck_until_s": 15.0}]
    sim_json(tmp_path, sensors)
    summary, stream, items = run(run_mp, tmp_path, ticks=300)
    assert stream.hello is not None
    stuck = next(c.channel for c in stream.hello.channels if c.addr == 0x76)
    names = [(i.name, i.channel) for i in items if isinstance(i, protocol.Event)]
    assert ("sensor-stuck", stuck) in names and ("sensor-lost", stuck) in names
    assert names[-1] == ("sensor-back", stuck) and summary["lost"] == []
    t_ok = np.concatenate([b.t_s for b in items if isinstance(b, SampleBlock) and b.channel != stuck])
    np.testing.assert_allclose(np.diff(t_ok), 0.1, atol=1e-9)
    # The stuck stretch is cut short: at most one frame of frozen values gets out.
    t_stuck = np.concatenate([b.t_s for b in items if isinstance(b, SampleBlock) and b.channel == stuck])
    inside = t_stuck[(t_stuck >= 6.0) & (t_stuck < 15.0)]
    assert len(inside) <= 20


def test_stuck_bus_is_recovered_and_its_sensors_come_back(run_mp, tmp_path):
    sensors = [{"chip": "BMP390", "bus": 0, "addr": 0x77}, {"chip": "BMP390", "bus": 0, "addr": 0x76},
               {"chip": "BMP390", "bus": 1, "addr": 0x77}]
    cfg = scenario.load("steady_leak").sim_config(seed=12, speed=0)
    cfg["sensors"] = sensors
    cfg["buses"] = {"0": {"stuck_from_s": 4.0}}
    (tmp_path / "sim.json").write_text(json.dumps(cfg))
    summary, stream, items = run(run_mp, tmp_path, ticks=200)
    assert stream.hello is not None
    on_bus0 = {c.channel for c in stream.hello.channels if c.bus == 0}
    names = [(i.name, i.channel, i.detail) for i in items if isinstance(i, protocol.Event)]
    assert {ch for name, ch, _ in names if name == "sensor-lost"} == on_bus0
    assert ("bus-recovery", 0xFF, 0) in names
    assert {ch for name, ch, _ in names if name == "sensor-back"} == on_bus0
    assert summary["lost"] == []
    for ch in on_bus0:
        t = np.concatenate([b.t_s for b in items if isinstance(b, SampleBlock) and b.channel == ch])
        assert t[-1] >= 19.0 and not np.any((t > 4.05) & (t < 5.0))
    other = next(c.channel for c in stream.hello.channels if c.bus == 1)
    t1 = np.concatenate([b.t_s for b in items if isinstance(b, SampleBlock) and b.channel == other])
    np.testing.assert_allclose(np.diff(t1), 0.1, atol=1e-9)


def test_sampling_faster_than_the_chip_converts_is_not_called_stuck(run_mp, tmp_path):
    # Registers frozen for 0.4 s looks like a chip converting slower than it is read
    # (10 rows at 20 ms span 0.2 s): not a fault. Frozen for good, it is one.
    sensors = [{"chip": "BMP390", "bus": 0, "addr": 0x77, "stuck_from_s": 1.0, "stuck_until_s": 1.4},
               {"chip": "BMP390", "bus": 0, "addr": 0x76, "stuck_from_s": 1.0}]
    sim_json(tmp_path, sensors)
    summary, stream, items = run(run_mp, tmp_path, ticks=300, period_us=20000)
    assert stream.hello is not None
    brief = next(c.channel for c in stream.hello.channels if c.addr == 0x77)
    frozen = 1 - brief
    stuck = {i.channel for i in items if isinstance(i, protocol.Event) and i.name == "sensor-stuck"}
    assert stuck == {frozen}
