"""`leakmon flash` on a virtual testbed (`leakmon sim --boards N`): many boards in
parallel, one cut mid-flash and one that never answers, and a half-flashed board
repaired by the next flash."""

from __future__ import annotations

import time

import pytest
from bedutil import flash_state, leakmon, sha, sim_boards, usb, wait_for_link
from leakmon.cli.main import main
from leakmon.deploy import flash
from leakmon.firmware import firmware_files
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.sim.testbed import PART, Testbed

pytestmark = pytest.mark.hil


def rows(table: str) -> dict[str, list[str]]:
    """The summary table's rows by port (cells split on runs of two spaces)."""
    out = {}
    for line in table.splitlines()[1:]:
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        out[cells[2]] = cells
    return out


def built() -> dict[str, str]:
    """name -> SHA-256 of every file `leakmon flash` puts on the virtual board."""
    exe = flash.find_mpy_cross()
    mpy = flash.mpy_cross_version(exe) if exe else None
    return {a.name: a.sha256 for a in flash.build(mpy, "auto", None, lambda s: None)}


def test_flash_a_testbed_in_parallel_with_a_cut_and_a_silent_board(micropython, tmp_path):
    links_dir, flash_root = tmp_path / "tb", tmp_path / "flash"
    with sim_boards(5, links_dir, "--empty", "--speed", "20", "--flash", str(flash_root),
                    "--silent", "4", "--cut-mid-flash", "2") as links:
        ports = [str(p) for p in links]
        res = leakmon("flash", *sum((["--port", p] for p in ports), []), "--port", ports[0])
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr + res.stdout
        assert f"{ports[0]} given twice: counted once" in res.stderr
        table = rows(res.stdout)
        assert sorted(table) == sorted(ports), res.stdout  # each board once
        want = built()
        for i in (0, 1, 3):
            cells = table[ports[i]]
            assert cells[-1] == "ok" and cells[1] == "sim" and cells[4] == str(len(want)), cells
            assert cells[6] == "yes" and cells[7].startswith(f"fw {flash.expected_fw_version()} proto v")
            assert flash_state(flash_root / f"board{i}") == {**want, "sim.json": sha((flash_root / f"board{i}" / "sim.json").read_bytes())}
        assert "the port went away mid-flash" in table[ports[2]][-1]
        assert "is not at a REPL" in table[ports[4]][-1]
        assert "2 of 5 boards failed" in res.stderr

        # The cut board: every file under its own name is whole, main.py is not
        # there (it goes last), what was half-written is only a .part.
        cut = flash_state(flash_root / "board2")
        assert "main.py" not in cut
        assert any(n.endswith(PART) for n in cut), cut
        for name, digest in cut.items():
            if not name.endswith(PART) and name != "sim.json":
                assert digest == want[name], name

        # Power back: it boots to its REPL, and the next flash repairs it.
        wait_for_link(links[2])
        res = leakmon("flash", "--port", ports[2], "--board", "sim")
        assert res.returncode == 0, res.stderr
        assert "left by a cut flash" in res.stderr and "is running" in res.stderr
        assert not any(n.endswith(PART) for n in flash_state(flash_root / "board2"))
        with Node.open(ports[2]) as node:
            assert node.handshake().fw_version == flash.expected_fw_version()

        # Again on the four good boards: only what changed is copied, i.e. nothing.
        res = leakmon("flash", *sum((["--port", p] for p in ports[:4]), []))
        assert res.returncode == 0, res.stderr
        for p in ports[:4]:
            cells = rows(res.stdout)[p]
            assert (cells[4], cells[5], cells[-1]) == ("0", str(len(want)), "ok"), cells


def test_an_update_cut_at_any_file_leaves_a_board_that_boots_to_its_repl(micropython, tmp_path):
    """A board with the .py firmware gets .mpy (every module changes): main.py is off the
    board while the rest changes, so the cut board does not start half a firmware."""
    old = {f.name: sha(f.read_bytes()) for f in firmware_files()}
    with Testbed(1, [("steady_leak", scenario.load("steady_leak"))], speed=20,
                 cut_mid_flash=frozenset({0})) as bed, bed.served() as lines:
        board = bed.slots[0].board
        assert board is not None and (board.flash_dir / "main.py").exists()
        with pytest.raises(flash.TransportError, match="link lost"):
            flash.deploy(board.port)
        assert bed.slots[0].cuts == 1, lines
        state = flash_state(board.flash_dir)
        assert "main.py" not in state and any(n.endswith(PART) for n in state), state
        new = built()
        for name, digest in state.items():
            if name != "sim.json" and not name.endswith(PART):
                assert digest in (old.get(name), new.get(name)), name
        # It comes back at its REPL (no main.py): the flash goes through.
        deadline = time.monotonic() + 20
        while board.connects < 2:
            assert time.monotonic() < deadline, "the cut board did not come back"
            time.sleep(0.1)
        report = flash.deploy(board.port, flash.board_profile("sim"), handshake_s=20)
        assert report.hello is not None and "main.py" == report.copied[-1]
        assert any(r.endswith(PART) for r in report.removed)


