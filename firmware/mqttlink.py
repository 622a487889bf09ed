# A board with a network publishes its frames straight to the MQTT broker, with
# micropython-lib's umqtt.simple, as well as on its USB link (docs/fleet.md, "Boards
# with a network"). Same topics and envelope as a gateway: leakmon/<node>/frame, QoS 1,
# key (node, boot, seq); t_us is the board's wall clock (NTP on a WLAN board).
#
# The sampling path stays heap-free: write(), called inside the node's tick, only
# copies the frame into a preallocated slot of a small ring. service(), called between
# ticks, publishes from the ring, one PUBACK at a time; that allocates inside umqtt (a
# few small objects per frame), never inside tick. Every wait is bounded by a socket
# timeout; a lost broker is reconnected with backoff. While it is away the ring keeps
# the newest `queue` frames and counts the older ones it drops: a board has no disk
# spool (the USB link, if a gateway listens, still carries every frame).
#
# The board also keeps its latest handshake (the HELLO and the CALIB frames after it)
# retained on leakmon/<node>/handshake, as a gateway does, so that a reader who joins
# hours after the board started (`leakmon dashboard --broker`) decodes at once. write()
# copies those frames into one preallocated buffer of `handshake_bytes`; service()
# publishes it when it changed and after every connect.
import json
import socket
import struct
import time

import wire

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


ENV_FMT = "<2sBBqqqB"  # leakmon.fleet.envelope.HEADER: magic, version, flags, boot, seq, t_us, id length
ENV_SIZE = const(29)
FLAG_HISTORICAL = const(1)
FRAME_MAX = wire.OVERHEAD + wire.MAX_PAYLOAD
RETRY_FIRST_MS = const(1000)  # reconnect after 1 s, 2 s, 4 s ... 60 s
RETRY_MAX_MS = const(60000)
PUBLISH_PER_SERVICE = const(4)  # frames published between two ticks at most
WLAN_WAIT_MS = const(10000)
HANDSHAKE_BYTES = const(1024)  # default room for HELLO + CALIBs (8 BMP3 channels: ~420 bytes)
EPOCH_1970 = const(946684800)  # seconds from 1970 to 2000, for ports whose epoch is 2000


def _read_secret(path):
    """First line of a file on the board's flash (never printed, never sent but to the broker)."""
    with open(path) as f:
        return f.readline().strip()


class _Socket:
    """umqtt.simple's socket with every wait bounded, and one TCP segment per packet.

    umqtt calls setblocking(True) after each read, which would turn a timeout off; here
    it keeps it. umqtt writes a packet in five pieces (header, topic length, topic, id,
    body): sent as they come, Nagle's algorithm and the broker's delayed ACK hold each
    publish ~40 ms. So writes are gathered and sent when umqtt waits for an answer."""

    def __init__(self, timeout_s, out_size):
        self.s = socket.socket()
        self.s.settimeout(timeout_s)
        self.out = bytearray(out_size)
        self.outv = memoryview(self.out)
        self.n = 0

    def connect(self, addr):
        self.s.connect(addr)

    def flush(self):
        if self.n:
            n, self.n = self.n, 0
            self.s.write(self.outv[:n])

    def read(self, n):
        self.flush()
        b = self.s.read(n)
        if not b:  # None: timed out; b"": the broker closed the connection
            raise OSError(110)  # ETIMEDOUT (or gone): the caller reconnects
        return b

    def write(self, buf, n=-1):
        if isinstance(buf, str):
            buf = buf.encode()
        m = len(buf) if n < 0 else n
        if self.n + m > len(self.out):
            self.flush()
            if m > len(self.out):
                return self.s.write(buf) if n < 0 else self.s.write(buf, n)
        k = self.n
        if n < 0:
            self.outv[k:k + m] = buf
        else:  # umqtt's packet headers: a few bytes of a longer buffer
            out = self.out
            for j in range(m):
                out[k + j] = buf[j]
        self.n = k + m
        return m

    def setblocking(self, flag):
        pass

    def close(self):
        self.s.close()


