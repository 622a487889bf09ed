"""Which host compensation turns a chip's raw counts into SI units.

Each module in leakmon.sensors offers make_compensator(block) -> Compensator and
RAW_LEN, the bytes of one raw sample. The stream core reaches compensation only
through this registry: compensator() for a channel's CALIB, raw_size() to check
that a SAMPLES frame carries what the chip gives before handing it over.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Sequence
from functools import cache
from types import ModuleType

from leakmon.errors import ProtocolError
from leakmon.firmware import wire
from leakmon.sensors.base import Compensator

__all__ = ["MODULES", "Compensator", "bank", "compensator", "raw_size"]

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


@cache
def _module(chip: int) -> ModuleType | None:
    name = MODULES.get(chip)
    if name is None:
        return None
    try:
        return importlib.import_module(f"leakmon.sensors.{name}")
    except ImportError:
        return None


def raw_size(chip: int) -> int | None:
    """Bytes of one raw sample of the chip; None if the host has no compensation for it."""
    mod = _module(chip)
    return None if mod is None else int(mod.RAW_LEN)


def compensator(chip: int, block: bytes) -> Compensator:
    """A vectorized compensation function for one sensor, from its calibration block.

    It takes (n, raw_size(chip)) uint8 rows; ProtocolError for an unknown chip or a
    calibration block the chip's module refuses.
    """
    mod = _module(chip)
    if mod is None:
        raise ProtocolError(f"no host compensation for chip code {chip}")
    try:
        result: Compensator = mod.make_compensator(block)
    except (ValueError, ArithmeticError, struct.error) as e:
        raise ProtocolError(f"calibration of chip code {chip}: {e}") from e
    return result


def bank(comps: Sequence[Compensator]) -> Compensator | None:
    """One compensator for channels whose raw samples share each row of a frame (raw
    (n, sum of their sizes) -> pressure and temperature (n, channels)), when their chip's
    module offers one (its compensator type has a `bank`); None otherwise: then each
    channel goes through its own."""
    kinds = {type(c) for c in comps}
    make = getattr(next(iter(kinds)), "bank", None) if len(kinds) == 1 and len(comps) > 1 else None
    return None if make is None else make(list(comps))
