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
from leakmon.fleet.mqttclient import connect, make_client
from leakmon.fleet.spool import Spool

RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
CONFIRM_TIMEOUT_MAX_S = 300.0


def _log(msg: str) -> None:
    print(f"leakmon: {msg}", file=sys.stderr, flush=True)


class Publisher:
    """An Outbox (leakmon.fleet.edge) on an MQTT broker, with a spool in front of it."""

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
        c = make_client(self.addr, self._password, f"leakmon-gw-{self.gateway_id}", clean_session=True,
                        ca_file=self.ca_file, inflight=self.window)
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

    def _key(self, topic: str, payload: bytes) -> tuple[str, int, int] | None:
        """(topic, boot, seq) of an enveloped message: what serve's confirmation names."""
        if len(payload) < envelope.HEADER.size:
            return None
        _m, _v, _f, boot, seq, _t, _n = envelope.HEADER.unpack_from(payload, 0)
        return topic, boot, seq

    def _serve(self, c: mqtt.Client) -> None:
        """Publish from the spool while connected; returns when the connection is lost.

        A record leaves the spool when serve confirms it stored it (leakmon/<node>/stored),
        not at the broker's PUBACK: a broker may acknowledge a message and still lose it
        (Mosquitto 2.0 forgets shared subscriptions across a restart; a dead consumer's
        queue waits for it). Records not confirmed within confirm_timeout_s are sent again.
        """
        connected_us = time.time_ns() // 1000
        mids: dict[int, int] = {}  # paho message id -> spool index, until PUBACK
        waiting: dict[tuple[str, int, int], int] = {}  # key -> spool index, until serve confirms
        sent_at: dict[int, float] = {}

        def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any = None, props: Any = None) -> None:
            index = mids.pop(mid, None)
            if index is not None and not self.confirm:
                self.spool.ack(index)
                sent_at.pop(index, None)

        def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            if msg.topic == homeassistant.STATUS_TOPIC:
                self._on_ha_status(bytes(msg.payload))
                return
            try:
                conf = json.loads(msg.payload)
                topic = msg.topic[: -len("stored")] + str(conf["kind"])
                for lo, hi in conf["seqs"]:
                    for seq in range(int(lo), int(hi) + 1):
                        index = waiting.pop((topic, int(conf["boot"]), seq), None)
                        if index is not None:
                            self.spool.ack(index)
                            sent_at.pop(index, None)
            except (ValueError, KeyError, TypeError) as e:
                self.log(f"ignored a malformed confirmation on {msg.topic}: {e}")

        c.on_publish = on_publish
        c.on_message = on_message
        self.spool.rewind()
        self._birth(c)
        subscribed: set[str] = set()
        last_watermark, wait_s = self.spool.watermark, self.confirm_timeout_s
        if self.home_assistant:
            c.subscribe(homeassistant.STATUS_TOPIC, qos=1)
        self.connected.set()
        while True:
            if self._dirty:
                self._publish_retained(c, only_changed=True)
            room = self.window - (len(waiting) if self.confirm else len(mids))
            for rec in self.spool.read(room) if room > 0 else []:
                payload = rec.payload
                if rec.spooled_us < connected_us and rec.topic.endswith(tuple(envelope.STORED_KINDS)):
                    payload = envelope.mark_historical(payload)
                key = self._key(rec.topic, payload) if self.confirm else None
                if self.confirm and key is None:
                    self.spool.ack(rec.index)  # nothing could confirm it
                    continue
                node_stored = rec.topic.rsplit("/", 1)[0] + "/stored"
                if self.confirm and node_stored not in subscribed:
                    c.subscribe(node_stored, qos=1)
                    subscribed.add(node_stored)
                info = c.publish(rec.topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                mids[info.mid] = rec.index
                sent_at[rec.index] = time.monotonic()
                if key is not None:
                    waiting[key] = rec.index
                self.sent += 1
            oldest = sent_at.get(self.spool.watermark)
            if self.spool.watermark != last_watermark:  # confirmations flow: back to the short timeout
                last_watermark, wait_s = self.spool.watermark, self.confirm_timeout_s
            if self.confirm and oldest is not None and time.monotonic() - oldest > wait_s:
                self.log(f"{len(waiting)} messages not confirmed stored within {wait_s:g} s; sending them again")
                waiting.clear()
                sent_at.clear()
                self.resent += 1
                wait_s = min(wait_s * 2, CONFIRM_TIMEOUT_MAX_S)  # a slow database is not flooded
                self.spool.rewind()
            if self._stop.is_set() and (not mids or not self.connected.is_set()):
                self._goodbye(c)
                return
            if c.loop(timeout=0.01) != mqtt.MQTT_ERR_SUCCESS:
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
            c.loop(timeout=0.01)
        c.disconnect()
        c.loop(timeout=0.05)
