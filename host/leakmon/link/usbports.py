"""A board found by its USB serial number, under whatever name it has now.

A re-plugged board often comes back as another /dev/ttyACMn; its USB serial number
stays. Two places on Linux say which device has which number, and both are asked:
- pyserial's `serial.tools.list_ports` (sysfs): the serial number exactly as USB gives it;
- udev's /dev/serial/by-id/ symlinks, named `usb-<vendor>_<model>_<serial>-if<NN>`
  (with `-port<N>` for a USB-UART bridge). The folder can be moved with the environment
  variable LEAKMON_SERIAL_BY_ID: the tests play udev there with virtual boards on ptys.

Finding is cheap (a directory listing and a sysfs scan) so a reconnect can ask every
100 ms; the node is then opened under the name found, and asked again at every reopen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import serial

from leakmon.errors import TransportError

BY_ID_ENV = "LEAKMON_SERIAL_BY_ID"
BY_ID_DEFAULT = "/dev/serial/by-id"


def by_id_dir() -> Path:
    return Path(os.environ.get(BY_ID_ENV) or BY_ID_DEFAULT)


def udev_name(serial_number: str) -> str:
    """The serial number as udev writes it in a by-id name: whitespace and characters
    outside [0-9A-Za-z#+-.:=@_] become '_' (udev's util_replace_chars)."""
    return re.sub(r"[^0-9A-Za-z#+\-.:=@_]", "_", serial_number.strip())


def _by_id(serial_number: str, folder: Path) -> str | None:
    pattern = re.compile(rf"^usb-.*_{re.escape(udev_name(serial_number))}-if\d+(-port\d+)?$")
    try:
        names = sorted(os.listdir(folder))
    except OSError:  # no folder: no USB serial device plugged in (udev removes it), or no udev
        return None
    for name in names:
        path = folder / name
        if pattern.match(name) and os.path.exists(path):  # exists(): a link to a gone device is stale
            return str(path)
    return None


def _sysfs(serial_number: str) -> str | None:
    try:
        from serial.tools import list_ports

        for p in list_ports.comports():
            if p.serial_number and p.serial_number == serial_number:
                return str(p.device)
    except (OSError, ImportError):
        pass
    return None


def find_usb(serial_number: str) -> str | None:
    """The device of the USB serial port with this serial number now, or None if absent.
    sysfs first (exact number); then the by-id links (what udev named it)."""
    return _sysfs(serial_number) or _by_id(serial_number, by_id_dir())


def usb_opener(serial_number: str, baudrate: int = 115200,
               found: Callable[[str], None] = lambda device: None) -> Callable[[], serial.SerialBase]:
    """Opens the board with this serial number wherever it is now (for leakmon.link.node.Node);
    raises TransportError while it is not plugged in. found(device) is told the name used."""

    def opener() -> serial.SerialBase:
        device = find_usb(serial_number)
        if device is None:
            raise TransportError(f"no USB serial port with serial number {serial_number} "
                                 f"(looked in sysfs and {by_id_dir()})")
        try:
            port = serial.serial_for_url(device, baudrate=baudrate, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise TransportError(f"cannot open {device} (USB serial {serial_number}): {e}") from e
        found(device)
        return port

    return opener
