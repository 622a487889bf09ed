"""Property tests of the node's command handling, under real MicroPython (hypothesis).

Arbitrary byte strings (garbage, command frames of any type, payload and length,
stuffed as a v1.1 host sends them or not, cut-short and bit-flipped on the wire,
frames of another protocol version) go to the firmware's app.NodeApp through a fake
link on the virtual board (mp_command_server.py, one MicroPython process for every
example). What the node writes back is decoded here and checked against two oracles:

- the node's parser (wire.CommandReader), modelled below from PROTOCOL.md: the
  bytes unstuffed, then the host decoder's rule; the node must answer exactly the
  frames it accepts, each with one ACK carrying the command's seq and type, in
  order, with the status PROTOCOL.md's command table gives and a reason whenever it
  refuses;
- what was sent: whole command frames separated by garbage that holds no sync byte
  are all answered, whatever their content.

And the node never lets an exception out of tick(), never reports one (EVENT 6),
and keeps sampling unless a command stopped it.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from leakmon import wire
from leakmon.sim import scenario
from leakmon.wire import messages as protocol
from leakmon.wire.framing import Frame, FrameDecoder

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SERVER = HERE / "mp_command_server.py"
NODE_MAX_PAYLOAD = 64  # app.NodeApp's CommandReader(64)
MIN_PERIOD_US, MAX_PERIOD_US = 2000, 60_000_000
EXTRA_TICKS = 5  # after the input: rows_per_frame is 2 in the server, so >= 2 SAMPLES frames
COMMANDS = sorted(v for k, v in vars(wire).items() if k.startswith("C_"))
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the MicroPython side ---------------------------------------------------------------
@dataclass
class Reply:
    crashed: str | None
    ticks: int
    resets: int
    out: bytes


class CommandServer:
    """mp_command_server.py on the virtual board; one case per request, with a deadline."""

    def __init__(self, micropython: str, cwd: Path) -> None:
        env = dict(os.environ, MICROPYPATH=f"{ROOT / 'host' / 'leakmon' / 'sim' / 'vboard'}:{ROOT / 'firmware'}::.frozen")
        self.proc = subprocess.Popen([micropython, str(SERVER)], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = self._line(timeout_s=20).split()
        assert ready[:1] == ["READY"], ready
        self.channels = int(ready[1])

    def _line(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise AssertionError(f"MicroPython died or hung ({timeout_s:g} s): {err[-800:]}")
        return line.decode()

    def run(self, data: bytes, extra_ticks: int = EXTRA_TICKS) -> Reply:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{extra_ticks} {data.hex() or '-'}\n".encode())
        self.proc.stdin.flush()
        word, ticks, rest = (self._line(timeout_s=10).rstrip("\n").split(" ", 2) + [""])[:3]
        if word == "CRASH":
            return Reply(rest, int(ticks), 0, b"")
        resets, hexout = rest.split(" ")
        return Reply(None, int(ticks), int(resets), b"" if hexout == "-" else bytes.fromhex(hexout))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(micropython: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommandServer]:
    d = tmp_path_factory.mktemp("board")
    (d / "sim.json").write_text(json.dumps(scenario.load("steady_leak").sim_config(seed=4, speed=0)))
    s = CommandServer(micropython, d)
    yield s
    s.close()


# -- oracles ------------------------------------------------------------------------------
STUFFED = (0x03, 0x04, 0x7D)


def stuff(frame: bytes) -> bytes:
    """PROTOCOL.md v1.1, command bytes on the wire: 03, 04, 7D go as 7D, byte ^ 0x20."""
    return b"".join(bytes((0x7D, b ^ 0x20)) if b in STUFFED else bytes((b,)) for b in frame)


def unstuff(data: bytes) -> bytes:
    """The node's side of it: 7D 23/24/5D -> 03/04/7D; a 7D before anything else is dropped."""
    out = bytearray()
    esc = False
    for b in data:
        if esc:
            esc = False
            if b in (0x23, 0x24, 0x5D):
                out.append(b ^ 0x20)
                continue
        if b == 0x7D:
            esc = True
        else:
            out.append(b)
    return bytes(out)


