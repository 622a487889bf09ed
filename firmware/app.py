# The sensor node: discovers sensors, samples them on a fixed schedule, batches
# raw counts into SAMPLES frames and answers host commands. The steady-state loop
# (tick) allocates nothing: buffers, slices and frame views are made up front.
import gc
import json
import struct

import discovery
import txframes
import wire

FW_VERSION = "0.1.0"
MIN_PERIOD_US = 2000
MAX_PERIOD_US = 60000000
MAX_ROWS = 64
MAX_POLL_BYTES = 64  # command bytes handled per tick: the loop stays bounded
READ_TRIES = 3  # a read that fails this many times in a row loses the channel
RETRY_FIRST_MS = 1000  # a lost channel is probed again after 1 s, 2 s, 4 s ... 32 s
RETRY_MAX_MS = 32000
EVENT_GAP_US = 1000000  # at most one sensor-error event per channel per second
MASK = txframes.COUNTER_MASK
def _load_config(path="config.json"):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Group:
    """Channels sampled at the same rate (every decim-th tick), sharing one SAMPLES frame."""

    def __init__(self, decim, channels, drivers, rows, period_us):
        self.decim = decim
        self.left = 1  # ticks until the next sample of this group
        self.channels = channels
        self.drivers = drivers
        self.n = len(channels)
        self.frame = txframes.SamplesFrame([(ch, d.RAW_SIZE) for ch, d in zip(channels, drivers)],
                                           rows, period_us * decim)


