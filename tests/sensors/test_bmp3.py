"""BMP388/BMP390 compensation: a published worked example, Bosch's C transcribed,
the virtual board's model inverted and compensated back, and array shapes."""

from __future__ import annotations

import random
import struct

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
from leakmon.sensors.bmp3 import (
    Bmp3Calibration,
    compensate,
    parse_calibration,
    unpack_raw,
)
from leakmon.sim.vboard import bmp3_model

# Worked example: a BMP388's calibration block and one raw reading, with the
# expected results, from elixir-sensors/bmp3xx test/bmp3xx/bmp388/calibration_test.exs.
# That library evaluates Bosch's 64-bit integer formula without truncation (in
# Elixir floats), an algebraically identical but independently written path.
EXAMPLE_CALIB = bytes.fromhex("236B5849F65CFFCEF42300EA636E79F3F6AA4312C4")
EXAMPLE_RAW = bytes.fromhex("979F6D73D885")
EXAMPLE_PRESSURE_PA = 100_876.00634692199
EXAMPLE_TEMPERATURE_C = 30.499314453874284
EXAMPLE_REGISTERS = (27427, 18776, -10, -164, -2866, 35, 0, 25578, 31086, -13, -10, 17322, 18, -60)


def test_worked_example() -> None:
    cal = parse_calibration(EXAMPLE_CALIB)
    raw_p, raw_t = unpack_raw(np.frombuffer(EXAMPLE_RAW, dtype=np.uint8))
    assert raw_p.tolist() == [7184279] and raw_t.tolist() == [8771699]
    p, t = compensate(raw_p, raw_t, cal)
    assert p[0] == pytest.approx(EXAMPLE_PRESSURE_PA, abs=1e-6)
    assert t[0] == pytest.approx(EXAMPLE_TEMPERATURE_C + 273.15, abs=1e-9)


def test_parse_scaling() -> None:
    cal = parse_calibration(EXAMPLE_CALIB)
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = EXAMPLE_REGISTERS
    assert cal == Bmp3Calibration(
        par_t1=t1 * 256.0, par_t2=t2 / 2**30, par_t3=t3 / 2**48,
        par_p1=(p1 - 16384) / 2**20, par_p2=(p2 - 16384) / 2**29,
        par_p3=p3 / 2**32, par_p4=p4 / 2**37, par_p5=p5 * 8.0, par_p6=p6 / 2**6,
        par_p7=p7 / 2**8, par_p8=p8 / 2**15, par_p9=p9 / 2**48, par_p10=p10 / 2**48,
        par_p11=p11 / 2**65,
    )


@pytest.mark.parametrize("n", [0, 20, 22])
def test_wrong_block_length(n: int) -> None:
    with pytest.raises(ValueError, match="21 bytes"):
        parse_calibration(bytes(n))


def test_unpack_raw_shapes() -> None:
    flat = np.frombuffer(EXAMPLE_RAW * 3, dtype=np.uint8)
    for raw in (flat, flat.reshape(3, 6), EXAMPLE_RAW * 3):
        p, t = unpack_raw(raw)
        assert p.dtype == np.int64 and t.dtype == np.int64
        assert p.tolist() == [7184279] * 3 and t.tolist() == [8771699] * 3
    assert_rejects_bad_raw(unpack_raw, 6)


# ---- Bosch's bmp3.c (BMP3_FLOAT_COMPENSATION), transcribed line by line ----