def node_parser(data: bytes, max_payload: int = NODE_MAX_PAYLOAD) -> list[Frame]:
    """The frames the node's wire.CommandReader accepts, per its docstring: the bytes
    unstuffed, then the host decoder's rule (a bad CRC or oversize length is given up one
    byte past its sync, so the bytes behind it are scanned again; another version is
    skipped whole), with its payload cap, and no end-of-input flush (a node keeps
    waiting for the rest of a frame)."""
    return [Frame(f.msg_type, f.seq, f.payload) for f in FrameDecoder(max_payload).feed(unstuff(data))]


def expected_status(cmd: int, p: bytes, nch: int) -> int | None:
    """PROTOCOL.md's command table; None where the node's driver decides (or a newer command)."""
    n = len(p)
    if cmd in (wire.C_PING, wire.C_INFO, wire.C_START, wire.C_STOP, wire.C_REPL, wire.C_RESET):
        return wire.ACK_BAD_LENGTH if n else wire.ACK_OK
    if cmd == wire.C_SET_PERIOD:
        if n != 4:
            return wire.ACK_BAD_LENGTH
        return wire.ACK_OK if MIN_PERIOD_US <= struct.unpack("<I", p)[0] <= MAX_PERIOD_US else wire.ACK_BAD_VALUE
    if cmd == wire.C_CALIB:
        if n not in (0, 1):
            return wire.ACK_BAD_LENGTH
        return wire.ACK_BAD_VALUE if n and p[0] >= nch else wire.ACK_OK
    if cmd == wire.C_SET_TIME:
        return wire.ACK_OK if n == 8 else wire.ACK_BAD_LENGTH
    if cmd == wire.C_SET_OVERSAMPLING:
        if n != 3:
            return wire.ACK_BAD_LENGTH
        if p[0] >= nch or p[1] > 5 or p[2] > 5:  # BMP3xx codes 0..5 on steady_leak's BMP390
            return wire.ACK_BAD_VALUE
        return None  # in range: the chip may still refuse (a slower output rate, ERR_REG)
    if cmd == getattr(wire, "C_SET_RATE", None):
        if n != 5:
            return wire.ACK_BAD_LENGTH
        return wire.ACK_BAD_VALUE if p[0] >= nch or struct.unpack_from("<I", p, 1)[0] == 0 else None
    if cmd in COMMANDS:
        return None
    return wire.ACK_UNKNOWN_COMMAND


def decoded(reply: Reply) -> list[protocol.Message]:
    """Everything the node wrote: whole frames only, seq counting up from 0 without a gap."""
    d = FrameDecoder()
    frames = d.feed(reply.out) + d.finish()
    assert d.stats.bytes_skipped == 0 and d.stats.crc_errors == 0, d.stats
    assert [f.seq for f in frames] == list(range(len(frames)))
    return [protocol.parse(f) for f in frames]


