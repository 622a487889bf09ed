"""firmware/i2cdev.py, the drivers' shared base, under the real MicroPython unix port:
the id check refuses before any write, every wait is bounded and tolerates NACKs."""

from __future__ import annotations

from typing import Any

from drivers_util import compile_with_mpy_cross, tagged

SCRIPT = """
import time, i2cdev

class Bus:
    # One register file; reads of reg 0x10 NACK `nacks` times, and its value is `ready`.
    def __init__(self, ready, nacks=0):
        self.regs = bytearray(256)
        self.regs[0x0D] = 0x10
        self.regs[0x10] = ready
        self.nacks = nacks
        self.writes = []
        self.reads = 0
    def readfrom_mem_into(self, addr, reg, buf):
        self.reads += 1
        if reg == 0x10 and self.nacks:
            self.nacks -= 1
            raise OSError(5)
        for i in range(len(buf)):
            buf[i] = self.regs[reg + i]
    def writeto_mem(self, addr, reg, buf):
        self.writes.append((reg, bytes(buf)))
        if reg != 0x20:  # 0x20 ignores writes: a setting the chip does not take
            self.regs[reg] = buf[0]

def attempt(name, fn):
    t0 = time.ticks_ms()
    try:
        fn()
        print(name, "OK", time.ticks_diff(time.ticks_ms(), t0))
    except OSError as e:
        print(name, "ERR", time.ticks_diff(time.ticks_ms(), t0), e)

d = i2cdev.I2CDevice(Bus(0x80, nacks=2), 0x77)
attempt("ID", lambda: d._identify(0x0D, (0x10,), (5,), "DPS310", "product id"))
print("CHIP", d.chip, d.chip_id)
wrong = i2cdev.I2CDevice(Bus(0), 0x76)
attempt("WRONG", lambda: wrong._identify(0x0D, (0x58, 0x60), (3, 4), "BMP280/BME280"))
print("WRONG_WRITES", len(wrong.i2c.writes))
attempt("NACKED_THEN_READY", lambda: d._wait_bits(0x10, 0xC0, 0x80, 5, 1, "not ready, waited"))
never = i2cdev.I2CDevice(Bus(0x00), 0x77)
attempt("NEVER", lambda: never._wait_bits(0x10, 0x80, 0x80, 20, 2, "not ready, waited"))
print("NEVER_READS", never.i2c.reads)
gone = i2cdev.I2CDevice(Bus(0x80, nacks=10**6), 0x77)
attempt("GONE", lambda: gone._soft_reset(0x0C, 0x89, 0x10, 0x80, 0x80, 7, 1))
print("GONE_WRITES", gone.i2c.writes)
attempt("CHECKED", lambda: d._write_checked(0x11, 0x33, "CTRL"))
attempt("NOT_TAKEN", lambda: d._write_checked(0x20, 0x33, "CTRL"))
"""


def test_identify_waits_and_checked_writes(run_mp: Any, tmp_path: Any) -> None:
    (tmp_path / "t.py").write_text(SCRIPT)
    r = run_mp(tmp_path / "t.py")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert tagged(lines, "ID")[0].startswith("OK") and tagged(lines, "CHIP") == ["5 16"]
    err = tagged(lines, "WRONG")[0]
    assert "no BMP280/BME280 at 0x76: chip id 0x10 (want 0x58 or 0x60)" in err
    assert tagged(lines, "WRONG_WRITES") == ["0"]  # refused before any write
    assert tagged(lines, "NACKED_THEN_READY")[0].startswith("OK")
    ok, ms, *msg = tagged(lines, "NEVER")[0].split(" ", 2)
    assert ok == "ERR" and 40 <= int(ms) < 1000 and "I2CDevice at 0x77: not ready, waited 40 ms" in msg[0]
    assert tagged(lines, "NEVER_READS") == ["20"]  # bounded: exactly `tries` reads
    assert tagged(lines, "GONE")[0].startswith("ERR") and "after soft reset" in tagged(lines, "GONE")[0]
    assert tagged(lines, "GONE_WRITES") == ["[(12, b'\\x89')]"]
    assert tagged(lines, "CHECKED")[0].startswith("OK")
    assert "CTRL reads 0x00 after writing 0x33" in tagged(lines, "NOT_TAKEN")[0]


def test_compiles_with_mpy_cross(tmp_path: Any) -> None:
    compile_with_mpy_cross(tmp_path, "i2cdev")
