"""MS5611 compensation: the datasheet's worked example, the datasheet's integer
flow transcribed (first and second order), AN520's CRC-4 vector, the virtual
board's model inverted and compensated back, and array shapes."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from compensation_util import assert_model_is_host, assert_rejects_bad_raw, grid
from leakmon import sensors, wire
from leakmon.sensors.ms5611 import (
    Ms5611Calibration,
    compensate,
    make_compensator,
    parse_calibration,
    unpack_raw,
)
from leakmon.sim.vboard import ms5611_model

# Worked example: MS5611-01BA01 datasheet (DA5611-01BA01_007, Jul. 2012, page 7,
# "Pressure and temperature calculation", column "Example / Typical value"):
# C1..C6 and D1, D2 give dT = 2366, TEMP = 2007 (20.07 C), OFF = 2420281617,
# SENS = 1315097036, P = 100009 (1000.09 mbar). The datasheet truncates every
# division; the float64 path keeps the fractions.
C = (40127, 36924, 23317, 23282, 33464, 28312)
D1, D2 = 9085466, 8569150
BLOCK = struct.pack(">6H", *C)
RAW = bytes.fromhex("8aa21a82c13e")  # D1, D2 as the ADC read returns them


def _datasheet_int(d1: int, d2: int, c: tuple[int, ...] = C) -> tuple[int, int, int, int, int]:
    """(dT, TEMP, OFF, SENS, P) by the datasheet's integer flow (pages 7 and 8),
    C-style truncating division, second order below 20 C and -15 C included."""

    def div(a: int, b: int) -> int:  # C integer division: towards zero
        q = abs(a) // b
        return q if a >= 0 else -q

    dt = d2 - c[4] * 2**8
    temp = 2000 + div(dt * c[5], 2**23)
    off = c[1] * 2**16 + div(c[3] * dt, 2**7)
    sens = c[0] * 2**15 + div(c[2] * dt, 2**8)
    if temp < 2000:
        t2 = div(dt * dt, 2**31)
        off2 = div(5 * (temp - 2000) ** 2, 2)
        sens2 = div(5 * (temp - 2000) ** 2, 4)
        if temp < -1500:
            off2 += 7 * (temp + 1500) ** 2
            sens2 += div(11 * (temp + 1500) ** 2, 2)
        temp -= t2
        off -= off2
        sens -= sens2
    p = div(div(d1 * sens, 2**21) - off, 2**15)
    return dt, temp, off, sens, p


def test_datasheet_transcription_reproduces_worked_example() -> None:
    assert _datasheet_int(D1, D2) == (2366, 2007, 2420281617, 1315097036, 100009)


def test_worked_example() -> None:
    cal = parse_calibration(BLOCK)
    assert cal == Ms5611Calibration(*C)
    d1, d2 = unpack_raw(np.frombuffer(RAW, dtype=np.uint8))
    assert d1.tolist() == [D1] and d2.tolist() == [D2]
    p, t = compensate(d1, d2, cal)
    # 20.07 C and 1000.09 mbar after truncation; the exact values lie within one
    # unit of the last digit above them.
    assert 2007 <= (t[0] - 273.15) * 100 < 2008
    assert 100009 <= p[0] < 100010
    assert p[0] == pytest.approx(100009.0702138, abs=1e-6)
    assert t[0] == pytest.approx(293.2298537636, abs=1e-9)


def test_model_scalar_worked_example() -> None:
    p, t = ms5611_model.compensate(D1, D2, C)
    temp, off, sens = ms5611_model.temp_off_sens(D2, C)
    assert int(temp) == 2007 and int(off) == 2420281617 and int(sens) == 1315097036
    assert int(p) == 100009


@pytest.mark.parametrize("n", [0, 11, 13, 16, 21])
def test_wrong_block_length(n: int) -> None:
    with pytest.raises(ValueError, match="12 bytes"):
        parse_calibration(bytes(n))
    with pytest.raises(ValueError, match="12 bytes"):
        make_compensator(bytes(n))


def test_unpack_raw_shapes() -> None:
    flat = np.frombuffer(RAW * 3, dtype=np.uint8)
    for raw in (flat, flat.reshape(3, 6), RAW * 3):
        d1, d2 = unpack_raw(raw)
        assert d1.dtype == np.int64 and d2.dtype == np.int64
        assert d1.tolist() == [D1] * 3 and d2.tolist() == [D2] * 3
    assert_rejects_bad_raw(unpack_raw, 6)


def test_sensors_table_reaches_this_module() -> None:
    comp = sensors.compensator(wire.CHIP_MS5611, BLOCK)
    p, _ = comp(np.frombuffer(RAW, dtype=np.uint8).reshape(1, 6))
    assert int(p[0]) == 100009


def _realistic(rng: random.Random, n: int) -> tuple[list[int], list[int]]:
    # D2 from about -40 C to +85 C for the typical coefficients; D1 for 10..1200 mbar.
    d2 = [rng.randrange(7_400_000, 10_300_000) for _ in range(n)]
    d1 = [rng.randrange(2_500_000, 11_000_000) for _ in range(n)]
    return d1, d2


def test_matches_datasheet_integer_flow_in_every_branch() -> None:
    """Float64 equals the datasheet's integer maths to within its truncation."""
    rng = random.Random(3)
    d1, d2 = _realistic(rng, 4000)
    p, t = compensate(np.array(d1), np.array(d2), parse_calibration(BLOCK))
    ref = np.array([_datasheet_int(a, b) for a, b in zip(d1, d2)])
    temp_ref, p_ref = ref[:, 1], ref[:, 4]
    # Every branch is exercised: above 20 C, below 20 C, below -15 C.
    assert (temp_ref >= 2000).any() and ((temp_ref < 2000) & (temp_ref > -1500)).any()
    assert (temp_ref < -1500).any()
    # Truncations of TEMP (1 count) and T2 (1 count); P takes a few chained ones.
    assert np.abs((t - 273.15) * 100 - temp_ref).max() < 2.0
    assert np.abs(p - p_ref).max() < 2.0


