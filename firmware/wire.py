# leakmon wire format, protocol v1: the one home of the frame layout.
#
# This file runs unchanged on the node (MicroPython) and on the host (CPython,
# imported as leakmon.firmware.wire). PROTOCOL.md explains it; the golden vectors
# in tests/vectors/ pin it byte for byte on both interpreters.
#
# Frame: A5 4C | ver u8 | type u8 | seq u16 | len u16 | payload[len] | crc16
# All integers little-endian. CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)
# over ver..payload (everything but the sync bytes and the CRC itself).

import struct
import sys

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SYNC0 = const(0xA5)
SYNC1 = const(0x4C)
SYNC = b"\xa5\x4c"
VERSION = const(1)
VERSION_MINOR = const(1)  # 1.1: command frames are stuffed (end of this file)
HEADER_SIZE = const(8)
CRC_SIZE = const(2)
OVERHEAD = const(10)
MAX_PAYLOAD = const(1024)

# Node -> host message types.
T_HELLO = const(0x01)
T_CALIB = const(0x02)
T_SAMPLES = const(0x03)
T_EVENT = const(0x04)
T_ACK = const(0x05)
T_STATUS = const(0x06)
T_TIME = const(0x07)
# Host -> node commands.
C_PING = const(0x41)
C_INFO = const(0x42)
C_START = const(0x43)
C_STOP = const(0x44)
C_SET_PERIOD = const(0x45)
C_REPL = const(0x46)
C_CALIB = const(0x47)
C_SET_TIME = const(0x48)
C_RESET = const(0x49)
C_SET_OVERSAMPLING = const(0x4A)
C_SET_RATE = const(0x4B)

# ACK status codes.
ACK_OK = const(0)
ACK_UNKNOWN_COMMAND = const(1)
ACK_BAD_LENGTH = const(2)
ACK_BAD_VALUE = const(3)

# EVENT codes.
EV_BOOT = const(1)
EV_SENSOR_ERROR = const(2)
EV_SENSOR_LOST = const(3)
EV_SENSOR_BACK = const(4)
EV_OVERRUN = const(5)
EV_EXCEPTION = const(6)
EV_NO_SENSORS = const(7)
EV_SENSOR_STUCK = const(8)
EV_BUS_RECOVERY = const(9)

NO_CHANNEL = const(0xFF)
NO_MUX = const(0xFF)

# Chip codes, as carried in HELLO and CALIB.
CHIP_BMP388 = const(1)
CHIP_BMP390 = const(2)
CHIP_BMP280 = const(3)
CHIP_BME280 = const(4)
CHIP_DPS310 = const(5)
CHIP_LPS22HB = const(6)
CHIP_LPS22HH = const(7)
CHIP_MS5611 = const(8)

# Byte offsets of the header fields in a frame (HEADER_FMT, after the two sync bytes).
OFF_VERSION = const(2)
OFF_TYPE = const(3)
OFF_SEQ = const(4)
OFF_LEN = const(6)

# Payload layouts (struct formats).
HEADER_FMT = "<BBHH"  # ver, type, seq, len (after the two sync bytes)
HELLO_FMT = "<BBBBIH"  # proto major, minor, ticks bits, n channels, period_us, rows per frame
HELLO_CHANNEL_FMT = "<BBBBBB"  # channel, chip, bus, mux, addr, raw size
SAMPLES_FMT = "<IIHBB"  # t0_us, period_us, n_rows, n_ch, flags
SAMPLES_HEADER_SIZE = const(12)
# Byte offsets of the SAMPLES_FMT fields in a SAMPLES payload; the channel list follows.
SAMPLES_OFF_T0 = const(0)
SAMPLES_OFF_PERIOD = const(4)
SAMPLES_OFF_ROWS = const(8)
SAMPLES_OFF_NCH = const(10)
SAMPLES_OFF_FLAGS = const(11)
EVENT_FMT = "<IBBi"  # t_us, code, channel, detail
ACK_FMT = "<HBB"  # command seq, command type, status
STATUS_FMT = "<IIIIII"  # uptime_s, samples, frames, overruns, i2c_errors, free_heap
TIME_FMT = "<IQ"  # device ticks when SET_TIME arrived, host time in microseconds since 1970


def _crc_table():
    from array import array

    t = array("H", bytes(512))
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


