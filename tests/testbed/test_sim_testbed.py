"""`leakmon sim --boards N`: N boards, each with its own pty, flash folder, scenario
and seed, behind DIR/board0 .. DIR/board{N-1}; bad input gets one line; and the
progress lines of a fleet flash on a terminal."""

from __future__ import annotations

import io
import json
import os

import pytest
from bedutil import leakmon, sim_boards
from leakmon.cli.commands.flash import FleetView
from leakmon.deploy.fleetflash import PortInfo
from leakmon.sim import scenario

pytestmark = pytest.mark.hil


def test_each_board_has_its_own_pty_flash_folder_scenario_and_seed(micropython, tmp_path):
    links_dir, flash_root = tmp_path / "tb", tmp_path / "flash"
    with sim_boards(4, links_dir, "--empty", "--flash", str(flash_root), "--seed", "7",
                    "--scenario", "sealed", "--scenario", "steady_leak") as links:
        assert links == [links_dir / f"board{i}" for i in range(4)]
        ttys = [os.path.realpath(p) for p in links]
        assert len(set(ttys)) == 4 and all(t.startswith("/dev/pts/") for t in ttys)
        for i in range(4):
            folder = flash_root / f"board{i}"
            assert sorted(p.name for p in folder.iterdir()) == ["sim.json"]  # --empty: no firmware
            cfg = json.loads((folder / "sim.json").read_text())
            name = ("sealed", "steady_leak")[i % 2]
            assert cfg["seed"] == 7 + i
            assert cfg["physics"] == scenario.load(name).sim_config(7 + i, 1.0)["physics"]
    assert not any(p.exists() or p.is_symlink() for p in links)  # Ctrl-C takes the links down


@pytest.mark.parametrize("argv, needle", [
    (["--boards", "0"], "at least one board"),
    (["--boards", "2", "--silent", "5"], "no board 5 on a testbed of 2"),
    (["--silent", "1"], "need --boards N"),
    (["--scenario", "sealed", "--scenario", "steady_leak"], "need --boards N"),
    (["--boards", "2", "--scenario", "nope"], "nope"),
    (["--boards", "2", "--truth", "t.csv"], "--truth writes one scenario's truth"),
])
def test_bad_testbed_input_is_one_line(argv, needle):
    res = leakmon("sim", *argv, timeout=60)
    assert res.returncode == 1, res.stderr
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_per_board_rewritten_in_place():
    out = Tty()
    view = FleetView([PortInfo("/dev/ttyACM0"), PortInfo("/dev/ttyACM1")], out)
    view.update(1, "app.mpy            16281 B  copied")
    view.update(0, "FAILED: the port went away mid-flash")
    view.update(1, "done")
    view.close()
    frames = out.getvalue().split("\x1b[2F")  # each redraw goes back up over the two lines
    assert len(frames) >= 3
    last = frames[-1].split("\n")
    assert last[0] == "\x1b[2Kleakmon: board0 /dev/ttyACM0: FAILED (the port went away mid-flash)"
    assert last[1] == "\x1b[2Kleakmon: board1 /dev/ttyACM1: done" and last[2] == ""


def test_progress_without_a_terminal_is_a_line_per_phase():
    out = io.StringIO()
    view = FleetView([PortInfo("/dev/ttyACM0")], out)
    for note in ("a.mpy  10 B  copied", "b.mpy  10 B  unchanged", "verified 2 files by SHA-256 on the board",
                 "soft reset, waiting for the node's HELLO", "done"):
        view.update(0, note)
    phases = [line.split(": ", 2)[2] for line in out.getvalue().splitlines()]
    assert [p.split(" (")[0] for p in phases] == ["connecting", "copying", "verified", "waiting for HELLO", "done"]
