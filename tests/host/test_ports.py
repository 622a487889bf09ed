"""`leakmon ports` names the boards it recognises by USB id."""

from types import SimpleNamespace

import pytest
from leakmon.cli.commands import ports


def test_known_boards_and_vendors_are_recognised():
    assert ports.board_guess(0x2E8A, 0x0005) == "pico"
    assert ports.board_guess(0x10C4, 0xEA60) == "esp32"  # the DevKitC's USB-UART bridge
    assert ports.board_guess(0x303A, 0x9999) in ("esp32", "Espressif")
    assert ports.board_guess(0x0403, 0x6001) is None  # an FTDI cable: not ours
    assert ports.board_guess(None, None) is None


def test_listing_marks_them(mocker, capsys):
    fake = [SimpleNamespace(device="/dev/ttyACM0", vid=0x2E8A, pid=0x0005, serial_number="E66", description="Board"),
            SimpleNamespace(device="/dev/ttyS0", vid=None, pid=None, serial_number=None, description="n/a")]
    mocker.patch("serial.tools.list_ports.comports", return_value=fake)
    assert ports.run(SimpleNamespace(json=False, probe=False, port=[])) == 0
    out = capsys.readouterr().out.splitlines()
    assert "[pico]" in out[0] and "2e8a:0005" in out[0] and "[" not in out[1]


def test_a_port_named_twice_or_through_a_link_counts_once(tmp_path):
    from leakmon.deploy.fleetflash import PortInfo, select_ports

    dev = tmp_path / "ttyACM0"
    dev.write_bytes(b"")
    (tmp_path / "board0").symlink_to(dev)
    listed = [PortInfo(str(dev), 0x2E8A, 5, "E66"), PortInfo("/dev/ttyACM1", 0x2E8A, 5, "E66")]
    ports, notes = select_ports([str(tmp_path / "board0"), str(dev), str(dev), "/dev/ttyACM1"], False, listed=listed)
    assert [p.device for p in ports] == [str(tmp_path / "board0"), "/dev/ttyACM1"]
    assert ports[0].serial_number == "E66"  # USB facts found through the link
    assert notes[0] == f"{dev} and {tmp_path / 'board0'} are one device: counted once"
    assert notes[1] == f"{dev} given twice: counted once"
    assert "report the same USB serial number E66" in notes[2]
    assert select_ports(["socket://h:1", "socket://h:1"], False, listed=[])[0] == [PortInfo("socket://h:1")]


def test_probe_listens_longer_through_boot_noise_and_never_writes():
    import os
    import threading
    import time
    import tty

    import serial
    from leakmon.deploy import probe

    master, slave = os.openpty()
    tty.setraw(slave)
    port = serial.serial_for_url(os.ttyname(slave), timeout=0.05)
    try:
        t0 = time.monotonic()
        _, seen = probe.listen(port, 0.2)  # silence: only the short listen
        # ~0.25 s; the long listen through noise would take NOISY_LISTEN_S (3 s). The bound
        # sits between the two with room for a loaded machine's stalls (it was 1.0 s: a
        # 0.75 s stall failed it), and a listen that waited out the noisy 3 s still fails.
        assert time.monotonic() - t0 < 0.6 * probe.NOISY_LISTEN_S and seen == b""
        os.write(master, b"\xff\x00ets Jun  8 2016 rst:0x1 boot noise")
        threading.Timer(0.8, os.write, (master, b"\r\nMicroPython v1.22.0 on 2024-01-05\r\n>>> ")).start()
        t0 = time.monotonic()
        _, seen = probe.listen(port, 0.2)
        assert b">>> " in seen and 0.7 < time.monotonic() - t0 < probe.NOISY_LISTEN_S
        os.set_blocking(master, False)
        with pytest.raises(BlockingIOError):
            os.read(master, 100)  # nothing was written to the port
    finally:
        port.close()
        os.close(master)
        os.close(slave)