def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _bosch(block: bytes, up: int, ut: int, f32_pow: bool = True) -> tuple[float, float]:
    """(pressure Pa, temperature C) as bmp3.c computes them, clamping included.

    f32_pow=True reproduces pow_bmp3(), which multiplies in 32-bit float.
    """
    def pow_bmp3(base: float, power: int) -> float:
        out = 1.0
        while power:
            out = _f32(_f32(base) * out) if f32_pow else base * out
            power -= 1
        return out

    r = block
    par_t1 = float(r[1] << 8 | r[0]) / 0.00390625
    par_t2 = float(r[3] << 8 | r[2]) / 1073741824.0
    par_t3 = float(struct.unpack("b", r[4:5])[0]) / 281474976710656.0
    par_p1 = float(struct.unpack("<h", r[5:7])[0] - 16384) / 1048576.0
    par_p2 = float(struct.unpack("<h", r[7:9])[0] - 16384) / 536870912.0
    par_p3 = float(struct.unpack("b", r[9:10])[0]) / 4294967296.0
    par_p4 = float(struct.unpack("b", r[10:11])[0]) / 137438953472.0
    par_p5 = float(r[12] << 8 | r[11]) / 0.125
    par_p6 = float(r[14] << 8 | r[13]) / 64.0
    par_p7 = float(struct.unpack("b", r[15:16])[0]) / 256.0
    par_p8 = float(struct.unpack("b", r[16:17])[0]) / 32768.0
    par_p9 = float(struct.unpack("<h", r[17:19])[0]) / 281474976710656.0
    par_p10 = float(struct.unpack("b", r[19:20])[0]) / 281474976710656.0
    par_p11 = float(struct.unpack("b", r[20:21])[0]) / 36893488147419103232.0

    partial_data1 = float(ut - par_t1)
    partial_data2 = partial_data1 * par_t2
    t_lin = partial_data2 + (partial_data1 * partial_data1) * par_t3
    t_lin = min(max(t_lin, -40.0), 85.0)

    partial_data1 = par_p6 * t_lin
    partial_data2 = par_p7 * pow_bmp3(t_lin, 2)
    partial_data3 = par_p8 * pow_bmp3(t_lin, 3)
    partial_out1 = par_p5 + partial_data1 + partial_data2 + partial_data3
    partial_data1 = par_p2 * t_lin
    partial_data2 = par_p3 * pow_bmp3(t_lin, 2)
    partial_data3 = par_p4 * pow_bmp3(t_lin, 3)
    partial_out2 = up * (par_p1 + partial_data1 + partial_data2 + partial_data3)
    partial_data1 = pow_bmp3(float(up), 2)
    partial_data2 = par_p9 + par_p10 * t_lin
    partial_data3 = partial_data1 * partial_data2
    partial_data4 = partial_data3 + pow_bmp3(float(up), 3) * par_p11
    comp_press = partial_out1 + partial_out2 + partial_data4
    comp_press = min(max(comp_press, 30000.0), 125000.0)
    return comp_press, t_lin


def _realistic_raw(rng: random.Random, n: int) -> tuple[list[int], list[int]]:
    # Counts the example chip gives between about -40..85 C and 30..125 kPa.
    ups = [rng.randrange(4_300_000, 11_800_000) for _ in range(n)]
    uts = [rng.randrange(4_750_000, 11_900_000) for _ in range(n)]
    return ups, uts


