# `machine` for the virtual board: shadows the unix port's small built-in module
# (this folder comes first on MICROPYPATH), with I2C reaching the sensor models.
import sys

import vhw


class Pin:
    OUT = 1
    IN = 0
    PULL_UP = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._v = value or 0

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0

    def toggle(self):
        self._v ^= 1


class I2C:
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._bus = vhw.hardware().bus(id)

    def scan(self):
        return self._bus.scan()

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self._bus.read_into(addr, memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        buf = bytearray(nbytes)
        self._bus.read_into(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._bus.write(addr, memaddr, buf)

    def writeto(self, addr, buf, stop=True):
        self._bus.writeto(addr, buf)
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        self._bus.readfrom_into(addr, buf)


SoftI2C = I2C


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout_ms = timeout
        self.fed = 0

    def feed(self):
        self.fed += 1


def reset():
    """A hard reset: the supervisor (leakmon.sim.supervisor) boots the board again, main.py
    and all, when the interpreter exits after saying so on its status fifo."""
    import os
    import time

    path = os.getenv("LEAKMON_VBOARD_STATUS")
    if path:
        try:
            with open(path, "a") as f:
                f.write("reset\n")
            for _ in range(100):  # the supervisor restarts us: a reset does not return
                time.sleep(0.1)
        except OSError:
            pass
    sys.exit(0)  # no supervisor (a bare unix port): just stop


def soft_reset():
    sys.exit(0)


def unique_id():
    return b"VBOARD01"


def freq():
    return 125000000
