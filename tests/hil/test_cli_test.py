"""`leakmon test --recipe`: a pressure-decay test judged on the virtual board and on a
recording of it, against the simulated part's true leak."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from leakmon.sim import scenario as scenario_mod
from leakmon.sim.truth import truth_table

pytestmark = pytest.mark.hil
LEAKMON = [sys.executable, "-m", "leakmon"]
RECIPE = Path(__file__).resolve().parents[2] / "hardware" / "recipes" / "part_0p5l.toml"


def run_test(*argv):
    return subprocess.run(LEAKMON + ["test", *map(str, argv)], capture_output=True, text=True, timeout=180)


def true_leak_pa_per_s() -> float:
    sc = scenario_mod.load("pressure_decay")
    m = next(p for p in sc.phases if p.name == "measure")
    return float(np.mean(truth_table(sc, np.arange(m.start_s, m.end_s, 1.0))["part.leak_pa_per_s"]))


def test_leaky_part_fails_and_its_leak_is_measured_right(micropython):
    res = run_test("--recipe", RECIPE, "--sim", "--scenario", "pressure_decay", "--speed", "0", "--json")
    assert res.returncode == 3, res.stderr
    v = json.loads(res.stdout)
    assert v["code"] == "FAIL_LEAK"
    assert v["leak_rate_pa_per_s"] == pytest.approx(true_leak_pa_per_s(), rel=0.02)
    assert v["leak_rate_ci95_low_pa_per_s"] < v["leak_rate_pa_per_s"] < v["leak_rate_ci95_high_pa_per_s"]


def test_same_part_passes_a_looser_limit_and_a_recording_gives_the_same_verdict(micropython, tmp_path):
    loose = tmp_path / "loose.toml"
    loose.write_text(RECIPE.read_text().replace("leak_limit = 0.5", "leak_limit = 1.0"))
    rec = tmp_path / "decay.lkm"
    r = subprocess.run(LEAKMON + ["record", "--sim", "--scenario", "pressure_decay", "--speed", "0",
                                  "--duration", "140", "-q", "-o", str(rec)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    live = run_test("--recipe", loose, "--sim", "--scenario", "pressure_decay", "--speed", "0", "--json")
    replayed = run_test("--recipe", loose, "--recording", rec, "--start", "2", "--json")
    assert live.returncode == replayed.returncode == 0, live.stderr + replayed.stderr
    a, b = json.loads(live.stdout), json.loads(replayed.stdout)
    assert a["code"] == b["code"] == "PASS"
    assert a["leak_rate_pa_per_s"] == pytest.approx(b["leak_rate_pa_per_s"], rel=1e-9)  # same seed, same samples


@pytest.mark.parametrize("content, needle", [
    ("[recipe]\nfill_s = 5\nbogus = 1\n", "r.toml [recipe]: unknown key 'bogus' (allowed: fill_s"),
    ("[recipe]\nfill_s = 5\n", "r.toml [recipe]: missing 'stabilize_s'"),
    ("not toml [", "is not valid TOML"),
])
def test_bad_recipes_get_one_line(tmp_path, content, needle):
    path = tmp_path / "r.toml"
    path.write_text(content)
    res = run_test("--recipe", path, "--recording", "nothing.lkm")
    assert res.returncode == 1 and needle in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
