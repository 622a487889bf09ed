"""BMP388 / BMP390 compensation, vectorized over numpy arrays.

Follows the floating-point path of Bosch's BMP3_SensorAPI (bmp3.c:
``parse_calib_data``, ``compensate_temperature``, ``compensate_pressure``),
with two deliberate differences:

* powers are taken in float64 (Bosch's ``pow_bmp3`` rounds them through a
  32-bit float, which moves the pressure by up to ~3e-4 Pa);
* results are not clamped to the sensor's rated range unless ``clamp=True``
  (a chamber leaking to vacuum goes below 30 kPa, and a flat line at the limit
  would hide that).

The virtual board's register model (``leakmon.sim.vboard.bmp3_model``) runs the
same sequence of float operations, so the two agree bit for bit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon.sensors.base import Compensator, raw_rows

CALIB_REG = 0x31
CALIB_LEN = 21
RAW_LEN = 6
CALIB_FMT = "<HHbhhbbHHbbhbb"

# Bosch's clamping limits (BMP3_MIN/MAX_TEMP_DOUBLE, BMP3_MIN/MAX_PRES_DOUBLE).
TEMP_MIN_C = -40.0
TEMP_MAX_C = 85.0
PRESSURE_MIN_PA = 30000.0
PRESSURE_MAX_PA = 125000.0

ZERO_C_IN_K = 273.15


@dataclass(frozen=True)
class Bmp3Calibration:
    """Calibration coefficients after Bosch's scaling by powers of two."""

    par_t1: float
    par_t2: float
    par_t3: float
    par_p1: float
    par_p2: float
    par_p3: float
    par_p4: float
    par_p5: float
    par_p6: float
    par_p7: float
    par_p8: float
    par_p9: float
    par_p10: float
    par_p11: float


def parse_calibration(block: bytes) -> Bmp3Calibration:
    """Coefficients from the 21-byte NVM block read at registers 0x31..0x45."""
    if len(block) != CALIB_LEN:
        raise ValueError(
            f"BMP3 calibration block must be {CALIB_LEN} bytes (registers 0x31..0x45), "
            f"got {len(block)}"
        )
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = struct.unpack(
        CALIB_FMT, bytes(block)
    )
    # Division by a power of two is exact in binary floating point.
    return Bmp3Calibration(
        par_t1=t1 / 2.0**-8,
        par_t2=t2 / 2.0**30,
        par_t3=t3 / 2.0**48,
        par_p1=(p1 - 16384) / 2.0**20,
        par_p2=(p2 - 16384) / 2.0**29,
        par_p3=p3 / 2.0**32,
        par_p4=p4 / 2.0**37,
        par_p5=p5 / 2.0**-3,
        par_p6=p6 / 2.0**6,
        par_p7=p7 / 2.0**8,
        par_p8=p8 / 2.0**15,
        par_p9=p9 / 2.0**48,
        par_p10=p10 / 2.0**48,
        par_p11=p11 / 2.0**65,
    )


def unpack_raw(raw: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(raw_pressure, raw_temperature) from data registers 0x04..0x09.

    ``raw`` is an (N, 6) uint8 array or a flat buffer of N*6 bytes: pressure then
    temperature, each 24-bit little-endian.
    """
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 2 and raw.shape[1] == RAW_LEN \
            and raw.flags.c_contiguous and len(raw):
        # What the stream core passes: the same integers, read as 32-bit words straight from
        # the rows (pressure: the word at byte 0, top byte masked; temperature: the word at
        # byte 2, shifted), so no word reaches past the last row and nothing is widened first.
        flat = raw.reshape(-1)
        words = np.ndarray((len(flat) - 3,), "<u4", buffer=flat, strides=(1,))
        return (words[0::6] & 0xFFFFFF).astype(np.int64), (words[2::6] >> 8).astype(np.int64)
    w = raw_rows(raw, RAW_LEN, "BMP3")
    pressure = w[:, 0] | (w[:, 1] << 8) | (w[:, 2] << 16)
    temperature = w[:, 3] | (w[:, 4] << 8) | (w[:, 5] << 16)
    return pressure, temperature


def compensate(
    raw_pressure: npt.ArrayLike,
    raw_temperature: npt.ArrayLike,
    cal: Bmp3Calibration,
    *,
    clamp: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(pressure_pa, temperature_k) in float64 from raw 24-bit counts.

    Inputs broadcast against each other. With ``clamp=True`` temperature and
    pressure are limited to the rated range exactly as bmp3.c does (the clamped
    temperature then feeds the pressure formula).
    """
    up = np.asarray(raw_pressure, dtype=np.float64)
    ut = np.asarray(raw_temperature, dtype=np.float64)

    # Temperature in deg C; Bosch calls it t_lin and feeds it to the pressure.
    d1 = ut - cal.par_t1
    d2 = d1 * cal.par_t2
    t_lin = d2 + (d1 * d1) * cal.par_t3
    if clamp:
        t_lin = np.clip(t_lin, TEMP_MIN_C, TEMP_MAX_C)

    # Same operation order as bmp3.c (pow_bmp3(x, 3) is x * (x * x)).
    t_lin2 = t_lin * t_lin
    t_lin3 = t_lin * t_lin2
    offset = cal.par_p5 + cal.par_p6 * t_lin + cal.par_p7 * t_lin2 + cal.par_p8 * t_lin3
    sensitivity = up * (cal.par_p1 + cal.par_p2 * t_lin + cal.par_p3 * t_lin2 + cal.par_p4 * t_lin3)
    up2 = up * up
    up3 = up * up2
    quad = up2 * (cal.par_p9 + cal.par_p10 * t_lin) + up3 * cal.par_p11
    pressure = offset + sensitivity + quad
    if clamp:
        pressure = np.clip(pressure, PRESSURE_MIN_PA, PRESSURE_MAX_PA)

    return np.asarray(pressure, dtype=np.float64), np.asarray(t_lin + ZERO_C_IN_K, dtype=np.float64)


class RowCompensator:
    """compensate(*unpack_raw(raw), cal) for (n, 6) uint8 rows, bit for bit, with less
    numpy overhead per call.

    A live 4 KB read holds some 480 samples, where numpy spends more time per call than
    on the arithmetic. Here the raw words are read straight from the rows, the
    coefficients are 0-d float64 arrays (numpy takes them faster than Python floats: no
    scalar conversion per call) and temporaries are updated in place. Every element goes
    through the very operations of ``compensate`` in its order (only the operands of +
    and * swap places, which IEEE 754 leaves exact), so the result is identical, not
    merely close (tests/host/test_steady_path.py checks it on random rows). Stacking the
    three polynomials into one (3, n) array was measured too: numpy's broadcasting made
    it slower than three 1-D passes.
    """

    def __init__(self, cal: Bmp3Calibration) -> None:
        self.cal = cal
        c = {k: np.array(v, np.float64) for k, v in vars(cal).items()}
        self.t1, self.t2, self.t3 = c["par_t1"], c["par_t2"], c["par_t3"]
        self.p = [np.array(np.nan)] + [c[f"par_p{k}"] for k in range(1, 12)]  # p[k] is par_pk
        self.kelvin = np.array(ZERO_C_IN_K)

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 2
                and raw.shape[1] == RAW_LEN and raw.flags.c_contiguous and len(raw)):
            return compensate(*unpack_raw(raw), self.cal)
        # The words at bytes 0 and 2 of each row: pressure is the low 24 bits of the first,
        # temperature the high 24 bits of the second (no word reaches past the last row).
        words = np.ndarray((len(raw), 2), "<u4", buffer=raw.reshape(-1), strides=(RAW_LEN, 2))
        return _rows(self, words[:, 0], words[:, 1])

    @staticmethod
    def bank(comps: list[RowCompensator]) -> BankCompensator:
        """One compensator for several channels whose raw samples share each row."""
        return BankCompensator(comps)


