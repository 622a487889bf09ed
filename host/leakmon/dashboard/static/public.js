// The public status page: a status word, the hourly rate trend, the last update. Read-only.
"use strict";
let chart = null;
async function refresh() {
  const s = await (await fetch("/api/public")).json();
  document.getElementById("status").textContent = s.status === "normal" ? "✓ Normal" : "⚠ " + s.status;
  document.getElementById("updated").textContent = s.last_update_utc || "never";
  const x = s.rate_trend_mmhg_per_day_hourly.map(p => p[0]), y = s.rate_trend_mmhg_per_day_hourly.map(p => p[1]);
  if (!chart) {
    chart = new uPlot({width: 600, height: 220, scales: {x: {time: false}},
      series: [{label: "hour"}, {label: "mmHg/day", stroke: "#1f77b4", width: 2, points: {show: true}}],
      axes: [{label: "device time (h)"}, {size: 60}]}, [x, y], document.getElementById("trend"));
  } else chart.setData([x, y]);
}
document.addEventListener("DOMContentLoaded", () => { refresh(); setInterval(refresh, 60000); });
