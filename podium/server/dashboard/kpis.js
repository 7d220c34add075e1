// Business KPIs (#/kpis): the figures workflows report with ctx.metric(...) (a retention rate,
// actions taken, revenue kept), over time. One chart per figure, one line per workflow and label
// set: a gauge's values as reported, a counter's running total. Label values come from run data:
// escaped.
"use strict";

(() => {
  const { api, esc, when, $ } = Podium;
  const COLORS = ["#6ea8ff", "#3fb97c", "#e3a93b", "#b58cff", "#e5534b", "#4fd1c5", "#f08bd0", "#c9d1e3"];
  const num = (v) => (Math.abs(v) >= 1000 ? v.toLocaleString(undefined, { maximumFractionDigits: 0 }) : Number(v.toPrecision(4)).toString());
  const day = (ts) => new Date(ts * 1000).toISOString().slice(5, 10);

  function chart(series, since, until) {
    const w = 440, h = 190, l = 48, r = 10, t = 10, b = 24;
    const all = series.flatMap((s) => s.points);
    let lo = Math.min(...all.map((p) => p.v)), hi = Math.max(...all.map((p) => p.v));
    if (lo >= 0 && lo < hi * 0.5) lo = 0; // from zero, unless the values sit in a narrow band (a rate near 0.9)
    if (hi === lo) { hi += Math.abs(hi) * 0.1 || 1; lo -= Math.abs(lo) * 0.1; }
    const x0 = Math.min(since, ...all.map((p) => p.ts)), x1 = Math.max(until, ...all.map((p) => p.ts));
    const X = (ts) => l + ((ts - x0) / (x1 - x0 || 1)) * (w - l - r);
    const Y = (v) => t + (1 - (v - lo) / (hi - lo)) * (h - t - b);
    const ticks = [lo, (lo + hi) / 2, hi];
    const xt = [x0, (x0 + x1) / 2, x1];
    return `<svg class="chart line-chart" viewBox="0 0 ${w} ${h}">
      ${ticks.map((v) => `<line class="grid" x1="${l}" x2="${w - r}" y1="${Y(v)}" y2="${Y(v)}"/><text x="${l - 6}" y="${Y(v) + 4}" text-anchor="end">${esc(num(v))}</text>`).join("")}
      ${xt.map((ts, i) => `<text x="${X(ts)}" y="${h - 8}" text-anchor="${["start", "middle", "end"][i]}">${esc(day(ts))}</text>`).join("")}
      ${series.map((s, i) => `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="2" points="${s.points.map((p) => `${X(p.ts).toFixed(1)},${Y(p.v).toFixed(1)}`).join(" ")}"/>
        ${s.points.map((p) => `<circle cx="${X(p.ts).toFixed(1)}" cy="${Y(p.v).toFixed(1)}" r="3" fill="${COLORS[i % COLORS.length]}"><title>${esc(s.name)}: ${esc(num(p.v))} at ${esc(when(p.ts))}</title></circle>`).join("")}`).join("")}
    </svg>`;
  }

  Podium.page("kpis", async (view, params) => {
    const days = params.get("days") || "30";
    const workflow = params.get("workflow") || "";
    const q = new URLSearchParams({ days });
    if (workflow) q.set("workflow", workflow);
    const [{ window: win, points }, { workflows }] = await Promise.all([api(`/api/kpis?${q}`), api("/api/workflows").catch(() => ({ workflows: [] }))]);
    const metrics = {};
    for (const p of points) {
      const m = (metrics[p.metric] = metrics[p.metric] || { kind: p.kind, series: {} });
      const labels = Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(", ");
      const name = `${p.workflow}${labels ? ` {${labels}}` : ""}`;
      const s = (m.series[name] = m.series[name] || { name, points: [], total: 0, last: null });
      s.total += p.value;
      s.last = p;
      s.points.push({ ts: p.ts, v: p.kind === "counter" ? s.total : p.value, run: p.run_id });
    }
    view.innerHTML = `<h1>Business KPIs</h1>
      <form class="filters" id="kpi-form"><select id="kpi-days">${[...new Set(["1", "7", "14", "30", "90", "365", days])].map((d) => `<option value="${d}"${d === days ? " selected" : ""}>last ${d} day${d === "1" ? "" : "s"}</option>`).join("")}</select>
        <select id="kpi-wf"><option value="">all workflows</option>${workflows.map((w) => `<option${w.name === workflow ? " selected" : ""}>${esc(w.name)}</option>`).join("")}</select>
        <span class="mute">${points.length} figures from ${win.runs} runs${win.truncated ? " (the newest only: more runs in the window)" : ""}</span></form>
      ${Object.keys(metrics).length ? `<div class="charts">${Object.entries(metrics).sort().map(([name, m]) => {
        const series = Object.values(m.series);
        return `<div class="panel kpi" data-kpi="${esc(name)}"><h2>${esc(name)} <span class="mute">${esc(m.kind === "counter" ? "counter, running total" : "gauge")}</span></h2>
          ${chart(series, win.since, win.until)}
          <div class="table-wrap"><table><thead><tr><th></th><th>Series</th><th>Latest</th><th>Reported</th></tr></thead><tbody>
          ${series.map((s, i) => `<tr data-series="${esc(s.name)}"><td><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span></td><td>${esc(s.name)}</td>
            <td><b>${esc(num(m.kind === "counter" ? s.total : s.last.value))}</b></td><td class="nowrap"><a href="#/run/${esc(s.last.run_id)}" title="${esc(when(s.last.ts))}">${esc(new Date(s.last.ts * 1000).toLocaleDateString())}</a></td></tr>`).join("")}
          </tbody></table></div></div>`;
      }).join("")}</div>` : `<p class="mute">No figure reported in this window. A step reports one with <code>await ctx.metric("retention_rate", 0.93)</code> (or <code>kind="counter"</code> to add).</p>`}`;
    const go = () => { const p = new URLSearchParams({ days: $("#kpi-days").value }); if ($("#kpi-wf").value) p.set("workflow", $("#kpi-wf").value); location.hash = `#/kpis?${p}`; };
    $("#kpi-days").onchange = go;
    $("#kpi-wf").onchange = go;
  });
})();
