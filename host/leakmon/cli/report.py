"""Pictures and pages of an analysis: pressure, temperature and leak rate over time
with the 95% interval and alarms marked, for someone who never saw the tool.

Rendering only: the numbers come from leakmon.analysis via leakmon.cli.commands.analyze.
matplotlib is optional (pip install 'leakmon[report]').
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leakmon import units
from leakmon.analysis.cusum import CusumResult
from leakmon.errors import LeakmonError


@dataclass
class ChannelTrace:
    """One sensor's series and its sliding-window leak rate (positive = losing gas)."""

    channel: int
    label: str
    t_s: np.ndarray
    pressure_pa: np.ndarray
    temperature_k: np.ndarray
    rate_t_s: np.ndarray
    leak_rate_pa_per_s: np.ndarray
    ci95_low_pa_per_s: np.ndarray
    ci95_high_pa_per_s: np.ndarray
    alarm_t_s: list[float] = field(default_factory=list)
    cusum: CusumResult | None = None


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise LeakmonError("plots need matplotlib: pip install 'leakmon[report]'") from e
    return plt


def plot_png(traces: list[ChannelTrace], title: str, pressure_unit: str = "hPa") -> bytes:
    """Three stacked panels sharing the time axis, as PNG bytes."""
    plt = _pyplot()
    fig, (ax_p, ax_t, ax_r) = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True,
                                           gridspec_kw={"height_ratios": [2, 1, 2]})
    for tr in traces:
        ax_p.plot(tr.t_s, units.pressure_from_pa(tr.pressure_pa, pressure_unit), lw=0.8, label=tr.label)
        ax_t.plot(tr.t_s, tr.temperature_k - 273.15, lw=0.8, label=tr.label)
        rate = units.pa_per_s_to_mmhg_per_day(tr.leak_rate_pa_per_s)
        lo = units.pa_per_s_to_mmhg_per_day(tr.ci95_low_pa_per_s)
        hi = units.pa_per_s_to_mmhg_per_day(tr.ci95_high_pa_per_s)
        line = ax_r.plot(tr.rate_t_s, rate, lw=1.0, label=f"{tr.label} leak rate")[0]
        ax_r.fill_between(tr.rate_t_s, lo, hi, color=line.get_color(), alpha=0.25, lw=0,
                          label=f"{tr.label} 95% interval")
        for t_alarm in tr.alarm_t_s:
            for ax in (ax_p, ax_t, ax_r):
                ax.axvline(t_alarm, color="crimson", ls="--", lw=1)
            ax_r.annotate("leak alarm", (t_alarm, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(4, -12), textcoords="offset points", color="crimson", fontsize=9)
    ax_r.axhline(0, color="0.4", lw=0.6)
    ax_p.set_ylabel(f"pressure ({pressure_unit})")
    ax_t.set_ylabel("gas temperature (°C)")
    ax_r.set_ylabel("leak rate (mmHg/day)\npositive = losing gas")
    ax_r.set_xlabel("device time (s)")
    ax_p.set_title(title)
    for ax in (ax_p, ax_t, ax_r):
        ax.grid(True, alpha=0.3)
    ax_p.legend(loc="best", fontsize=8)
    ax_r.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def html_page(title: str, summary_rows: list[dict[str, str]], png: bytes, notes: list[str]) -> str:
    """A self-contained page: a summary table, the plot inline, and how to read it."""
    cols = list(summary_rows[0]) if summary_rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in cols) + "</tr>" for r in summary_rows)
    img = base64.b64encode(png).decode()
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:4px 10px;text-align:right}}
th{{background:#eee}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Summary</h2><table><tr>{head}</tr>{body}</table>
<h2>Pressure, temperature and leak rate</h2><img alt="plots" src="data:image/png;base64,{img}">
<h2>How to read this</h2><ul>{items}</ul>
</body></html>
"""


def write(path: Path, data: bytes | str) -> None:
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as e:
        raise LeakmonError(f"cannot write {path}: {e.strerror or e}") from e
