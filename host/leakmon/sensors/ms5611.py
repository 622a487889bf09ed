"""TE (MEAS) MS5611-01BA compensation, vectorized over numpy arrays.

First- and second-order compensation as in the MS5611-01BA datasheet
(DA5611-01BA01, "Pressure and temperature calculation" and "Second order
temperature compensation"): TEMP in 1/100 deg C, P in 1/100 mbar (= Pa).

    dT   = D2 - C5 * 2^8            TEMP = 2000 + dT * C6 / 2^23
    OFF  = C2 * 2^16 + C4 * dT / 2^7
    SENS = C1 * 2^15 + C3 * dT / 2^8
    TEMP < 2000:   T2 = dT^2 / 2^31, OFF2 = 5 (TEMP-2000)^2 / 2, SENS2 = 5 (TEMP-2000)^2 / 4
    TEMP < -1500:  OFF2 += 7 (TEMP+1500)^2, SENS2 += 11 (TEMP+1500)^2 / 2
    TEMP -= T2, OFF -= OFF2, SENS -= SENS2
    P    = (D1 * SENS / 2^21 - OFF) / 2^15

These are the MS5611's own constants; TE's generic C driver carries the MS5637's
(3 dT^2/2^33, 61/16, 29/16) and must not be copied. The datasheet evaluates the
formulas in integers, truncating at every division, which quantizes P to 1 Pa;
here they run in float64 without truncation (the integer path would waste a
sensor whose noise is ~1 Pa). Every expression is continuous across the 20 C and
-15 C branch points, so no step appears in a recording that crosses them.

Calibration block (12 bytes, as the node sends it): PROM words 1..6 (C1..C6)
read at commands 0xA2..0xAC, each big-endian unsigned 16-bit, in order. Raw
sample (6 bytes): D1 (pressure) then D2 (temperature), each unsigned 24-bit
big-endian as the ADC read returns it.

The virtual board's model (``leakmon.sim.vboard.ms5611_model``) performs the same
float operations in the same order, so the two agree bit for bit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon.sensors.base import Compensator, bind_compensator, raw_rows

CALIB_LEN = 12
CALIB_FMT = ">6H"
RAW_LEN = 6
ZERO_C_IN_K = 273.15


@dataclass(frozen=True)
class Ms5611Calibration:
    """PROM coefficients C1..C6 (datasheet names SENS_T1, OFF_T1, TCS, TCO, T_REF, TEMPSENS)."""

    c1: int
    c2: int
    c3: int
    c4: int
    c5: int
    c6: int


def parse_calibration(block: bytes) -> Ms5611Calibration:
    """C1..C6 from the 12-byte block: PROM words 1..6, big-endian u16 each."""
    if len(block) != CALIB_LEN:
        raise ValueError(
            f"MS5611 calibration block must be {CALIB_LEN} bytes "
            f"(PROM words C1..C6, big-endian u16), got {len(block)}"
        )
    return Ms5611Calibration(*struct.unpack(CALIB_FMT, bytes(block)))


def unpack_raw(raw: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(D1, D2) from (N, 6) uint8 rows (or a flat multiple of 6 bytes): u24 BE each."""
    w = raw_rows(raw, RAW_LEN, "MS5611")
    d1 = (w[:, 0] << 16) | (w[:, 1] << 8) | w[:, 2]
    d2 = (w[:, 3] << 16) | (w[:, 4] << 8) | w[:, 5]
    return d1, d2


def compensate(
    d1: npt.ArrayLike,
    d2: npt.ArrayLike,
    cal: Ms5611Calibration,
    *,
    second_order: bool = True,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(pressure_pa, temperature_k) in float64 from raw D1, D2 counts (broadcast)."""
    up = np.asarray(d1, dtype=np.float64)
    ut = np.asarray(d2, dtype=np.float64)

    dt = ut - cal.c5 * 256.0
    temp = 2000.0 + dt * float(cal.c6) / 8388608.0
    off = cal.c2 * 65536.0 + dt * float(cal.c4) / 128.0
    sens = cal.c1 * 32768.0 + dt * float(cal.c3) / 256.0

    if second_order:
        low = temp < 2000.0
        d = temp - 2000.0
        d_sq = d * d
        t2 = np.where(low, dt * dt / 2147483648.0, 0.0)
        off2 = np.where(low, 5.0 * d_sq / 2.0, 0.0)
        sens2 = np.where(low, 5.0 * d_sq / 4.0, 0.0)
        very_low = temp < -1500.0
        e = temp + 1500.0
        e_sq = e * e
        off2 = np.where(very_low, off2 + 7.0 * e_sq, off2)
        sens2 = np.where(very_low, sens2 + 11.0 * e_sq / 2.0, sens2)
        temp = temp - t2
        off = off - off2
        sens = sens - sens2

    pressure = (up * sens / 2097152.0 - off) / 32768.0
    temperature = temp / 100.0 + ZERO_C_IN_K
    return np.asarray(pressure, dtype=np.float64), np.asarray(temperature, dtype=np.float64)


def make_compensator(block: bytes) -> Compensator:
    """raw (n, 6) uint8 -> (pressure_pa, temperature_k), for leakmon.sensors."""
    return bind_compensator(unpack_raw, compensate, parse_calibration(block))
