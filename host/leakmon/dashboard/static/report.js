// A printable report: the station, each segment's verdict, the rate plot, alarms and notes.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const $ = id => document.getElementById(id), f = (v, d = 2) => v == null ? "–" : Number(v).toFixed(d);
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);
  const w = t => t ? new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "";
  $("print").addEventListener("click", () => window.print());
  const s = await (await fetch("/api/state")).json(), st = s.overview.station;
  $("site").textContent = s.site.name;
  $("when").textContent = `${s.source}; made ${w(Date.now() / 1000)}; device time ${f((s.t_s || 0) / 3600, 2)} h`;
  $("station").innerHTML = `<tr><th>Mass loss</th><td>${f(st.kg_per_day, 3)} kg/day (95%: ${st.kg_per_day_ci95 ? st.kg_per_day_ci95.map(v => f(v, 3)).join(" to ") : "–"})</td></tr>
    <tr><th>Pressure loss</th><td>${f(st.mmhg_per_day)} mmHg/day</td></tr>
    <tr><th>Time to the limit</th><td>${st.time_to_limit_s == null ? "–" : f(st.time_to_limit_s / 3600, 1) + " h"}</td></tr>`;
  $("segments").innerHTML = "<tr><th>Segment</th><th>Verdict</th><th>mmHg/day</th></tr>" + Object.entries(s.overview.verdicts)
    .map(([n, v]) => `<tr><td>${esc(n)}</td><td>${esc(v.label)}</td><td>${f(v.mmhg_per_day)}</td></tr>`).join("");
  $("alarms").innerHTML = "<tr><th>#</th><th>Alarm</th><th>State</th><th>Acknowledged</th></tr>" + s.alarms
    .map(a => `<tr><td>${a.id}</td><td>${esc(a.text)}</td><td>${a.state}</td><td>${esc(a.ack_by || "")} ${w(a.ack_wall)}</td></tr>`).join("");
  $("notes").innerHTML = "<tr><th>When</th><th>Who</th><th>What</th></tr>" + [...s.notes.map(n => [n.wall, n.user, n.text]),
    ...s.hatch_events.map(e => [e.wall, e.user, `hatch ${e.hatch} ${e.open ? "opened" : "closed"}`])]
    .sort((a, b) => a[0] - b[0]).map(r => `<tr><td>${w(r[0])}</td><td>${esc(r[1])}</td><td>${esc(r[2])}</td></tr>`).join("");
  const k = 86400 / 133.322387415, chans = Object.keys(s.rows);
  const from = c => s.rows[c].t_s.findIndex(t => t >= s.rows[c].t_s[0] + 300);  // skip the first minutes' noise
  const data = uPlot.join(chans.map(c => [s.rows[c].t_s.slice(Math.max(from(c), 0)),
    s.rows[c].leak_rate_pa_per_s.slice(Math.max(from(c), 0)).map(v => v * k)]));
  new uPlot({width: 800, height: 260, scales: {x: {time: false}}, axes: [{label: "device time (s)"}, {size: 60}],
    series: [{}, ...chans.map((c, i) => ({label: `ch${c} ${s.site.channels[c] || ""}`, width: 1.5,
      stroke: ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"][i % 4], dash: [[], [6, 3], [2, 2], [8, 2, 2, 2]][i % 4]}))]},
    chans.length ? data : [[]], $("rate"));
});
