"""Test helper: the table form of a list of SampleBlocks, to compare the live form with export's."""

from __future__ import annotations

import numpy as np
from leakmon.wire.stream import SampleBlock, SampleTable


def table_from_blocks(blocks: list[SampleBlock]) -> SampleTable:
    """The SampleTable export would write for these blocks (frame, then channel, then row)."""
    if not blocks:
        return SampleTable.empty()
    n = [len(b.t_s) for b in blocks]
    return SampleTable(np.concatenate([b.t_s for b in blocks]),
                       np.repeat(np.array([b.channel for b in blocks], np.uint8), n),
                       np.concatenate([b.pressure_pa for b in blocks]),
                       np.concatenate([b.temperature_k for b in blocks]),
                       np.repeat(np.array([b.seq for b in blocks], np.uint16), n))
