// Cost per workflow and day (#/costs): model tokens and cost of every logged model and classifier
// call, by UTC day (as daily budgets count) and workflow, stacked by workflow.
"use strict";

(() => {
  const { api, esc, $ } = Podium;
  const COLORS = ["#6ea8ff", "#3fb97c", "#e3a93b", "#b58cff", "#e5534b", "#4fd1c5", "#f08bd0", "#c9d1e3"];
  const money = (v) => `$${v < 0.01 && v > 0 ? v.toFixed(6) : v.toFixed(4)}`;
  const DAY = 86400;

  function bars(rows, wfs, since, until, by) {
    const days = [];
    for (let t = Math.floor(since / DAY) * DAY; t <= until; t += DAY) days.push(new Date(t * 1000).toISOString().slice(0, 10));
    const per = Object.fromEntries(days.map((d) => [d, {}]));
    rows.forEach((r) => { if (per[r.day]) per[r.day][r.workflow] = (per[r.day][r.workflow] || 0) + r[by]; });
    const max = Math.max(...days.map((d) => Object.values(per[d]).reduce((a, v) => a + v, 0)), 1e-12);
    const w = 640, h = 200, l = 8, b = 22, bw = (w - l * 2) / days.length;
    const cols = days.map((d, i) => {
      let y = h - b;
      const stack = wfs.map((wf, j) => {
        const v = per[d][wf] || 0;
        if (!v) return "";
        const bh = (v / max) * (h - b - 10);
        y -= bh;
        return `<rect x="${(l + i * bw + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${COLORS[j % COLORS.length]}"><title>${esc(d)} ${esc(wf)}: ${esc(by === "cost" ? money(v) : v.toLocaleString())}</title></rect>`;
      }).join("");
      return stack;
    });
    const labels = [0, Math.floor(days.length / 2), days.length - 1].map((i, k) => `<text x="${(l + i * bw + bw / 2).toFixed(1)}" y="${h - 6}" text-anchor="${["start", "middle", "end"][k]}">${esc(days[i].slice(5))}</text>`);
    return `<svg class="chart bar-chart" viewBox="0 0 ${w} ${h}"><line class="grid" x1="${l}" x2="${w - l}" y1="${h - b}" y2="${h - b}"/>${cols.join("")}${labels.join("")}</svg>`;
  }

  Podium.page("costs", async (view, params) => {
    const days = params.get("days") || "30";
    const by = params.get("by") === "tokens" ? "tokens" : "cost";
    const { window: win, days: rows, total } = await api(`/api/costs?${new URLSearchParams({ days })}`);
    rows.forEach((r) => (r.tokens = r.input_tokens + r.output_tokens));
    const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
    const byWf = {};
    rows.forEach((r) => (byWf[r.workflow] = (byWf[r.workflow] || 0) + r[by]));
    const wfs = Object.keys(byWf).sort((a, b) => byWf[b] - byWf[a]);
    view.innerHTML = `<h1>Cost per workflow and day</h1>
      <form class="filters"><select id="cost-days">${[...new Set(["7", "14", "30", "90", "365", days])].map((d) => `<option value="${d}"${d === days ? " selected" : ""}>last ${d} days</option>`).join("")}</select>
        <select id="cost-by"><option value="cost">by cost</option><option value="tokens"${by === "tokens" ? " selected" : ""}>by tokens</option></select>
        <span class="mute">${win.runs} runs read${win.truncated ? " (the newest only: more runs in the window)" : ""}</span></form>
      <div class="cards">
        <div class="card"><b data-total-cost>${money(total)}</b><span>model cost</span></div>
        <div class="card"><b>${sum("input_tokens").toLocaleString()}</b><span>tokens in</span></div>
        <div class="card"><b>${sum("output_tokens").toLocaleString()}</b><span>tokens out</span></div>
        <div class="card"><b>${sum("calls").toLocaleString()}</b><span>model calls</span></div>
        ${sum("unpriced") ? `<div class="card"><b>${sum("unpriced")}</b><span>calls without a price</span></div>` : ""}
      </div>
      ${rows.length ? `<div class="panel"><h2>${by === "cost" ? "Cost" : "Tokens"} per day, by workflow</h2>${bars(rows, wfs, win.since, win.until, by)}
        <div class="legend">${wfs.map((wf, j) => `<span><span class="swatch" style="background:${COLORS[j % COLORS.length]}"></span>${esc(wf)} <span class="mute">${esc(by === "cost" ? money(byWf[wf]) : byWf[wf].toLocaleString())}</span></span>`).join("")}</div></div>` : ""}
      <h2>By day</h2>
      <div class="table-wrap"><table><thead><tr><th>Day (UTC)</th><th>Workflow</th><th>Runs</th><th>Calls</th><th>Tokens in</th><th>Tokens out</th><th>Cost</th></tr></thead><tbody>
      ${rows.slice().reverse().map((r) => `<tr data-day="${esc(r.day)}" data-workflow="${esc(r.workflow)}"><td class="nowrap">${esc(r.day)}</td><td><a href="#/runs?workflow=${encodeURIComponent(r.workflow)}">${esc(r.workflow)}</a></td>
        <td>${r.runs}</td><td>${r.calls}</td><td>${r.input_tokens.toLocaleString()}</td><td>${r.output_tokens.toLocaleString()}</td>
        <td>${money(r.cost)}${r.unpriced ? ` <span class="mute">+ ${r.unpriced} unpriced</span>` : ""}</td></tr>`).join("")
        || `<tr><td colspan="7" class="mute">No model call in this window.</td></tr>`}
      </tbody></table></div>`;
    const go = () => { location.hash = `#/costs?${new URLSearchParams({ days: $("#cost-days").value, by: $("#cost-by").value })}`; };
    $("#cost-days").onchange = go;
    $("#cost-by").onchange = go;
  });
})();