class _SocketModule:
    """What umqtt.simple sees as its `socket` module: sockets with a timeout."""

    def __init__(self, timeout_s, out_size):
        self.timeout_s = timeout_s
        self.out_size = out_size

    def socket(self):
        return _Socket(self.timeout_s, self.out_size)

    def getaddrinfo(self, host, port):
        return socket.getaddrinfo(host, port)


class MqttLink:
    """The node's link, teed: every frame goes to the USB link at once and, through a
    ring of `queue` preallocated slots, to the broker from service()."""

    def __init__(self, inner, mqtt, board_name, fw_version=""):
        from umqtt import simple  # micropython-lib: `leakmon flash --mqtt` puts it on the board

        self.inner = inner
        self.simple = simple
        self.host = mqtt["host"]
        self.port = int(mqtt.get("port", 1883))
        self.user = mqtt["user"]
        self.node_id = mqtt.get("node_id", self.user)
        self.password = _read_secret(mqtt.get("password_file", "mqtt.pw"))
        self.client_id = mqtt.get("client_id", "leakmon-" + self.node_id)
        self.keepalive_s = int(mqtt.get("keepalive_s", 60))
        root = "leakmon/" + self.node_id + "/"
        self.topic = (root + "frame").encode()
        self.state_topic = (root + "state").encode()
        self.info_topic = (root + "info").encode()
        self.hs_topic = (root + "handshake").encode()
        self.info = json.dumps({"node_id": self.node_id, "gateway": "", "board": board_name, "firmware": fw_version,
                                "via": "mqtt"}).encode()
        nid = self.node_id.encode()
        self.hdr = ENV_SIZE + len(nid)
        simple.socket = _SocketModule(float(mqtt.get("timeout_s", 2)), self.hdr + FRAME_MAX + len(self.topic) + 16)
        n = max(2, int(mqtt.get("queue", 16)))
        self.nslots = n
        self.slots = [bytearray(self.hdr + FRAME_MAX) for _ in range(n)]
        self.views = [memoryview(s) for s in self.slots]
        for s in self.slots:
            struct.pack_into(ENV_FMT, s, 0, b"LM", 1, 0, 0, 0, 0, len(nid))
            s[ENV_SIZE:self.hdr] = nid
        self.hs = bytearray(self.hdr + int(mqtt.get("handshake_bytes", HANDSHAKE_BYTES)))
        self.hsv = memoryview(self.hs)
        struct.pack_into(ENV_FMT, self.hs, 0, b"LM", 1, 0, 0, 0, 0, len(nid))
        self.hs[ENV_SIZE:self.hdr] = nid
        self.hs_len = 0  # envelope + frames kept; 0: no HELLO yet, or it did not fit
        self.hs_seq = 0
        self.hs_ticks = 0
        self.hs_dirty = False
        self.hs_too_big = 0  # handshakes that did not fit (said once, as an event)
        self.hs_said = False
        self.lens = [0] * n
        self.seqs = [0] * n  # wire seq unwrapped past 65535 (small ints: 2**30 frames)
        self.ticks = [0] * n  # time.ticks_ms() when the frame was written
        self.hist = [0] * n  # written while the broker was away
        self.head = 0
        self.count = 0
        self.wraps = 0
        self.last_wseq = -1
        self.boot = 0
        self.client = None
        self.retry_at = time.ticks_ms()
        self.backoff_ms = RETRY_FIRST_MS
        self.last_tx = self.retry_at
        self.reported = ""
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self.wlan = None
        self.wlan_ssid = ""
        self.wlan_key = ""

    # -- inside tick: no allocation ---------------------------------------------
    def write(self, buf):
        self.inner.write(buf)
        n = len(buf)
        if n > FRAME_MAX:
            self.dropped += 1
            return
        if self.count == self.nslots:  # full: the oldest goes
            self.count -= 1
            self.dropped += 1
        i = self.head
        h = self.hdr
        self.views[i][h:h + n] = buf
        self.lens[i] = n
        wseq = buf[wire.OFF_SEQ] | (buf[wire.OFF_SEQ + 1] << 8)
        if wseq <= self.last_wseq:  # the node's u16 counter wrapped
            self.wraps += 1
        self.last_wseq = wseq
        self.seqs[i] = (self.wraps << 16) | wseq
        self.ticks[i] = time.ticks_ms()
        kind = buf[wire.OFF_TYPE]
        if kind == wire.T_HELLO or (kind == wire.T_CALIB and self.hs_len):
            self._keep_handshake(buf, n, kind == wire.T_HELLO, self.seqs[i], self.ticks[i])
        self.hist[i] = FLAG_HISTORICAL if self.client is None and self.connects else 0  # sent after an outage
        self.head = (i + 1) % self.nslots
        self.count += 1

    def _keep_handshake(self, buf, n, hello, seq, ticks):
        """Copy a HELLO (starting a new handshake) or a CALIB after it into the buffer."""
        if hello:
            self.hs_len = self.hdr
            self.hs_seq = seq
            self.hs_ticks = ticks
        k = self.hs_len
        if k + n > len(self.hs):
            self.hs_len = 0  # a partial handshake would decode wrong: keep none
            self.hs_too_big += 1
            return
        self.hsv[k:k + n] = buf
        self.hs_len = k + n
        self.hs_dirty = True

    def read_byte(self):
        return self.inner.read_byte()

    # -- between ticks: may allocate, every wait bounded -------------------------
    def service(self, node):
        now = time.ticks_ms()
        if self.client is None:
            if time.ticks_diff(now, self.retry_at) < 0 or not self._connect(node, now):
                return
        c = self.client
        if c is None:
            return
        try:
            if self.hs_dirty and self.hs_len:
                self._publish_handshake(c)
            elif self.hs_too_big and not self.hs_said:
                self.hs_said = True
                node.event(wire.EV_EXCEPTION, wire.NO_CHANNEL, 0,
                           "mqtt: handshake over %d bytes: none kept retained" % (len(self.hs) - self.hdr))
            for _ in range(PUBLISH_PER_SERVICE):
                if not self.count:
                    break
                self._publish_oldest(c)
            if not self.count and time.ticks_diff(now, self.last_tx) > self.keepalive_s * 500:
                c.ping()  # idle (a stopped node): keep the session alive
                c.sock.flush()
                self.last_tx = now
        except Exception as e:  # OSError, MQTTException, umqtt's asserts: drop the session
            self._close()
            self._failed(node, "mqtt: lost %s:%d: %r" % (self.host, self.port, e), RETRY_FIRST_MS)

    def _publish_oldest(self, c):
        i = (self.head - self.count) % self.nslots
        s = self.slots[i]
        t_us = wall_us() - time.ticks_diff(time.ticks_ms(), self.ticks[i]) * 1000
        struct.pack_into("<BqqqB", s, 3, self.hist[i], self.boot, self.seqs[i], t_us, self.hdr - ENV_SIZE)
        c.publish(self.topic, self.views[i][:self.hdr + self.lens[i]], False, 1)
        self.count -= 1  # only after the PUBACK: at least once to the broker
        self.published += 1
        self.last_tx = time.ticks_ms()

    def _publish_handshake(self, c):
        """The latest HELLO + CALIBs, retained, keyed by the HELLO's (boot, seq)."""
        t_us = wall_us() - time.ticks_diff(time.ticks_ms(), self.hs_ticks) * 1000
        struct.pack_into("<BqqqB", self.hs, 3, 0, self.boot, self.hs_seq, t_us, self.hdr - ENV_SIZE)
        c.publish(self.hs_topic, self.hsv[:self.hs_len], True, 1)
        self.hs_dirty = False
        self.last_tx = time.ticks_ms()

    def _connect(self, node, now):
        if self.wlan is not None and not self.wlan.isconnected():
            try:
                self.wlan.connect(self.wlan_ssid, self.wlan_key)  # returns at once; checked at the next retry
            except OSError:
                pass
            self._failed(node, "mqtt: WLAN %s not connected" % self.wlan_ssid, 0)
            return False
        if not self.boot:
            self.boot = boot_id()
        c = self.simple.MQTTClient(self.client_id, self.host, self.port, self.user, self.password, self.keepalive_s)
        c.set_last_will(self.state_topic, b'{"state":"offline","gateway":""}', True, 1)
        try:
            c.connect()
            c.publish(self.state_topic, b'{"state":"online","gateway":""}', True, 1)
            c.publish(self.info_topic, self.info, True, 1)
        except Exception as e:
            rc = e.args[0] if isinstance(e, self.simple.MQTTException) and e.args else 0
            try:
                c.sock.close()
            except Exception:
                pass
            if rc in (4, 5):  # bad user name or password, not authorized: retrying soon cannot help
                self._failed(node, "mqtt: %s:%d refused user %s (code %d): check its password file"
                             % (self.host, self.port, self.user, rc), RETRY_MAX_MS)
            else:
                self._failed(node, "mqtt: cannot reach %s:%d: %r" % (self.host, self.port, e), 0)
            return False
        self.client = c
        self.connects += 1
        self.hs_dirty = True  # the broker may have lost it (a restart without persistence)
        self.backoff_ms = RETRY_FIRST_MS
        self.reported = ""
        self.last_tx = now
        return True

    def _close(self):
        c, self.client = self.client, None
        if c is not None:
            try:
                c.sock.close()
            except Exception:
                pass

    def _failed(self, node, text, backoff_ms):
        """Retry later (backoff_ms, else the doubling backoff); say why once per cause,
        on the USB link as an event (the broker cannot carry news of its own absence)."""
        wait = backoff_ms or self.backoff_ms
        self.backoff_ms = min(2 * self.backoff_ms, RETRY_MAX_MS)
        self.retry_at = time.ticks_add(time.ticks_ms(), wait)
        if text != self.reported:
            self.reported = text
            node.event(wire.EV_EXCEPTION, wire.NO_CHANNEL, 0, text[:120])