def test_second_order_has_no_steps() -> None:
    """The compensation is continuous through 20 C and -15 C."""
    cal = parse_calibration(BLOCK)
    for temp_c in (20.0, -15.0):
        d2 = ms5611_model.temperature_counts(temp_c + 273.15, C)
        d2s = np.array([np.floor(d2) - 1, np.floor(d2), np.floor(d2) + 1, np.floor(d2) + 2])
        p, t = compensate(np.full(4, 8_500_000), d2s, cal)
        assert np.abs(np.diff(t)).max() < 1e-4  # ~3.4e-5 K per count
        assert np.abs(np.diff(p)).max() < 0.05  # Pa


def test_first_order_only_option() -> None:
    cal = parse_calibration(BLOCK)
    warm = compensate(D1, D2, cal, second_order=False)
    assert warm == compensate(D1, D2, cal)  # above 20 C nothing changes
    cold_d2 = 8_000_000
    p1, t1 = compensate(D1, cold_d2, cal, second_order=False)
    p2, t2 = compensate(D1, cold_d2, cal)
    assert t2 < t1 and p2 != p1


def test_crc4_an520_vector() -> None:
    # TE AN520: {0x3132, 0x3334, ..., 0x4344, 0x4500} gives CRC 0xB; the low byte
    # of word 7 is excluded, so 0x450B checks too.
    words = [0x3132, 0x3334, 0x3536, 0x3738, 0x3940, 0x4142, 0x4344, 0x4500]
    assert ms5611_model.crc4(words) == 0xB
    assert ms5611_model.crc4(words[:7] + [0x450B]) == 0xB
    prom = ms5611_model.make_prom(0, C, 0x4A)
    assert prom[1:7] == list(C) and prom[7] & 0xF == ms5611_model.crc4(prom)


# ---- The virtual board's model against the host ----

def test_model_forward_is_host_maths_bit_for_bit() -> None:
    rng = random.Random(5)
    d1, d2 = _realistic(rng, 5000)
    for coeffs in (C, tuple(rng.randrange(1, 65535) for _ in range(6))):
        p, t = compensate(np.array(d1), np.array(d2), Ms5611Calibration(*coeffs))
        assert_model_is_host(lambda a, b: ms5611_model.compensate(a, b, coeffs), d1, d2, p, t)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return grid(1_000.0, 120_000.0)  # 10..1200 mbar


def test_round_trip_quantized() -> None:
    """Model inverse (no noise) -> integer counts -> host: within half a count."""
    cal = parse_calibration(BLOCK)
    p_true, t_true = _grid()
    raw = np.array([ms5611_model.raw_counts(p, t, C) for p, t in zip(p_true, t_true)])
    assert raw.min() > 0 and raw.max() < 2**24
    p, t = compensate(raw[:, 0], raw[:, 1], cal)
    p_up, _ = compensate(raw[:, 0] + 1, raw[:, 1], cal)
    half_count = 0.5 * np.abs(p_up - p)  # ~0.0096 Pa at the typical coefficients
    t_up = compensate(raw[:, 0], raw[:, 1] + 1, cal)[1]
    half_t = 0.5 * np.abs(t_up - t)
    assert np.all(np.abs(p - p_true) <= half_count * (1 + 1e-6) + 1e-9)
    assert np.all(np.abs(t - t_true) <= half_t * (1 + 1e-6) + 1e-12)
    assert np.abs(p - p_true).max() < 0.011
    assert np.abs(t - t_true).max() < 3e-5  # half of 3.4e-5..4.5e-5 K per count


def test_round_trip_unquantized() -> None:
    p_true, t_true = _grid()
    d2 = np.array([ms5611_model.temperature_counts(t, C) for t in t_true])
    d1 = np.array([ms5611_model.pressure_counts(p, u, C) for p, u in zip(p_true, d2)])
    p, t = compensate(d1, d2, parse_calibration(BLOCK))
    assert np.abs(p - p_true).max() < 1e-6
    assert np.abs(t - t_true).max() < 1e-9
