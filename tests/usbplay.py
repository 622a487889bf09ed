"""Playing udev for a virtual board: a /dev/serial/by-id-like folder holding one link
named as udev names a MicroPython board's USB-CDC port, pointing at the pty of a
virtual board (the firmware in the MicroPython unix port). unplug() stops the board and
removes the link, as the kernel and udev do when the cable is pulled; plug() starts a
fresh board on a new pty and puts the link back, atomically, as udev does when the
device appears. Nothing here is USB: the kernel's enumeration and udev's rules are what
the tests do NOT exercise; leakmon's side (finding the link, reopening, resuming) is.

Used by tests/fleet/test_usb_replug.py and bench/bench_fleet.py (point leakmon at the
folder with LEAKMON_SERIAL_BY_ID).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from leakmon.sim import scenario as scenario_mod
from leakmon.sim.board import VirtualBoard

SERIAL = "e6614c311b7e6f35"  # the shape of an RP2040's flash id, as MicroPython reports it


def by_id_name(serial_number: str) -> str:
    return f"usb-MicroPython_Board_in_FS_mode_{serial_number}-if00"


class UdevPlay:
    def __init__(self, folder: Path, serial_number: str = SERIAL, scenario: str = "steady_leak",
                 speed: float = 1.0) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.link = folder / by_id_name(serial_number)
        self.serial_number = serial_number
        self.scenario = scenario_mod.load(scenario)
        self.speed = speed
        self.board: VirtualBoard | None = None
        self.plugs = 0
        self.ports: list[str] = []

    def plug(self) -> float:
        """A fresh board (a new boot, a new pty); returns time.time() when its link appeared."""
        assert self.board is None
        self.board = VirtualBoard(self.scenario, seed=1 + self.plugs, speed=self.speed)
        self.board.start()
        self.plugs += 1
        self.ports.append(self.board.port)
        tmp = self.folder / f".{self.link.name}.new"
        os.symlink(self.board.port, tmp)
        os.replace(tmp, self.link)  # atomic, as udev's link update
        return time.time()

    def unplug(self) -> None:
        self.link.unlink(missing_ok=True)
        if self.board is not None:
            self.board.close()
            self.board = None

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> "UdevPlay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frame_type(frame: bytes) -> int:
    from leakmon import wire

    return frame[wire.OFF_TYPE]


class FrameWatch:
    """A subscriber to one node's frames: (arrival time, boot, seq, gateway t_us, frame type)."""

    def __init__(self, port: int, user: str, password: str, node_id: str) -> None:
        import threading

        from leakmon.fleet import envelope
        from leakmon.fleet.creds import parse_broker
        from leakmon.fleet.mqttclient import connect, make_client

        self.got: list[tuple[float, int, int, int, int]] = []
        self._lock = threading.Lock()
        addr = parse_broker(f"mqtt://{user}@127.0.0.1:{port}")
        self.client = make_client(addr, password, f"replug-watch-{os.getpid()}", clean_session=True)

        def on_message(c, u, m) -> None:  # type: ignore[no-untyped-def]
            env = envelope.unpack(m.payload)
            with self._lock:
                self.got.append((time.time(), env.boot, env.seq, env.t_us, frame_type(env.body)))

        self.client.on_message = on_message
        connect(self.client, addr)
        self.client.subscribe(envelope.topic(node_id, "frame"), 1)
        self.client.loop_start()

    def since(self, t_s: float) -> list[tuple[float, int, int, int, int]]:
        """Frames the gateway received at or after t_s (its clock is this machine's)."""
        with self._lock:
            return [g for g in self.got if g[3] >= t_s * 1e6]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def replug_times(play: UdevPlay, watch: FrameWatch, n: int, off_s: float = 0.3,
                 timeout_s: float = 10.0) -> list[tuple[float, float]]:
    """n re-plugs: per re-plug, seconds from the link appearing to the first frame of the new
    board reaching the subscriber, and to its first SAMPLES frame; nan if none in timeout_s."""
    from leakmon import wire

    out = []
    for _ in range(n):
        play.unplug()
        time.sleep(off_s)
        t_app = play.plug()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not any(g[4] == wire.T_SAMPLES for g in watch.since(t_app)):
            time.sleep(0.01)
        got = watch.since(t_app)
        first = min((g[0] for g in got), default=float("nan"))
        first_samples = min((g[0] for g in got if g[4] == wire.T_SAMPLES), default=float("nan"))
        out.append((first - t_app, first_samples - t_app))
        time.sleep(0.5)
    return out
