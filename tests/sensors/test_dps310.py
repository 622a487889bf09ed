"""DPS310 compensation: published expected values for every oversampling rate, the
datasheet formula transcribed, the virtual board's model inverted and compensated
back, and the calibration block's checks."""

from __future__ import annotations

import random

import numpy as np
import pytest
from compensation_util import (
    FakeHardware,
    assert_model_is_host,
    assert_rejects_bad_raw,
    assert_within_half_count,
    burst,
    grid,
)
from leakmon.sensors.dps310 import (
    SCALE_FACTORS,
    compensate,
    make_compensator,
    parse_calibration,
    parse_coefficients,
    unpack_raw,
)
from leakmon.sim.vboard import dps310_model

# Published example: the unit tests of ojousima/ojousima.dps310.c
# (test/test_dps310.c, a DPS310 driver used in Ruuvi firmware). The coefficient
# registers 0x10..0x21 below parse to c0 = -100, c1 = 1, c00 = -20000, c10 = 1000,
# c01 = 2000, c11 = -250, c20 = -350, c21 = 5, c30 = 10 ("physically meaningless
# but they verify the mathematics"). With T_raw = P_raw = 0x7A1200 (8 000 000) it
# expects these temperatures (T_raw at each TMP_PRC) and pressures (P_raw at each
# PM_PRC, with the scaled temperature set to 75.0), within 0.01 C and 0.1 Pa.
EXAMPLE_COEF = bytes.fromhex("F9C001FB1E0003E807D0FF06FEA20005000A")
EXAMPLE_COEFFS = (-100, 1, -20000, 1000, 2000, -250, -350, 5, 10)
EXAMPLE_RAW = 0x7A1200
EXAMPLE_TEMPERATURE_C = (-34.7412, -44.9137, -47.8201, -48.9827,
                         -18.4979, -34.4990, -42.3105, -46.1703)
EXAMPLE_T_SCALED = (15.2587, 5.086, 2.1798, 1.0172, 31.5020, 15.5009, 7.6894, 3.8296)
EXAMPLE_PRESSURE_PA = (-99495.603, 41681.403, 91530.439, 111980.16,
                       -91732.592, -101889.69, -463.24456, 62951.915)

# A real part's coefficients (Infineon/DPS310-Pressure-Sensor issue #23), which
# the virtual board's model uses by default.
REAL_COEFFS = (223, -291, 80074, -56035, -3145, 1432, -9919, 152, -1321)
REAL_COEF = bytes.fromhex(dps310_model.DEFAULT_COEF_HEX)

PRS_X32_16HZ = 0x45
TMP_EXT_X2_16HZ = 0xC1


def _block(coef: bytes = REAL_COEF, prs_cfg: int = PRS_X32_16HZ, tmp_cfg: int = TMP_EXT_X2_16HZ,
           coef_srce: int = 0x80) -> bytes:
    return coef + bytes([prs_cfg, tmp_cfg, coef_srce])


def test_parse_published_coefficients() -> None:
    assert parse_coefficients(EXAMPLE_COEF) == EXAMPLE_COEFFS
    assert parse_coefficients(REAL_COEF) == REAL_COEFFS
    assert dps310_model.parse_coef(REAL_COEF) == tuple(float(c) for c in REAL_COEFFS)


@pytest.mark.parametrize("prc", range(8))
def test_published_temperatures(prc: int) -> None:
    cal = parse_calibration(_block(EXAMPLE_COEF, 0, prc, 0))
    assert cal.kt == SCALE_FACTORS[prc]
    assert EXAMPLE_RAW / cal.kt == pytest.approx(EXAMPLE_T_SCALED[prc], abs=1e-3)
    _, t = compensate(0, EXAMPLE_RAW, cal)
    assert float(t) - 273.15 == pytest.approx(EXAMPLE_TEMPERATURE_C[prc], abs=0.01)


@pytest.mark.parametrize("prc", range(8))
def test_published_pressures(prc: int) -> None:
    # Temperature at x1 (kT = 524288): a raw count of 75 * kT scales to exactly 75.0.
    cal = parse_calibration(_block(EXAMPLE_COEF, prc, 0, 0))
    assert cal.kp == SCALE_FACTORS[prc]
    p, _ = compensate(EXAMPLE_RAW, 75 * 524288, cal)
    assert float(p) == pytest.approx(EXAMPLE_PRESSURE_PA[prc], abs=0.1)


def test_scale_factors_follow_the_datasheet_pattern() -> None:
    # 2**19 * (2**n - 1), divided by 64 from x16 on (the P/T shift).
    for n, k in enumerate(SCALE_FACTORS):
        assert k == ((1 << 19) * ((2 << n) - 1)) >> (6 if n >= 4 else 0)
    assert dps310_model.SCALE_FACTORS == SCALE_FACTORS


