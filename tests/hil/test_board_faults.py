"""Board faults written in a scenario: the board resets at a device time, and later
its cable is pulled for a while; the host sees both and carries on."""

from __future__ import annotations

import time

import pytest
from leakmon import wire
from leakmon.errors import LeakmonError
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.wire import messages as protocol
from leakmon.wire.stream import SampleBlock

pytestmark = pytest.mark.hil

TOML = (scenario.resolve("steady_leak").read_text()
        + "\n[board]\nreset_at_s = 3.0\ndisconnect_at_s = 6.0\ndisconnect_s = 0.5\n")


def test_scenario_resets_the_board_then_pulls_its_cable(micropython, tmp_path):
    sc = scenario.loads(TOML, "faults.toml")
    assert sc.sim_config(1, 0)["board"] == {"reset_at_s": 3.0, "disconnect_at_s": 6.0, "disconnect_s": 0.5}
    link = tmp_path / "dev"
    with VirtualBoard(sc, seed=2, speed=10, link=link) as board, Node.open(str(link)) as node:
        node.handshake()
        node.command(wire.C_PING)  # the node answers in order: its boot and INFO replies are in
        node.read()  # and dropped
        boots, t_max, lost = 0, 0.0, False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not lost:
            try:
                for item in node.read():
                    boots += isinstance(item, protocol.Event) and item.name == "boot"
                    if isinstance(item, SampleBlock):
                        t_max = max(t_max, float(item.t_s[-1]))
            except LeakmonError:
                lost = True  # the cable: the open port died
        assert boots == 1 and lost, (boots, lost)
    # ...and after the pull, the device comes back on its link and the node answers.
        again = None
        deadline = time.monotonic() + 10
        while again is None and time.monotonic() < deadline:
            try:
                again = Node.open(str(link))
            except LeakmonError:
                time.sleep(0.1)
        assert again is not None
        with again:
            assert again.handshake(timeout_s=5).board == "sim"
