# Runs under MicroPython: the node's steady-state costs with n fake sensors whose
# reads copy preallocated bytes (so only the firmware's own work is measured).
# Prints one JSON line: allocation per sample, time per tick and per frame, wire bytes.
#
#   mp_bench_firmware.py TICKS [PREFIXES]
# PREFIXES (comma-separated, "" = this tree): copies of the firmware whose modules
# carry that prefix (bench_firmware.py --against makes them) run in the same process,
# alternating, best of ROUNDS each, so load on a shared machine hits both alike.
import gc
import json
import sys
import time

import vclock

ROUNDS = 15  # with several trees: short runs, the best of 15 each


class FakeSensor:
    RAW_SIZE = 6
    chip = 2

    def __init__(self, k):
        self.calib = bytes(21)
        self.raw = bytearray((k, 1, 2, 3, 4, 5))
        self.i2c = None

    def read_raw_into(self, buf):
        self.raw[5] = (self.raw[5] + 1) & 0xFF  # a live sensor's low bits move
        buf[0:6] = self.raw


class NullLink:
    def __init__(self):
        self.nbytes = 0

    def write(self, buf):
        self.nbytes += len(buf)

    def read_byte(self):
        return -1


class BenchBoard:
    name = "bench"
    TICKS_BITS = 30

    def __init__(self):
        clock = vclock.VClock(0)
        self.ticks_us = clock.ticks_us
        self.sleep_us = clock.sleep_us
        self.ticks_diff = vclock.ticks_diff
        self.ticks_add = vclock.ticks_add
        self.link = NullLink()

    def feed_watchdog(self):
        pass


def run(app, n_sensors, ticks, rows):
    board = BenchBoard()
    cfg = {"period_us": 5000, "rows_per_frame": rows, "status_every_s": 10}
    node = app.NodeApp(board, cfg, [(0, 255, 0x40 + k, FakeSensor(k)) for k in range(n_sensors)])
    for _ in range(2 * rows):
        node.tick()  # warm-up: first calls of some built-ins allocate once
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    b0 = board.link.nbytes
    s0 = node.samples_taken
    t0 = time.ticks_us()
    for _ in range(ticks):
        node.tick()
    dt = time.ticks_diff(time.ticks_us(), t0)
    alloc = gc.mem_alloc() - a0
    samples = node.samples_taken - s0
    wire_bytes = board.link.nbytes - b0
    # Frame cost alone: seal (header + CRC) and send a full frame, repeatedly.
    f = node.groups[0].frame
    t1 = time.ticks_us()
    reps = 200
    for _ in range(reps):
        f.row = f.rows
        node.flush()
    frame_us = time.ticks_diff(time.ticks_us(), t1) / reps
    gc.enable()
    return {
        "sensors": n_sensors, "rows": f.rows, "ticks": ticks, "samples": samples,
        "alloc_bytes_per_sample": alloc / samples, "us_per_tick": dt / ticks,
        "us_per_sample": dt / samples, "us_per_frame": frame_us,
        "frame_bytes": len(f.views[f.rows]), "wire_bytes_per_sample": wire_bytes / samples,
    }


ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
prefixes = sys.argv[2].split(",") if len(sys.argv) > 2 else [""]
apps = [__import__(p + "app") for p in prefixes]
for n in (1, 4, 16):
    for rows in (10, 32):
        best = [None] * len(apps)
        for k in range(ROUNDS if len(apps) > 1 else 1):
            for i in (range(len(apps)) if k % 2 == 0 else range(len(apps) - 1, -1, -1)):
                r = run(apps[i], n, ticks, rows)
                if best[i] is None or r["us_per_sample"] < best[i]["us_per_sample"]:
                    best[i] = r
        for i, p in enumerate(prefixes):
            best[i]["tree"] = p
            print(json.dumps(best[i]))