def test_flash_all_finds_the_boards_by_usb_id(micropython, tmp_path, monkeypatch, capsys):
    from serial.tools import list_ports

    with Testbed(4, [("steady_leak", scenario.load("steady_leak"))], speed=20, empty=True,
                 link_dir=tmp_path / "tb") as bed, bed.served():
        links = [bed.link(i) for i in range(4)]
        listed = [usb(links[0], serial="E6614103E7"), usb(links[1], serial="E6614103E7"),
                  usb(links[2], 0x303A, 0x1001, "A1"), usb(links[3], 0x10C4, 0xEA60, "CP1"),
                  usb("/dev/ttyS0", None, None, None, "n/a"), usb(tmp_path / "ftdi", 0x0403, 0x6001, "FT1")]
        monkeypatch.setattr(list_ports, "comports", lambda: listed)
        assert main(["flash", "--all", "--jobs", "2"]) == 0
        out, err = capsys.readouterr()
        table = rows(out)
        assert sorted(table) == sorted(str(p) for p in links)
        assert table[str(links[0])][3] == "E6614103E7" and table[str(links[2])][3] == "A1"
        assert f"{links[0]} and {links[1]} report the same USB serial number E6614103E7" in err
        assert all(r[-1] == "ok" for r in table.values())


def test_all_with_no_board_is_one_line(monkeypatch, capsys):
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: [usb("/dev/ttyS0", None, None, None, "n/a")])
    assert main(["flash", "--all"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("leakmon: no board found by USB id")


def test_an_unplug_mid_copy_is_repaired_by_the_next_flash(micropython, tmp_path):
    """The cable pulled while a file is half-written (the board keeps running, its raw
    REPL in the middle of our code), then plugged back: the next flash goes through."""
    import threading

    with VirtualBoard(scenario.load("steady_leak"), speed=20, flash_dir=tmp_path / "f",
                      install_firmware=False) as board:
        pulled = threading.Event()

        def pull_when_half_written() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not pulled.is_set():
                if any(p.name.endswith(PART) for p in board.flash_dir.iterdir()):
                    board.control("disconnect 1")
                    pulled.set()
                time.sleep(0.005)

        watcher = threading.Thread(target=pull_when_half_written, daemon=True)
        watcher.start()
        with pytest.raises(flash.TransportError, match="link lost"):
            flash.deploy(board.port)
        watcher.join()
        assert pulled.is_set()
        deadline = time.monotonic() + 20
        while board.connects < 2:
            board.events()
            assert time.monotonic() < deadline, "the board did not come back"
            time.sleep(0.1)
        report = flash.deploy(board.port, flash.board_profile("sim"), handshake_s=20)
        assert report.hello is not None and report.copied[-1] == "main.py"
        assert not any(p.name.endswith(PART) for p in board.flash_dir.iterdir())


def test_one_board_cut_mid_flash_is_one_line_then_repaired(micropython, tmp_path):
    with sim_boards(1, tmp_path / "tb", "--empty", "--speed", "20", "--cut-mid-flash", "0") as links:
        res = leakmon("flash", "--port", str(links[0]))
        assert res.returncode == 1 and "Traceback" not in res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("leakmon: the port went away mid-flash") and "flash it again" in last, last
        wait_for_link(links[0])
        res = leakmon("flash", "--port", str(links[0]))
        assert res.returncode == 0 and "is running" in res.stderr, res.stderr


def test_ctrl_c_stops_every_board_at_its_next_step(micropython, tmp_path):
    import signal
    import subprocess
    import sys

    with sim_boards(4, tmp_path / "tb", "--empty", "--speed", "20") as links:
        ports = sum((["--port", str(p)] for p in links), [])
        proc = subprocess.Popen([sys.executable, "-m", "leakmon", "flash", *ports], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # interrupt once a board is copying
            seen.append(line)
            if ": copying" in line:
                proc.send_signal(signal.SIGINT)
                break
        out, rest = proc.communicate(timeout=30)
        assert proc.returncode == 130, seen + [rest]
        assert rest.strip().splitlines()[-1] == "leakmon: interrupted" and "Traceback" not in rest
        table = rows(out)  # where each board was when it stopped
        assert sorted(table) == sorted(str(p) for p in links)
        assert any(r[-1].startswith("FAILED: interrupted (last step done: ") for r in table.values()), out
        for link in links:  # every board can be flashed to the end afterwards
            res = leakmon("flash", "--port", str(link))
            assert res.returncode == 0, res.stderr
