"""Typed messages parsed from frame payloads, and command frames to send.

parse() checks every field against what PROTOCOL.md allows, so that nothing past it
meets a sample period of 0, an I2C address of 0x300 or a channel listed twice: a
frame with a good CRC and an impossible field raises ProtocolError here, and the
stream core counts it as malformed. The limits are named below.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from leakmon import sensors, wire
from leakmon.errors import ProtocolError
from leakmon.wire.framing import Frame

TICKS_BITS_MIN = 16  # device clocks wrap at 2**30 on every port; fewer than 16 bits wrap within 65 ms
TICKS_BITS_MAX = 32
I2C_ADDR_MAX = 0x7F  # 7-bit addresses
MUX_CHANNELS = 8  # a TCA9548A has channels 0..7 (NO_MUX: the sensor is on the bus itself)
COUNTER_LIMIT = 1 << 30  # STATUS counters wrap at 2**30

CHIP_NAMES = {
    wire.CHIP_BMP388: "BMP388",
    wire.CHIP_BMP390: "BMP390",
    wire.CHIP_BMP280: "BMP280",
    wire.CHIP_BME280: "BME280",
    wire.CHIP_DPS310: "DPS310",
    wire.CHIP_LPS22HB: "LPS22HB",
    wire.CHIP_LPS22HH: "LPS22HH",
    wire.CHIP_MS5611: "MS5611",
}
EVENT_NAMES = {
    wire.EV_BOOT: "boot",
    wire.EV_SENSOR_ERROR: "sensor-error",
    wire.EV_SENSOR_LOST: "sensor-lost",
    wire.EV_SENSOR_BACK: "sensor-back",
    wire.EV_OVERRUN: "overrun",
    wire.EV_EXCEPTION: "exception",
    wire.EV_NO_SENSORS: "no-sensors",
    wire.EV_SENSOR_STUCK: "sensor-stuck",
    wire.EV_BUS_RECOVERY: "bus-recovery",
}
ACK_NAMES = {
    wire.ACK_OK: "ok",
    wire.ACK_UNKNOWN_COMMAND: "unknown command",
    wire.ACK_BAD_LENGTH: "bad length",
    wire.ACK_BAD_VALUE: "bad value",
}


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    channel: int
    chip: int
    bus: int
    mux: int
    addr: int
    raw_size: int

    @property
    def chip_name(self) -> str:
        return CHIP_NAMES.get(self.chip, f"chip-{self.chip}")


@dataclass(frozen=True, slots=True)
class Hello:
    proto_major: int
    proto_minor: int
    ticks_bits: int
    period_us: int
    rows_per_frame: int
    fw_version: str
    board: str
    channels: tuple[ChannelInfo, ...]


@dataclass(frozen=True, slots=True)
class Calibration:
    channel: int
    chip: int
    block: bytes


@dataclass(frozen=True, slots=True)
class Samples:
    """One SAMPLES frame: rows of raw counts on a fixed grid t0 + i * period."""

    seq: int
    t0_ticks_us: int
    period_us: int
    channels: tuple[tuple[int, int], ...]  # (channel, raw_size)
    raw: np.ndarray  # (n_rows, row_size) uint8

    def channel_raw(self, index: int) -> np.ndarray:
        """(n_rows, raw_size) raw bytes of the index-th channel of this frame."""
        off = sum(size for _, size in self.channels[:index])
        return self.raw[:, off : off + self.channels[index][1]]


@dataclass(frozen=True, slots=True)
class Event:
    t_ticks_us: int
    code: int
    channel: int
    detail: int
    text: str

    @property
    def name(self) -> str:
        return EVENT_NAMES.get(self.code, f"event-{self.code}")


@dataclass(frozen=True, slots=True)
class Ack:
    cmd_seq: int
    cmd_type: int
    status: int
    text: str

    @property
    def ok(self) -> bool:
        return self.status == wire.ACK_OK

    @property
    def status_name(self) -> str:
        return ACK_NAMES.get(self.status, f"status-{self.status}")


@dataclass(frozen=True, slots=True)
class Status:
    uptime_s: int
    samples: int
    frames: int
    overruns: int
    i2c_errors: int
    free_heap: int
    channel_errors: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TimeRef:
    """The node's answer to SET_TIME: its ticks when the host's time arrived."""

    ticks_us: int
    host_time_us: int


@dataclass(frozen=True, slots=True)
class Unknown:
    msg_type: int
    payload: bytes


Message = Hello | Calibration | Samples | Event | Ack | Status | TimeRef | Unknown


def _text(payload: bytes, off: int) -> tuple[str, int]:
    n = payload[off]
    end = off + 1 + n
    if end > len(payload):
        raise ProtocolError("HELLO: a string runs past the end of the payload")
    return payload[off + 1 : end].decode("utf-8", "replace"), end


def parse_hello(p: bytes) -> Hello:
    fixed = struct.calcsize(wire.HELLO_FMT)
    major, minor, ticks_bits, nch, period_us, rows = struct.unpack_from(wire.HELLO_FMT, p, 0)
    fw, off = _text(p, fixed)
    board, off = _text(p, off)
    size = struct.calcsize(wire.HELLO_CHANNEL_FMT)
    if len(p) < off + nch * size:  # trailing bytes: fields of a later minor version
        raise ProtocolError(f"HELLO lists {nch} channels but carries {len(p) - off} bytes for them")
    chans = tuple(
        ChannelInfo(*struct.unpack_from(wire.HELLO_CHANNEL_FMT, p, off + k * size)) for k in range(nch)
    )
    if major != wire.VERSION:
        raise ProtocolError(f"HELLO of protocol v{major}.{minor} in a v{wire.VERSION} frame")
    if not TICKS_BITS_MIN <= ticks_bits <= TICKS_BITS_MAX:
        raise ProtocolError(f"HELLO ticks_bits {ticks_bits}, not {TICKS_BITS_MIN}..{TICKS_BITS_MAX}")
    if period_us < 1 or rows < 1:
        raise ProtocolError(f"HELLO period_us {period_us}, rows_per_frame {rows}: both must be at least 1")
    for c in chans:
        _check_channel(c)
    if len({c.channel for c in chans}) != len(chans):
        raise ProtocolError("HELLO lists a channel twice")
    return Hello(major, minor, ticks_bits, period_us, rows, fw, board, chans)


def _check_channel(c: ChannelInfo) -> None:
    if c.channel == wire.NO_CHANNEL:
        raise ProtocolError(f"HELLO channel id 0x{c.channel:02x} is reserved")
    if c.addr > I2C_ADDR_MAX:
        raise ProtocolError(f"HELLO channel {c.channel}: I2C address 0x{c.addr:02x} is not 7-bit")
    if c.mux != wire.NO_MUX and c.mux >= MUX_CHANNELS:
        raise ProtocolError(f"HELLO channel {c.channel}: mux channel {c.mux}, not 0..{MUX_CHANNELS - 1}")
    want = sensors.raw_size(c.chip)
    if c.raw_size < 1 or (want is not None and c.raw_size != want):
        raise ProtocolError(f"HELLO channel {c.channel}: raw size {c.raw_size} for chip code {c.chip}")


def samples_layout_error(chans: tuple[tuple[int, int], ...]) -> str | None:
    """Why a SAMPLES channel list is impossible (None: it is not). Shared with the vectorized path."""
    ids = [ch for ch, _ in chans]
    if not ids:
        return "SAMPLES lists no channel"
    if wire.NO_CHANNEL in ids or len(set(ids)) != len(ids):
        return "SAMPLES lists a reserved channel id or a channel twice"
    if any(size < 1 for _, size in chans):
        return "SAMPLES lists a channel of 0 bytes"
    return None


def parse_samples(seq: int, p: bytes) -> Samples:
    t0, period_us, n_rows, nch, _flags = struct.unpack_from(wire.SAMPLES_FMT, p, 0)
    off = wire.SAMPLES_HEADER_SIZE
    chans = tuple((p[off + 2 * k], p[off + 2 * k + 1]) for k in range(nch))
    off += 2 * nch
    row_size = sum(size for _, size in chans)
    if len(p) - off != n_rows * row_size:
        raise ProtocolError(f"SAMPLES says {n_rows} rows of {row_size} bytes but carries {len(p) - off}")
    why = samples_layout_error(chans) or (None if period_us >= 1 and n_rows >= 1 else "SAMPLES of no rows or period 0")
    if why:
        raise ProtocolError(why)
    raw = np.frombuffer(p, dtype=np.uint8, offset=off).reshape(n_rows, row_size) if n_rows \
        else np.zeros((0, row_size), np.uint8)
    return Samples(seq, t0, period_us, chans, raw)


def parse_calibration(p: bytes) -> Calibration:
    channel, chip = p[0], p[1]
    if channel == wire.NO_CHANNEL:
        raise ProtocolError(f"CALIB for the reserved channel id 0x{channel:02x}")
    if sensors.raw_size(chip) is None:
        raise ProtocolError(f"CALIB of chip code {chip}: no host compensation for it")
    return Calibration(channel, chip, bytes(p[2:]))


def parse(frame: Frame) -> Message:
    """The typed message in a frame; ProtocolError if its payload is malformed."""
    p = frame.payload
    t = frame.msg_type
    try:
        if t == wire.T_SAMPLES:
            return parse_samples(frame.seq, p)
        if t == wire.T_HELLO:
            return parse_hello(p)
        if t == wire.T_CALIB:
            return parse_calibration(p)
        if t == wire.T_EVENT:
            n = struct.calcsize(wire.EVENT_FMT)
            t_us, code, channel, detail = struct.unpack_from(wire.EVENT_FMT, p, 0)
            return Event(t_us, code, channel, detail, p[n:].decode("utf-8", "replace"))
        if t == wire.T_ACK:
            n = struct.calcsize(wire.ACK_FMT)
            cmd_seq, cmd_type, status = struct.unpack_from(wire.ACK_FMT, p, 0)
            return Ack(cmd_seq, cmd_type, status, p[n:].decode("utf-8", "replace"))
        if t == wire.T_STATUS:
            n = struct.calcsize(wire.STATUS_FMT)
            per_channel = struct.unpack_from(f"<{(len(p) - n) // 4}I", p, n)
            uptime_s, samples, frames, overruns, i2c_errors, free_heap = struct.unpack_from(wire.STATUS_FMT, p, 0)
            if max(uptime_s, samples, frames, overruns, i2c_errors, *per_channel) >= COUNTER_LIMIT:
                raise ProtocolError("STATUS counter beyond 2**30, where the node wraps them")
            return Status(uptime_s, samples, frames, overruns, i2c_errors, free_heap, per_channel)
        if t == wire.T_TIME:
            return TimeRef(*struct.unpack_from(wire.TIME_FMT, p, 0))
    except (struct.error, IndexError, ValueError) as e:
        raise ProtocolError(f"malformed payload of message type 0x{t:02x}: {e}") from e
    return Unknown(t, p)


def command(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """A command frame for the node, as it goes on the wire: stuffed (protocol v1.1) so
    that it never holds a Ctrl-C or Ctrl-D byte."""
    return wire.command_frame(cmd, seq, payload)


def set_period(seq: int, period_us: int) -> bytes:
    return command(wire.C_SET_PERIOD, seq, struct.pack("<I", period_us))
