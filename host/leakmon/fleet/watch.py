"""One node's live frames from the broker, decoded: what `leakmon dashboard --broker` shows.

A reader subscribes to the node's retained handshake (its HELLO and CALIB frames, which a
gateway, or a board publishing straight, keeps on `leakmon/<node>/handshake`), its frames
and its state, with a clean session: a page shows what is live, the database keeps history. The handshake goes into
the stream core first, then the frames, so the samples come out compensated as on the
gateway. Frames that arrive before any handshake (one not retained yet: firmware before
2026-12-01 kept none) wait, up to a bound, for the next HELLO in the stream.

Memory is bounded whatever arrives: paho's callback thread puts messages in a deque of
MAX_QUEUED; when the reader falls that far behind, the oldest go and are counted (the page
shows them as lost frames). An envelope naming another node than its topic is refused and
counted, never decoded.
"""

from __future__ import annotations

import collections
import json
import math
import secrets
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from leakmon import wire
from leakmon.errors import ProtocolError
from leakmon.fleet import FleetError, envelope
from leakmon.fleet.creds import BrokerAddress
from leakmon.fleet.mqttclient import connect, make_client
from leakmon.wire import messages
from leakmon.wire.framing import FrameDecoder
from leakmon.wire.stream import Item, NodeStream, SampleBlock

MAX_QUEUED = 20_000  # messages: ~30 min of a 10-channel node's 1 s frames
MAX_WAITING = 2_000  # frames held for a handshake that has not come yet
_KINDS = ("handshake", "frame", "state", "note")


