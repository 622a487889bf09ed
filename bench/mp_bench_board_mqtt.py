# Runs under MicroPython on the virtual board (bench/bench_board_mqtt.py): the node with
# firmware/mqttlink.py on a real broker, one frame per tick, for N ticks; how long the
# publishes took and what each allocated. Mode "piecewise" sends each of umqtt's writes
# as it comes (what umqtt.simple does by itself), "gathered" is mqttlink's one send.
import gc
import sys
import time

import app
import board as board_mod
import discovery
import mqttlink

port, ticks, user, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]


class Piecewise(mqttlink._Socket):
    def write(self, buf, n=-1):
        return self.s.write(buf) if n < 0 else self.s.write(buf, n)


if mode == "piecewise":
    mqttlink._Socket = Piecewise  # the module's socket factory makes these from now on
cfg = {"period_us": 100000, "rows_per_frame": 1, "autostart": True,
       "mqtt": {"host": "127.0.0.1", "port": port, "user": user, "password_file": "mqtt.pw", "queue": 64}}
b = board_mod.load(cfg)
net = mqttlink.attach(b, cfg, app.FW_VERSION)
node = app.NodeApp(b, cfg, discovery.discover(b.i2c_buses()))
node.net = net
node.send_info()
for _ in range(20):
    node.tick()
    net.service(node)
gc.collect()
gc.disable()
pub0 = net.published
alloc = 0
spent_us = 0
for _ in range(ticks):
    node.tick()
    if gc.mem_free() < 64 * 1024:
        gc.collect()
    a = gc.mem_alloc()
    t0 = time.ticks_us()
    net.service(node)
    spent_us += time.ticks_diff(time.ticks_us(), t0)
    alloc += gc.mem_alloc() - a
gc.enable()
n = net.published - pub0
sys.stderr.write("published=%d service_us=%d alloc_per_frame=%d dropped=%d\n" % (n, spent_us, alloc // max(n, 1),
                                                                                 net.dropped))
