// The dashboard page: state from /api/state, then a server-sent event a second; overview
// diagram, station figures, alarms (raised, acknowledged, shelved, cleared), notes, hatches,
// link health. The server checks every write; the buttons are only a convenience.
"use strict";
const App = (() => {
  const $ = id => document.getElementById(id);
  const S = {me: null, site: null, records: {alarms: [], notes: [], hatch_events: []}, latest: {}, overview: null, links: []};
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const fmt = (v, d = 2) => v == null ? "–" : Number(v).toFixed(d);
  const wall = w => w ? new Date(w * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC" : "";
  const isOp = () => S.me && S.me.role === "operator";
  const SYMBOL = {leak: "▲ ", tight: "✓ ", gaining: "▼ ", undecided: "… ", unknown: "? "};
  const FILL = {leak: "#f4c7c3", tight: "#c8e6c9", gaining: "#bbdefb", undecided: "#fff3c4", unknown: "#eceff1"};

  async function post(url, body) {
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": S.me.csrf},
                                body: JSON.stringify(body || {})});
    if (!r.ok) alert(`refused (${r.status}): ${(await r.json().catch(() => ({}))).error || ""}`);
    return r;
  }

  function chanLabel(ch) { return `ch${ch} ${S.site.channels[ch] || ""}`.trim(); }

  function diagram() {
    const svg = $("diagram"), segs = S.site.segments, v = S.overview.verdicts, hs = S.overview.hatches;
    const w = 190, gap = 40, parts = [];
    segs.forEach((s, i) => {
      const x = 10 + i * (w + gap), st = (v[s.name] || {state: "unknown", label: "NO DATA"});
      parts.push(`<g class="seg" data-segment="${esc(s.name)}" data-state="${st.state}">
        <rect x="${x}" y="30" width="${w}" height="100" rx="6" fill="${FILL[st.state]}" stroke="#1b1f24"/>
        <text x="${x + 10}" y="52" font-weight="600">${esc(s.name)}${st.alarm ? "  ⚠ alarm" : ""}</text>
        <text x="${x + 10}" y="74">${SYMBOL[st.state]}${esc(st.label)}</text>
        <text x="${x + 10}" y="96">${fmt(st.mmhg_per_day)} mmHg/day</text>
        <text x="${x + 10}" y="118">${st.pressure_pa == null ? "" : fmt(st.pressure_pa / 100, 2) + " hPa"}</text></g>`);
      const next = segs[i + 1];
      const h = next && S.site.hatches.find(h => (h.a === s.name && h.b === next.name) || (h.b === s.name && h.a === next.name));
      if (h) {
        const open = hs[h.name], hx = x + w;
        parts.push(`<g class="hatch" data-hatch="${esc(h.name)}" data-open="${open}">
          <rect x="${hx + 4}" y="${open ? 70 : 45}" width="${gap - 8}" height="${open ? 20 : 70}" fill="${open ? "#fff" : "#1b1f24"}" stroke="#1b1f24"/>
          <text x="${hx + gap / 2}" y="150" text-anchor="middle">${open ? "open" : "CLOSED"}</text></g>`);
      }
    });
    svg.setAttribute("viewBox", `0 0 ${20 + segs.length * (w + gap)} 170`);
    svg.setAttribute("aria-label", segs.map(s => `${s.name}: ${(v[s.name] || {label: "no data"}).label}` +
      `${(v[s.name] || {}).alarm ? ", alarm" : ""}`).join("; ") + "; " +
      S.site.hatches.map(h => `hatch ${h.name} ${hs[h.name] ? "open" : "closed"}`).join("; "));
    svg.innerHTML = parts.join("");
  }

  function station() {
    const st = S.overview.station, ttl = st.time_to_limit_s;
    const card = (id, title, val, sub) => `<div class="card" id="${id}"><div class="s">${title}</div><div class="v">${val}</div><div class="s">${sub}</div></div>`;
    $("station").innerHTML =
      card("kgday", "Station leak", `${fmt(st.kg_per_day, 3)} kg/day`, st.kg_per_day_ci95 ? `95%: ${fmt(st.kg_per_day_ci95[0], 3)} to ${fmt(st.kg_per_day_ci95[1], 3)}` : "") +
      card("mmhgday", "Station pressure loss", `${fmt(st.mmhg_per_day, 2)} mmHg/day`, st.mmhg_per_day_ci95 ? `95%: ${fmt(st.mmhg_per_day_ci95[0], 2)} to ${fmt(st.mmhg_per_day_ci95[1], 2)}` : "") +
      card("ttl", "Time to the limit", ttl == null ? (st.limit_pa == null ? "no limit set" : "not falling") : `${fmt(ttl / 3600, 1)} h`,
           st.limit_pa == null ? "leakmon dashboard --limit P" : `limit ${fmt(st.limit_pa / 100, 1)} hPa`);
    $("hatches").innerHTML = "<caption class='muted'>Hatches</caption>" + S.site.hatches.map(h => {
      const open = S.overview.hatches[h.name];
      return `<tr><th scope="row">${esc(h.name)}</th><td>${open ? "open" : "CLOSED"}</td><td>${isOp() ?
        `<button data-hatch="${esc(h.name)}" data-open="${!open}">${open ? "Close" : "Open"}</button>` : ""}</td></tr>`;
    }).join("");
  }

  function alarms() {
    const rows = S.records.alarms;
    const active = rows.filter(a => a.state === "raised" || a.state === "acknowledged");
    const unack = rows.filter(a => a.state === "raised").length;
    const b = $("banner");
    b.className = active.length ? "alarm" : "";
    b.textContent = active.length ? `⚠ ${active.length} active alarm(s), ${unack} not acknowledged` : "No active alarm";
    const act = a => !isOp() ? "" : [
      a.state === "raised" ? `<button data-alarm="${a.id}" data-act="ack">Acknowledge</button>` : "",
      a.state !== "cleared" ? `<button data-alarm="${a.id}" data-act="shelve">Shelve 1 h</button>` : "",
      a.state === "acknowledged" ? `<button data-alarm="${a.id}" data-act="clear">Clear</button>` : ""].join(" ");
    $("alarms").innerHTML = "<tr><th>#</th><th>State</th><th>Alarm</th><th>Device time</th><th>Acknowledged</th><th>Shelved until</th><th></th></tr>" +
      rows.map(a => `<tr class="alarm-row" data-id="${a.id}"><td>${a.id}</td>
        <td class="state state-${a.state}">${{raised: "⚠ RAISED", acknowledged: "✔ ACKNOWLEDGED", shelved: "⏸ SHELVED", cleared: "○ CLEARED"}[a.state]}</td>
        <td>${esc(a.text)}<div class="muted">${wall(a.raised_wall)}</div></td>
        <td>${Plots.fmtT(a.t_alarm_s)}${a.t_onset_s != null ? `<div class="muted">onset ${Plots.fmtT(a.t_onset_s)}</div>` : ""}</td>
        <td>${a.ack_by ? `${esc(a.ack_by)}<div class="muted">${wall(a.ack_wall)}</div>` : ""}</td>
        <td>${a.state === "shelved" ? `${wall(a.shelved_until_wall)} by ${esc(a.shelved_by)}` : ""}</td><td>${act(a)}</td></tr>`).join("");
  }

  function notes() {
    document.querySelectorAll(".op").forEach(e => { e.hidden = !isOp(); });
    $("notes").innerHTML = "<tr><th>Device time</th><th>Who</th><th>Note</th></tr>" + [
      ...S.records.notes.map(n => ({t: n.t_s, w: n.wall, who: n.user, text: n.text})),
      ...S.records.hatch_events.map(e => ({t: e.t_s, w: e.wall, who: e.user, text: `hatch ${e.hatch} ${e.open ? "opened" : "closed"}`}))]
      .sort((a, b) => b.w - a.w).map(n => `<tr><td>${Plots.fmtT(n.t)}</td><td>${esc(n.who)}</td><td>${esc(n.text)}<div class="muted">${wall(n.w)}</div></td></tr>`).join("");
  }

  function links() {
    $("links").innerHTML = "<tr><th>Node</th><th>Firmware</th><th>Sensors</th><th>Frames/s</th><th>Frames</th><th>Lost</th><th>CRC errors</th><th>Last seen</th></tr>" +
      S.links.map(l => `<tr><td>${esc(l.node)}</td><td>${esc(l.firmware)}</td><td>${esc(l.sensors.join(", "))}</td>
        <td>${fmt(l.frames_per_s, 1)}</td><td>${l.frames}</td><td>${l.lost_frames}</td><td>${l.crc_errors}</td>
        <td>${l.age_s == null ? "never" : fmt(l.age_s, 1) + " s ago"}</td></tr>`).join("");
  }

  function marks() {
    const m = [];
    for (const a of S.records.alarms) m.push({t: a.t_alarm_s, letter: "A", color: "#c0392b"});
    for (const n of S.records.notes) m.push({t: n.t_s, letter: "N", color: "#5b6470"});
    for (const e of S.records.hatch_events) m.push({t: e.t_s, letter: "H", color: "#1b1f24"});
    return m;
  }

  const shown = {};   // re-render a part only when its data changed: focus and keyboard stay put
  function renderIf(key, data, fn) {
    const j = JSON.stringify(data);
    if (shown[key] !== j) { shown[key] = j; fn(); }
  }

  function apply(msg) {
    if (msg.rows) Plots.addRows(msg.rows);
    for (const k of ["alarms", "notes", "hatch_events"]) if (msg[k]) S.records[k] = msg[k];
    if (msg.overview) S.overview = msg.overview;
    if (msg.latest) S.latest = msg.latest;
    if (msg.links) S.links = msg.links;
    $("clock").textContent = `device time ${Plots.fmtT(msg.t_s)}`;
    renderIf("overview", S.overview, () => { diagram(); station(); });
    renderIf("alarms", [S.records.alarms, S.me.role], alarms);
    renderIf("notes", [S.records.notes, S.records.hatch_events], notes);
    links();
    if (Plots.isLive()) Plots.draw(); else Plots.redraw();
  }

  function channelsShown() {
    const all = Object.keys(S.site.channels).map(Number);
    const v = $("chsel").value;
    return v === "all" ? all : [Number(v)];
  }

  function show(view) {
    document.querySelectorAll("nav [role=tab]").forEach(b => b.setAttribute("aria-selected", String(b.dataset.view === view)));
    document.querySelectorAll("main > section").forEach(s => { s.hidden = s.id !== "view-" + view; });
    if (view === "channels") Plots.rebuild(channelsShown());
    location.hash = view;
  }

  async function fixedRange(t0, t1) {
    $("live").setAttribute("aria-pressed", "false");
    $("t0").value = (t0 / 3600).toFixed(3); $("t1").value = (t1 / 3600).toFixed(3);
    return Plots.loadRange(t0, t1);
  }

  function wire() {
    const tabs = [...document.querySelectorAll("nav [role=tab]")];
    tabs.forEach((b, i) => {
      b.addEventListener("click", () => show(b.dataset.view));
      b.addEventListener("keydown", e => {   // arrow keys move between the views, as in any tab list
        const j = {ArrowRight: i + 1, ArrowLeft: i - 1}[e.key];
        if (j !== undefined) { const t = tabs[(j + tabs.length) % tabs.length]; t.focus(); show(t.dataset.view); }
      });
    });
    $("chsel").innerHTML = `<option value="all">all channels</option>` +
      Object.keys(S.site.channels).map(c => `<option value="${c}">${esc(chanLabel(c))}</option>`).join("");
    $("chsel").addEventListener("change", () => { Plots.rebuild(channelsShown()); const r = Plots.visible(); if (r) Plots.loadRange(...r); });
    $("win").addEventListener("change", () => Plots.setWindow(Number($("win").value)));
    $("live").addEventListener("click", () => { $("live").setAttribute("aria-pressed", "true"); Plots.live(); $("zoominfo").textContent = ""; });
    $("show").addEventListener("click", () => fixedRange(3600 * Number($("t0").value), 3600 * Number($("t1").value)));
    $("csv").addEventListener("click", () => {
      const r = Plots.visible() || [-1e12, 1e12];
      location.href = `/api/export.csv?ch=${channelsShown().join(",")}&t0=${r[0]}&t1=${r[1]}`;
    });
    $("logout").addEventListener("click", async () => { await post("/logout"); location.href = "/login"; });
    document.body.addEventListener("click", async e => {
      const t = e.target.closest("button[data-alarm], button[data-hatch]");
      if (!t) return;
      if (t.dataset.alarm) await post(`/api/alarms/${t.dataset.alarm}/${t.dataset.act}`, t.dataset.act === "shelve" ? {minutes: 60} : {});
      else await post(`/api/hatches/${encodeURIComponent(t.dataset.hatch)}`, {open: t.dataset.open === "true"});
    });
    $("noteform").addEventListener("submit", async e => {
      e.preventDefault();
      if ($("note").value.trim()) { await post("/api/notes", {text: $("note").value}); $("note").value = ""; }
    });
  }

  async function start() {
    S.me = await (await fetch("/api/me")).json();
    $("who").textContent = `${S.me.name} (${S.me.role})`;
    const st = await (await fetch("/api/state")).json();
    S.site = st.site; $("site").textContent = `${st.site.name}: ${st.source}`;
    Plots.setMarks(marks);
    wire();
    apply(st);
    show((location.hash || "#overview").slice(1));
    const es = new EventSource("/api/events");
    es.onmessage = e => apply(JSON.parse(e.data));
  }
  document.addEventListener("DOMContentLoaded", start);
  return {chanLabel, fixedRange, S};
})();