class BankCompensator:
    """RowCompensator of C channels in one pass: raw (n, C * RAW_LEN) uint8 rows, each
    holding channel 0's six bytes, then channel 1's... (a SAMPLES frame's row) -> pressure
    and temperature (n, C). Coefficients are (C,) arrays broadcast along the rows: every
    element goes through RowCompensator's operations, so each column is bit for bit what
    that channel's own compensator gives, for one call instead of C (a gateway's frames
    carry every channel of a node; tests/host/test_steady_path.py checks it)."""

    def __init__(self, comps: list[RowCompensator]) -> None:
        self.channels = len(comps)
        self.t1 = np.array([c.t1 for c in comps], np.float64)
        self.t2 = np.array([c.t2 for c in comps], np.float64)
        self.t3 = np.array([c.t3 for c in comps], np.float64)
        self.p = [np.array(np.nan)] + [np.array([c.p[k] for c in comps], np.float64) for k in range(1, 12)]
        self.kelvin = np.array(ZERO_C_IN_K)

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, c = len(raw), self.channels
        if not (raw.dtype == np.uint8 and raw.shape == (n, c * RAW_LEN)):
            raise ValueError(f"raw rows must be uint8 ({n}, {c * RAW_LEN}), got {raw.dtype} {raw.shape}")
        if n == 0:
            return np.empty((0, c)), np.empty((0, c))
        raw = np.ascontiguousarray(raw)  # (a gather of frames may not be)
        words = np.ndarray((n, c, 2), "<u4", buffer=raw.reshape(-1), strides=(c * RAW_LEN, RAW_LEN, 2))
        return _rows(self, words[..., 0], words[..., 1])


_LOW24 = np.array(0xFFFFFF, np.uint32)
_EIGHT = np.array(8, np.uint32)


def _rows(c: RowCompensator | BankCompensator, word_p: np.ndarray, word_t: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """compensate's float operations in its order on the raw words (pressure: low 24 bits
    of word_p; temperature: high 24 bits of word_t), coefficients 0-d or per column."""
    up = (word_p & _LOW24).astype(np.float64)
    ut = (word_t >> _EIGHT).astype(np.float64)
    p = c.p
    # Temperature (t_lin, deg C), as compensate: (ut - t1) * t2 + (d1 * d1) * t3.
    d1 = ut - c.t1
    sq = d1 * d1
    sq *= c.t3
    t_lin = d1 * c.t2
    t_lin += sq
    t_lin2 = t_lin * t_lin
    t_lin3 = t_lin * t_lin2
    offset = p[6] * t_lin
    offset += p[5]
    offset += p[7] * t_lin2
    offset += p[8] * t_lin3
    sens = p[2] * t_lin
    sens += p[1]
    sens += p[3] * t_lin2
    sens += p[4] * t_lin3
    sens *= up
    up2 = up * up
    up3 = up * up2
    quad = p[10] * t_lin
    quad += p[9]
    quad *= up2
    up3 *= p[11]
    quad += up3
    offset += sens
    offset += quad
    t_lin += c.kelvin
    return offset, t_lin


def make_compensator(block: bytes) -> Compensator:
    """raw (n, 6) uint8 -> (pressure_pa, temperature_k), for leakmon.sensors."""
    return RowCompensator(parse_calibration(block))
