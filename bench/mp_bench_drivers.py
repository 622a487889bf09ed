# Runs under MicroPython on the virtual board (sim.json in the working folder):
# each sensor driver's own cost per sample. The driver is set up on the simulated
# chip, then its bus is swapped for one that does nothing, so what is timed is the
# driver's read_raw_into and not the chip model behind it.
# Prints one JSON line per driver: us per sample and heap bytes per sample.
import gc
import json
import sys
import time

import machine

DRIVERS = (
    ("bmp3xx", "BMP3XX", 0, 0x77),
    ("bmp280", "BMP280", 0, 0x76),
    ("dps310", "DPS310", 1, 0x77),
    ("lps22", "LPS22", 1, 0x5D),
    ("ms5611", "MS5611", 2, 0x77),
)


class NullBus:
    """An I2C bus that answers at once: a conversion result that is never 0."""

    def readfrom_mem_into(self, addr, reg, buf):
        buf[0] = 1

    def writeto_mem(self, addr, reg, buf):
        pass


def run(module, cls, bus, addr, n):
    drv = getattr(__import__(module), cls)(machine.I2C(bus), addr)
    drv.i2c = NullBus()
    buf = bytearray(drv.RAW_SIZE)
    read = drv.read_raw_into
    for _ in range(100):
        read(buf)  # warm-up: first calls of some built-ins allocate once
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for _ in range(n):
        read(buf)
    dt = time.ticks_diff(time.ticks_us(), t0)
    alloc = gc.mem_alloc() - a0
    gc.enable()
    return {"driver": module, "samples": n, "us_per_sample": dt / n, "alloc_bytes_per_sample": alloc / n}


n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
for spec in DRIVERS:
    print(json.dumps(run(spec[0], spec[1], spec[2], spec[3], n)))