_EPOCH_US = EPOCH_1970 * 1000000 if time.gmtime(0)[0] == 2000 else 0


def wall_us():
    """The wall clock in us since 1970, whatever the port's epoch."""
    return time.time_ns() // 1000 + _EPOCH_US


def boot_id():
    """One id per boot: the wall clock in us when it is set (NTP), else random (a board
    without a clock starts at its epoch every boot, and boots must differ)."""
    t = wall_us()
    if t > 1577836800 * 1000000:  # after 2020: a clock that was set
        return t
    import os

    return int.from_bytes(os.urandom(7), "little") + 1


def wlan_up(ssid, key, ntp, board):
    """Pico W / ESP32: join the WLAN (bounded wait, watchdog fed), set the clock by NTP."""
    import network

    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(ssid, key)
        start = time.ticks_ms()
        while not sta.isconnected() and time.ticks_diff(time.ticks_ms(), start) < WLAN_WAIT_MS:
            board.feed_watchdog()
            time.sleep_ms(100)
    if sta.isconnected() and ntp:
        try:
            import ntptime

            ntptime.settime()
        except Exception:
            pass  # no clock: boot ids fall back to random, times are the board's
    return sta


def attach(board, cfg, fw_version=""):
    """Tee board.link to the broker named in cfg["mqtt"]; the caller runs service() between ticks."""
    link = MqttLink(board.link, cfg["mqtt"], board.name, fw_version)
    w = cfg.get("wlan")
    if w:
        link.wlan_ssid = w["ssid"]
        link.wlan_key = _read_secret(w.get("key_file", "wlan.key"))
        link.wlan = wlan_up(link.wlan_ssid, link.wlan_key, w.get("ntp", True), board)
    board.link = link
    return link
