"""`leakmon ports --probe` on a virtual testbed: nodes, a board at its REPL, a busy
port, and ports that never identify themselves, which are never written to."""

from __future__ import annotations

import json

import pytest
from bedutil import leakmon, sim_boards, usb
from leakmon.cli.main import main
from leakmon.deploy import flash, probe
from leakmon.deploy.fleetflash import PortInfo
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.sim.testbed import SilentPort, Testbed

pytestmark = pytest.mark.hil
STEADY = [("steady_leak", scenario.load("steady_leak"))]


def test_probe_tells_nodes_repls_busy_and_strangers_apart(micropython, tmp_path, monkeypatch, capsys):
    from serial.tools import list_ports

    with Testbed(2, STEADY, speed=20, link_dir=tmp_path / "tb") as bed, bed.served(), \
            VirtualBoard(scenario.load("steady_leak"), speed=20, flash_dir=tmp_path / "empty",
                         install_firmware=False) as at_repl:
        stranger, gps = SilentPort(), SilentPort()  # no USB id; a USB-serial cable that is not a board
        try:
            listed = [usb(bed.link(0), serial="N0"), usb(bed.link(1), serial="N1"),
                      usb(at_repl.port, 0x2E8A, 0x0005, "R0"), usb(stranger.port, None, None, None, "n/a"),
                      usb(gps.port, 0x0403, 0x6001, "FT1", "FT232R USB UART")]
            monkeypatch.setattr(list_ports, "comports", lambda: listed)
            with Node.open(str(bed.link(1))):  # another program has board 1 open
                assert main(["ports", "--probe", "--json"]) == 0
            got = {d["device"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
            assert stranger.drain() == 0 and gps.drain() == 0  # never written to
        finally:
            stranger.close()
            gps.close()

    node = got[str(bed.link(0))]
    assert (node["state"], node["board"], node["fw_version"]) == ("node", "sim", flash.expected_fw_version())
    assert node["protocol"].startswith("1.") and node["sensors"] == ["BMP390@0x77"] and node["rate_hz"] == 10
    assert (node["usb_id"], node["usb_serial"], node["identified_by"]) == ("2e8a:0005", "N0", "leakmon-frames")
    assert got[str(bed.link(1))]["state"] == "busy"
    repl = got[at_repl.port]
    assert repl["state"] == "repl" and repl["micropython"].startswith("MicroPython 1."), repl
    assert repl["identified_by"] in ("usb-id", "repl-banner")  # a late boot banner identifies it too
    for port in (stranger.port, gps.port):
        assert (got[port]["state"], got[port]["written"], got[port]["identified_by"]) == ("unknown", False, None)
        assert "not written to" in got[port]["detail"]


def test_a_probed_repl_board_is_left_at_its_repl(micropython, tmp_path):
    with VirtualBoard(scenario.load("steady_leak"), speed=20, flash_dir=tmp_path / "f",
                      install_firmware=False) as board:
        p = PortInfo(board.port, 0x2E8A, 0x0005, "R0")
        assert probe.probe_port(p).state == "repl"
        assert probe.probe_port(p).state == "repl"  # back at the normal REPL, not stuck in raw mode
        res = leakmon("flash", "--port", board.port, "--board", "sim")
        assert res.returncode == 0, res.stderr
        assert probe.probe_port(p).state == "node"


def test_probe_a_served_testbed_by_port(micropython, tmp_path):
    """`leakmon ports --probe --port ...` against `leakmon sim --boards 4`, one silent:
    ptys have no USB id, so a silent one is only listened to."""
    with sim_boards(4, tmp_path / "tb", "--speed", "20", "--silent", "3") as links:
        res = leakmon("ports", "--probe", *sum((["--port", str(p)] for p in links), []), "--port", str(links[0]))
    assert res.returncode == 0, res.stderr
    assert f"{links[0]} given twice: counted once" in res.stderr
    lines = {line.split()[0]: line for line in res.stdout.splitlines()}
    for link in links[:3]:
        assert f"leakmon node: board sim, firmware {flash.expected_fw_version()}" in lines[str(link)]
        assert "BMP390@0x77, 10 Hz" in lines[str(link)]
    assert "unknown: did not identify itself" in lines[str(links[3])]
    assert sum(line.startswith(str(links[0])) for line in res.stdout.splitlines()) == 1
