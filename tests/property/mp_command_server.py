# Runs under MicroPython on the virtual board (sim.json in the working folder):
# serves the command-parser property tests, one case per line, so that many
# hypothesis examples share one interpreter.
#
# In:  one line per case, "<extra ticks> <hex of the bytes the host sends>".
# Out: one line per case, "OK <ticks> <resets> <hex of every byte the node wrote>"
#      or "CRASH <ticks> <repr of the exception that escaped Node.tick()>".
# Each case gets a fresh app.NodeApp (seq 0, empty command parser) on the same board
# and sensors, behind a fake link that hands the node the case's bytes.
import sys
from binascii import hexlify, unhexlify

import app
import board as board_mod


class FakeLink:
    """The node's link, as board_sim's StdioLink: write(buf), read_byte() -> int or -1."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.out = bytearray()

    def write(self, buf):
        self.out += buf

    def read_byte(self):
        if self.pos >= len(self.data):
            return -1
        self.pos += 1
        return self.data[self.pos - 1]


cfg = {"period_us": 10000, "rows_per_frame": 2, "status_every_s": 10, "autostart": True}
board = board_mod.load(cfg)
discover = getattr(app, "discover", None) or __import__("discovery").discover  # moved in the refactor
sensors = discover(board.i2c_buses())
resets = [0]


def reset():
    resets[0] += 1  # the RESET command would end the process here: count it instead


board.reset = reset


def run_case(extra, data):
    link = FakeLink(data)
    board.link = link
    resets[0] = 0
    node = app.NodeApp(board, cfg, sensors)
    ticks = 0
    try:
        # app.MAX_POLL_BYTES per tick: the input is consumed in a bounded number of ticks.
        limit = len(data) // app.MAX_POLL_BYTES + 2
        while link.pos < len(data) and ticks < limit:
            node.tick()
            ticks += 1
        for _ in range(extra):
            node.tick()
            ticks += 1
    except Exception as e:  # noqa: BLE001 - what escapes tick() is the finding
        return "CRASH %d %s" % (ticks, repr(e))
    if link.pos < len(data):
        return "CRASH %d input not consumed: %d of %d bytes" % (ticks, link.pos, len(data))
    return "OK %d %d %s" % (ticks, resets[0], hexlify(link.out).decode() or "-")


sys.stdout.write("READY %d\n" % len(sensors))
while True:
    line = sys.stdin.readline()
    if not line:
        break
    extra, hexdata = line.split()
    sys.stdout.write(run_case(int(extra), unhexlify(hexdata if hexdata != "-" else "")) + "\n")
