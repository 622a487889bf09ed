"""Shipped scenarios: they load, their truth is written to files, the physics runs
the same in MicroPython as in CPython, the node runs on them with every sensor
reading its own segment, and a broken file gets an error that says where."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT
from leakmon.errors import ConfigError
from leakmon.sim import scenario, truth
from leakmon.wire.stream import NodeStream, SampleBlock

HERE = Path(__file__).parent
SHIPPED = scenario.shipped()
NO_MUX = 0xFF


def test_the_expected_scenarios_ship():
    assert {"steady_leak", "sealed", "pressure_decay", "station_hatches", "large_leak"} <= set(SHIPPED)
    assert all((ROOT / "hardware" / "scenarios" / f"{n}.toml").exists() for n in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_scenario_loads_and_has_a_truth(name, tmp_path):
    sc = scenario.load(name)
    cfg = json.loads(json.dumps(sc.sim_config(seed=1, speed=0)))  # sim.json is plain JSON
    assert len(cfg["sensors"]) == len(sc.sensors) and cfg["physics"]["segments"]
    t = np.linspace(0.0, min(sc.duration_s, 600.0), 13)
    table = sc.truth(t)
    for s in sc.segments:
        p = table[f"{s.name}.pressure_pa"]
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
    csv_path = truth.write_truth(tmp_path / "truth.csv", sc, t)
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == list(table) and len(rows) == len(t) + 1
    npz = np.load(truth.write_truth(tmp_path / "truth.npz", sc, t))
    np.testing.assert_array_equal(npz[f"{sc.segments[0].name}.pressure_pa"], table[f"{sc.segments[0].name}.pressure_pa"])


def test_truth_is_written_on_request(tmp_path):
    """What `leakmon sim --truth FILE` writes (tests/hil/test_sim_truth.py runs the command)."""
    out = tmp_path / "t.csv"
    truth.write_truth(out, scenario.load("pressure_decay"), np.arange(0.0, 137.25, 0.5))
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 275 and float(rows[-1]["t_s"]) == 137.0
    assert float(rows[20]["part.temperature_k"]) > 300.0  # 10 s: still warm from the fill
    with pytest.raises(ConfigError, match="must end in .csv or .npz"):
        truth.write_truth(tmp_path / "t.txt", scenario.load("pressure_decay"), [0.0])


def test_steady_leak_and_sealed_keep_their_meaning():
    steady, sealed = scenario.load("steady_leak"), scenario.load("sealed")
    assert steady.chamber().leak_rate_pa_per_s(293.15) == pytest.approx(0.0487, abs=5e-5)
    tb = steady.truth([60.0])
    assert tb["chamber.leak_kg_per_s"][0] * 86400 == pytest.approx(0.0025, rel=1e-12)
    assert tb["chamber.leak_pa_per_s"][0] == pytest.approx(
        steady.chamber().leak_rate_pa_per_s(tb["chamber.temperature_k"][0]), rel=1e-12)
    assert sealed.chamber().leak_rate_pa_per_s(293.15) == 0.0
    temp = sealed.truth(np.linspace(0.0, 600.0, 601))["chamber.temperature_k"]
    assert temp.max() - 293.15 == pytest.approx(0.5, abs=1e-4) and 293.15 - temp.min() == pytest.approx(0.5, abs=1e-4)


def test_station_hatches_isolate_the_leak():
    """1 kg/day in Zvezda; once each hatch closes, the module cut off stops losing gas."""
    sc = scenario.load("station_hatches")
    assert sc.truth([0.0])["zvezda.leak_kg_per_s"][0] * 86400 == pytest.approx(1.0, rel=0.05)
    # Hatches open: the modules share the loss (and trade gas as their walls warm and
    # cool), but together they lose exactly what leaks out of Zvezda.
    tb = sc.truth([1200.0])
    net = [tb[f"{s.name}.net_loss_kg_per_s"][0] for s in sc.segments]
    assert sum(net) == pytest.approx(tb["zvezda.leak_kg_per_s"][0], rel=1e-3)
    t = np.array([11000.0, 14600.0])  # all hatches closed from 10800 s
    tb = sc.truth(t)
    for s in sc.segments:
        m = tb[f"{s.name}.mass_kg"]
        if s.name == "zvezda":
            assert (m[0] - m[1]) / 3600 * 86400 == pytest.approx(1.0, rel=0.05)
            assert tb["zvezda.net_loss_kg_per_s"][1] == pytest.approx(tb["zvezda.leak_kg_per_s"][1], rel=1e-6)
        else:
            assert abs(m[0] - m[1]) < 1e-9 * m[0]


def test_micropython_runs_the_same_physics(run_mp, tmp_path):
    """Every shipped scenario (the station with its hatch schedule compressed into
    minutes) evaluated by MicroPython and CPython at the same times: 1e-9 agreement."""
    jobs: list[tuple[str, dict[str, Any], list[float]]] = []
    for name in SHIPPED:
        cfg = scenario.load(name).physics_config()
        horizon = 150.0
        if name == "station_hatches":
            for ln in cfg["links"]:
                ln["schedule"] = [[t / 100.0, f] for t, f in ln["schedule"]]
        jobs.append((name, cfg, [float(x) for x in np.linspace(0.0, horizon, 16)] + [horizon + 0.37]))
    from leakmon.sim.vboard import physics

    for name, cfg, times in jobs:
        job = tmp_path / f"{name}.json"
        job.write_text(json.dumps({"physics": cfg, "times": times}))
        res = run_mp(HERE / "mp_physics.py", str(job), timeout=120)
        assert res.returncode == 0, res.stderr.decode()[-2000:]
        lines = res.stdout.decode().splitlines()
        plant = physics.Plant(cfg)
        for line, t in zip(lines, times):
            row = json.loads(line)
            assert row[0] == t
            for i, (p_mp, t_mp, leak_mp) in enumerate(row[1:]):
                p, temp = plant.state(i, t)
                assert float(p_mp) == pytest.approx(p, rel=1e-9), (name, t, i)
                assert float(t_mp) == pytest.approx(temp, rel=1e-9), (name, t, i)
                assert float(leak_mp) == pytest.approx(plant.leak_kg_per_s(i, t), rel=1e-9, abs=1e-18)
        assert json.loads(lines[-1])["steps"] == plant.steps


def _run_node(run_mp, tmp_path: Path, cfg: dict[str, Any], ticks: int) -> NodeStream | Any:
    (tmp_path / "sim.json").write_text(json.dumps(cfg))
    res = run_mp(ROOT / "tests" / "firmware" / "mp_run_node.py", str(ticks), "100000", cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    stream = NodeStream()
    blocks = [i for i in stream.feed(res.stdout) if isinstance(i, SampleBlock)]
    assert stream.hello is not None and stream.decoder.stats.crc_errors == 0
    return stream, blocks


def _check_channels_read_their_segments(sc: scenario.Scenario, cfg: dict[str, Any], stream: Any,
                                        blocks: list[SampleBlock]) -> None:
    from leakmon.sim.vboard import physics

    key = {(s["bus"], s["mux_channel"] if "mux_addr" in s else NO_MUX, s["addr"]): s for s in cfg["sensors"]}
    assert len(stream.hello.channels) == len(cfg["sensors"])
    for ch in stream.hello.channels:
        s = key[(ch.bus, ch.mux, ch.addr)]
        mine = [b for b in blocks if b.channel == ch.channel]
        t = np.concatenate([b.t_s for b in mine])
        p = np.concatenate([b.pressure_pa for b in mine])
        assert len(t) >= 50
        plant = physics.Plant(cfg["physics"])
        seg = s["segment"]
        truth_p = np.array([plant.state(seg, float(x))[0] for x in t])
        # Noise, plus what 20 ms of timing between the sample's stamp and its conversion can move.
        slope = np.abs(np.gradient(truth_p, t)) if len(t) > 1 else np.zeros(1)
        tol = 6 * s.get("noise_pa", 0.3) + 0.02 * slope + 0.05
        assert np.all(np.abs(p - truth_p) < tol), (sc.name, seg, np.max(np.abs(p - truth_p) - tol))


@pytest.mark.parametrize("name", SHIPPED)
def test_the_node_runs_on_every_scenario(run_mp, tmp_path, name):
    sc = scenario.load(name)
    cfg = sc.sim_config(seed=3, speed=0)
    stream, blocks = _run_node(run_mp, tmp_path, cfg, ticks=60)
    _check_channels_read_their_segments(sc, cfg, stream, blocks)


def test_each_sensor_reads_its_own_segment(run_mp, tmp_path):
    """The station with its hatches shut and each module at its own pressure."""
    sc = scenario.load("station_hatches")
    cfg = copy.deepcopy(sc.sim_config(seed=5, speed=0))
    pressures = [95000.0, 97000.0, 99000.0, 101000.0]
    for seg, p0 in zip(cfg["physics"]["segments"], pressures):
        seg["p0_pa"] = p0
    for ln in cfg["physics"]["links"]:
        ln["schedule"] = [[0.0, 0.0]] if not ln.get("leak") else ln["schedule"]
    stream, blocks = _run_node(run_mp, tmp_path, cfg, ticks=60)
    _check_channels_read_their_segments(sc, cfg, stream, blocks)
    seen = {}
    for ch in stream.hello.channels:
        p = np.concatenate([b.pressure_pa for b in blocks if b.channel == ch.channel])
        seen[ch.mux] = float(np.mean(p))
    # mux channel n carries the sensor of segment n (station_hatches.toml).
    assert [round(seen[i], -2) for i in range(4)] == pressures


BASE = """
name = "t"
[[segments]]
name = "a"
volume_m3 = 1.0
pressure_pa = 101325.0
[[sensors]]
chip = "BMP390"
"""


@pytest.mark.parametrize("text, where, message", [
    ("name = [", "", "not valid TOML"),
    ('name = "t"\n[chamber]\nvolume_m3 = 1.0\n[[sensors]]\nchip = "BMP390"\n', "", "[chamber] is the old format"),
    (BASE.replace("volume_m3 = 1.0", "volume_m3 = -1.0"), "[[segments]] #1", "'volume_m3' must be positive"),
    (BASE.replace("volume_m3 = 1.0", 'volume_m3 = "big"'), "[[segments]] #1", "'volume_m3' must be a finite number"),
    (BASE.replace("volume_m3 = 1.0\n", ""), "[[segments]] #1", "missing 'volume_m3'"),
    (BASE.replace("volume_m3 = 1.0", "volume_m3 = 1.0\nvolme = 2"), "[[segments]] #1",
     "unknown key 'volme' (allowed: name, volume_m3"),
    (BASE.replace('chip = "BMP390"', 'chip = "BMP999"'), "[[sensors]] #1", "'chip' = 'BMP999' is not one of BMP388"),
    (BASE + 'segment = "b"\n', "[[sensors]] #1", "'segment' = 'b' is not one of a"),
    # issue 13 item 7: a sensor at 0x7777 booted a node with no sensors at all
    (BASE + "addr = 0x7777\n", "[[sensors]] #1", "'addr' must be a 7-bit I2C address 0x08..0x77"),
    (BASE + 'segment = "a"\n[[segments]]\nname = "b"\nvolume_m3 = 1.0\npressure_pa = 1.0\n[[sensors]]\nchip = "BMP390"\naddr = 0x76\n',
     "[[sensors]] #2", "missing 'segment': the sensor is in no segment (one of a, b)"),
    (BASE + '[[leaks]]\nsegment = "a"\nto = "space"\nmass_kg_per_day = 1\n', "[[leaks]] #1",
     "'to' = 'space' is not one of vacuum, ambient"),
    (BASE + '[[leaks]]\nsegment = "a"\n', "[[leaks]] #1", "give either 'mass_kg_per_day' or a hole"),
    (BASE + '[[hatches]]\nbetween = ["a", "vacuum"]\narea_m2 = 0.1\nschedule = [[10, "ajar"]]\n', "[[hatches]] #1",
     "'ajar' is not one of open, closed or an open fraction"),
    (BASE + '[[valves]]\nbetween = ["a", "ambient"]\narea_m2 = 0.1\nopen_during = ["fill"]\n', "[[valves]] #1",
     "names phase 'fill', not one of (no [[phases]])"),
    (BASE + '[[hatches]]\nbetween = ["a", "a"]\narea_m2 = 0.1\n', "[[hatches]] #1", "two different nodes"),
    (BASE.replace("pressure_pa = 101325.0", "pressure_pa = 101325.0\nwall = { swing_k = -1 }"),
     "[segments.wall] #1", "'swing_k' must be >= 0"),
    (BASE + "[simulation]\nstep_s = 0\n", "[simulation]", "'step_s' must be positive"),
    (BASE.replace("[[sensors]]\nchip = \"BMP390\"\n", ""), "", "no [[sensors]]"),
])
def test_broken_files_name_the_file_table_and_key(tmp_path, text, where, message):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        scenario.load(str(path))
    msg = str(e.value)
    assert str(path) in msg and where in msg and message in msg, msg


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="one of .*large_leak.*station_hatches"):
        scenario.load("no_such_thing")


def test_a_multi_segment_scenario_has_no_single_chamber_closed_form():
    with pytest.raises(ConfigError, match="no closed form"):
        scenario.load("station_hatches").chamber()
