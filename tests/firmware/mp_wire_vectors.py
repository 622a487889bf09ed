# Runs under MicroPython: rebuilds every golden vector with firmware/wire.py and
# prints one JSON line per vector for the pytest side to compare byte for byte.
# Also drives the node's own paths: seal() into a preallocated buffer, the
# byte-at-a-time FrameReader on every frame, and for commands the stuffed bytes
# (command_frame) through the node's CommandReader.feed_wire.
import json
import sys
from binascii import hexlify, unhexlify

import wire


def to_bytes_args(a):
    if isinstance(a, dict):
        return unhexlify(a["hex"])
    if isinstance(a, list):
        return [to_bytes_args(x) for x in a]
    return a


def build(builder, args):
    if builder is None:
        return to_bytes_args(args)
    return getattr(wire, builder)(*to_bytes_args(args))


with open(sys.argv[1]) as f:
    vectors = json.load(f)["vectors"]

reader = wire.FrameReader(256)
commands = wire.CommandReader(256)
for v in vectors:
    payload = build(v["builder"], v["args"])
    framed = wire.frame(v["type"], v["seq"], payload)
    # The node's zero-copy path: payload written in place, then sealed.
    buf = bytearray(len(payload) + wire.OVERHEAD + 16)
    buf[wire.HEADER_SIZE : wire.HEADER_SIZE + len(payload)] = payload
    n = wire.seal(buf, v["type"], v["seq"], len(payload))
    sealed = bytes(buf[:n])
    got = None
    for b in unhexlify(v["frame"]):
        if reader.feed(b):
            got = [reader.msg_type, reader.seq, hexlify(bytes(reader.buf[wire.HEADER_SIZE : wire.HEADER_SIZE + reader.payload_len])).decode()]
    out = {"name": v["name"], "frame": hexlify(framed).decode(), "sealed": hexlify(sealed).decode(), "read": got}
    if "sent" in v:
        out["sent"] = hexlify(wire.command_frame(v["type"], v["seq"], payload)).decode()
        out["read_wire"] = None
        for b in unhexlify(v["sent"]):
            if commands.feed_wire(b):
                out["read_wire"] = [commands.msg_type, commands.seq, hexlify(
                    bytes(commands.buf[wire.HEADER_SIZE : wire.HEADER_SIZE + commands.payload_len])).decode()]
    print(json.dumps(out))
