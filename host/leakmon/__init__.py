"""leakmon: leak monitoring for pressurized volumes.

The node firmware streams raw sensor counts in framed packets (PROTOCOL.md); this
package decodes them, compensates them in float64 and turns them into leak rates.
The names below are what a program needs; they load on first use, so `import leakmon`
stays light::

    import leakmon

    with leakmon.open_node("/dev/ttyACM0") as node:       # any pyserial URL
        node.handshake()
        with leakmon.RecordingWriter("run.lkr") as rec:
            node.rx_taps.append(rec.write)                  # every byte, as received
            tracker = leakmon.LeakTracker()
            for item in node.read(timeout_s=2.0):
                if isinstance(item, leakmon.SampleBlock) and (u := tracker.add(item)):
                    print(u.channel, u.leak_rate_pa_per_s, u.leak_rate_ci95_low_pa_per_s)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "open_node": "leakmon.link.node",
    "Node": "leakmon.link.node",
    "SampleBlock": "leakmon.wire.stream",
    "NodeStream": "leakmon.wire.stream",
    "RecordingWriter": "leakmon.link.recording",
    "open_recording": "leakmon.link.recording",
    "play": "leakmon.link.recording",
    "read_samples": "leakmon.link.recording",
    "LeakTracker": "leakmon.analysis.tracker",
    "LeakUpdate": "leakmon.analysis.tracker",
    "estimate_leak": "leakmon.analysis.estimate",
    "LeakEstimate": "leakmon.analysis.estimate",
    "LeakmonError": "leakmon.errors",
}
__all__ = [
    "LeakEstimate", "LeakTracker", "LeakUpdate", "LeakmonError", "Node", "NodeStream", "RecordingWriter",
    "SampleBlock", "__version__", "estimate_leak", "open_node", "open_recording", "play", "read_samples",
]

if TYPE_CHECKING:
    from leakmon.analysis.estimate import LeakEstimate, estimate_leak
    from leakmon.analysis.tracker import LeakTracker, LeakUpdate
    from leakmon.errors import LeakmonError
    from leakmon.link.node import Node, open_node
    from leakmon.link.recording import (
        RecordingWriter,
        open_recording,
        play,
        read_samples,
    )
    from leakmon.wire.stream import NodeStream, SampleBlock


def __getattr__(name: str) -> Any:
    """The public names, imported when first asked for (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leakmon' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