def check_reply(server: CommandServer, data: bytes, accepted: list[Frame]) -> None:
    reply = server.run(data)
    assert reply.crashed is None, f"node raised out of tick(): {reply.crashed}"
    msgs = decoded(reply)
    assert not [m for m in msgs if isinstance(m, protocol.Event) and m.code == wire.EV_EXCEPTION]
    at = [k for k, m in enumerate(msgs) if isinstance(m, protocol.Ack)]  # by position: equal ACKs repeat
    acks = [m for m in msgs if isinstance(m, protocol.Ack)]
    assert [(a.cmd_seq, a.cmd_type) for a in acks] == [(f.seq, f.msg_type) for f in accepted]
    running, rate_changed, resets = True, False, 0
    for i, (a, f) in enumerate(zip(acks, accepted)):
        want = expected_status(f.msg_type, f.payload, server.channels)
        assert a.status == want or (want is None and a.status in (wire.ACK_OK, wire.ACK_BAD_VALUE)), (a, f)
        assert bool(a.text) == (a.status != wire.ACK_OK), f"refusal without a reason (or ok with one): {a}"
        if not a.ok:
            continue
        resets += f.msg_type == wire.C_RESET
        rate_changed |= f.msg_type == getattr(wire, "C_SET_RATE", -1)
        if f.msg_type in (wire.C_STOP, wire.C_REPL):
            running = False
        elif f.msg_type == wire.C_START:
            running = True
        if f.msg_type == wire.C_SET_TIME:  # TIME follows its ACK, carrying the host time
            nxt = msgs[at[i] + 1]
            assert isinstance(nxt, protocol.TimeRef) and nxt.host_time_us == struct.unpack("<Q", f.payload)[0]
        if f.msg_type == wire.C_INFO:  # HELLO (and CALIBs) go out before its ACK
            since = msgs[at[i - 1] + 1 if i else 0 : at[i]]
            hellos = [m for m in since if isinstance(m, protocol.Hello)]
            assert len(hellos) == 1 and len(hellos[0].channels) == server.channels
    assert reply.resets == resets
    # Sampling: no SAMPLES between an accepted STOP and the next START, SAMPLES at the period
    # last set, and samples after the input (EXTRA_TICKS) unless stopped or slowed by SET_RATE.
    stopped, period_us, k = False, None, 0
    for m in msgs:
        if isinstance(m, protocol.Ack):
            f = accepted[k]
            k += 1
            if m.ok and m.cmd_type in (wire.C_STOP, wire.C_REPL):
                stopped = True
            elif m.ok and m.cmd_type == wire.C_START:
                stopped = False
            elif m.ok and m.cmd_type == wire.C_SET_PERIOD:
                period_us = struct.unpack("<I", f.payload)[0]
        elif isinstance(m, protocol.Samples):
            assert not stopped, "SAMPLES after STOP"
            assert period_us is None or rate_changed or m.period_us == period_us, (m.period_us, period_us)
    if running and not rate_changed:
        after = msgs[at[-1] + 1 :] if at else msgs
        assert any(isinstance(m, protocol.Samples) for m in after), "sampling stopped"


# -- strategies ---------------------------------------------------------------------------
u32 = st.integers(0, 0xFFFFFFFF)


def good_payload(cmd: int) -> st.SearchStrategy[bytes]:
    """A payload of the right length for cmd, with values in and out of range."""
    if cmd == wire.C_SET_PERIOD:
        return st.one_of(st.integers(MIN_PERIOD_US - 1, MIN_PERIOD_US + 1), st.sampled_from([10_000, 20_000, 50_000,
                         MAX_PERIOD_US, MAX_PERIOD_US + 1]), u32).map(lambda v: struct.pack("<I", v))
    if cmd == wire.C_CALIB:
        return st.one_of(st.just(b""), st.integers(0, 255).map(lambda c: bytes([c])), st.just(b"\x00"))
    if cmd == wire.C_SET_TIME:
        return st.integers(0, 2**64 - 1).map(lambda v: struct.pack("<Q", v))
    if cmd == wire.C_SET_OVERSAMPLING:
        return st.tuples(st.sampled_from([0, 0, 1, 255]), st.integers(0, 7), st.integers(0, 7)).map(bytes)
    if cmd == getattr(wire, "C_SET_RATE", None):
        return st.tuples(st.sampled_from([0, 0, 1]), st.one_of(st.sampled_from([0, 10_000, 20_000, 15_000]), u32)) \
            .map(lambda t: struct.pack("<BI", *t))
    return st.just(b"")


@st.composite
def command_frames(draw: st.DrawFn, max_payload: int = 80) -> bytes:
    cmd = draw(st.one_of(st.sampled_from(COMMANDS), st.sampled_from(COMMANDS), st.integers(0, 255)))
    payload = draw(st.one_of(good_payload(cmd), good_payload(cmd), st.binary(max_size=12),
                             st.binary(min_size=NODE_MAX_PAYLOAD - 2, max_size=max_payload)))
    return wire.frame(cmd, draw(st.integers(0, 0xFFFF)), payload[:max_payload])


