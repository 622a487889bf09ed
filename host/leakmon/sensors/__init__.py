"""Which host compensation turns a chip's raw counts into SI units.

Each module in leakmon.sensors offers make_compensator(block) -> Compensator.
"""

from __future__ import annotations

import importlib

from leakmon.errors import ProtocolError
from leakmon.firmware import wire
from leakmon.sensors.base import Compensator

__all__ = ["Compensator", "compensator", "MODULES"]

MODULES = {
    wire.CHIP_BMP388: "bmp3",
    wire.CHIP_BMP390: "bmp3",
    wire.CHIP_BMP280: "bmp280",
    wire.CHIP_BME280: "bmp280",
    wire.CHIP_DPS310: "dps310",
    wire.CHIP_LPS22HB: "lps22",
    wire.CHIP_LPS22HH: "lps22",
    wire.CHIP_MS5611: "ms5611",
}


def compensator(chip: int, block: bytes) -> Compensator:
    """A vectorized compensation function for one sensor, from its calibration block."""
    name = MODULES.get(chip)
    try:
        if name is None:
            raise ImportError
        mod = importlib.import_module(f"leakmon.sensors.{name}")
    except ImportError:
        raise ProtocolError(f"no host compensation for chip code {chip}") from None
    try:
        result: Compensator = mod.make_compensator(block)
    except ValueError as e:
        raise ProtocolError(f"calibration of chip code {chip}: {e}") from e
    return result