class NodeApp:
    def __init__(self, board, cfg, sensors):
        self.board = board
        self.link = board.link
        self.inventory = sensors  # [(bus_id, mux, addr, driver)]; channel id = index
        self.drivers = [s[3] for s in sensors]
        self.rows = min(max(int(cfg.get("rows_per_frame", 10)), 1), MAX_ROWS)
        self.period_us = self._valid_period(int(cfg.get("period_us", 100000)))
        self.status_every_us = int(cfg.get("status_every_s", 10)) * 1000000
        self.running = bool(cfg.get("autostart", True))
        self.looping = True
        self.net = None  # mqttlink.MqttLink when config.json names a broker
        self.time_ref = None
        self.seq = 0
        self.reader = wire.CommandReader(64)
        n = len(sensors)
        # Counters wrap at 2**30 so that they stay small ints (no heap) on 32-bit ports.
        self.samples_taken = 0
        self.frames_sent = 0
        self.overruns = 0
        self.errors = [0] * n
        self.last_event_t = [0] * n
        self.lost = {}  # channel -> [next retry ticks, backoff ms]
        self.decim = [1] * n  # per-channel rate: sampled every decim-th tick
        self.uptime_s = 0
        self._uptime_us = 0
        self._status_us = 0
        self.status = txframes.StatusFrame(n)
        self.active = list(range(n))
        self._relayout()
        self.next_t = board.ticks_add(board.ticks_us(), self.period_us)

    @staticmethod
    def _valid_period(p):
        return p if MIN_PERIOD_US <= p <= MAX_PERIOD_US else 100000

    def _relayout(self):
        """New SAMPLES frames for the active channels, one per rate (allocates: not per sample)."""
        by_rate = {}  # type: dict[int, list[int]]
        for ch in self.active:
            by_rate.setdefault(self.decim[ch], []).append(ch)
        self.groups = [Group(d, by_rate[d], [self.drivers[ch] for ch in by_rate[d]], self.rows, self.period_us)
                       for d in sorted(by_rate)]

    @property
    def rows_per_frame(self):
        return self.groups[0].frame.rows if self.groups else self.rows

    # -- sending -------------------------------------------------------------
    def _next_seq(self):
        s = self.seq
        self.seq = (s + 1) & 0xFFFF
        self.frames_sent = (self.frames_sent + 1) & MASK
        return s

    def send(self, msg_type, payload):
        self.link.write(wire.frame(msg_type, self._next_seq(), payload))

    def send_info(self):
        chans = []
        for i, (bus_id, mux, addr, s) in enumerate(self.inventory):
            chans.append((i, s.chip, bus_id, mux, addr, s.RAW_SIZE))
        self.send(wire.T_HELLO, wire.hello_payload(
            FW_VERSION, self.board.name, self.board.TICKS_BITS, self.period_us, self.rows_per_frame, chans))
        for i, s in enumerate(self.drivers):
            self.send(wire.T_CALIB, wire.calib_payload(i, s.chip, s.calib))

    def event(self, code, channel=wire.NO_CHANNEL, detail=0, text=""):
        self.send(wire.T_EVENT, wire.event_payload(self.board.ticks_us(), code, channel, detail, text))

    def flush(self):
        """Send the rows gathered so far, one SAMPLES frame per rate group."""
        for g in self.groups:
            self.flush_group(g)

    def flush_group(self, g):
        f = g.frame
        if f.row:
            stuck = f.stuck_channel(self.period_us * g.decim)
            self.link.write(f.seal(self._next_seq(), self.period_us * g.decim))
            if stuck >= 0:
                ch = g.channels[stuck]
                self.event(wire.EV_SENSOR_STUCK, ch, f.rows)
                self.lose(ch)

    def send_status(self):
        self.link.write(self.status.seal(self._next_seq(), self.uptime_s, self.samples_taken,
                                         self.frames_sent, self.overruns, self.errors, gc.mem_free()))

    # -- sampling ------------------------------------------------------------
    def sample(self, t):
        """Sample every group whose turn it is at slot time t."""
        for g in self.groups:
            g.left -= 1
            if g.left <= 0:
                g.left = g.decim
                self.sample_group(g, t)

    def sample_group(self, g, t):
        if not g.n:
            return
        f = g.frame
        r = f.row
        if r == 0:
            f.t0 = t
        base = r * g.n
        slots = f.slots
        drivers = g.drivers
        for k in range(g.n):
            for attempt in range(READ_TRIES):
                try:
                    drivers[k].read_raw_into(slots[base + k])
                    break
                except OSError as e:
                    self.read_failed(g.channels[k], e, attempt)
            else:
                i = self.groups.index(g)
                self.lose(g.channels[k])
                return self.sample_group(self.groups[i], t)  # the others' row again, without it
        f.row = r + 1
        self.samples_taken = (self.samples_taken + g.n) & MASK
        if f.row == f.rows:
            self.flush_group(g)

    def read_failed(self, ch, e, attempt):
        """Count every failed read; report the first of a burst as an event."""
        self.errors[ch] = (self.errors[ch] + 1) & MASK
        now = self.board.ticks_us()
        if attempt == 0 and self.board.ticks_diff(now, self.last_event_t[ch]) >= EVENT_GAP_US:
            self.last_event_t[ch] = now
            self.event(wire.EV_SENSOR_ERROR, ch, e.args[0] if e.args and isinstance(e.args[0], int) else 0)

    def lose(self, ch):
        """Leave ch out of the rows until it answers again; its group is rebuilt in place,
        so the other groups keep their frames' phase."""
        if ch not in self.active:
            return
        self.flush()
        self.active.remove(ch)
        self.lost[ch] = [self.board.ticks_add(self.board.ticks_us(), RETRY_FIRST_MS * 1000), RETRY_FIRST_MS]
        for i, g in enumerate(self.groups):
            if ch in g.channels:
                keep = [c for c in g.channels if c != ch]
                ng = Group(g.decim, keep, [self.drivers[c] for c in keep], self.rows, self.period_us)
                ng.left = g.left
                self.groups[i] = ng
                break
        self.event(wire.EV_SENSOR_LOST, ch, READ_TRIES)

    def retry_lost(self):
        """Probe lost channels whose backoff has expired; a sensor that answers is set up again.
        A bus on which every sensor is lost is recovered first (it may be held stuck)."""
        now = self.board.ticks_us()
        due = [ch for ch in self.lost if self.board.ticks_diff(now, self.lost[ch][0]) >= 0]
        for bus_id in set(self.inventory[ch][0] for ch in due):
            if all(c in self.lost for c in range(len(self.inventory)) if self.inventory[c][0] == bus_id):
                if self.board.recover_bus(bus_id):
                    self.event(wire.EV_BUS_RECOVERY, wire.NO_CHANNEL, bus_id)
        for ch in list(self.lost):
            due, backoff_ms = self.lost[ch]
            if self.board.ticks_diff(now, due) < 0:
                continue
            bus_id, mux, addr, old = self.inventory[ch]
            try:
                drv = type(old)(old.i2c, addr)  # a re-plugged chip needs its configuration again
            except OSError:
                backoff_ms = min(2 * backoff_ms, RETRY_MAX_MS)
                self.lost[ch] = [self.board.ticks_add(now, backoff_ms * 1000), backoff_ms]
                continue
            self.flush()
            del self.lost[ch]
            self.inventory[ch] = (bus_id, mux, addr, drv)
            self.drivers[ch] = drv
            self.active = sorted(self.active + [ch])
            self._relayout()
            self.event(wire.EV_SENSOR_BACK, ch)
            if drv.calib != old.calib:
                self.send(wire.T_CALIB, wire.calib_payload(ch, drv.chip, drv.calib))

    def tick(self):
        """Wait for the next slot, sample it, serve commands. Allocates nothing."""
        b = self.board
        wait = b.ticks_diff(self.next_t, b.ticks_us())
        step = self.period_us
        if wait > 0:
            b.sleep_us(wait)
        elif wait <= -self.period_us:
            missed = (-wait) // self.period_us
            self.overruns = (self.overruns + 1) & MASK
            self.flush()
            self.next_t = b.ticks_add(self.next_t, missed * self.period_us)
            step += missed * self.period_us
        if self.running and self.active:
            self.sample(self.next_t)
        if self.lost:
            self.retry_lost()
        self.poll_commands()
        self._clock(step)
        b.feed_watchdog()
        self.next_t = b.ticks_add(self.next_t, self.period_us)

    def _clock(self, step_us):
        self._uptime_us += step_us
        while self._uptime_us >= 1000000:
            self._uptime_us -= 1000000
            self.uptime_s = (self.uptime_s + 1) & MASK
        self._status_us += step_us
        if self.status_every_us and self._status_us >= self.status_every_us:
            self._status_us = 0
            self.send_status()

    # -- commands ------------------------------------------------------------
    def poll_commands(self):
        link = self.link
        rd = self.reader
        for _ in range(MAX_POLL_BYTES):
            if rd.pending():  # bytes of a rejected frame first: a command may start in them
                got = rd.feed(rd.next_spilled())
            else:
                c = link.read_byte()
                if c < 0:
                    return
                got = rd.feed_wire(c)  # commands come stuffed (wire.command_frame)
            if got:
                self.command(rd.msg_type, rd.seq, memoryview(rd.buf)[wire.HEADER_SIZE : wire.HEADER_SIZE + rd.payload_len])

    def command(self, cmd, cmd_seq, payload):
        status, text = self.check_command(cmd, payload, len(self.drivers))
        after = None
        if status == wire.ACK_OK:
            self.flush()
            try:
                after = self.execute(cmd, payload)
            except (ValueError, OSError) as e:
                status, text = wire.ACK_BAD_VALUE, str(e)
        self.send(wire.T_ACK, wire.ack_payload(cmd_seq, cmd, status, text))
        if after is not None:
            after()

    def execute(self, cmd, payload):
        """Carry out a checked command; returns what to do after the ACK is out, if anything."""
        if cmd == wire.C_INFO:
            self.send_info()
        elif cmd == wire.C_CALIB:
            for ch in ([payload[0]] if len(payload) else range(len(self.drivers))):
                d = self.drivers[ch]
                self.send(wire.T_CALIB, wire.calib_payload(ch, d.chip, d.calib))
        elif cmd == wire.C_START:
            self.running = True
        elif cmd == wire.C_STOP or cmd == wire.C_REPL:
            self.running = False
            self.looping = cmd != wire.C_REPL
        elif cmd == wire.C_SET_PERIOD:
            self.period_us = struct.unpack_from("<I", payload, 0)[0]
            self.next_t = self.board.ticks_add(self.board.ticks_us(), self.period_us)
        elif cmd == wire.C_SET_TIME:
            host_us = struct.unpack_from("<Q", payload, 0)[0]
            self.time_ref = wire.time_payload(self.board.ticks_us(), host_us)
            return lambda: self.send(wire.T_TIME, self.time_ref)
        elif cmd == wire.C_SET_OVERSAMPLING:
            ch, osr_p, osr_t = payload[0], payload[1], payload[2]
            drv = self.drivers[ch]
            if not hasattr(drv, "set_oversampling"):
                raise ValueError("channel %d has no oversampling setting" % ch)
            calib = drv.calib
            drv.set_oversampling(osr_p, osr_t)
            if drv.calib != calib:  # e.g. DPS310: the scale factors follow the oversampling
                return lambda: self.send(wire.T_CALIB, wire.calib_payload(ch, drv.chip, drv.calib))
        elif cmd == wire.C_SET_RATE:
            ch = payload[0]
            period = struct.unpack_from("<I", payload, 1)[0]
            if period % self.period_us:
                raise ValueError("period_us must be a multiple of the node's %d" % self.period_us)
            self.decim[ch] = period // self.period_us
            self._relayout()
        elif cmd == wire.C_RESET:
            return self.board.reset
        return None

    @staticmethod
    def check_command(cmd, payload, nch):
        """(status, reason) for a command: nothing the host sends can do more than refuse."""
        n = len(payload)
        if cmd in (wire.C_PING, wire.C_INFO, wire.C_START, wire.C_STOP, wire.C_REPL, wire.C_RESET):
            return (wire.ACK_BAD_LENGTH, "takes no payload") if n else (wire.ACK_OK, "")
        if cmd == wire.C_SET_PERIOD:
            if n != 4:
                return wire.ACK_BAD_LENGTH, "needs u32 period_us"
            p = struct.unpack_from("<I", payload, 0)[0]
            if not MIN_PERIOD_US <= p <= MAX_PERIOD_US:
                return wire.ACK_BAD_VALUE, "period_us %d..%d" % (MIN_PERIOD_US, MAX_PERIOD_US)
            return wire.ACK_OK, ""
        if cmd == wire.C_CALIB or cmd == wire.C_SET_OVERSAMPLING:
            want = (0, 1) if cmd == wire.C_CALIB else (3,)
            if n not in want:
                return wire.ACK_BAD_LENGTH, "needs %s byte(s)" % " or ".join(str(w) for w in want)
            if n and payload[0] >= nch:
                return wire.ACK_BAD_VALUE, "no channel %d (have %d)" % (payload[0], nch)
            return wire.ACK_OK, ""
        if cmd == wire.C_SET_TIME:
            return (wire.ACK_OK, "") if n == 8 else (wire.ACK_BAD_LENGTH, "needs u64 host time in us")
        if cmd == wire.C_SET_RATE:
            if n != 5:
                return wire.ACK_BAD_LENGTH, "needs u8 channel, u32 period_us"
            if payload[0] >= nch:
                return wire.ACK_BAD_VALUE, "no channel %d (have %d)" % (payload[0], nch)
            if struct.unpack_from("<I", payload, 1)[0] == 0:
                return wire.ACK_BAD_VALUE, "period_us must be positive"
            return wire.ACK_OK, ""
        return wire.ACK_UNKNOWN_COMMAND, "unknown command 0x%02x" % cmd

    def run(self):
        """Sample until the REPL command; an exception is reported and the loop goes on."""
        while self.looping:
            try:
                self.tick()
                if self.net is not None:
                    self.net.service(self)  # publish between ticks, never inside the sampling path
            except Exception as e:  # the node never dies from one fault
                try:
                    for g in self.groups:
                        g.frame.row = 0
                    self.event(wire.EV_EXCEPTION, wire.NO_CHANNEL, 0, repr(e)[:120])
                except Exception:
                    pass


