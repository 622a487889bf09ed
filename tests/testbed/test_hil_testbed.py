"""The HIL suite across a virtual testbed: `pytest -m hil --port P1 --port P2 ...`
runs every board's checks in parallel, with a summary per board, an overall
verdict, and pytest's own JUnit XML per board."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from bedutil import sim_boards, usb
from fanout import board_ports, child_args

pytestmark = pytest.mark.hil
ROOT = Path(__file__).resolve().parents[2]


def test_hil_suite_on_four_boards_and_one_that_never_answers(micropython, tmp_path):
    with sim_boards(5, tmp_path / "tb", "--speed", "20", "--silent", "4") as links:
        ports = sum((["--port", str(p)] for p in links), [])
        res = subprocess.run([sys.executable, "-m", "pytest", "-m", "hil", "tests/hil/test_hil_suite.py",
                              "--board", "sim", *ports, "--port", str(links[0]), "-k", "not soak",
                              f"--junitxml={tmp_path / 'out' / 'hil.xml'}", "-p", "no:cacheprovider"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = res.stdout
    assert res.returncode == 1, out[-3000:]
    assert f"{links[0]} given twice: counted once" in res.stderr
    summary = out[out.index("leakmon HIL testbed summary"):]
    lines = {f"board{i}": next(line for line in summary.splitlines() if f" board{i} " in line) for i in range(5)}
    for i in range(4):
        assert lines[f"board{i}"].startswith("PASS") and " 0 failed" in lines[f"board{i}"], summary
    assert lines["board4"].startswith("FAIL") and "no answer from the node" in lines["board4"], summary
    assert "overall: FAIL  (4 of 5 boards passed)" in summary
    # Each board's own summary page, with its own overall verdict.
    for i in range(5):
        page = out[out.index(f" board{i} {links[i]}: "):]
        assert "leakmon HIL summary" in page and "overall: " + ("PASS" if i < 4 else "FAIL") in page
    for i in range(5):
        suite = ET.parse(tmp_path / "out" / f"hil-board{i}.xml").getroot().find("testsuite")
        assert suite is not None
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["port"] == str(links[i]) and props["board"] == "sim"
        failed = int(suite.get("failures", "0")) + int(suite.get("errors", "0"))
        assert (failed == 0) == (i < 4), (i, suite.attrib)
        names = {c.get("name") for c in suite.iter("testcase")}
        assert "test_handshake_and_inventory" in names and not any("flash" in n for n in names)


def test_child_arguments_keep_the_rest_and_replace_ports_and_junit():
    args = ["-m", "hil", "--port", "/a", "--port=/b", "--all-boards", "--junitxml", "x.xml", "-k", "not soak",
            "--hil-jobs=2", "--board", "pico"]
    got = child_args(args, "/dev/ttyACM3", Path("out/hil-board3.xml"))
    assert got == ["-m", "hil", "-k", "not soak", "--board", "pico", "--port", "/dev/ttyACM3",
                   "--junitxml=out/hil-board3.xml", "-p", "no:cacheprovider"]


def test_all_boards_finds_them_by_usb_id_or_says_none(monkeypatch, tmp_path):
    from serial.tools import list_ports

    def config(ports: list[str], all_boards: bool) -> SimpleNamespace:
        opts = {"port": ports, "all_boards": all_boards}
        return SimpleNamespace(getoption=lambda name, default=None: opts.get(name, default))

    monkeypatch.delenv("LEAKMON_HIL_PORT", raising=False)
    monkeypatch.setattr(list_ports, "comports", lambda: [usb("/dev/ttyS0", None, None, None, "n/a")])
    with pytest.raises(pytest.UsageError, match="no board found by USB id"):
        board_ports(config([], True))
    monkeypatch.setattr(list_ports, "comports", lambda: [usb("/dev/ttyACM0"), usb("/dev/ttyS0", None, None),
                                                         usb("/dev/ttyACM1", 0x303A, 0x1001)])
    assert board_ports(config(["/dev/ttyACM1"], True)) == ["/dev/ttyACM1", "/dev/ttyACM0"]
    assert board_ports(config(["/x", "/x"], False)) == ["/x"]
