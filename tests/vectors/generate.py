"""Writes wire_v1.json: the golden vectors of protocol v1.

Run only when the wire format changes on purpose (and bump the version then):
    python tests/vectors/generate.py
Each vector names a builder in firmware/wire.py and its arguments; bytes
arguments are {"hex": ...}. Both the host (CPython) and the node (MicroPython)
must rebuild every frame byte for byte. Commands (names "cmd-...") also carry
"sent": the frame stuffed as the host puts it on the wire (protocol v1.1).
"""

import json
import struct
from pathlib import Path

from leakmon.firmware import wire

CALIB = "1d6bbb491df6a2ff0f0c0c27053d1df6ff070d00f35e"[:42]
SPECS = [
    ("hello", wire.T_HELLO, 0, "hello_payload",
     ["0.1.0", "pico", 30, 100000, 10, [[0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x77, 6]]]),
    ("hello-two-sensors", wire.T_HELLO, 1, "hello_payload",
     ["0.1.0", "sim", 30, 5000, 32, [[0, wire.CHIP_BMP388, 0, wire.NO_MUX, 0x76, 6], [1, wire.CHIP_BMP390, 1, 3, 0x77, 6]]]),
    ("calib", wire.T_CALIB, 2, "calib_payload", [0, wire.CHIP_BMP390, {"hex": CALIB}]),
    ("samples-near-wrap", wire.T_SAMPLES, 3, "samples_payload",
     [(1 << 30) - 150000, 100000, [[0, 6]],
      [{"hex": "a0b1c2d3e4f5"}, {"hex": "a5a54c4c0000"}, {"hex": "ffffff000000"}]]),
    ("samples-two-channels", wire.T_SAMPLES, 4, "samples_payload",
     [12345, 5000, [[0, 6], [1, 6]], [{"hex": "0102030405060708090a0b0c"}, {"hex": "a54c01030000a54c01030000"}]]),
    ("event", wire.T_EVENT, 5, "event_payload", [123456, wire.EV_SENSOR_ERROR, 0, -5, "NACK"]),
    ("ack-refused", wire.T_ACK, 6, "ack_payload", [7, wire.C_SET_PERIOD, wire.ACK_BAD_VALUE, "period_us 2000..60000000"]),
    ("status", wire.T_STATUS, 65535, "status_payload", [3600, 36000, 3600, 1, 2, 150000]),
    ("cmd-ping", wire.C_PING, 0, None, {"hex": ""}),
    ("cmd-set-period", wire.C_SET_PERIOD, 9, None, {"hex": struct.pack("<I", 50000).hex()}),
    ("time", wire.T_TIME, 10, "time_payload", [(1 << 30) - 1, 1764000000123456]),
    ("cmd-set-time", wire.C_SET_TIME, 11, None, {"hex": struct.pack("<Q", 1764000000123456).hex()}),
    ("cmd-set-oversampling", wire.C_SET_OVERSAMPLING, 12, None, {"hex": "000401"}),
    ("cmd-set-rate", wire.C_SET_RATE, 13, None, {"hex": "01" + struct.pack("<I", 400000).hex()}),
    # Every byte that is stuffed: 03 and 7D in seq, 04 in the payload.
    ("cmd-calib-stuffed", wire.C_CALIB, 0x7D03, None, {"hex": "04"}),
    ("cmd-set-period-stuffed", wire.C_SET_PERIOD, 0x0304, None, {"hex": struct.pack("<I", 0x037D04).hex()}),
    ("cmd-repl", wire.C_REPL, 0, None, {"hex": ""}),
]


def to_bytes_args(args):
    if isinstance(args, dict):
        return bytes.fromhex(args["hex"])
    if isinstance(args, list):
        return [to_bytes_args(a) for a in args]
    return args


def build(builder, args):
    if builder is None:
        return to_bytes_args(args)
    return getattr(wire, builder)(*to_bytes_args(args))


def main():
    out = []
    for name, t, seq, builder, args in SPECS:
        payload = build(builder, args)
        v = {"name": name, "type": t, "seq": seq, "builder": builder, "args": args,
             "frame": wire.frame(t, seq, payload).hex()}
        if name.startswith("cmd-"):
            v["sent"] = wire.command_frame(t, seq, payload).hex()
        out.append(v)
    path = Path(__file__).with_name("wire_v1.json")
    doc = {"protocol": wire.VERSION, "minor": wire.VERSION_MINOR, "vectors": out}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