class NodeWatch:
    """connect(), then read() from one thread; stats for the page's link health."""

    def __init__(self, addr: BrokerAddress, password: str | None, node_id: str, ca_file: str | None = None) -> None:
        self.addr = addr
        self.node_id = envelope.check_id(node_id)
        self._password = password
        self.ca_file = ca_file
        self.stream = NodeStream()
        self.online: bool | None = None  # the node's retained state, once heard
        self.dropped = 0  # messages let go because the reader fell MAX_QUEUED behind
        self.refused = 0  # envelopes that named another node, or were not envelopes
        self.skipped = 0  # frames that never met a handshake
        self.connected = threading.Event()
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._lock = threading.Lock()
        self.joined_after = 0  # frames sent between the handshake and our first frame
        self._after: int | None = None  # wire seq of the handshake's last frame, until a frame follows it
        self._waiting: list[tuple[int, int, int, bytes]] = []  # (boot, seq, t_us, frame) before a handshake
        # The gateway's wall clock less the node's device time, the least over the frames
        # (receipt only ever comes after sampling): several nodes of a site on one axis.
        self.wall_minus_device_s = math.inf
        self._notes: list[tuple[int, str, str]] = []  # (t_us at the gateway, kind, text) not yet taken
        self._boot: int | None = None  # the boot whose handshake the stream has
        self._last: tuple[int, int] | None = None  # (boot, seq) of the last frame fed
        self._client: mqtt.Client | None = None
        self._backlog: list[Item] = []

    # -- paho's thread -----------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((msg.topic, bytes(msg.payload)))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if (rc.value if hasattr(rc, "value") else int(rc)) == 0:
            client.subscribe([(envelope.topic(self.node_id, k), 1) for k in _KINDS])
            self.connected.set()

    def _on_disconnect(self, *args: Any) -> None:
        self.connected.clear()

    # -- the caller's thread -----------------------------------------------------------
    def connect(self) -> None:
        """Connect as a reader (AuthError on refused credentials) and subscribe."""
        c = make_client(self.addr, self._password, f"leakmon-watch-{secrets.token_hex(4)}", clean_session=True,
                        ca_file=self.ca_file)
        connect(c, self.addr)
        c.on_message = self._on_message
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.subscribe([(envelope.topic(self.node_id, k), 1) for k in _KINDS])
        self.connected.set()
        c.reconnect_delay_set(1, 5)
        c.loop_start()  # paho reconnects by itself; _on_connect subscribes again
        self._client = c

    def is_connected(self) -> bool:
        """Connected to the broker, and the node's gateway has not said it is offline."""
        return self.connected.is_set() and self.online is not False

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None

    def wait_hello(self, timeout_s: float, samples: bool = False) -> messages.Hello:
        """Read until the stream has the node's handshake (and, with samples, its first
        samples, so its clock stands against the gateway's); FleetError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        backlog: list[Item] = []
        while self.stream.hello is None or not self.stream.ready or (samples and math.isinf(self.wall_minus_device_s)):
            if time.monotonic() > deadline:
                raise FleetError(f"no handshake of node {self.node_id!r} on the broker {self.addr} within "
                                 f"{timeout_s:g} s (is its gateway, or the board, running and publishing?)")
            backlog += self.read()
            time.sleep(0.05)
        self._backlog = backlog
        return self.stream.hello

    def read(self) -> list[Item]:
        """What arrived since the last call, decoded by the stream core."""
        backlog, self._backlog = self._backlog, []
        with self._lock:
            got = list(self._queue)
            self._queue.clear()
        out: list[Item] = list(backlog)
        for topic, payload in got:
            where = envelope.parse_topic(topic)
            if where is None or where[0] != self.node_id:
                continue
            kind = where[1]
            if kind == "state":
                self._state(payload)
                continue
            try:
                env = envelope.unpack(payload)
            except (ValueError, ProtocolError):
                self.refused += 1
                continue
            if env.node_id != self.node_id:
                self.refused += 1
                continue
            if kind == "handshake":
                out += self._handshake(env)
            elif kind == "frame":
                out += self._frame(env.boot, env.seq, env.t_us, env.body)
            elif kind == "note":
                self._note(env)
        return out

    def take_notes(self) -> list[tuple[int, str, str]]:
        """The operator's notes and hatch moves (`gateway --notes`) read since the last call:
        (gateway wall clock us, "hatch" or "note", text)."""
        out, self._notes = self._notes, []
        return out

    def _note(self, env: envelope.Envelope) -> None:
        try:
            note = env.json()
            kind, text = note["kind"], note["text"]
        except (ProtocolError, KeyError, TypeError):
            self.refused += 1
            return
        if kind in ("hatch", "note") and isinstance(text, str):
            self._notes = (self._notes + [(env.t_us, kind, text)])[-1000:]
        else:
            self.refused += 1

    def _state(self, payload: bytes) -> None:
        try:
            self.online = json.loads(payload).get("state") == "online"
        except (ValueError, AttributeError):
            self.refused += 1

    def _handshake(self, env: envelope.Envelope) -> list[Item]:
        if self._boot is not None and env.boot <= self._boot:
            return []  # the one the stream has (re-published on a gateway's reconnect), or older
        out = self.stream.feed(env.body)
        seqs = [f.seq for f in FrameDecoder().feed(env.body)]
        self._boot, self._after = env.boot, seqs[-1] if seqs else None
        waiting = sorted(w for w in self._waiting if w[0] == env.boot)
        self._waiting = [w for w in self._waiting if w[0] > env.boot]
        for boot, seq, t_us, frame in waiting:
            out += self._frame(boot, seq, t_us, frame)
        return out

    def _frame(self, boot: int, seq: int, t_us: int, frame: bytes) -> list[Item]:
        if self._last is not None and (boot, seq) <= self._last:
            return []  # QoS 1 sends again after a reconnect, and an older boot is over
        if len(frame) > wire.OFF_TYPE and frame[wire.OFF_TYPE] == wire.T_HELLO:
            self._boot, self._after = boot, None  # a new handshake in the stream itself
        elif boot != self._boot:
            if self._boot is None or boot > self._boot:  # its handshake has not come yet
                self._waiting.append((boot, seq, t_us, frame))
                if len(self._waiting) > MAX_WAITING:
                    del self._waiting[0]
                    self.skipped += 1
            return []
        elif self._after is not None:
            # The frames between the handshake and the first one seen here were sent before
            # we subscribed: not lost (the stream core would count them so).
            self.joined_after += (frame[wire.OFF_SEQ] | frame[wire.OFF_SEQ + 1] << 8) - self._after - 1 & 0xFFFF
            self._after = None
        self._last = (boot, seq)
        items = self.stream.feed(frame)
        for it in items:
            if isinstance(it, SampleBlock) and len(it.t_s):
                self.wall_minus_device_s = min(self.wall_minus_device_s, t_us * 1e-6 - float(it.t_s[-1]))
        return items

    @property
    def lost_frames(self) -> int:
        """Frames the node sent after this watch joined that never reached it (those the
        queue let go included: the stream core sees their gap)."""
        return self.stream.stats.lost_frames - self.joined_after
