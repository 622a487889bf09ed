# Runs under MicroPython on the virtual board: the node with firmware/mqttlink.py attached
# to a real broker. tick() (the sampling path, with the tee copying every frame into its
# ring) runs under heap_lock; service() (the publishes) runs between ticks, unlocked, and
# what it allocates is measured with the collector off. Verdict on stderr.
import gc
import sys

import app
import board as board_mod
import discovery
import micropython
import mqttlink

port = int(sys.argv[1])
ticks = int(sys.argv[2])
cfg = {"period_us": 100000, "rows_per_frame": 1, "autostart": True,
       "mqtt": {"host": "127.0.0.1", "port": port, "user": sys.argv[3], "password_file": "mqtt.pw"}}
b = board_mod.load(cfg)
net = mqttlink.attach(b, cfg, app.FW_VERSION)
node = app.NodeApp(b, cfg, discovery.discover(b.i2c_buses()))
node.net = net
node.send_info()
for _ in range(50):
    node.tick()
    net.service(node)


def locked_tick(node):
    micropython.heap_lock()
    try:
        node.tick()
    finally:
        micropython.heap_unlock()


gc.collect()
gc.disable()
pub0 = net.published
alloc = 0
for _ in range(ticks):
    locked_tick(node)
    if gc.mem_free() < 64 * 1024:
        gc.collect()
    a = gc.mem_alloc()
    net.service(node)
    alloc += gc.mem_alloc() - a
gc.enable()
n = net.published - pub0
sys.stderr.write("OK ticks=%d published=%d dropped=%d connects=%d alloc_per_frame=%d\n" % (
    ticks, n, net.dropped, net.connects, alloc // max(n, 1)))
