"""Home Assistant MQTT discovery (`gateway --ha-discovery`): a device per node, and per
channel a leak-rate sensor and a pressure sensor that Home Assistant finds by itself.

Config: retained JSON on homeassistant/sensor/<node_id>/<object_id>/config, published
again whenever Home Assistant says homeassistant/status = online (it lost them). State:
plain JSON on leakmon/<node_id>/ha/ch<k>, retained, the latest estimate of the channel;
availability follows leakmon/<node_id>/state and the gateway's
state (its last will).
"""

from __future__ import annotations

import json
from typing import Any

from leakmon.fleet import envelope
from leakmon.wire import messages

PREFIX = "homeassistant"
STATUS_TOPIC = f"{PREFIX}/status"
# (object suffix, field of the estimate, unit, device class or None)
SENSORS = (
    ("leak_rate", "leak_rate_pa_per_s", "Pa/s", None),
    ("pressure", "pressure_pa", "Pa", "pressure"),
)


def state_topic(node_id: str, channel: int) -> str:
    return f"{envelope.ROOT}/{node_id}/ha/ch{channel}"


def discovery(node_id: str, hello: messages.Hello, gateway_id: str = "") -> list[tuple[str, bytes]]:
    """(topic, retained payload) of every sensor of a node."""
    device = {"identifiers": [f"leakmon_{node_id}"], "name": f"leakmon {node_id}", "manufacturer": "leakmon",
              "model": hello.board, "sw_version": hello.fw_version}
    out = []
    for c in hello.channels:
        for suffix, field, unit, device_class in SENSORS:
            obj = f"ch{c.channel}_{suffix}"
            cfg: dict[str, Any] = {
                "name": f"ch{c.channel} {suffix.replace('_', ' ')}",
                "unique_id": f"leakmon_{node_id}_{obj}",
                "object_id": f"leakmon_{node_id}_{obj}",
                "state_topic": state_topic(node_id, c.channel),
                "value_template": f"{{{{ value_json.{field} }}}}",
                "unit_of_measurement": unit,
                "state_class": "measurement",
                # the node's state, and its gateway's (whose last will marks it offline)
                "availability": [{"topic": t, "value_template": "{{ value_json.state }}",
                                  "payload_available": "online", "payload_not_available": "offline"}
                                 for t in (envelope.topic(node_id, "state"),
                                           *([envelope.gateway_state_topic(gateway_id)] if gateway_id else []))],
                "availability_mode": "all",
                "device": device,
            }
            if device_class:
                cfg["device_class"] = device_class
            out.append((f"{PREFIX}/sensor/{node_id}/{obj}/config", json.dumps(cfg).encode()))
    return out


def state(row: dict[str, Any]) -> bytes:
    return json.dumps({k: row.get(k) for k in ("t_s", "leak_rate_pa_per_s", "pressure_pa", "temperature_k",
                                                "leak_rate_mmhg_per_day", "alarm_t_s")}).encode()
