# The sensor node: discovers sensors, samples them on a fixed schedule, batches
# raw counts into SAMPLES frames and answers host commands. The steady-state loop
# (tick) allocates nothing: buffers, slices and frame views are made up front.
import gc
import json
import struct

import wire

FW_VERSION = "0.1.0"
MIN_PERIOD_US = 2000
MAX_PERIOD_US = 60000000
MAX_ROWS = 64
MAX_POLL_BYTES = 64  # command bytes handled per tick: the loop stays bounded
# (module, class, addresses) in probe order. Every driver checks the chip id before
# it writes anything and raises OSError if it is not its chip; MS5611 has no id
# register (its PROM CRC identifies it), so it is tried last. A driver module that
# is not on the board is skipped.
DRIVERS = (
    ("bmp3xx", "BMP3XX", (0x77, 0x76)),
    ("dps310", "DPS310", (0x77, 0x76)),
    ("bmp280", "BMP280", (0x77, 0x76)),
    ("lps22", "LPS22", (0x5C, 0x5D)),
    ("ms5611", "MS5611", (0x77, 0x76)),
)


def _load_config(path="config.json"):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _driver_class(module, name):
    try:
        return getattr(__import__(module), name)
    except ImportError:
        return None


def probe(i2c, addr):
    """The driver of the sensor at addr, or None."""
    for module, name, addresses in DRIVERS:
        if addr in addresses:
            cls = _driver_class(module, name)
            if cls is None:
                continue
            try:
                return cls(i2c, addr)
            except OSError:
                pass
    return None


def discover(buses):
    """[(bus_id, mux_channel, addr, driver)] for every sensor that identifies itself."""
    found = []
    for bus_id, i2c in buses:
        try:
            present = i2c.scan()
        except OSError:
            continue
        for addr in present:
            drv = probe(i2c, addr)
            if drv is not None:
                found.append((bus_id, wire.NO_MUX, addr, drv))
    return found