@st.composite
def pieces(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["garbage", "sync", "command", "command", "command", "cut", "flip", "version",
                                 "unstuffed"]))
    if kind == "garbage":
        return draw(st.binary(max_size=24))
    if kind == "sync":
        return wire.SYNC + draw(st.binary(max_size=10))
    f = bytearray(draw(command_frames()))
    if kind == "unstuffed":  # a v1.0 host's bytes
        return bytes(f)
    if kind == "version":  # another major version, good CRC: the node ignores it
        f[2] = draw(st.sampled_from([0, 2, 255]))
        c = wire.crc16(f, 2, len(f) - 2)
        f[-2], f[-1] = c & 0xFF, c >> 8
    f = bytearray(stuff(bytes(f)))
    if kind == "cut":  # damage on the wire: after stuffing
        return bytes(f[: draw(st.integers(1, len(f) - 1))])
    if kind == "flip":
        bit = draw(st.integers(0, len(f) * 8 - 1))
        f[bit // 8] ^= 1 << (bit % 8)
    return bytes(f)


inputs = st.lists(pieces(), max_size=10).map(b"".join)
clean_garbage = st.binary(max_size=20).map(lambda b: b.replace(b"\xa5", b""))


# -- properties ---------------------------------------------------------------------------
@SETTINGS
@given(inputs)
@example(bytes(range(256)) * 2)
@example(wire.command_frame(wire.C_SET_PERIOD, 1, struct.pack("<I", 1000)) + wire.command_frame(wire.C_STOP, 2, b"")
         + wire.command_frame(wire.C_PING, 3, b"") + wire.command_frame(wire.C_START, 4, b""))
@example(wire.command_frame(wire.C_CALIB, 0x7D03, b"\x04")[:5] + wire.command_frame(wire.C_PING, 0x0304, b""))
def test_node_answers_every_command_its_parser_accepts_and_keeps_sampling(server: CommandServer, data: bytes) -> None:
    check_reply(server, data, node_parser(data))


@SETTINGS
@given(st.lists(st.tuples(clean_garbage, command_frames(max_payload=NODE_MAX_PAYLOAD)), max_size=8))
def test_whole_commands_between_garbage_without_sync_bytes_are_all_answered(
        server: CommandServer, parts: list[tuple[bytes, bytes]]) -> None:
    data = b"".join(g + stuff(f) for g, f in parts)
    sent = []
    for _, f in parts:
        d = FrameDecoder()
        (frame,) = d.feed(f)
        sent.append(frame)
    check_reply(server, data, sent)


def test_the_parser_model_matches_the_nodes_parser_on_a_nasty_input(server: CommandServer) -> None:
    """The model above must be able to disagree: feed a case where the naive answer
    (answer every whole frame) is wrong for the node, and where the model is right."""
    ping = wire.command_frame(wire.C_PING, 9, b"")
    big = wire.command_frame(wire.C_PING, 8, bytes(NODE_MAX_PAYLOAD + 1))  # whole, CRC good, over the node's cap
    data = big + ping
    assert [(f.seq, f.msg_type) for f in node_parser(data)] == [(9, wire.C_PING)]
    check_reply(server, data, node_parser(data))


def test_a_cut_short_command_does_not_swallow_the_next_one(server: CommandServer) -> None:
    ping = wire.command_frame(wire.C_PING, 9, b"")
    reply = server.run(wire.command_frame(wire.C_PING, 8, b"")[:5] + ping)
    acks = [m for m in decoded(reply) if isinstance(m, protocol.Ack)]
    assert [(a.cmd_seq, a.cmd_type) for a in acks] == [(9, wire.C_PING)]


def test_the_oracles_stuffing_is_the_hosts() -> None:
    """stuff() above is written from PROTOCOL.md; the host's wire.command_frame must agree."""
    for seq in range(0, 65536, 257):
        payload = bytes((seq & 0xFF, 3, 4, 0x7D, seq >> 8))
        f = wire.frame(wire.C_SET_RATE, seq, payload)
        assert wire.command_frame(wire.C_SET_RATE, seq, payload) == stuff(f) and unstuff(stuff(f)) == f
