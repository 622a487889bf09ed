"""Board profiles (hardware/boards/*.toml): what `leakmon flash` and `leakmon ports`
know of a board: its platform, USB ids, LED and I2C pin map. The firmware keeps its
own copy of the pins (firmware/board_*.py); tests/hardware checks they agree."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field

from leakmon.config.loader import Count, Model, fail, read_toml, validate
from leakmon.config.shipped import hardware_dir

UsbId = Annotated[int, Field(gt=0, lt=0x10000)]


class Usb(Model):
    vid: UsbId
    pid: UsbId | None = None  # None: any product of the vendor
    what: str = ""


class I2cBus(Model):
    bus: Count
    sda: int | str  # a GPIO number or a pin name
    scl: int | str
    freq_hz: Annotated[int, Field(gt=0, le=3_400_000)]
    fixed_pins: bool = False  # hardware I2C: the bus id fixes the pins; sda/scl name them


class BoardFile(Model):
    name: str
    platform: str  # sys.platform on the board
    mcu: str = ""
    profile: str  # the firmware module, firmware/<profile>.py
    led: int | str
    watchdog_timeout_ms: Annotated[int, Field(gt=0)]
    usb: list[Usb] = []
    i2c: list[I2cBus]


def load_board(path: str | Path) -> BoardFile:
    """One board file, with its cross-references checked."""
    source = str(path)
    b = validate(BoardFile, read_toml(path, "board file"), source)
    if not (resources.files("leakmon.firmware") / f"{b.profile}.py").is_file():
        raise fail(source, "(top level)", f"'profile' = {b.profile!r} names no firmware module "
                                          f"(firmware/{b.profile}.py)")
    seen: set[int] = set()
    for k, bus in enumerate(b.i2c):
        if bus.bus in seen:
            raise fail(source, f"[[i2c]] #{k + 1}", f"'bus' {bus.bus} is described twice")
        seen.add(bus.bus)
    return b


def load_boards(root: Path | None = None) -> dict[str, BoardFile]:
    """Every board file in root (default: the shipped hardware/boards/), by name."""
    out: dict[str, BoardFile] = {}
    for f in sorted((root or hardware_dir("boards")).glob("*.toml")):
        b = load_board(f)
        if b.name in out:
            raise fail(str(f), "(top level)", f"'name' {b.name!r} is also another board file's")
        out[b.name] = b
    return out
