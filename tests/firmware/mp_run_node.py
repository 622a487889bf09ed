# Runs under MicroPython on the virtual board: the node as main.py builds it, for a
# given number of ticks. Frames go to stdout; a JSON summary of the node's counters
# and the fault injector's goes to stderr.
import json
import sys

import app
import board as board_mod
import discovery
import vhw

ticks = int(sys.argv[1])
cfg = {"period_us": int(sys.argv[2]) if len(sys.argv) > 2 else 100000, "rows_per_frame": 10,
       "status_every_s": 10}
b = board_mod.load(cfg)
node = app.NodeApp(b, cfg, discovery.discover(b.i2c_buses()))
node.send_info()
for _ in range(ticks):
    node.tick()
node.flush()
node.send_status()
hw = vhw.hardware()
sys.stderr.write(json.dumps({
    "channels": len(node.drivers),
    "samples_taken": node.samples_taken,
    "errors": node.errors,
    "lost": sorted(node.lost),
    "injected_nacks": [f.nacks for f in hw.faulty],
    "absent_hits": [f.absent_hits for f in hw.faulty],
}) + "\n")
