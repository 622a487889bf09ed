"""`leakmon analyze`: a recording of the virtual board in, leak rate, plot and report
out, checked against the simulator's truth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leakmon import scenario as scenario_mod

pytestmark = pytest.mark.hil
LEAKMON = [sys.executable, "-m", "leakmon"]


def record(tmp_path, name, duration_s, seed=3):
    out = tmp_path / f"{name}.lkm"
    res = subprocess.run(LEAKMON + ["record", "--sim", "--scenario", name, "--speed", "0", "--seed", str(seed),
                                    "--duration", str(duration_s), "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return out


def analyze(*argv):
    res = subprocess.run(LEAKMON + ["analyze", *map(str, argv)], capture_output=True, text=True, timeout=120)
    return res


def test_analyze_finds_the_true_leak_and_draws_it(micropython, tmp_path):
    rec = record(tmp_path, "steady_leak", 600)
    png, page = tmp_path / "a.png", tmp_path / "a.html"
    res = analyze(rec, "--json", "--window", "120", "--volume", "0.05", "--plot", png, "--report", page)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout.splitlines()[0])
    truth = scenario_mod.load("steady_leak").chamber().leak_rate_pa_per_s(s["temperature_mean_k"])
    assert s["leak_rate_ci95_low_pa_per_s"] <= truth <= s["leak_rate_ci95_high_pa_per_s"], (s, truth)
    assert s["leak_kg_per_day"] == pytest.approx(0.0025, rel=0.02)  # the scenario's 2.5 g/day
    assert s["first_alarm_t_s"] is not None and s["first_alarm_t_s"] <= 240
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    text = page.read_text()
    assert "<table>" in text and "data:image/png;base64," in text and "BMP390" in text


def test_sealed_chamber_raises_no_alarm(micropython, tmp_path):
    rec = record(tmp_path, "sealed", 600, seed=5)
    res = analyze(rec, "--json", "--window", "120")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout.splitlines()[0])
    assert s["first_alarm_t_s"] is None, s
    assert s["leak_rate_ci95_low_pa_per_s"] <= 0.0 <= s["leak_rate_ci95_high_pa_per_s"]


@pytest.mark.parametrize("content, needle", [(None, "no such file"), (b"hello, not a recording\n", "not a leakmon recording")])
def test_bad_files_get_one_line(tmp_path, content, needle):
    path = tmp_path / "x.lkm"
    if content is not None:
        path.write_bytes(content)
    res = analyze(path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.startswith("leakmon: ") and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert needle in res.stderr.lower(), res.stderr
