"""TCA9548A support: discovery.discover() finds sensors behind muxes, the node streams
them without allocating, the host decodes every channel; plus firmware/tca9548a.py
and the mux identification against fake buses under CPython."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIRMWARE
from leakmon import wire
from leakmon.sim.vboard import chamber
from leakmon.wire.stream import NodeStream, SampleBlock

HERE = Path(__file__).parent
CHAMBER = {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15, "leak_kg_per_s": 2e-7,
           "temp_amp_k": 0.05, "temp_period_s": 20.0}
NO_MUX = 0xFF


def _run_node(run_mp, tmp_path: Path, sensors: list[dict[str, Any]], rows: int = 10,
              locked: int = 2000) -> tuple[str, bytes]:
    """mp_heap_lock.py on a board with these sensors: (verdict, stdout bytes)."""
    sim = {"seed": 7, "speed": 0, "chamber": CHAMBER, "sensors": sensors}
    (tmp_path / "sim.json").write_text(json.dumps(sim))
    res = run_mp(HERE / "mp_heap_lock.py", "300", str(locked), str(rows), cwd=tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 0, err + res.stdout.decode(errors="replace")[-500:]
    assert "MemoryError" not in err
    return err, res.stdout


def _decode(out: bytes) -> tuple[NodeStream, dict[int, list[SampleBlock]]]:
    s = NodeStream()
    by_ch: dict[int, list[SampleBlock]] = {}
    for item in s.feed(out):
        if isinstance(item, SampleBlock):
            by_ch.setdefault(item.channel, []).append(item)
    assert s.decoder.stats.crc_errors == 0 and s.stats.lost_frames == 0
    return s, by_ch


def _check_against_chamber(blocks: list[SampleBlock], noise_pa: float, offset_pa: float = 0.0) -> None:
    ch = chamber.from_config(CHAMBER)
    t = np.concatenate([b.t_s for b in blocks])
    p = np.concatenate([b.pressure_pa for b in blocks])
    truth = np.array([ch.state(x)[0] for x in t]) + offset_pa
    resid = p - truth
    assert len(p) >= 2000
    assert np.all(np.abs(resid) < 6 * noise_pa)
    assert abs(resid.mean()) < 4 * noise_pa / np.sqrt(len(p))


SIXTEEN_BEHIND_ONE = [
    {"chip": "BMP390", "bus": 0, "addr": addr, "mux_addr": 0x70, "mux_channel": ch}
    for ch in range(8) for addr in (0x76, 0x77)
] + [{"chip": "LPS22HH", "bus": 0, "addr": 0x5D}]


def test_sixteen_behind_a_mux_plus_one_direct(run_mp, tmp_path: Path) -> None:
    verdict, out = _run_node(run_mp, tmp_path, SIXTEEN_BEHIND_ONE)
    assert verdict.startswith("OK ticks=2000"), verdict
    assert "channels=17" in verdict
    s, by_ch = _decode(out)
    assert s.hello is not None and len(s.hello.channels) == 17
    seen = {(c.bus, c.mux, c.addr, c.chip) for c in s.hello.channels}
    want = {(0, ch, addr, wire.CHIP_BMP390) for ch in range(8) for addr in (0x76, 0x77)}
    want.add((0, NO_MUX, 0x5D, wire.CHIP_LPS22HH))
    assert seen == want
    # Every channel streamed the whole locked run and reads the chamber.
    assert sorted(by_ch) == list(range(17))
    for c in s.hello.channels:
        _check_against_chamber(by_ch[c.channel], 0.65 if c.chip == wire.CHIP_LPS22HH else 0.3)


def test_two_muxes_with_the_same_addresses_behind_them(run_mp, tmp_path: Path) -> None:
    """Selecting a channel of one mux disconnects the other: each read reaches its chip."""
    sensors = [
        {"chip": "BMP390", "addr": 0x77, "mux_addr": 0x70, "mux_channel": 2, "offset_pa": 100.0},
        {"chip": "BMP388", "addr": 0x77, "mux_addr": 0x71, "mux_channel": 2, "offset_pa": -100.0},
        {"chip": "LPS22HB", "addr": 0x5C, "mux_addr": 0x71, "mux_channel": 6},
        {"chip": "LPS22HH", "addr": 0x5D},  # the MS5611 is in test_ms5611_driver: 9 ms > 5 ms period
    ]
    verdict, out = _run_node(run_mp, tmp_path, sensors, locked=200)
    assert verdict.startswith("OK ticks=200") and "channels=4" in verdict, verdict
    s, by_ch = _decode(out)
    assert s.hello is not None
    chans = {c.channel: (c.mux, c.addr, c.chip) for c in s.hello.channels}
    assert sorted(chans.values()) == sorted([
        (NO_MUX, 0x5D, wire.CHIP_LPS22HH), (2, 0x77, wire.CHIP_BMP390),
        (2, 0x77, wire.CHIP_BMP388), (6, 0x5C, wire.CHIP_LPS22HB)])
    for ch, (_, _, chip) in chans.items():
        p = np.concatenate([b.pressure_pa for b in by_ch[ch]])
        offset = {wire.CHIP_BMP390: 100.0, wire.CHIP_BMP388: -100.0}.get(chip, 0.0)
        assert abs(np.median(p) - CHAMBER["p0_pa"] - offset) < 10.0, (chip, np.median(p))


def test_sensor_behind_a_channel_clashing_with_a_direct_one_is_skipped(run_mp, tmp_path: Path) -> None:
    sensors = [
        {"chip": "BMP390", "addr": 0x77},
        {"chip": "BMP390", "addr": 0x77, "mux_addr": 0x74, "mux_channel": 3},
        {"chip": "BMP390", "addr": 0x76, "mux_addr": 0x74, "mux_channel": 3},
    ]
    verdict, out = _run_node(run_mp, tmp_path, sensors, locked=100)
    s, _ = _decode(out)
    assert s.hello is not None
    assert sorted((c.mux, c.addr) for c in s.hello.channels) == [(3, 0x76), (NO_MUX, 0x77)]


# ---- firmware/tca9548a.py and discovery's mux identification, under CPython ----

@pytest.fixture
def fw() -> Iterator[Any]:
    """Fresh imports of the firmware modules (tca9548a keeps per-bus state)."""
    sys.path.insert(0, str(FIRMWARE))
    try:
        for name in ("tca9548a", "discovery"):
            sys.modules.pop(name, None)
        yield importlib.import_module("tca9548a"), importlib.import_module("discovery")
    finally:
        sys.path.remove(str(FIRMWARE))
        for name in ("tca9548a", "discovery"):
            sys.modules.pop(name, None)


class FakeMux:
    def __init__(self) -> None:
        self.control = 0


class RegisterChip:
    """A register-based sensor: a one-byte write sets the pointer, reads return registers."""

    def __init__(self, regs: dict[int, int]) -> None:
        self.regs = regs
        self.ptr = 0
        self.data_writes = 0

    def set_pointer(self, b: int) -> None:
        self.ptr = b

    def read(self, n: int) -> bytes:
        out = bytes(self.regs.get(self.ptr + i, 0) for i in range(n))
        self.ptr += n
        return out


class FakeMS5611:
    """Commands: PROM reads answer the word, ADC read answers 0 (nothing converted)."""

    def __init__(self, prom: list[int]) -> None:
        self.prom = prom
        self.cmd = 0
        self.commands: list[int] = []

    def set_pointer(self, b: int) -> None:
        self.cmd = b
        self.commands.append(b)

    def read(self, n: int) -> bytes:
        if 0xA0 <= self.cmd <= 0xAE:
            w = self.prom[(self.cmd - 0xA0) >> 1]
            return bytes([w >> 8, w & 0xFF])[:n]
        return bytes(n)


class FakeBus:
    """An I2C bus with muxes (each channel a dict of devices) and a transaction log."""

    def __init__(self) -> None:
        self.direct: dict[int, Any] = {}
        self.muxes: dict[int, FakeMux] = {}
        self.behind: dict[tuple[int, int], dict[int, Any]] = {}
        self.log: list[tuple[str, int, int]] = []
        self.fail_next_mux_write = False

    def _visible(self) -> dict[int, Any]:
        seen = dict(self.direct)
        for a, m in self.muxes.items():
            seen[a] = m
            for ch in range(8):
                if m.control & (1 << ch):
                    seen.update(self.behind.get((a, ch), {}))
        return seen

    def scan(self) -> list[int]:
        return sorted(self._visible())

    def _dev(self, addr: int) -> Any:
        d = self._visible().get(addr)
        if d is None:
            raise OSError(19)
        return d

    def writeto(self, addr: int, buf: bytes) -> int:
        d = self._dev(addr)
        if isinstance(d, FakeMux):
            if self.fail_next_mux_write:
                self.fail_next_mux_write = False
                raise OSError(5)
            d.control = buf[-1]
            self.log.append(("mux", addr, buf[-1]))
        else:
            d.set_pointer(buf[0])
        return len(buf)

    def readfrom_into(self, addr: int, buf: bytearray) -> None:
        d = self._dev(addr)
        if isinstance(d, FakeMux):
            buf[:] = bytes([d.control]) * len(buf)
        else:
            buf[:] = d.read(len(buf))

    def readfrom_mem_into(self, addr: int, reg: int, buf: bytearray) -> None:
        self.log.append(("read", addr, reg))
        d = self._dev(addr)
        d.set_pointer(reg)
        buf[:] = d.read(len(buf))

    def readfrom_mem(self, addr: int, reg: int, n: int) -> bytes:
        buf = bytearray(n)
        self.readfrom_mem_into(addr, reg, buf)
        return bytes(buf)

    def writeto_mem(self, addr: int, reg: int, buf: bytes) -> None:
        self.log.append(("write", addr, reg))
        d = self._dev(addr)
        d.set_pointer(reg)
        if len(buf):
            d.data_writes += 1


def test_channel_selects_once_and_only_on_change(fw) -> None:
    tca, _ = fw
    bus = FakeBus()
    bus.muxes[0x70] = FakeMux()
    bus.behind[(0x70, 1)] = {0x77: RegisterChip({0: 0x60})}
    bus.behind[(0x70, 4)] = {0x77: RegisterChip({0: 0x50})}
    a, b = tca.MuxChannel(bus, 0x70, 1), tca.MuxChannel(bus, 0x70, 4)
    assert a.mux is b.mux  # one shared state per mux
    buf = bytearray(1)
    for _ in range(3):
        a.readfrom_mem_into(0x77, 0, buf)
    assert buf[0] == 0x60
    assert b.readfrom_mem(0x77, 0, 1) == b"\x50"
    a.readfrom_mem_into(0x77, 0, buf)
    assert [e for e in bus.log if e[0] == "mux"] == [("mux", 0x70, 0x02), ("mux", 0x70, 0x10),
                                                     ("mux", 0x70, 0x02)]


def test_two_muxes_never_connect_at_once(fw) -> None:
    tca, _ = fw
    bus = FakeBus()
    bus.muxes[0x70] = FakeMux()
    bus.muxes[0x71] = FakeMux()
    bus.behind[(0x70, 0)] = {0x77: RegisterChip({0: 0x60})}
    bus.behind[(0x71, 0)] = {0x77: RegisterChip({0: 0x50})}
    a, b = tca.MuxChannel(bus, 0x70, 0), tca.MuxChannel(bus, 0x71, 0)
    for _ in range(2):
        assert a.readfrom_mem(0x77, 0, 1) == b"\x60"
        assert bus.muxes[0x71].control == 0
        assert b.readfrom_mem(0x77, 0, 1) == b"\x50"
        assert bus.muxes[0x70].control == 0


def test_failed_select_is_written_again(fw) -> None:
    tca, _ = fw
    bus = FakeBus()
    bus.muxes[0x70] = FakeMux()
    bus.behind[(0x70, 3)] = {0x76: RegisterChip({5: 9})}
    port = tca.MuxChannel(bus, 0x70, 3)
    bus.fail_next_mux_write = True
    with pytest.raises(OSError):
        port.writeto_mem(0x76, 5, b"")
    assert port.mux.control == -1
    port.writeto_mem(0x76, 5, b"")
    assert port.readfrom_mem(0x76, 5, 1) == b"\x09"
    assert [e for e in bus.log if e[0] == "mux"] == [("mux", 0x70, 0x08)]


def test_scan_lists_only_the_channel(fw) -> None:
    tca, _ = fw
    bus = FakeBus()
    bus.direct[0x5C] = RegisterChip({})
    bus.muxes[0x70] = FakeMux()
    bus.behind[(0x70, 5)] = {0x76: RegisterChip({}), 0x5C: RegisterChip({})}
    bus.behind[(0x70, 6)] = {0x77: RegisterChip({})}
    assert tca.MuxChannel(bus, 0x70, 5).scan() == [0x76]  # 0x5C clashes upstream
    assert tca.MuxChannel(bus, 0x70, 6).scan() == [0x77]


def test_arguments_are_checked(fw) -> None:
    tca, _ = fw
    with pytest.raises(ValueError, match="0..7"):
        tca.MuxChannel(FakeBus(), 0x70, 8)
    with pytest.raises(ValueError, match="0x70..0x77"):
        tca.MuxChannel(FakeBus(), 0x69, 0)


def test_mux_identification_spares_sensors_at_0x76_0x77(fw) -> None:
    """Only a device that reads back each control byte is a mux; a register chip and
    an MS5611 at mux addresses are left as they were (no register data written)."""
    _, discovery = fw
    bus = FakeBus()
    bmp = RegisterChip({0x00: 0x60, 0xA6: 0xA6})  # even one coincidence is not enough
    prom = [0, 40127, 36924, 23317, 23282, 33464, 28312, 0x4A0A]
    ms = FakeMS5611(prom)
    bus.direct[0x77] = bmp
    bus.direct[0x76] = ms
    bus.muxes[0x73] = FakeMux()
    bus.muxes[0x73].control = 0x81  # left connected by an earlier program
    muxes = discovery._find_muxes(bus, bus.scan())
    assert muxes == [0x73]
    assert bus.muxes[0x73].control == 0  # left disconnected
    assert bmp.data_writes == 0
    assert all(c == 0x00 or 0xA0 <= c <= 0xAE for c in ms.commands)  # PROM/ADC reads only


def test_discover_probes_behind_each_channel(fw) -> None:
    """discover() on a fake bus: direct sensors as NO_MUX, sensors behind channels
    as their channel, with drivers whose bus is a MuxChannel."""
    tca, discovery = fw
    bus = FakeBus()
    bus.muxes[0x70] = FakeMux()
    bus.direct[0x5D] = RegisterChip({0x0F: 0x00})  # answers, but no driver claims it
    bus.behind[(0x70, 0)] = {0x77: RegisterChip({})}
    bus.behind[(0x70, 7)] = {0x76: RegisterChip({})}

    class Probe:
        RAW_SIZE = 1

        def __init__(self, i2c: Any, addr: int) -> None:
            i2c.readfrom_mem(addr, 0, 1)  # goes through the channel's select
            self.i2c = i2c

    discovery.probe = lambda i2c, addr: Probe(i2c, addr) if addr in (0x76, 0x77) else None
    found = discovery.discover([(0, bus)])
    assert [(b, ch, a) for b, ch, a, _ in found] == [(0, 0, 0x77), (0, 7, 0x76)]
    for _, ch, _, drv in found:
        assert isinstance(drv.i2c, tca.MuxChannel) and drv.i2c.channel == ch