if sys.implementation.name == "micropython":
    _CRC_TABLE = _crc_table()

    def crc16(buf, start, end):
        """CRC-16/CCITT-FALSE of buf[start:end]; small ints only, so it allocates nothing.

        Plain bytecode on purpose: a viper version would need mpy-cross -march per board.
        """
        t = _CRC_TABLE
        crc = 0xFFFF
        for i in range(start, end):
            crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ buf[i]) & 0xFF]
        return crc

else:
    from binascii import crc_hqx

    def crc16(buf, start, end):
        """CRC-16/CCITT-FALSE of buf[start:end]."""
        return crc_hqx(memoryview(buf)[start:end], 0xFFFF)


def seal(buf, msg_type, seq, payload_len):
    """Write header and CRC around a payload already at buf[8:8+payload_len].

    Returns the frame length. Allocates nothing: the node calls this per frame.
    """
    buf[0] = SYNC0
    buf[1] = SYNC1
    struct.pack_into(HEADER_FMT, buf, OFF_VERSION, VERSION, msg_type, seq & 0xFFFF, payload_len)
    end = HEADER_SIZE + payload_len
    c = crc16(buf, OFF_VERSION, end)
    buf[end] = c & 0xFF
    buf[end + 1] = c >> 8
    return end + CRC_SIZE


