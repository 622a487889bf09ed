"""`leakmon gateway --usb SERIAL` follows a board through re-plugs, against a real
Mosquitto and real virtual boards (the firmware in the MicroPython unix port on ptys).

The test plays udev (tests/usbplay.py): a by-id folder, moved with LEAKMON_SERIAL_BY_ID,
holds a link named as udev names a MicroPython board; at each re-plug the board is
stopped and the link removed, then a fresh board starts on a new pty and the link is put
back. The kernel's USB enumeration and udev itself are not exercised.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
from fleet.fleetkit import wait_until
from usbplay import SERIAL, FrameWatch, UdevPlay, replug_times

from leakmon import wire

pytestmark = [pytest.mark.slow, pytest.mark.hil]

REPLUGS = 12
LIMIT_S = 2.0


def test_gateway_follows_a_replugged_board_by_serial_number(micropython, broker, procs, tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    with UdevPlay(by_id) as play:
        play.plug()
        watch = FrameWatch(broker.port, "reader", broker.users["reader"], "a1")
        try:
            gw = procs("gw", ["gateway", "--broker", f"mqtt://gw-a@127.0.0.1:{broker.port}", "--usb", SERIAL,
                              "--node-id", "a1", "--spool", str(tmp_path / "spool"), "--no-store-confirm"],
                       {"LEAKMON_MQTT_PASSWORD": broker.users["gw-a"], "LEAKMON_SERIAL_BY_ID": str(by_id)})
            assert wait_until(lambda: any(g[4] == wire.T_SAMPLES for g in watch.got), 20), gw.log
            times = replug_times(play, watch, REPLUGS)
            time.sleep(1.0)
            assert gw.popen.poll() is None, gw.log  # it rode every re-plug out
            gw.popen.terminate()
            assert gw.wait(20) == 0, gw.log
        finally:
            watch.close()
    first = np.array([t for t, _ in times])
    samples = np.array([s for _, s in times])
    print(f"\nre-plug -> first frame published: p50 {np.percentile(first, 50) * 1e3:.0f} ms, "
          f"p99 {np.percentile(first, 99) * 1e3:.0f} ms; -> first SAMPLES frame: "
          f"p50 {np.percentile(samples, 50) * 1e3:.0f} ms, p99 {np.percentile(samples, 99) * 1e3:.0f} ms "
          f"({REPLUGS} re-plugs)")
    assert all(math.isfinite(s) and s < LIMIT_S for s in samples), times
    log = gw.log
    # each new board was a new boot, recorded as such: told in the log and keyed apart
    assert len(re.findall(r"node a1: link back after [\d.]+ s: the node restarted", log)) == REPLUGS, log
    assert len(re.findall(r"node a1: on ", log)) == REPLUGS + 1, log  # the name it was found under each time
    boots: dict[int, set[int]] = {}
    for _, boot, seq, _, _ in watch.got:
        boots.setdefault(boot, set()).add(seq)
    assert len(boots) == REPLUGS + 1, sorted(boots)
    for boot, seqs in boots.items():  # nothing lost within a boot: its seqs run without a hole
        assert max(seqs) - min(seqs) + 1 == len(seqs), (boot, sorted(seqs)[:20], log)
    published = int(re.findall(r"node a1: (\d+) frames", log)[-1])
    assert published == sum(len(s) for s in boots.values()), (published, {b: len(s) for b, s in boots.items()})


def test_a_cable_pulled_from_a_board_that_keeps_running_is_the_same_boot(micropython, broker, procs,
                                                                          tmp_path: Path) -> None:
    """The supervisor's own cable pull (the board runs on, its device goes and comes back
    on a new pty, the by-id link with it): no new boot is made up, the frames missed
    meanwhile are counted, and the seqs go on."""
    from usbplay import by_id_name

    from leakmon.sim import scenario
    from leakmon.sim.board import VirtualBoard

    by_id = tmp_path / "by-id"
    by_id.mkdir()
    watch = FrameWatch(broker.port, "reader", broker.users["reader"], "a1")
    try:
        # 5x: a frame every 0.2 s, so the 1.5 s of wall time unplugged misses ~7 of them
        with VirtualBoard(scenario.load("steady_leak"), seed=3, speed=5.0, link=by_id / by_id_name(SERIAL)) as board:
            gw = procs("gw", ["gateway", "--broker", f"mqtt://gw-a@127.0.0.1:{broker.port}", "--usb", SERIAL,
                              "--node-id", "a1", "--spool", str(tmp_path / "spool"), "--no-store-confirm"],
                       {"LEAKMON_MQTT_PASSWORD": broker.users["gw-a"], "LEAKMON_SERIAL_BY_ID": str(by_id)})
            for k in range(3):
                n = len(watch.got)
                assert wait_until(lambda: sum(g[4] == wire.T_SAMPLES for g in watch.got[n:]) >= 2, 20), gw.log
                board.control("disconnect 1.5")
            assert wait_until(lambda: gw.log.count("link back after") == 3, 20), gw.log
            gw.popen.terminate()
            assert gw.wait(20) == 0, gw.log
    finally:
        watch.close()
    assert len(re.findall(r"link back after [\d.]+ s: [1-9]\d* frames lost", gw.log)) == 3, gw.log
    assert len({g[1] for g in watch.got}) == 1, gw.log  # one boot throughout
    seqs = sorted({g[2] for g in watch.got})
    assert len(seqs) < seqs[-1] - seqs[0] + 1  # the frames sent while unplugged are missing, not renumbered


def test_an_absent_serial_number_is_one_clear_line(broker, procs, tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    gw = procs("gw", ["gateway", "--broker", f"mqtt://gw-a@127.0.0.1:{broker.port}", "--usb", "NOSUCH0001",
                      "--node-id", "a1", "--spool", str(tmp_path / "spool"), "--no-store-confirm"],
               {"LEAKMON_MQTT_PASSWORD": broker.users["gw-a"], "LEAKMON_SERIAL_BY_ID": str(by_id)})
    assert gw.wait(30) != 0
    assert "leakmon: no USB serial port with serial number NOSUCH0001" in gw.log and "Traceback" not in gw.log, gw.log


def test_a_seq_going_back_after_a_reopen_is_a_new_boot() -> None:
    """The boot event of a re-plugged board is often lost (sent before the port was open):
    FrameKeys then tells the new boot by its seq going back, and only after a reopen."""
    from leakmon.fleet.edge import FrameKeys

    k = FrameKeys(clock_us=iter(range(1000, 10**6, 10)).__next__)
    k.feed(b"".join(wire.frame(wire.T_STATUS, s, b"") for s in range(500, 505)))
    boot0 = k.boot
    k.reopened()
    k.feed(wire.frame(wire.T_STATUS, 7, b"") + wire.frame(wire.T_STATUS, 8, b""))
    after = k.take()[5:]
    assert k.boot != boot0 and [(s, b) for s, *_, b in after] == [(7, k.boot), (8, k.boot)]
    boot1 = k.boot
    k.reopened()
    k.feed(wire.frame(wire.T_STATUS, 20, b""))  # forward: the same board, 11 frames missed
    k.feed(wire.frame(wire.T_STATUS, 2, b""))  # back, but no reopen: a wrap of the same boot
    assert [s for s, *_ in k.take()] == [20, 2 + 0x10000] and k.boot == boot1 and k.restarts_unheard == 1


def test_a_node_that_started_again_unheard_gets_a_fresh_estimate() -> None:
    """No boot event, but the device time goes back (a re-plugged board whose boot event
    was lost): the gateway's tracker starts afresh instead of stopping on it."""
    import wiregen

    from leakmon.fleet.edge import EdgeNode
    from leakmon.wire.stream import NodeStream

    class Box:
        def __init__(self) -> None:
            self.estimates = 0

        def put(self, topic: str, payload: bytes) -> None:
            self.estimates += topic.endswith("/estimate")

        def put_retained(self, topic: str, payload: bytes) -> None:
            pass

    box = Box()
    edge, stream = EdgeNode("a1", box, window_s=60.0, estimate_every_s=1.0), NodeStream()
    before = wiregen.handshake() + wiregen.samples(20, seq=2, t0_us=50_000_000, seed=1)
    after = wiregen.samples(20, seq=2000, t0_us=1_000_000, seed=2)  # 49 s earlier on the device's clock
    for chunk in (before, after):
        edge.on_bytes(chunk)
        edge.on_items(stream.feed(chunk))
    assert edge.restarts == 1
    assert box.estimates == 40  # one per device second, before and after