class Node:
    def __init__(self, board, cfg, sensors):
        self.board = board
        self.link = board.link
        self.sensors = [s[3] for s in sensors]
        self.inventory = sensors
        self.nch = len(sensors)
        self.rows = min(max(int(cfg.get("rows_per_frame", 10)), 1), MAX_ROWS)
        self.period_us = self._valid_period(int(cfg.get("period_us", 100000)))
        self.running = bool(cfg.get("autostart", True))
        self.looping = True
        self.seq = 0
        self.reader = wire.FrameReader(64)
        self.samples_taken = 0
        self.frames_sent = 0
        self.overruns = 0
        self.i2c_errors = 0
        self._layout()
        self.row = 0
        self.t0 = 0
        self.next_t = board.ticks_add(board.ticks_us(), self.period_us)

    @staticmethod
    def _valid_period(p):
        return p if MIN_PERIOD_US <= p <= MAX_PERIOD_US else 100000

    def _layout(self):
        """Preallocate the SAMPLES frame and one memoryview per (row, channel) slot."""
        chans = [(i, s.RAW_SIZE) for i, s in enumerate(self.sensors)]
        row_size = 0
        for s in self.sensors:
            row_size += s.RAW_SIZE
        head = wire.SAMPLES_HEADER_SIZE + 2 * self.nch
        self.sbuf = bytearray(wire.OVERHEAD + head + self.rows * row_size)
        mv = memoryview(self.sbuf)
        data = wire.samples_begin(self.sbuf, 0, self.period_us, self.rows, chans)
        self.slots = []
        for r in range(self.rows):
            off = data + r * row_size
            for s in self.sensors:
                self.slots.append(mv[off : off + s.RAW_SIZE])
                off += s.RAW_SIZE
        # A view of the whole frame for every row count, so a short frame costs nothing.
        self.views = [mv[: wire.OVERHEAD + head + n * row_size] for n in range(self.rows + 1)]
        self.plens = [head + n * row_size for n in range(self.rows + 1)]

    # -- sending -------------------------------------------------------------
    def _next_seq(self):
        s = self.seq
        self.seq = (s + 1) & 0xFFFF
        return s

    def send(self, msg_type, payload):
        self.link.write(wire.frame(msg_type, self._next_seq(), payload))
        self.frames_sent += 1

    def send_info(self):
        chans = []
        for i, (bus_id, mux, addr, s) in enumerate(self.inventory):
            chans.append((i, s.chip, bus_id, mux, addr, s.RAW_SIZE))
        self.send(wire.T_HELLO, wire.hello_payload(
            FW_VERSION, self.board.name, self.board.TICKS_BITS, self.period_us, self.rows, chans))
        for i, s in enumerate(self.sensors):
            self.send(wire.T_CALIB, wire.calib_payload(i, s.chip, s.calib))

    def event(self, code, channel=wire.NO_CHANNEL, detail=0, text=""):
        self.send(wire.T_EVENT, wire.event_payload(self.board.ticks_us(), code, channel, detail, text))

    def flush(self):
        """Send the rows gathered so far as one SAMPLES frame."""
        n = self.row
        if n == 0:
            return
        struct.pack_into("<IIH", self.sbuf, wire.HEADER_SIZE, self.t0, self.period_us, n)
        wire.seal(self.sbuf, wire.T_SAMPLES, self._next_seq(), self.plens[n])
        self.link.write(self.views[n])
        self.frames_sent += 1
        self.row = 0

    # -- sampling ------------------------------------------------------------
    def sample(self, t):
        r = self.row
        if r == 0:
            self.t0 = t
        base = r * self.nch
        slots = self.slots
        sensors = self.sensors
        for i in range(self.nch):
            try:
                sensors[i].read_raw_into(slots[base + i])
            except OSError as e:
                self.i2c_errors += 1
                self.flush()  # the grid breaks here: the host sees the gap
                self.event(wire.EV_SENSOR_ERROR, i, e.args[0] if e.args else 0)
                return
        self.row = r + 1
        self.samples_taken += self.nch
        if self.row == self.rows:
            self.flush()

    def tick(self):
        """Wait for the next slot, sample it, serve commands. Allocates nothing."""
        b = self.board
        wait = b.ticks_diff(self.next_t, b.ticks_us())
        if wait > 0:
            b.sleep_us(wait)
        elif wait <= -self.period_us:
            missed = (-wait) // self.period_us
            self.overruns += 1
            self.flush()
            self.next_t = b.ticks_add(self.next_t, missed * self.period_us)
        if self.running and self.nch:
            self.sample(self.next_t)
        self.poll_commands()
        b.feed_watchdog()
        self.next_t = b.ticks_add(self.next_t, self.period_us)

    # -- commands ------------------------------------------------------------
    def poll_commands(self):
        link = self.link
        rd = self.reader
        for _ in range(MAX_POLL_BYTES):
            c = link.read_byte()
            if c < 0:
                return
            if rd.feed(c):
                self.command(rd.msg_type, rd.seq, memoryview(rd.buf)[wire.HEADER_SIZE : wire.HEADER_SIZE + rd.payload_len])

    def command(self, cmd, cmd_seq, payload):
        status = wire.ACK_OK
        text = ""
        n = len(payload)
        if cmd in (wire.C_PING, wire.C_INFO, wire.C_START, wire.C_STOP, wire.C_REPL):
            if n:
                status, text = wire.ACK_BAD_LENGTH, "takes no payload"
        elif cmd == wire.C_SET_PERIOD:
            if n != 4:
                status, text = wire.ACK_BAD_LENGTH, "needs u32 period_us"
            else:
                p = struct.unpack_from("<I", payload, 0)[0]
                if not MIN_PERIOD_US <= p <= MAX_PERIOD_US:
                    status, text = wire.ACK_BAD_VALUE, "period_us %d..%d" % (MIN_PERIOD_US, MAX_PERIOD_US)
        else:
            status, text = wire.ACK_UNKNOWN_COMMAND, "unknown command 0x%02x" % cmd
        if status == wire.ACK_OK:
            if cmd == wire.C_INFO:
                self.flush()
                self.send_info()
            elif cmd == wire.C_START:
                self.running = True
            elif cmd == wire.C_STOP or cmd == wire.C_REPL:
                self.flush()
                self.running = False
                self.looping = cmd != wire.C_REPL
            elif cmd == wire.C_SET_PERIOD:
                self.flush()
                self.period_us = p
                self.next_t = self.board.ticks_add(self.board.ticks_us(), p)
        self.send(wire.T_ACK, wire.ack_payload(cmd_seq, cmd, status, text))

    def run(self):
        """Sample until the REPL command; an exception is reported and the loop goes on."""
        while self.looping:
            try:
                self.tick()
            except Exception as e:  # the node never dies from one fault
                try:
                    self.event(wire.EV_EXCEPTION, wire.NO_CHANNEL, 0, repr(e)[:120])
                    self.row = 0
                except Exception:
                    pass


def main():
    import board as board_mod

    cfg = _load_config()
    board = board_mod.load(cfg)
    node = Node(board, cfg, discover(board.i2c_buses()))
    node.event(wire.EV_BOOT, wire.NO_CHANNEL, node.nch, FW_VERSION)
    node.send_info()
    if not node.nch:
        node.event(wire.EV_NO_SENSORS)
    gc.collect()
    node.run()
    board.release()  # Ctrl-C works again: the REPL is back for reflashing
