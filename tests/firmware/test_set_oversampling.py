"""SET_OVERSAMPLING on every sensor family, under MicroPython on the virtual board."""

import json
from pathlib import Path

import pytest
from leakmon.sim import scenario

HERE = Path(__file__).parent
SCRIPT = """
import json, sys
import app, discovery
import board as board_mod
cfg = {"period_us": 100000, "rows_per_frame": 4}
b = board_mod.load(cfg)
node = app.NodeApp(b, cfg, discovery.discover(b.i2c_buses()))
out = []
for p, t in json.loads(sys.argv[1]):
    d = node.drivers[0]
    before = d.calib
    try:
        d.set_oversampling(p, t)
        out.append(["ok", d.calib != before])
    except AttributeError:
        out.append(["none", False])
    except (ValueError, OSError) as e:
        out.append(["refused", str(e)])
    for _ in range(8):
        node.tick()
sys.stderr.write(json.dumps({"results": out, "samples": node.samples_taken, "lost": sorted(node.lost)}) + "\\n")
"""


@pytest.mark.parametrize("chip, addr, good, bad, calib_changes", [
    ("BMP390", 0x77, [4, 1], [9, 1], False),
    ("BMP280", 0x77, [3, 1], [7, 1], False),
    ("DPS310", 0x77, [4, 1], [9, 1], True),
    ("MS5611", 0x77, [6, 6], [6, 8], False),
    ("LPS22HB", 0x5C, [1, 1], None, False),
])
def test_set_oversampling(run_mp, tmp_path, chip, addr, good, bad, calib_changes):
    cfg = scenario.load("steady_leak").sim_config(seed=2, speed=0)
    cfg["sensors"] = [{"chip": chip, "bus": 0, "addr": addr}]
    (tmp_path / "sim.json").write_text(json.dumps(cfg))
    (tmp_path / "t.py").write_text(SCRIPT)
    asks = [good] + ([bad] if bad else [])
    res = run_mp(tmp_path / "t.py", json.dumps(asks), cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()[-1500:]
    summary = json.loads(res.stderr.decode().strip().splitlines()[-1])
    results = summary["results"]
    if chip == "LPS22HB":
        assert results[0][0] == "none"  # the node refuses: "no oversampling setting"
    else:
        assert results[0] == ["ok", calib_changes]
        assert results[1][0] == "refused" and results[1][1]
    assert summary["lost"] == [] and summary["samples"] >= 8 * len(asks) - 2