def frame(msg_type, seq, payload):
    """A whole frame as bytes (allocates; for replies, commands and tests)."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload too long")
    buf = bytearray(n + OVERHEAD)
    buf[HEADER_SIZE : HEADER_SIZE + n] = payload
    seal(buf, msg_type, seq, n)
    return bytes(buf)


def _text(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return bytes((len(b),)) + b[:255]


def hello_payload(fw_version, board, ticks_bits, period_us, rows_per_frame, channels):
    """channels: sequence of (channel, chip, bus, mux, addr, raw_size)."""
    out = struct.pack(HELLO_FMT, VERSION, VERSION_MINOR, ticks_bits, len(channels), period_us, rows_per_frame)
    out += _text(fw_version) + _text(board)
    for ch in channels:
        out += struct.pack(HELLO_CHANNEL_FMT, *ch)
    return out


def calib_payload(channel, chip, block):
    return bytes((channel, chip)) + bytes(block)


def event_payload(t_us, code, channel, detail, text=""):
    return struct.pack(EVENT_FMT, t_us, code, channel, detail) + text.encode()


def ack_payload(cmd_seq, cmd_type, status, text=""):
    return struct.pack(ACK_FMT, cmd_seq, cmd_type, status) + text.encode()


def status_payload(uptime_s, samples, frames, overruns, i2c_errors, free_heap):
    return struct.pack(STATUS_FMT, uptime_s, samples, frames, overruns, i2c_errors, free_heap)


def time_payload(ticks_us, host_time_us):
    return struct.pack(TIME_FMT, ticks_us, host_time_us)


def samples_begin(buf, t0_us, period_us, n_rows, channels):
    """Write a SAMPLES payload header at buf[8:]; channels: [(channel, raw_size)].

    Returns the payload offset at which the first row starts.
    """
    struct.pack_into(SAMPLES_FMT, buf, HEADER_SIZE, t0_us, period_us, n_rows, len(channels), 0)
    off = HEADER_SIZE + SAMPLES_HEADER_SIZE
    for ch, size in channels:
        buf[off] = ch
        buf[off + 1] = size
        off += 2
    return off


def samples_payload(t0_us, period_us, channels, rows):
    """SAMPLES payload as bytes: channels [(channel, raw_size)], rows [bytes per row]."""
    head = bytearray(HEADER_SIZE + SAMPLES_HEADER_SIZE + 2 * len(channels))
    samples_begin(head, t0_us, period_us, len(rows), channels)
    return bytes(head[HEADER_SIZE:]) + b"".join(bytes(r) for r in rows)


class FrameReader:
    """Byte-at-a-time frame parser with fixed buffers; used by the node for commands.

    feed(b) returns True when buf holds a whole frame with a good CRC; then
    msg_type, seq and payload_len describe it and the payload is at buf[8:].
    A frame that fails (bad CRC, oversize length) is given up one byte past its
    sync, as the host's decoder does: its other bytes go to a spill buffer that the
    caller feeds again (pending()/next_spilled()) before new bytes, so a torn or
    corrupt command never swallows the intact one behind it. Allocates nothing.
    """

    def __init__(self, max_payload=64):
        self.max_payload = max_payload
        self.buf = bytearray(max_payload + OVERHEAD)
        self.spill = bytearray(max_payload + OVERHEAD)
        self.spill_i = 0
        self.spill_n = 0
        self.n = 0
        self.need = HEADER_SIZE
        self.msg_type = 0
        self.seq = 0
        self.payload_len = 0
        self.crc_errors = 0
        self.oversize = 0

    def pending(self):
        """True while bytes of a rejected frame wait to be fed again."""
        return self.spill_i < self.spill_n

    def next_spilled(self):
        b = self.spill[self.spill_i]
        self.spill_i += 1
        return b

    def _reject(self):
        """Give up the frame in buf: buf[1:n] goes back in front of what still waits.
        Never overflows: those bytes came from the spill or were read after it ran dry."""
        keep = self.n - 1
        self.n = 0
        self.need = HEADER_SIZE
        spill = self.spill
        i = self.spill_i
        rest = self.spill_n - i
        if keep <= i:
            for k in range(rest):
                spill[keep + k] = spill[i + k]
        else:
            for k in range(rest - 1, -1, -1):
                spill[keep + k] = spill[i + k]
        buf = self.buf
        for k in range(keep):
            spill[k] = buf[1 + k]
        self.spill_i = 0
        self.spill_n = keep + rest

    def feed(self, b):
        buf = self.buf
        n = self.n
        if n == 0:
            if b == SYNC0:
                buf[0] = b
                self.n = 1
            return False
        if n == 1:
            if b == SYNC1:
                buf[1] = b
                self.n = 2
            elif b != SYNC0:
                self.n = 0
            return False
        buf[n] = b
        n += 1
        self.n = n
        if n == HEADER_SIZE:
            plen = buf[OFF_LEN] | (buf[OFF_LEN + 1] << 8)
            if plen > self.max_payload:
                self.oversize += 1
                self._reject()
                return False
            self.need = HEADER_SIZE + plen + CRC_SIZE
            return False
        if n < HEADER_SIZE or n < self.need:
            return False
        plen = self.need - OVERHEAD
        c = crc16(buf, OFF_VERSION, HEADER_SIZE + plen)
        if buf[HEADER_SIZE + plen] != (c & 0xFF) or buf[HEADER_SIZE + plen + 1] != (c >> 8):
            self.crc_errors += 1
            self._reject()
            return False
        self.n = 0
        self.need = HEADER_SIZE
        self.msg_type = buf[OFF_TYPE]
        self.seq = buf[OFF_SEQ] | (buf[OFF_SEQ + 1] << 8)
        self.payload_len = plen
        return buf[OFF_VERSION] == VERSION


# ---- Command direction (host -> node), protocol v1.1 --------------------------
# A command frame on the wire never holds 0x03 or 0x04, so the node keeps
# MicroPython's Ctrl-C on while it streams (mpremote and a person at a terminal can
# stop it), and a command that reaches a REPL never ends raw-mode input (Ctrl-D).
# Byte stuffing as in PPP (RFC 1662, 4.2): each 0x03, 0x04 and 0x7D of the frame
# goes out as 0x7D, then the byte XOR 0x20. Length and CRC are the unstuffed
# frame's, so what the node checks is the v1 frame; node -> host is not stuffed.
CMD_ESC = const(0x7D)
CMD_ESC_XOR = const(0x20)


def command_frame(msg_type, seq, payload):
    """A command frame as the host puts it on the wire (frame(), stuffed)."""
    out = bytearray()
    for b in frame(msg_type, seq, payload):
        if b == 0x03 or b == 0x04 or b == CMD_ESC:
            out.append(CMD_ESC)
            out.append(b ^ CMD_ESC_XOR)
        else:
            out.append(b)
    return bytes(out)


class CommandReader(FrameReader):
    """The node's command parser: FrameReader behind the unstuffing of command_frame.

    feed_wire(b) takes the bytes as they arrive from the link. An escape followed
    by anything but 0x23, 0x24 or 0x5D is dropped and counted, and that byte is read
    as itself: a torn command that ends in an escape cannot eat the sync byte of the
    next one. Bytes that feed() hands back (pending()) are unstuffed already and go
    to feed(). Allocates nothing.
    """

    def __init__(self, max_payload=64):
        FrameReader.__init__(self, max_payload)
        self.escaped = False
        self.bad_escapes = 0

    def feed_wire(self, b):
        if self.escaped:
            self.escaped = False
            if b == 0x23 or b == 0x24 or b == 0x5D:
                return self.feed(b ^ CMD_ESC_XOR)
            self.bad_escapes += 1
        if b == CMD_ESC:
            self.escaped = True
            return False
        return self.feed(b)
