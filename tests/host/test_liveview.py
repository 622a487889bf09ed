"""The live view's screen, read as text."""

import math

import pytest
from leakmon.analysis.tracker import LeakUpdate
from leakmon.cli.liveview import LiveView, seconds_to_limit, state
from leakmon.units import format_duration as duration
from leakmon.units import parse_pressure
from leakmon.wire.stream import LinkStats


def upd(t, ch=0, p=101325.0, rate=0.05, half=0.01):
    return LeakUpdate(t, ch, p, 293.15, rate, rate - half, rate + half, half / 1.96, rate * 86400 / 133.322, 600, 590.0)


def test_pressure_limits_parse_with_units():
    assert parse_pressure("520mmHg") == pytest.approx(520 * 133.322)
    assert parse_pressure("13.9 psi") == pytest.approx(13.9 * 6894.76)
    assert parse_pressure("69327") == 69327.0
    with pytest.raises(ValueError):
        parse_pressure("lots")


def test_time_to_limit_and_its_range_follow_the_interval():
    u = upd(10.0, p=80000.0, rate=0.5, half=0.1)
    mid, lo, hi = seconds_to_limit(u, 70000.0)
    assert (mid, lo, hi) == pytest.approx((20000.0, 10000 / 0.6, 10000 / 0.4))
    _, _, never = seconds_to_limit(upd(1.0, rate=0.05, half=0.1), 70000.0)  # rate may be zero: no upper bound
    assert math.isinf(never)
    assert duration(90000.0) == "1.0 d" and duration(math.inf) == "never"


def test_state_says_leak_only_when_the_interval_excludes_zero():
    assert state(upd(1, rate=0.05, half=0.01)) == "LEAK"
    assert state(upd(1, rate=0.005, half=0.01)) == "ok"
    assert state(upd(1, rate=-0.05, half=0.01)) == "GAIN"


def test_screen_has_a_row_per_sensor_link_health_and_a_plot():
    v = LiveView({0: "ch0 zvezda BMP390", 1: "ch1 zarya BMP390"}, unit="mmHg", limit_pa=parse_pressure("520mmHg"))
    for k in range(60):
        v.update(upd(float(k), 0, 101325.0 - 0.05 * k))
        v.update(upd(float(k), 1, 101300.0, rate=0.0))
    screen = v.render("leakmon test", LinkStats(frames=120, lost_frames=2), 1, 2.0)
    assert "2 lost, 1 CRC errors" in screen and "2.0 frames/s" in screen
    row0 = next(line for line in screen.splitlines() if line.startswith("ch0 zvezda"))
    assert f"{101325.0 - 0.05 * 59:.3f}"[:5] not in row0  # shown in mmHg, not Pa
    assert f"{(101325.0 - 0.05 * 59) / 133.322:.3f}" in row0 and row0.rstrip().endswith("LEAK")
    assert "to 520 mmHg" in screen and " d [" in row0
    plot = [line for line in screen.splitlines() if "|" in line]
    assert len(plot) == 10 and any("*" in line for line in plot) and any("o" in line for line in plot)
    assert "\x1b[" not in screen  # no colour unless asked


def test_colour_only_when_asked():
    v = LiveView({0: "ch0"}, color=True)
    v.update(upd(1.0))
    assert "\x1b[31m" in v.render("t", LinkStats(), 0, 1.0)


def test_node_events_show_on_the_screen_not_over_it():
    v = LiveView({0: "ch0"})
    v.update(upd(1.0))
    for k in range(5):
        v.note(f"sensor-error channel 0 detail {k}")
    screen = v.render("t", LinkStats(), 0, 1.0)
    shown = [line for line in screen.splitlines() if line.startswith("event: ")]
    assert shown == [f"event: sensor-error channel 0 detail {k}" for k in (2, 3, 4)]


def test_an_onset_alarm_outranks_the_interval():
    from dataclasses import replace

    assert state(replace(upd(1, rate=0.005, half=0.01), alarm_t_s=40.0, alarm_onset_t_s=0.1)) == "ALARM"
