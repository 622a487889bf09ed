"""Fault injection written in a scenario file reaches the virtual board's sim.json."""

import pytest
from leakmon.errors import ConfigError
from leakmon.sim import scenario

BASE = """
[[segments]]
name = "chamber"
volume_m3 = 0.05
pressure_pa = 101325.0
wall = { temperature_k = 293.15 }
[[sensors]]
chip = "BMP390"
addr = 0x77
%s
"""


def test_sensor_and_bus_faults_reach_sim_json():
    sc = scenario.loads(BASE % 'faults = { nack_prob = 0.01, remove_at_s = 5.0, replug_at_s = 9.0 }\n'
                               '[[buses]]\nbus = 0\nstuck_from_s = 30.0\n')
    cfg = sc.sim_config(seed=1, speed=0)
    s = cfg["sensors"][0]
    assert (s["nack_prob"], s["remove_at_s"], s["replug_at_s"]) == (0.01, 5.0, 9.0)
    assert cfg["buses"] == {"0": {"stuck_from_s": 30.0}}


def test_no_faults_means_none_injected():
    cfg = scenario.loads(BASE % "").sim_config(seed=1, speed=0)
    assert "nack_prob" not in cfg["sensors"][0] and "buses" not in cfg


@pytest.mark.parametrize("extra, needle", [
    ("faults = { nack_rate = 0.1 }", "unknown key 'nack_rate' (allowed: nack_prob, remove_at_s"),
    ("faults = { nack_prob = 1.5 }", "'nack_prob' is a probability"),
    ("faults = 3", "'faults' must be a table"),
    ("[[buses]]\nbus = 0\nstuck_at = 1.0", "unknown key 'stuck_at'"),
])
def test_bad_faults_are_named(extra, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        scenario.loads(BASE % extra)