def test_real_part_is_plausible() -> None:
    # The default model chip at 20 C and one atmosphere gives counts of a sane size.
    model_cal = dps310_model.parse_coef(REAL_COEF)
    raw_p, raw_t = dps310_model.raw_counts(101_325.0, 293.15, model_cal, 516096, 1572864)
    assert -2**23 < raw_p < 0 < raw_t < 2**23
    p, t = compensate(raw_p, raw_t, parse_calibration(_block()))
    assert float(p) == pytest.approx(101_325.0, abs=0.1)
    assert float(t) == pytest.approx(293.15, abs=1e-3)


@pytest.mark.parametrize("n", [0, 18, 20, 22])
def test_wrong_block_length(n: int) -> None:
    with pytest.raises(ValueError, match="21 bytes"):
        parse_calibration(bytes(n))
    with pytest.raises(ValueError, match="21 bytes"):
        make_compensator(bytes(n))


def test_bad_oversampling_code() -> None:
    with pytest.raises(ValueError, match="allowed 0..7"):
        parse_calibration(_block(prs_cfg=0x48))
    with pytest.raises(ValueError, match="allowed 0..7"):
        parse_calibration(_block(tmp_cfg=0x8F))


def test_temperature_sensor_must_match_coefficients() -> None:
    with pytest.raises(ValueError, match="COEF_SRCE"):
        parse_calibration(_block(tmp_cfg=0x41, coef_srce=0x80))
    with pytest.raises(ValueError, match="COEF_SRCE"):
        parse_calibration(_block(tmp_cfg=0xC1, coef_srce=0x00))
    assert not parse_calibration(_block(tmp_cfg=0x41, coef_srce=0x00)).tmp_ext
    # Only bit 7 of COEF_SRCE is the source bit.
    assert parse_calibration(_block(tmp_cfg=0xC1, coef_srce=0xFF)).tmp_ext


def test_unpack_raw_signs_and_shapes() -> None:
    raw = bytes.fromhex("7A1200FFFFFF800000000001")
    p, t = unpack_raw(raw)
    assert p.tolist() == [8_000_000, -(2**23)] and t.tolist() == [-1, 1]
    for shaped in (np.frombuffer(raw, dtype=np.uint8), np.frombuffer(raw, dtype=np.uint8).reshape(2, 6)):
        p2, t2 = unpack_raw(shaped)
        assert p2.dtype == np.int64 and p2.tolist() == p.tolist() and t2.tolist() == t.tolist()
    assert_rejects_bad_raw(unpack_raw, 6, np.int16)


def test_make_compensator() -> None:
    run = make_compensator(_block())
    model_cal = dps310_model.parse_coef(REAL_COEF)
    raw_p, raw_t = dps310_model.raw_counts(100_000.0, 300.0, model_cal, 516096, 1572864)
    row = (raw_p & 0xFFFFFF).to_bytes(3, "big") + (raw_t & 0xFFFFFF).to_bytes(3, "big")
    p, t = run(np.frombuffer(row * 3, dtype=np.uint8).reshape(3, 6))
    assert p.shape == (3,) and np.all(np.abs(p - 100_000.0) < 0.1)
    assert np.all(np.abs(t - 300.0) < 1e-3)


# ---- The datasheet formula, transcribed term by term ----

def _datasheet(c: tuple[int, ...], raw_p: int, raw_t: int, kp: int, kt: int) -> tuple[float, float]:
    c0, c1, c00, c10, c01, c11, c20, c21, c30 = c
    t_sc = raw_t / kt
    p_sc = raw_p / kp
    t = c0 * 0.5 + c1 * t_sc
    p = (c00 + p_sc * (c10 + p_sc * (c20 + p_sc * c30)) + t_sc * c01
         + t_sc * p_sc * (c11 + p_sc * c21))
    return p, t


def test_matches_datasheet_transcription() -> None:
    rng = random.Random(7)
    for _ in range(20):
        coef = bytes(rng.randrange(256) for _ in range(18))
        prc_p, prc_t = rng.randrange(8), rng.randrange(8)
        cal = parse_calibration(_block(coef, prc_p, prc_t, 0))
        ups = [rng.randrange(-2**23, 2**23) for _ in range(50)]
        uts = [rng.randrange(-2**23, 2**23) for _ in range(50)]
        p, t = compensate(np.array(ups), np.array(uts), cal)
        exact = np.array([_datasheet(parse_coefficients(coef), u, v, SCALE_FACTORS[prc_p],
                                     SCALE_FACTORS[prc_t]) for u, v in zip(ups, uts)])
        np.testing.assert_allclose(p, exact[:, 0], rtol=1e-12, atol=1e-6)
        np.testing.assert_allclose(t - 273.15, exact[:, 1], rtol=1e-12, atol=1e-9)


# ---- The virtual board's model against the host ----

