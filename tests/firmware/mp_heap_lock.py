# Runs under MicroPython on the virtual board: builds the node as main.py does,
# warms it up, then runs the steady-state loop (sample, frame, CRC, send, poll
# commands, feed watchdog) with the heap locked. Any allocation raises MemoryError.
# Binary frames go to stdout; the verdict goes to stderr.
import gc
import sys

import app
import board as board_mod
import discovery
import micropython

warm = int(sys.argv[1])
locked = int(sys.argv[2])
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 10
period_us = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
cfg = {"period_us": period_us, "rows_per_frame": rows, "autostart": True}
b = board_mod.load(cfg)
node = app.NodeApp(b, cfg, discovery.discover(b.i2c_buses()))
node.send_info()
for _ in range(warm):
    node.tick()


def locked_ticks(node, n):
    # Inside a function: module-level code would allocate by itself (new globals).
    micropython.heap_lock()
    try:
        for _ in range(n):
            node.tick()
    finally:
        micropython.heap_unlock()


gc.collect()
frames0 = node.frames_sent
locked_ticks(node, locked)
sys.stderr.write("OK ticks=%d frames=%d samples=%d channels=%d errors=%d\n" % (
    locked, node.frames_sent - frames0, node.samples_taken, len(node.drivers), sum(node.errors)))