def main():
    import board as board_mod

    cfg = _load_config()
    board = board_mod.load(cfg)
    net, net_error = None, ""
    if cfg.get("mqtt"):  # a board with a network: its frames also go straight to the broker
        try:
            import mqttlink

            net = mqttlink.attach(board, cfg, FW_VERSION)
        except Exception as e:  # no umqtt, no password file: the node still runs on USB
            net_error = "mqtt: " + repr(e)
    node = NodeApp(board, cfg, discovery.discover(board.i2c_buses()))
    node.net = net
    node.event(wire.EV_BOOT, wire.NO_CHANNEL, len(node.drivers), FW_VERSION)
    node.send_info()
    if net_error:
        node.event(wire.EV_EXCEPTION, wire.NO_CHANNEL, 0, net_error[:120])
    if not node.drivers:
        node.event(wire.EV_NO_SENSORS)
    gc.collect()
    try:
        node.run()  # until the REPL command, or Ctrl-C (KeyboardInterrupt is no Exception)
    finally:
        _release(board)


def _release(board):
    """Hand the board to the REPL: its watchdog gets fed from now on. mpremote and
    `leakmon flash` press Ctrl-C twice; the second must not cut this short."""
    for _ in range(3):
        try:
            board.release()
            return
        except KeyboardInterrupt:
            pass