def test_model_forward_is_host_maths_bit_for_bit() -> None:
    rng = random.Random(5)
    ups = [rng.randrange(-2**23, 2**23) for _ in range(3000)]
    uts = [rng.randrange(-2**23, 2**23) for _ in range(3000)]
    for coef in (REAL_COEF, EXAMPLE_COEF, bytes(rng.randrange(256) for _ in range(18))):
        for prc_p, prc_t in ((5, 1), (0, 7), (3, 4)):
            kp, kt = SCALE_FACTORS[prc_p], SCALE_FACTORS[prc_t]
            p, t = compensate(np.array(ups), np.array(uts), parse_calibration(_block(coef, prc_p, prc_t, 0)))
            model_cal = dps310_model.parse_coef(coef)
            assert_model_is_host(lambda u, v: dps310_model.compensate(u, v, model_cal, kp, kt),
                                 ups, uts, p, t)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return grid(30_000.0, 120_000.0)  # the rated range: 300..1200 hPa


@pytest.mark.parametrize("prc_p,prc_t", [(5, 1), (0, 0), (3, 3), (4, 4), (7, 7)])
def test_round_trip_quantized(prc_p: int, prc_t: int) -> None:
    """Model inverse (no noise) -> integer counts -> host: within half a count."""
    cal = parse_calibration(_block(REAL_COEF, prc_p, 0x80 | prc_t))
    model_cal = dps310_model.parse_coef(REAL_COEF)
    kp, kt = SCALE_FACTORS[prc_p], SCALE_FACTORS[prc_t]
    p_true, t_true = _grid()
    raw = np.array([dps310_model.raw_counts(p, t, model_cal, kp, kt) for p, t in zip(p_true, t_true)])
    assert raw.min() > -2**23 and raw.max() < 2**23 - 1
    p, _ = assert_within_half_count(lambda up, ut: compensate(up, ut, cal), raw, p_true, t_true)
    assert np.abs(p - p_true).max() < 0.15  # x16's count is the coarsest, ~0.29 Pa


def test_round_trip_unquantized() -> None:
    model_cal = dps310_model.parse_coef(REAL_COEF)
    cal = parse_calibration(_block())
    p_true, t_true = _grid()
    t_sc = np.array([dps310_model.temperature_scaled(t - 273.15, model_cal) for t in t_true])
    p_sc = np.array([dps310_model.pressure_scaled(p, ts, model_cal) for p, ts in zip(p_true, t_sc)])
    p, t = compensate(p_sc * cal.kp, t_sc * cal.kt, cal)
    assert np.abs(p - p_true).max() < 1e-6
    assert np.abs(t - t_true).max() < 1e-9


def _configured_model(cfg: dict[str, object]) -> tuple[dps310_model.DPS310Model, bytes]:
    """A model set up as the firmware sets it up; (model, the firmware's block)."""
    hw = FakeHardware(101_325.0, 293.15)
    m = dps310_model.DPS310Model("DPS310", hw, cfg)
    for reg, value in ((0x0E, 0xA5), (0x0F, 0x96), (0x62, 0x02), (0x0E, 0), (0x0F, 0)):
        m.write(reg, bytes([value]))
    m.write(0x06, bytes([PRS_X32_16HZ, TMP_EXT_X2_16HZ, 0x04]))  # PRS_CFG, TMP_CFG, (MEAS_CFG 0x08: idle)
    m.write(0x09, b"\x04")  # P_SHIFT
    m.write(0x08, b"\x07")
    block = bytearray(21)
    m.read_into(0x10, memoryview(block)[:18])
    m.read_into(0x06, memoryview(block)[18:20])
    m.read_into(0x28, memoryview(block)[20:])
    return m, bytes(block)


def test_round_trip_through_registers() -> None:
    m, block = _configured_model({"noise_pa": 0, "noise_k": 0})
    cal = parse_calibration(block)
    assert (cal.kp, cal.kt) == (516096, 1572864)
    for p_true, t_true in [(101_325.0, 293.15), (31_000.0, 240.0), (119_000.0, 350.0)]:
        m.hw.state = (p_true, t_true)
        buf = bytearray(6)
        m.read_into(0x00, buf)
        p, t = compensate(*unpack_raw(bytes(buf)), cal)
        assert abs(p[0] - p_true) < 0.1
        assert abs(t[0] - t_true) < 2e-4


def test_model_offset_tempco_and_noise() -> None:
    cfg = {"noise_pa": 0.5, "noise_k": 0.0, "offset_pa": 3.0, "tempco_pa_per_k": 0.5}
    m, block = _configured_model(cfg)
    m.hw.state = (100_000.0, 308.15)
    cal = parse_calibration(block)
    p, _ = compensate(*unpack_raw(burst(m, 0x00, 6)), cal)
    expected = 100_000.0 + 3.0 + 0.5 * 10.0
    assert abs(p.mean() - expected) < 4 * 0.5 / np.sqrt(2000)
    assert 0.45 < p.std() < 0.56
