"""Site files: every shipped scenario is one, hatch state follows the schedule the
simulator runs, and a broken file gets one line naming the file, the table and the key."""

from __future__ import annotations

import numpy as np
import pytest
from leakmon.config.site import NO_MUX, load_site, loads_site
from leakmon.errors import ConfigError
from leakmon.sim import scenario

SITE = """
name = "lab"
total_volume_m3 = 3.0

[[segments]]
name = "a"
volume_m3 = 1.0

[[segments]]
name = "b"
volume_m3 = 2.0

[[hatches]]
between = ["a", "b"]
schedule = [[100.0, "closed"], [250.0, 0.5], [400.0, "open"]]

[[valves]]
name = "vent"
between = ["b", "ambient"]
initially = "closed"

[[sensors]]
chip = "BMP390"
addr = 0x77
segment = "a"

[[sensors]]
chip = "DPS310"
bus = 1
addr = 0x76
mux_addr = 0x70
mux_channel = 3
segment = "b"
"""


@pytest.mark.parametrize("name", scenario.shipped())
def test_every_shipped_scenario_is_a_site(name):
    sc = scenario.load(name)
    site = load_site(name)
    assert [(s.name, s.volume_m3) for s in site.segments] == [(s.name, s.volume_m3) for s in sc.segments]
    assert [(s.chip, s.bus, s.addr, s.mux_addr, s.mux_channel, s.segment) for s in site.sensors] == \
        [(s.chip, s.bus, s.addr, s.mux_addr, s.mux_channel, s.segment) for s in sc.sensors]
    orifices = [ln for ln in sc.links if ln.kind != "leak"]
    assert [(ln.name, ln.a, ln.b) for ln in site.links] == [(ln.name, ln.a, ln.b) for ln in orifices]
    # The hatch state the site gives is the one the simulator's physics runs on.
    cfg = {d["name"]: d["schedule"] for d in sc.physics_config()["links"]}
    t = np.linspace(0.0, sc.duration_s, 301)
    for ln in site.links:
        sched = cfg[ln.name]
        want = [next(f for t0, f in reversed(sched) if t0 <= tj) for tj in t]
        np.testing.assert_array_equal(site.hatch_state(t)[ln.name], want)


def test_the_station_splits_into_groups_as_its_hatches_close():
    site = load_site("station_hatches")
    assert site.changes() == (3600.0, 7200.0, 10800.0)
    assert site.groups(0.0) == (("zvezda", "zarya", "unity", "destiny"),)
    assert site.groups(3600.0) == (("zvezda", "zarya", "unity"), ("destiny",))
    assert site.groups(11000.0) == (("zvezda",), ("zarya",), ("unity",), ("destiny",))
    assert [s.segment for s in site.sensors_in("zvezda")] == ["zvezda"]
    assert site.sensor_at(0, 2, 0x77).segment == "unity"
    assert site.sensor_at(0, 7, 0x77) is None


