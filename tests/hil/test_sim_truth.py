"""`leakmon sim --truth FILE`: the simulator's ground truth on disk for the user."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys

import pytest
from leakmon.sim import scenario as scenario_mod

pytestmark = pytest.mark.hil


def test_sim_writes_the_ground_truth(micropython, tmp_path):
    out = tmp_path / "truth.csv"
    proc = subprocess.Popen([sys.executable, "-m", "leakmon", "sim", "--speed", "0", "--truth", str(out),
                             "--truth-duration", "60", "--truth-every", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("/")  # the device path: the board is up
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 31
    sc = scenario_mod.load("steady_leak")
    t = [float(r["t_s"]) for r in rows]
    assert t[0] == 0.0 and t[-1] == 60.0
    cols = rows[0].keys()
    p_col = next(c for c in cols if "pressure_pa" in c)
    rate_col = next(c for c in cols if "leak" in c and "pa_per_s" in c)
    t_col = next(c for c in cols if "temperature_k" in c)
    p0, _ = sc.chamber().state(0.0)
    assert float(rows[0][p_col]) == pytest.approx(p0, rel=1e-9)
    for r in rows[1:]:
        assert float(r[rate_col]) == pytest.approx(sc.chamber().leak_rate_pa_per_s(float(r[t_col])), rel=1e-6)


def test_truth_file_name_must_say_its_format(tmp_path):
    res = subprocess.run([sys.executable, "-m", "leakmon", "sim", "--truth", str(tmp_path / "truth.txt")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "must end in .csv or .npz" in res.stderr and "Traceback" not in res.stderr
