"""The gateway's side of the broker: everything goes through the disk spool, and one
sender thread publishes it with QoS 1 and releases each record on its PUBACK.

On a lost connection the client is thrown away and a new one resumes from the first
record not acknowledged, flagging as historical what was spooled before the new
connection began. Birth and death: the connection's last will marks the gateway
offline (retained); on every connect the gateway's state and each node's retained info
and state are published again.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from leakmon.fleet import AuthError, FleetError, envelope, homeassistant
from leakmon.fleet.creds import BrokerAddress
from leakmon.fleet.mqttclient import connect, make_client, pump
from leakmon.fleet.spool import Spool

RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
CONFIRM_TIMEOUT_MAX_S = 300.0


def _log(msg: str) -> None:
    print(f"leakmon: {msg}", file=sys.stderr, flush=True)


class Publisher:
    """An Outbox (leakmon.fleet.edge) on an MQTT broker, with a spool in front of it."""

    _PAHO_INFLIGHT = 0  # paho's own limit: off (see _connect)

    def __init__(self, addr: BrokerAddress, password: str | None, gateway_id: str, spool: Spool, *,
                 ca_file: str | None = None, window: int = 10000, confirm: bool = True,
                 confirm_timeout_s: float = 10.0, home_assistant: bool = False,
                 log: Callable[[str], None] = _log) -> None:
        self.addr = addr
        self._password = password
        self.gateway_id = envelope.check_id(gateway_id, "gateway id")
        self.spool = spool
        self.ca_file = ca_file
        self.window = window
        self.confirm = confirm  # keep records until serve confirms it stored them
        self.confirm_timeout_s = confirm_timeout_s
        self.resent = 0
        self.home_assistant = home_assistant
        self.log = log
        self._retained: dict[str, bytes] = {}
        self._dirty: set[str] = set()  # retained topics changed since last published
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.connected = threading.Event()
        self.connections = 0
        self.sent = 0

    # -- Outbox -----------------------------------------------------------------------
    def put(self, topic: str, payload: bytes) -> None:
        self.spool.append(topic, payload)

    def put_retained(self, topic: str, payload: bytes) -> None:
        """Small state, last value wins: kept in memory and published on every connect."""
        with self._lock:
            self._retained[topic] = payload
            self._dirty.add(topic)

    # -- life cycle -------------------------------------------------------------------
    def start(self, wait_s: float = 5.0) -> None:
        """Start the sender; wait up to wait_s for the first connection so that a refusal
        (wrong password) fails at once. An unreachable broker is not an error: the
        spool holds the data until it is back."""
        self._thread = threading.Thread(target=self._run, name="leakmon-publisher", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not self.connected.is_set() and self.error is None:
            time.sleep(0.02)
        self.check()
        if not self.connected.is_set():
            self.log(f"broker {self.addr} not reachable yet; spooling to {self.spool.folder}")

    def check(self) -> None:
        """Raise the sender's fatal error (a refusal) in the caller's thread."""
        if self.error is not None:
            err = self.error
            if isinstance(err, FleetError):
                raise err
            raise FleetError(f"publisher stopped: {err}") from err

    def drain(self, timeout_s: float) -> bool:
        """Wait until the broker has acknowledged everything spooled (True) or time runs out."""
        deadline = time.monotonic() + timeout_s
        while self.spool.backlog and time.monotonic() < deadline and self.error is None:
            time.sleep(0.02)
        return self.spool.backlog == 0

    def close(self, drain_s: float = 5.0) -> None:
        """Publish what is spooled (up to drain_s), mark the gateway offline, disconnect."""
        if self._thread is None:
            return
        self.drain(drain_s)
        self._stop.set()
        self._thread.join(timeout=drain_s + 5)
        self._thread = None
        self.spool.close()

    # -- the sender thread ------------------------------------------------------------
    def _will(self) -> bytes:
        return json.dumps({"state": "offline", "gateway": self.gateway_id}).encode()

    def _connect(self) -> mqtt.Client:
        # paho's own in-flight limit is off (0): with one, every PUBACK makes it scan every
        # message in flight for one to send (O(window) a message: 495 against 79 us of CPU a
        # message at a full window of 10,000, bench/RESULTS.md). send_from_spool keeps to the
        # window itself.
        c = make_client(self.addr, self._password, f"leakmon-gw-{self.gateway_id}", clean_session=True,
                        ca_file=self.ca_file, inflight=self._PAHO_INFLIGHT)
        c.will_set(envelope.gateway_state_topic(self.gateway_id), self._will(), qos=1, retain=True)
        connect(c, self.addr)
        return c

    def _birth(self, c: mqtt.Client) -> None:
        state = json.dumps({"state": "online", "gateway": self.gateway_id, "t_us": time.time_ns() // 1000}).encode()
        c.publish(envelope.gateway_state_topic(self.gateway_id), state, qos=1, retain=True)
        self._publish_retained(c)

    def _publish_retained(self, c: mqtt.Client, only_changed: bool = False) -> None:
        with self._lock:
            topics = list(self._dirty) if only_changed else list(self._retained)
            retained = [(t, self._retained[t]) for t in topics]
            self._dirty.clear()
        for topic, payload in retained:
            c.publish(topic, payload, qos=1, retain=True)

    def _on_ha_status(self, payload: bytes) -> None:
        """Home Assistant came back online and lost its discovery configs: send them again."""
        if payload.strip() == b"online":
            with self._lock:
                self._dirty |= {t for t in self._retained if t.startswith(f"{homeassistant.PREFIX}/")}

    def _run(self) -> None:
        delay = RETRY_MIN_S
        logged_at = -1e9
        while not self._stop.is_set():
            try:
                c = self._connect()
            except AuthError as e:
                self.error = e
                return
            except FleetError as e:
                if time.monotonic() - logged_at >= 60.0:  # once a minute while it lasts, not per retry
                    self.log(str(e))
                    logged_at = time.monotonic()
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_MIN_S
            self.connections += 1
            if self.connections > 1:
                self.log(f"broker {self.addr} back; sending {self.spool.backlog} spooled messages")
            try:
                self._serve(c)
            except Exception as e:  # noqa: BLE001 - the sender must not die silently
                self.error = e
                return
            finally:
                self.connected.clear()

    def _serve(self, c: mqtt.Client) -> None:
        """Publish from the spool while connected; returns when the connection is lost."""
        session = _Session(self, c)
        c.on_publish = session.on_publish
        c.on_message = session.on_message
        self.spool.rewind()
        self._birth(c)
        if self.home_assistant:
            c.subscribe(homeassistant.STATUS_TOPIC, qos=1)
        self.connected.set()
        while True:
            if self._dirty:
                self._publish_retained(c, only_changed=True)
            session.send_from_spool()
            session.resend_unconfirmed()
            if self._stop.is_set() and not session.mids:
                self._goodbye(c)
                return
            if pump(c, 0.01) != mqtt.MQTT_ERR_SUCCESS:
                self.log(f"lost the broker {self.addr}; spooling")
                return

    def _goodbye(self, c: mqtt.Client) -> None:
        with self._lock:
            topics = [t for t in self._retained if t.endswith("/state")]
        for t in topics:
            node_state = json.loads(self._retained[t])
            node_state["state"] = "offline"
            c.publish(t, json.dumps(node_state).encode(), qos=1, retain=True)
        c.publish(envelope.gateway_state_topic(self.gateway_id), self._will(), qos=1, retain=True)
        deadline = time.monotonic() + 2.0
        while c.want_write() and time.monotonic() < deadline:
            pump(c, 0.01)
        c.disconnect()
        pump(c, 0.05)


class _Session:
    """What one connection of the publisher tracks.

    A record leaves the spool when serve confirms it stored it (leakmon/<node>/stored),
    not at the broker's PUBACK: a broker may acknowledge a message and still lose it
    (Mosquitto 2.0 forgets shared subscriptions across a restart; a dead consumer's queue
    waits for it). Records not confirmed in time are sent again, from the oldest.
    """

    def __init__(self, pub: Publisher, c: mqtt.Client) -> None:
        self.pub = pub
        self.c = c
        self.connected_us = time.time_ns() // 1000  # spooled before this: historical
        self.mids: dict[int, int] = {}  # paho message id -> spool index, until PUBACK
        self.waiting: dict[tuple[str, int, int], int] = {}  # (topic, boot, seq) -> spool index, until confirmed
        self.sent_at: dict[int, float] = {}
        self.subscribed: set[str] = set()
        self.last_watermark = pub.spool.watermark
        self.wait_s = pub.confirm_timeout_s

    def _release(self, index: int) -> None:
        self.pub.spool.ack(index)
        self.sent_at.pop(index, None)

    def on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any = None, props: Any = None) -> None:
        index = self.mids.pop(mid, None)
        if index is not None and not self.pub.confirm:
            self._release(index)

    def on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == homeassistant.STATUS_TOPIC:
            self.pub._on_ha_status(bytes(msg.payload))
            return
        try:
            conf = json.loads(msg.payload)
            topic = msg.topic[: -len("stored")] + str(conf["kind"])
            boot = int(conf["boot"])
            for lo, hi in conf["seqs"]:
                for seq in range(int(lo), int(hi) + 1):
                    index = self.waiting.pop((topic, boot, seq), None)
                    if index is not None:
                        self._release(index)
        except (ValueError, KeyError, TypeError) as e:
            self.pub.log(f"ignored a malformed confirmation on {msg.topic}: {e}")

    def send_from_spool(self) -> None:
        pub, c = self.pub, self.c
        # PUBACKs awaited stay within the window too (paho no longer limits them): after a
        # resend, waiting starts again while the first sends may still await theirs.
        room = min(pub.window - len(self.waiting), pub.window - len(self.mids)) if pub.confirm \
            else pub.window - len(self.mids)  # fmt: skip
        for rec in pub.spool.read(room) if room > 0 else []:
            payload = rec.payload
            if rec.spooled_us < self.connected_us and rec.topic.endswith(envelope.STORED_KINDS):
                payload = envelope.mark_historical(payload)
            key = None
            if pub.confirm:
                if len(payload) < envelope.HEADER.size:
                    pub.spool.ack(rec.index)  # nothing could confirm it
                    continue
                _m, _v, _f, boot, seq, _t, _n = envelope.HEADER.unpack_from(payload, 0)
                key = (rec.topic, boot, seq)
                stored = rec.topic.rsplit("/", 1)[0] + "/stored"
                if stored not in self.subscribed:
                    c.subscribe(stored, qos=1)
                    self.subscribed.add(stored)
            info = c.publish(rec.topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # the connection is going: the next one rewinds to this record
            self.mids[info.mid] = rec.index
            self.sent_at[rec.index] = time.monotonic()
            if key is not None:
                self.waiting[key] = rec.index
            pub.sent += 1

    def resend_unconfirmed(self) -> None:
        pub = self.pub
        if pub.spool.watermark != self.last_watermark:  # confirmations flow: back to the short timeout
            self.last_watermark, self.wait_s = pub.spool.watermark, pub.confirm_timeout_s
        oldest = self.sent_at.get(pub.spool.watermark)
        if not pub.confirm or oldest is None or time.monotonic() - oldest <= self.wait_s:
            return
        pub.log(f"{len(self.waiting)} messages not confirmed stored within {self.wait_s:g} s; sending them again")
        self.waiting.clear()
        self.sent_at.clear()
        pub.resent += 1
        self.wait_s = min(self.wait_s * 2, CONFIRM_TIMEOUT_MAX_S)  # a slow database is not flooded
        pub.spool.rewind()
