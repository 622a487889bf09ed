"""Typed interface of firmware/wire.py (which stays untyped: it runs on MicroPython).

tests/host/test_wire_stub.py holds this file to the module's real names.
"""

from collections.abc import Sequence

Buffer = bytes | bytearray | memoryview

ACK_BAD_LENGTH: int
ACK_BAD_VALUE: int
ACK_FMT: str
ACK_OK: int
ACK_UNKNOWN_COMMAND: int
CHIP_BME280: int
CHIP_BMP280: int
CHIP_BMP388: int
CHIP_BMP390: int
CHIP_DPS310: int
CHIP_LPS22HB: int
CHIP_LPS22HH: int
CHIP_MS5611: int
CMD_ESC: int
CMD_ESC_XOR: int
CRC_SIZE: int
C_CALIB: int
C_INFO: int
C_PING: int
C_REPL: int
C_RESET: int
C_SET_OVERSAMPLING: int
C_SET_PERIOD: int
C_SET_RATE: int
C_SET_TIME: int
C_START: int
C_STOP: int
EVENT_FMT: str
EV_BOOT: int
EV_BUS_RECOVERY: int
EV_EXCEPTION: int
EV_NO_SENSORS: int
EV_OVERRUN: int
EV_SENSOR_BACK: int
EV_SENSOR_ERROR: int
EV_SENSOR_LOST: int
EV_SENSOR_STUCK: int
HEADER_FMT: str
HEADER_SIZE: int
HELLO_CHANNEL_FMT: str
HELLO_FMT: str
MAX_PAYLOAD: int
NO_CHANNEL: int
NO_MUX: int
OFF_LEN: int
OFF_SEQ: int
OFF_TYPE: int
OFF_VERSION: int
OVERHEAD: int
SAMPLES_FMT: str
SAMPLES_HEADER_SIZE: int
SAMPLES_OFF_FLAGS: int
SAMPLES_OFF_NCH: int
SAMPLES_OFF_PERIOD: int
SAMPLES_OFF_ROWS: int
SAMPLES_OFF_T0: int
STATUS_FMT: str
SYNC: bytes
SYNC0: int
SYNC1: int
TIME_FMT: str
T_ACK: int
T_CALIB: int
T_EVENT: int
T_HELLO: int
T_SAMPLES: int
T_STATUS: int
T_TIME: int
VERSION: int
VERSION_MINOR: int
def ack_payload(cmd_seq: int, cmd_type: int, status: int, text: str = ...) -> bytes: ...
def calib_payload(channel: int, chip: int, block: Buffer) -> bytes: ...
def command_frame(msg_type: int, seq: int, payload: Buffer) -> bytes: ...
def const(x: int) -> int: ...
def crc16(buf: Buffer, start: int, end: int) -> int: ...
def event_payload(t_us: int, code: int, channel: int, detail: int, text: str = ...) -> bytes: ...
def frame(msg_type: int, seq: int, payload: Buffer) -> bytes: ...
def hello_payload(fw_version: str, board: str, ticks_bits: int, period_us: int, rows_per_frame: int,
                  channels: Sequence[Sequence[int]]) -> bytes: ...
def samples_begin(buf: bytearray, t0_us: int, period_us: int, n_rows: int,
                  channels: Sequence[Sequence[int]]) -> int: ...
def samples_payload(t0_us: int, period_us: int, channels: Sequence[Sequence[int]],
                    rows: Sequence[Buffer]) -> bytes: ...
def seal(buf: bytearray, msg_type: int, seq: int, payload_len: int) -> int: ...
def status_payload(uptime_s: int, samples: int, frames: int, overruns: int, i2c_errors: int,
                   free_heap: int) -> bytes: ...
def time_payload(ticks_us: int, host_time_us: int) -> bytes: ...


class FrameReader:
    max_payload: int
    buf: bytearray
    n: int
    need: int
    msg_type: int
    seq: int
    payload_len: int
    crc_errors: int
    oversize: int
    spill: bytearray
    spill_i: int
    spill_n: int
    def __init__(self, max_payload: int = ...) -> None: ...
    def pending(self) -> bool: ...
    def next_spilled(self) -> int: ...
    def feed(self, b: int) -> bool: ...


class CommandReader(FrameReader):
    escaped: bool
    bad_escapes: int
    def __init__(self, max_payload: int = ...) -> None: ...
    def feed_wire(self, b: int) -> bool: ...