def test_a_site_file_needs_no_simulation_keys():
    site = loads_site(SITE, "lab.toml")
    assert site.name == "lab" and site.total_volume_m3 == 3.0 and site.boundaries == ("vacuum", "ambient")
    assert site.segment("b").volume_m3 == 2.0
    hatch, vent = site.links
    assert (hatch.kind, hatch.name, vent.kind, vent.b) == ("hatch", "a-b", "valve", "ambient")
    state = site.hatch_state([0.0, 99.9, 100.0, 300.0, 400.0])
    np.testing.assert_array_equal(state["a-b"], [1.0, 1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(state["vent"], [0.0] * 5)
    assert site.groups(50.0) == (("a", "b"),) and site.groups(200.0) == (("a",), ("b",))
    assert site.groups(300.0) == (("a", "b"),)  # half open still joins
    a, b = site.sensors
    assert (a.mux, b.mux) == (NO_MUX, 3)
    assert site.sensor_at(1, 3, 0x76) == b
    with pytest.raises(ConfigError, match="no segment 'c' \\(segments: a, b\\)"):
        site.segment("c")


def test_an_operators_changes_merge_into_the_schedule():
    site = loads_site(SITE, "lab.toml")
    moved = site.with_changes([(50.0, "a-b", 0.0), (100.0, "a-b", 0.25), (10.0, "vent", 1.0)])
    assert moved.link("a-b").schedule == ((50.0, 0.0), (100.0, 0.25), (250.0, 0.5), (400.0, 1.0))
    np.testing.assert_array_equal(moved.hatch_state([0.0, 60.0, 120.0])["a-b"], [1.0, 0.0, 0.25])
    assert moved.groups(60.0) == (("a",), ("b",)) and site.groups(60.0) == (("a", "b"),)  # site itself unchanged
    with pytest.raises(ConfigError, match="no hatch or valve 'b-c' \\(have: a-b, vent\\)"):
        site.with_changes([(1.0, "b-c", 0.0)])
    with pytest.raises(ConfigError, match="a fraction 0..1, got \\(1.0, 2.0\\)"):
        site.with_changes([(1.0, "a-b", 2.0)])


def test_a_site_file_is_not_a_scenario():
    """The simulator needs what a site leaves out, and says which key."""
    with pytest.raises(ConfigError, match=r"lab.toml \[\[segments\]\] #1: missing 'pressure_pa'"):
        scenario.loads(SITE, "lab.toml")


def test_phases_drive_a_valve():
    site = loads_site(SITE.replace('initially = "closed"', 'open_during = ["vent"]')
                      + '[[phases]]\nname = "hold"\nduration_s = 60\n[[phases]]\nname = "vent"\nduration_s = 10\n')
    np.testing.assert_array_equal(site.hatch_state([0.0, 59.0, 60.0, 69.0, 70.0])["vent"], [0, 0, 1, 1, 0])


@pytest.mark.parametrize("edit, where, message", [
    # unknown segment names
    (('segment = "b"', 'segment = "c"'), "[[sensors]] #2", "'segment' = 'c' is not one of a, b"),
    (('between = ["a", "b"]', 'between = ["a", "bb"]'), "[[hatches]] #1",
     "'between' = 'bb' is not one of a, b, vacuum, ambient"),
    (('between = ["a", "b"]', 'between = ["a"]'), "[[hatches]] #1", "'between' must be two of a, b, vacuum"),
    (('name = "b"', 'name = "a"'), "", "names used twice among segments, supplies and vacuum, ambient: a"),
    (('name = "b"\n', ""), "[[segments]] #2", "missing 'name'"),
    # inconsistent volumes
    (("volume_m3 = 2.0", "volume_m3 = 0.0"), "[[segments]] #2", "'volume_m3' must be positive, got 0.0"),
    (("volume_m3 = 2.0", "volume_m3 = -2.0"), "[[segments]] #2", "'volume_m3' must be positive, got -2.0"),
    (("volume_m3 = 2.0", "volume_m3 = 4.0"), "[[segments]] #2", "'volume_m3' = 4 is larger than total_volume_m3 = 3"),
    (("volume_m3 = 2.0", "volume_m3 = 1.5"), "(top level)",
     "'total_volume_m3' = 3 but the [[segments]] volumes add up to 2.5"),
    (("total_volume_m3 = 3.0", "total_volume_m3 = 0"), "(top level)", "'total_volume_m3' must be positive, got 0"),
    (("volume_m3 = 2.0", "volume_m3 = nan"), "[[segments]] #2", "'volume_m3' must be a finite number, got nan"),
    # a sensor in no segment
    (('segment = "a"\n', ""), "[[sensors]] #1", "missing 'segment': the sensor is in no segment (one of a, b)"),
    # sensors: 7-bit addresses, one sensor per address
    (("addr = 0x77", "addr = 0x7777"), "[[sensors]] #1", "'addr' must be a 7-bit I2C address 0x08..0x77"),
    (("addr = 0x77", "addr = 0x78"), "[[sensors]] #1", "0x78-0x7f are reserved), got 0x78"),
    (("addr = 0x77", "addr = -1"), "[[sensors]] #1", "'addr' must be a 7-bit I2C address"),
    (("addr = 0x77", 'addr = "0x77"'), "[[sensors]] #1", "'addr' must be an integer, got '0x77'"),
    (("mux_addr = 0x70", "mux_addr = 0x71\nmux_addr2 = 1"), "[[sensors]] #2", "unknown key 'mux_addr2'"),
    (("mux_addr = 0x70", "mux_addr = 0x69"), "[[sensors]] #2", "'mux_addr' must be a TCA9548A address 0x70..0x77"),
    (('chip = "DPS310"\nbus = 1\naddr = 0x76', 'chip = "DPS310"\nbus = 0\naddr = 0x77\nmux_addr = 0x70\nmux_channel = 3'),
     "", "not valid TOML"),  # a key given twice
    (('chip = "DPS310"\nbus = 1\naddr = 0x76\nmux_addr = 0x70\nmux_channel = 3\n', 'chip = "DPS310"\n'),
     "[[sensors]] #2", "'addr' 0x77 on bus 0 is already [[sensors]] #1's"),
    # schedules
    (('[400.0, "open"]', '[200.0, "open"]'), "[[hatches]] #1", "'schedule' times must be >= 0 and increase (entry #3)"),
    (('[250.0, 0.5]', '[250.0, 1.5]'), "[[hatches]] #1", "schedule entry #2 1.5 is not one of open, closed or an open fraction"),
    (('initially = "closed"', 'initially = "shut"'), "[[valves]] #1", "initially 'shut' is not one of open, closed"),
    (('name = "vent"', 'name = "a-b"'), "[[valves]] #1", "'name' 'a-b' is already the name of [[hatches]] #1"),
    (('initially = "closed"', 'open_during = ["purge"]'), "[[valves]] #1", "names phase 'purge', not one of (no [[phases]])"),
    (("[[hatches]]", "[[hatchs]]"), "(top level)", "unknown key 'hatchs' (allowed: name, description, total_volume_m3"),
])
def test_a_broken_site_names_the_file_table_and_key(tmp_path, edit, where, message):
    assert edit[0] in SITE
    path = tmp_path / "lab.toml"
    path.write_text(SITE.replace(*edit, 1))
    with pytest.raises(ConfigError) as e:
        load_site(path)
    msg = str(e.value)
    assert msg.startswith(f"site {path}" if "TOML" in message else str(path)) and where in msg and message in msg, msg
    assert "\n" not in msg


def test_an_unknown_site_lists_the_shipped_ones(tmp_path):
    with pytest.raises(ConfigError, match="no site 'atlantis': give a .toml path or a shipped scenario, one of .*station_hatches"):
        load_site("atlantis")
    with pytest.raises(ConfigError, match=f"cannot read site {tmp_path}/none.toml: No such file"):
        load_site(tmp_path / "none.toml")
