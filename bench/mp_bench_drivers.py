# Runs under MicroPython on the virtual board (sim.json in the working folder):
# each sensor driver's own cost per sample. The driver is set up on the simulated
# chip, then its bus is swapped for one that does nothing, so what is timed is the
# driver's read_raw_into and not the chip model behind it.
#
#   mp_bench_drivers.py N [PREFIXES]     (N: most reads per timed batch, ~2 ms of them)
# PREFIXES (comma-separated, "" = this tree) names copies of the firmware whose
# modules carry that prefix (bench_firmware.py --against makes them): their drivers
# are timed in the same process, in alternating batches, so load on a shared machine
# hits both alike. Prints one JSON line per driver and tree: the best batch's us per
# sample, and heap bytes per sample.
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
BATCHES = 25
BATCH_US = 2000  # short batches: on a loaded machine most of them run unpreempted


class NullBus:
    """An I2C bus that answers at once: a conversion result that is never 0."""

    def readfrom_mem_into(self, addr, reg, buf):
        buf[0] = 1

    def writeto_mem(self, addr, reg, buf):
        pass


def batch(read, buf, n):
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for _ in range(n):
        read(buf)
    dt = time.ticks_diff(time.ticks_us(), t0)
    alloc = gc.mem_alloc() - a0
    gc.enable()
    return dt, alloc


def run(module, cls, bus, addr, n, prefixes):
    reads = []
    for p in prefixes:
        drv = getattr(__import__(p + module), cls)(machine.I2C(bus), addr)
        drv.i2c = NullBus()
        buf = bytearray(drv.RAW_SIZE)
        for _ in range(100):
            drv.read_raw_into(buf)  # warm-up: first calls of some built-ins allocate once
        reads.append((drv.read_raw_into, buf))
    dt, _ = batch(reads[0][0], reads[0][1], 1000)
    n = max(500, min(n, 1000 * BATCH_US // max(dt, 1)))  # the same batch size for every tree
    best = [None] * len(prefixes)
    alloc = [0] * len(prefixes)
    for k in range(BATCHES):
        order = range(len(prefixes)) if k % 2 == 0 else range(len(prefixes) - 1, -1, -1)
        for i in order:
            dt, a = batch(reads[i][0], reads[i][1], n)
            alloc[i] += a
            if best[i] is None or dt < best[i]:
                best[i] = dt
    for i, p in enumerate(prefixes):
        print(json.dumps({"driver": module, "tree": p, "samples": n, "us_per_sample": best[i] / n,
                          "alloc_bytes_per_sample": alloc[i] / (n * BATCHES)}))


n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
prefixes = sys.argv[2].split(",") if len(sys.argv) > 2 else [""]
for spec in DRIVERS:
    run(spec[0], spec[1], spec[2], spec[3], n, prefixes)
