"""What `leakmon flash --mqtt` puts on a board with a network (Pico W, ESP32, or the
virtual board through the unix port's sockets) so that it publishes its frames straight
to the broker (firmware/mqttlink.py):

- micropython-lib's MQTT client, `umqtt/simple.py`, from the folder scripts/setup.sh
  fills from PyPI (`.venv/mplib`), or `--mqtt-lib DIR`; never shipped in this repository;
- config.json with an "mqtt" section (broker host and port, the board's MQTT user, its
  node id) and, for a WLAN board, a "wlan" section (SSID);
- the secrets in files of their own on the board, `mqtt.pw` and `wlan.key`: not in
  config.json, never printed (flash reports their names and sizes only).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from leakmon.deploy.flash import Artifact
from leakmon.errors import ConfigError

UMQTT = "umqtt/simple.py"
PASSWORD_FILE = "mqtt.pw"
WLAN_KEY_FILE = "wlan.key"


@dataclass(frozen=True)
class BoardNetwork:
    host: str
    port: int
    user: str
    node_id: str
    password: str
    wlan_ssid: str | None = None
    wlan_key: str | None = None

    def __repr__(self) -> str:  # never the secrets, whatever prints this
        return f"BoardNetwork({self.user}@{self.host}:{self.port}, node {self.node_id}, wlan {self.wlan_ssid})"


def default_lib_dir() -> Path:
    """Where scripts/setup.sh puts micropython-lib packages: <venv>/mplib."""
    return Path(sys.prefix) / "mplib"


def umqtt_source(lib_dir: Path | None = None) -> bytes:
    path = (lib_dir or default_lib_dir()) / UMQTT
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"no MQTT client for the board at {path} ({e.strerror or e}): run scripts/setup.sh, "
                          "or give --mqtt-lib DIR holding umqtt/simple.py (the PyPI package "
                          "micropython-umqtt.simple)") from e


def network_files(config: bytes, net: BoardNetwork, lib_dir: Path | None = None) -> tuple[bytes, list[Artifact]]:
    """(config.json with the network sections, the other files the board needs)."""
    try:
        cfg = json.loads(config)
    except ValueError as e:
        raise ConfigError(f"the node configuration is not JSON: {e}") from e
    if not net.password or "\n" in net.password:
        raise ConfigError("the board's MQTT password must be one non-empty line")
    cfg["mqtt"] = {"host": net.host, "port": net.port, "user": net.user, "node_id": net.node_id,
                   "password_file": PASSWORD_FILE}
    extra = [Artifact(UMQTT, umqtt_source(lib_dir)), Artifact(PASSWORD_FILE, (net.password + "\n").encode())]
    if net.wlan_ssid is not None:
        if not net.wlan_key or "\n" in net.wlan_key:
            raise ConfigError("the WLAN key must be one non-empty line (LEAKMON_WLAN_KEY or --wlan-key-file)")
        cfg["wlan"] = {"ssid": net.wlan_ssid, "key_file": WLAN_KEY_FILE}
        extra.append(Artifact(WLAN_KEY_FILE, (net.wlan_key + "\n").encode()))
    else:
        cfg.pop("wlan", None)
    return json.dumps(cfg).encode(), extra


def shipped_config() -> bytes:
    from importlib import resources

    return (resources.files("leakmon.firmware") / "config.json").read_bytes()