def test_matches_bosch_transcription() -> None:
    rng = random.Random(7)
    ups, uts = _realistic_raw(rng, 2000)
    cal = parse_calibration(EXAMPLE_CALIB)
    p, t = compensate(np.array(ups), np.array(uts), cal, clamp=True)
    exact = np.array([_bosch(EXAMPLE_CALIB, u, v, f32_pow=False) for u, v in zip(ups, uts)])
    np.testing.assert_allclose(p, exact[:, 0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(t - 273.15, exact[:, 1], rtol=0, atol=1e-12)
    # pow_bmp3's float32 rounding moves the pressure by up to ~3e-4 Pa here.
    bosch = np.array([_bosch(EXAMPLE_CALIB, u, v)[0] for u, v in zip(ups, uts)])
    assert np.max(np.abs(p - bosch)) < 1e-3


def test_matches_bosch_on_other_blocks() -> None:
    rng = random.Random(11)
    for _ in range(20):
        block = bytes(rng.randrange(256) for _ in range(21))
        cal = parse_calibration(block)
        ups, uts = _realistic_raw(rng, 50)
        p, t = compensate(np.array(ups), np.array(uts), cal, clamp=True)
        exact = np.array([_bosch(block, u, v, f32_pow=False) for u, v in zip(ups, uts)])
        np.testing.assert_allclose(p, exact[:, 0], rtol=1e-12)
        np.testing.assert_allclose(t - 273.15, exact[:, 1], rtol=1e-12, atol=1e-12)


def test_no_clamp_by_default() -> None:
    cal = parse_calibration(EXAMPLE_CALIB)
    # A near-vacuum reading (2 kPa) stays visible unless clamping is asked for.
    raw_p, raw_t = bmp3_model.raw_counts(2000.0, 293.15, bmp3_model.parse_calib(EXAMPLE_CALIB))
    assert 0 < raw_p < 2**24 - 1
    p, _ = compensate(raw_p, raw_t, cal)
    assert float(p) == pytest.approx(2000.0, abs=0.02)
    p, _ = compensate(raw_p, raw_t, cal, clamp=True)
    assert float(p) == 30000.0


# ---- The virtual board's model against the host ----

def test_model_forward_is_host_maths_bit_for_bit() -> None:
    rng = random.Random(5)
    ups, uts = _realistic_raw(rng, 5000)
    for block in (EXAMPLE_CALIB, bytes(rng.randrange(256) for _ in range(21))):
        model_cal = bmp3_model.parse_calib(block)
        p, t = compensate(np.array(ups), np.array(uts), parse_calibration(block))

        def model(u: int, v: int) -> tuple[float, float]:
            tl = bmp3_model.t_lin(v, model_cal)
            return bmp3_model.pressure_pa(u, tl, model_cal), tl + 273.15

        assert_model_is_host(model, ups, uts, p, t)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return grid(30_000.0, 125_000.0)  # the rated range: 300..1250 hPa


def test_round_trip_quantized() -> None:
    """Model inverse (no noise) -> integer counts -> host: within half a count."""
    cal = parse_calibration(EXAMPLE_CALIB)
    model_cal = bmp3_model.parse_calib(EXAMPLE_CALIB)
    p_true, t_true = _grid()
    raw = np.array([bmp3_model.raw_counts(p, t, model_cal) for p, t in zip(p_true, t_true)])
    assert raw.min() > 0 and raw.max() < 2**24
    p, t = assert_within_half_count(lambda up, ut: compensate(up, ut, cal), raw, p_true)
    p_err = np.abs(p - p_true)
    t_err = np.abs(t - t_true)
    # One pressure count is 0.0136..0.0181 Pa for this chip, so rounding to the
    # nearest count leaves up to ~0.009 Pa; one temperature count is ~1.7e-5 K.
    assert p_err.max() < 0.01
    assert t_err.max() < 0.001
    assert t_err.max() < 1e-5


def test_round_trip_unquantized() -> None:
    """Without rounding, the inversion itself is exact to float precision."""
    cal = parse_calibration(EXAMPLE_CALIB)
    model_cal = bmp3_model.parse_calib(EXAMPLE_CALIB)
    p_true, t_true = _grid()
    ut = np.array([bmp3_model.temperature_counts(t - 273.15, model_cal) for t in t_true])
    up = np.array([
        bmp3_model.pressure_counts(p, bmp3_model.t_lin(u, model_cal), model_cal)
        for p, u in zip(p_true, ut)
    ])
    p, t = compensate(up, ut, cal)
    assert np.abs(p - p_true).max() < 1e-6
    assert np.abs(t - t_true).max() < 1e-9


def test_round_trip_through_registers() -> None:
    hw = FakeHardware(101_325.0, 293.15)
    model = bmp3_model.BMP3Model("BMP390", hw, {"noise_pa": 0, "noise_k": 0})
    block = bytearray(21)
    model.read_into(0x31, block)
    cal = parse_calibration(bytes(block))
    # Burst write in Bosch's interleaved form: OSR = x32/x1, then ODR (0x1D) = 12.5 Hz.
    model.write(0x1C, b"\x05\x1d\x04")
    model.write(0x1B, b"\x33")  # press_en | temp_en | normal
    for p_true, t_true in [(101_325.0, 293.15), (31_000.0, 240.0), (124_000.0, 350.0)]:
        hw.state = (p_true, t_true)
        buf = bytearray(6)
        model.read_into(0x04, buf)
        p, t = compensate(*unpack_raw(np.frombuffer(bytes(buf), dtype=np.uint8)), cal)
        assert abs(p[0] - p_true) < 0.01
        assert abs(t[0] - t_true) < 1e-4


def test_model_offset_tempco_and_noise() -> None:
    hw = FakeHardware(100_000.0, 308.15)
    cfg = {"noise_pa": 0.5, "noise_k": 0.0, "offset_pa": 3.0, "tempco_pa_per_k": 0.6}
    model = bmp3_model.BMP3Model("BMP388", hw, cfg)
    model.write(0x1D, b"\x04")
    model.write(0x1B, b"\x33")
    cal = parse_calibration(model.calib)
    p, _ = compensate(*unpack_raw(burst(model, 0x04, 6)), cal)
    expected = 100_000.0 + 3.0 + 0.6 * 10.0
    assert abs(p.mean() - expected) < 4 * 0.5 / np.sqrt(2000)
    assert 0.45 < p.std() < 0.55
