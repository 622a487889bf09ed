// Per-channel plots with uPlot: pressure, temperature, and the leak rate with its 95% band.
// Live mode shows the rows the event stream brings; a fixed range asks the server, which
// decimates the raw samples (min/max per pixel column) to the plot's width.
"use strict";
const Plots = (() => {
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const DASH = [[], [6, 3], [2, 2], [8, 2, 2, 2]];
  const MMHG_DAY = 86400 / 133.322387415;
  const rows = {};          // channel -> arrays of the live update rows
  let charts = [], chans = [], fixed = null, win = 3600, getMarks = () => [], rateRange = null;

  const fmtT = s => { if (s == null) return ""; const neg = s < 0; s = Math.abs(Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
    return (neg ? "-" : "") + h + ":" + String(m).padStart(2, "0") + ":" + String(x).padStart(2, "0"); };

  function addRows(msgRows) {
    for (const [ch, r] of Object.entries(msgRows)) {
      const d = rows[ch] || (rows[ch] = {t: [], p: [], k: [], r: [], lo: [], hi: []});
      d.t.push(...r.t_s); d.p.push(...r.pressure_pa); d.k.push(...r.temperature_k);
      d.r.push(...r.leak_rate_pa_per_s); d.lo.push(...r.ci95_low_pa_per_s); d.hi.push(...r.ci95_high_pa_per_s);
      const cut = d.t.length - 86400;   // at most a day of rows a channel
      if (cut > 0) for (const k of Object.keys(d)) d[k].splice(0, cut);
    }
  }

  function annotate(u) {   // alarm, note and hatch markers: a line and a letter (not colour alone)
    const ctx = u.ctx, [x0, x1] = [u.scales.x.min, u.scales.x.max];
    ctx.save(); ctx.font = "bold 12px sans-serif"; ctx.textAlign = "center";
    for (const m of getMarks()) {
      if (m.t == null || m.t < x0 || m.t > x1) continue;
      const x = Math.round(u.valToPos(m.t, "x", true));
      ctx.strokeStyle = m.color; ctx.fillStyle = m.color; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.fillText(m.letter, x, u.bbox.top + 12);
    }
    ctx.restore();
  }

  function onSelect(u) {
    if (u.select.width < 5) return;
    const t0 = u.posToVal(u.select.left, "x"), t1 = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
    App.fixedRange(t0, t1);
  }

  function make(el, title, yLabel, band) {
    const series = [{label: "t", value: (u, v) => fmtT(v)}];
    const bands = [];
    chans.forEach((ch, i) => {
      const st = {stroke: COLORS[i % COLORS.length], dash: DASH[i % DASH.length], width: 1.5, spanGaps: true};
      series.push({label: App.chanLabel(ch), ...st});
      if (band) {
        const n = series.length;
        series.push({label: "95% low", stroke: st.stroke, width: 0, spanGaps: true},
                    {label: "95% high", stroke: st.stroke, width: 0, spanGaps: true});
        bands.push({series: [n + 1, n], fill: st.stroke + "33"});
      }
    });
    const width = Math.max(el.clientWidth || 900, 300);
    // The rate's y range from its 2nd to 98th percentile: the first seconds' wild estimates
    // would otherwise flatten the rest.
    const y = band ? {range: (u, lo, hi) => rateRange || [lo, hi]} : {};
    return new uPlot({title, width, height: 170, series, bands, scales: {x: {time: false}, y},
      axes: [{values: (u, vs) => vs.map(fmtT)}, {label: yLabel, size: 70}],
      cursor: {sync: {key: "lm"}, drag: {x: true, y: false, setScale: false}},
      hooks: {draw: [annotate], setSelect: [onSelect]}}, null, el);
  }

  function rebuild(channels) {
    chans = channels;
    const host = document.getElementById("plots");
    charts.forEach(c => c.destroy()); host.textContent = "";
    const mk = () => { const d = document.createElement("div"); d.className = "plot"; host.appendChild(d); return d; };
    const names = ["pressure", "temperature", "leak-rate"];
    charts = [make(mk(), "Pressure", "hPa", false), make(mk(), "Temperature", "°C", false),
              make(mk(), "Leak rate with its 95% band", "mmHg/day", true)];
    charts.forEach((c, i) => {   // PNG of a plot: the canvas as it is drawn
      const b = document.createElement("button");
      b.textContent = `PNG of the ${names[i]} plot`; b.className = "png"; b.dataset.plot = names[i];
      b.addEventListener("click", () => { const a = document.createElement("a");
        a.href = png(i); a.download = `leakmon-${names[i]}.png`; a.click(); });
      c.root.after(b);
    });
    draw();
  }

  function setAll(pt, kt, rt) {   // pt/kt: [[t, v] per channel]; rt: [[t, r, lo, hi] per channel]
    const j = t => t.length ? uPlot.join(t) : [[]];
    const pad = (d, n) => d.length >= n ? d : d.concat(Array.from({length: n - d.length}, () => []));
    charts[0].setData(pad(j(pt), chans.length + 1));
    charts[1].setData(pad(j(kt), chans.length + 1));
    const rates = rt.flatMap(r => r[1]).filter(Number.isFinite).sort((a, b) => a - b);
    if (rates.length > 10) {
      const lo = rates[Math.floor(rates.length * 0.02)], hi = rates[Math.floor(rates.length * 0.98)];
      const pad_ = Math.max((hi - lo) * 0.3, 1e-3);
      rateRange = [lo - pad_, hi + pad_];
    } else rateRange = null;
    charts[2].setData(pad(j(rt), 3 * chans.length + 1));
  }

  function draw() {
    if (!charts.length || fixed) return;
    let tmax = -Infinity;
    for (const ch of chans) { const d = rows[ch]; if (d && d.t.length) tmax = Math.max(tmax, d.t[d.t.length - 1]); }
    const pt = [], kt = [], rt = [];
    for (const ch of chans) {
      const d = rows[ch] || {t: [], p: [], k: [], r: [], lo: [], hi: []};
      let i = 0; while (i < d.t.length && d.t[i] < tmax - win) i++;
      const t = d.t.slice(i);
      pt.push([t, d.p.slice(i).map(v => v / 100)]);
      kt.push([t, d.k.slice(i).map(v => v - 273.15)]);
      rt.push([t, ...[d.r, d.lo, d.hi].map(a => a.slice(i).map(v => v * MMHG_DAY))]);
    }
    setAll(pt, kt, rt);
  }

  function png(i) { return charts[i].ctx.canvas.toDataURL("image/png"); }

  async function loadRange(t0, t1) {
    fixed = [t0, t1];
    const width = Math.round(charts[0] ? charts[0].bbox.width / devicePixelRatio : 1000);
    const t_start = performance.now();
    const res = await Promise.all(chans.map(ch =>
      fetch(`/api/range?ch=${ch}&t0=${t0}&t1=${t1}&width=${width}`).then(r => r.json())));
    const ms = performance.now() - t_start;
    const pt = [], kt = [], rt = [];
    let n = 0, server = 0;
    for (const r of res) {
      n += r.raw.t_s.length; server = Math.max(server, r.server_ms);
      pt.push([r.raw.t_s, r.raw.pressure_pa.map(v => v / 100)]);
      kt.push([r.raw.t_s, r.raw.temperature_k.map(v => v - 273.15)]);
      const u = r.updates;
      rt.push([u.t_s, ...[u.leak_rate_pa_per_s, u.ci95_low_pa_per_s, u.ci95_high_pa_per_s].map(a => a.map(v => v * MMHG_DAY))]);
    }
    setAll(pt, kt, rt);
    charts.forEach(c => c.setScale("x", {min: t0, max: t1}));
    const info = document.getElementById("zoominfo");
    info.textContent = `range ${fmtT(t0)} to ${fmtT(t1)}: ${n} points in ${ms.toFixed(0)} ms (server ${server.toFixed(0)} ms)`;
    info.dataset.ms = ms.toFixed(1);
    return ms;
  }

  return {addRows, rebuild, draw, loadRange, fmtT, rows, MMHG_DAY, COLORS, png,
          live() { fixed = null; draw(); }, isLive: () => !fixed, visible: () => fixed || null,
          setWindow(s) { win = s; draw(); }, setMarks(f) { getMarks = f; },
          redraw() { charts.forEach(c => c.redraw(false)); }};
})();
