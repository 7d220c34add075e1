// The run page's AI trace (GET /api/runs/ID/trace): model calls with their prompt and answer, tool and
// connector calls, routing decisions, gates, plans, approvals, grouped by step and agent iteration, and
// a timeline (Gantt) of step attempts, retries, backoffs, waits and calls. app.js's runPage calls
// Podium.trace.view(data) inside its page and Podium.trace.bind(view) after, on every refresh (live).
// Every text here came from a model, a tool or a user: it goes through esc() (never raw innerHTML).
"use strict";
(() => {
  const { esc, json, when, secs } = Podium;
  const opened = new Set(); // entries a person unfolded stay unfolded across live refreshes
  let only = ""; // the kind filter

  const money = (v) => (v == null ? "–" : `$${Number(v).toFixed(6)}`);
  const num = (v) => (v == null ? "–" : Number(v).toLocaleString());
  const text = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));
  const chip = (kind) => `<span class="tk tk-${esc(kind)}">${esc(kind)}</span>`;
  const status = (c) => (c.status === "failed" ? ` <span class="status s-failed">failed</span>` : c.status === "waiting" ? ` <span class="status s-waiting">waiting</span>` : "");

  function messages(prompt) {
    if (prompt == null) return `<p class="mute" data-no-prompt>Prompt not stored (the trace_prompts setting is off, the call was made before it, or you lack payloads.read).</p>`;
    return prompt.map((m) => `<div class="tmsg" data-role="${esc(m.role)}"><span class="trole">${esc(m.role)}${m.name ? ` · ${esc(m.name)}` : ""}</span>
      <pre class="ttext">${esc(m.content)}</pre>${(m.tool_calls || []).map((t) => `<div class="mute">asks ${esc(t.name)}(${esc(JSON.stringify(t.arguments))})</div>`).join("")}</div>`).join("");
  }

  function head(c) {
    switch (c.kind) {
      case "model":
        return `<b>${esc(c.model)}</b> <span class="mute">${num(c.input_tokens)} in / ${num(c.output_tokens)} out${c.cached_tokens ? ` · ${num(c.cached_tokens)} cached` : ""} · ${secs(c.latency)} · ${money(c.cost)}</span>`;
      case "tool": case "connector": {
        const name = c.kind === "tool" ? c.tool : `${c.connector}.${c.operation}`;
        const ok = c.kind === "tool" ? c.ok !== false : c.status !== "failed";
        return `<b>${esc(name)}</b><span class="mute">(${esc(JSON.stringify(c.arguments ?? {}).slice(0, 200))})</span> ${ok ? "→" : `<span class="status s-failed">error</span>`} ${c.latency != null ? `<span class="mute">${secs(c.latency)}</span>` : ""}`;
      }
      case "route": case "classify": {
        const conf = typeof c.confidence === "number" ? c.confidence : null;
        return `→ <b data-decision>${esc(c.kind === "route" ? c.route : c.label)}</b> <span class="conf" title="confidence"><span style="width:${conf == null ? 0 : Math.round(conf * 100)}%"></span></span>
          <span class="mute" data-confidence="${conf ?? ""}">confidence ${conf == null ? "–" : conf.toFixed(2)}${c.by ? ` · by ${esc(c.by)}` : ""}</span>${c.escalate ? ` <span class="status s-waiting">escalate</span>` : ""}`;
      }
      case "gate":
        return `<b>${esc(c.gate)}</b> ${c.passed ? `<span class="status s-completed">passed</span>` : `<span class="status s-failed">failed</span>`} <span class="mute">${num(c.rows)} rows</span>`;
      case "plan":
        return `<b>${c.n === 1 ? "Plan" : "Replan"} ${esc(c.n)}</b> <span class="mute">by ${esc(c.planner)} · ${(c.steps || []).length} steps · est. ${money(c.cost)}</span>`;
      case "approval":
        if (c.status === "waiting") return `<b>${esc(c.title || c.name)}</b> <span class="mute">asked ${when(c.requested_at)}${c.role ? ` · needs role ${esc(c.role)}` : ""}</span> <a href="#/approvals">decide</a>`;
        return `<b>${esc(c.title || c.name)}</b> <span class="status ${c.approved ? "s-completed" : "s-failed"}" data-approved="${!!c.approved}">${c.approved ? "approved" : "rejected"}</span>
          <span class="mute">by <b data-by>${esc(c.by || "?")}</b> at ${when(c.decided_at)}${c.waited != null ? ` after ${secs(c.waited)}` : ""}${c.edited ? " · edited" : ""}</span>`;
      case "wait":
        return `<b>${esc(c.signal || c.call)}</b> <span class="mute">${c.status === "waiting" ? "waiting" : c.timed_out ? "timed out" : "arrived"}</span>`;
      default:
        return `<b>${esc(c.call)}</b>`;
    }
  }

  function body(c) {
    switch (c.kind) {
      case "model": {
        const r = c.response || {};
        return `<h4>Prompt</h4>${messages(c.prompt)}
          ${(c.tools || []).length ? `<div class="mute">tools offered: ${c.tools.map(esc).join(", ")}</div>` : ""}
          <h4>Answer</h4>${r.text ? `<pre class="ttext" data-answer>${esc(r.text)}</pre>` : ""}
          ${(r.tool_calls || []).map((t) => `<div>asks <b>${esc(t.name)}</b><pre>${json(t.arguments)}</pre></div>`).join("")}
          <div class="mute">${esc(c.provider)} · finish: ${esc(r.finish_reason)}${Object.keys(c.settings || {}).length ? ` · ${esc(JSON.stringify(c.settings))}` : ""}</div>
          ${(c.trail || []).length ? `<h4>Retries, waits and fallbacks</h4><pre>${json(c.trail)}</pre>` : ""}
          ${c.error ? `<pre class="error">${json(c.error)}</pre>` : ""}`;
      }
      case "tool": case "connector":
        return `<h4>Arguments</h4><pre data-arguments>${c.arguments == null ? "(not stored)" : json(c.arguments)}</pre>
          <h4>${c.tool_error || c.error ? "Error" : "Result"}</h4><pre${c.tool_error || c.error ? ` class="error"` : ""}>${c.tool_error ? esc(c.tool_error) : c.error ? json(c.error) : json(c.result)}</pre>`;
      case "route": case "classify":
        return `${c.reason ? `<div>${esc(c.reason)}</div>` : ""}${c.scores ? `<pre>${json(c.scores)}</pre>` : ""}${c.method ? `<div class="mute">${esc(c.method)} ${esc(c.model || "")}</div>` : ""}`;
      case "gate":
        return `<table><tbody>${(c.rules || []).map((r) => `<tr><td><code>${esc(r.rule)}</code></td><td>${esc(r.on)}</td><td>${r.ok ? "ok" : `<span class="error">failed</span>`}</td><td>${esc(r.detail)}</td></tr>`).join("")}</tbody></table>`;
      case "plan":
        return `<div data-reason>${esc(c.reason)}</div><ol>${(c.steps || []).map((s) => `<li><code>${esc(s.id)}</code> ${esc(s.skill)}${(s.needs || []).length ? ` <span class="mute">after ${s.needs.map(esc).join(", ")}</span>` : ""}</li>`).join("")}</ol>
          ${(c.problems || []).length ? `<pre class="error">${c.problems.map(esc).join("\n")}</pre>` : ""}`;
      case "approval":
        return `${c.comment ? `<div>why: <q data-comment>${esc(c.comment)}</q></div>` : ""}${c.request !== undefined ? `<h4>Asked about</h4><pre>${json(c.request)}</pre>` : ""}`;
      default:
        return c.result !== undefined || c.value !== undefined ? `<pre>${json(c.result ?? c.value)}</pre>` : c.error ? `<pre class="error">${json(c.error)}</pre>` : "";
    }
  }

  function entry(c) {
    const id = `${c.step}|${c.call}|${c.seq}`;
    return `<details class="tentry" data-kind="${esc(c.kind)}" data-call="${esc(c.call)}" data-id="${esc(id)}"${opened.has(id) ? " open" : ""}>
      <summary>${chip(c.kind)} ${head(c)}${status(c)}</summary><div class="tbody">${body(c)}</div></details>`;
  }

  // Entries by step; an agent's consecutive entries by iteration.
  function calls(list) {
    let out = "", step = null, group = null;
    const close = () => { if (group) { out += "</div>"; group = null; } };
    for (const c of list) {
      if (c.step !== step) { close(); if (step !== null) out += "</div>"; step = c.step; out += `<div class="tstep" data-trace-step="${esc(step)}"><h3><code>${esc(step)}</code></h3>`; }
      const g = c.agent ? `${c.agent}#${c.iteration}` : null;
      if (g !== group) {
        close();
        if (g) { group = g; out += `<div class="titer" data-agent="${esc(c.agent)}" data-iteration="${esc(c.iteration)}"><div class="mute">agent <b>${esc(c.agent)}</b> · iteration ${esc(c.iteration)}</div>`; }
      }
      out += entry(c);
    }
    close();
    return out + (step !== null ? "</div>" : "");
  }

  // The Gantt chart: one row per step execution; x is time since the first segment.
  function gantt(data) {
    const rows = data.timeline || [];
    if (!rows.length) return "";
    const end = (s) => (s.end == null ? data.now : s.end);
    const t0 = Math.min(...rows.flatMap((r) => r.segments.map((s) => s.start)));
    const t1 = Math.max(...rows.flatMap((r) => r.segments.map(end)));
    const span = Math.max(t1 - t0, 0.001), label = 150, w = 1000, rh = 24, plot = w - label - 10;
    const x = (t) => label + ((t - t0) / span) * plot;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<line x1="${x(t0 + f * span)}" x2="${x(t0 + f * span)}" y1="0" y2="${rows.length * rh}" class="tick"/><text x="${x(t0 + f * span)}" y="${rows.length * rh + 14}" text-anchor="middle">${esc(secs(f * span))}</text>`).join("");
    const bars = rows.map((r, i) => {
      const y = i * rh;
      const segs = r.segments.map((s) => {
        const a = x(s.start), b = Math.max(x(end(s)), a + 3);
        const thin = s.kind === "call";
        const tip = `${s.kind}${s.label ? ` ${s.label}` : ""}${s.attempt ? ` · attempt ${s.attempt}` : ""} · ${s.status || ""} · ${secs(end(s) - s.start)}${s.end == null ? " (going on)" : ""}${s.error ? ` · ${s.error}` : ""}`;
        return `<rect class="seg g-${esc(s.kind)} gs-${esc(s.status || "")}" data-seg="${esc(s.kind)}" x="${a}" y="${y + (thin ? 15 : 4)}" width="${b - a}" height="${thin ? 5 : 10}"><title>${esc(tip)}</title></rect>`;
      }).join("");
      return `<g data-row="${esc(r.step)}"><text x="4" y="${y + 14}">${esc(r.step.length > 22 ? `${r.step.slice(0, 21)}…` : r.step)}</text>${segs}</g>`;
    }).join("");
    return `<div class="gantt-wrap"><svg class="gantt" viewBox="0 0 ${w} ${rows.length * rh + 20}" role="img" aria-label="timeline">${ticks}${bars}</svg></div>
      <div class="legend mute"><span class="lg g-attempt"></span>attempt <span class="lg gs-retry"></span>failed attempt <span class="lg g-backoff"></span>backoff <span class="lg g-wait"></span>waiting <span class="lg g-call"></span>call</div>`;
  }

  function view(data) {
    if (!data) return "";
    const t = data.totals;
    const kinds = [...new Set(data.calls.map((c) => c.kind))];
    const shown = data.calls.filter((c) => !only || c.kind === only);
    return `<section class="trace" data-trace>
      <h2>AI trace ${data.run.status === "running" || data.run.status === "pending" ? `<span class="mute" data-live>· live</span>` : ""}</h2>
      <div class="cards">
        <div class="card"><b data-total="model_calls">${esc(t.model_calls)}</b><span>model calls</span></div>
        <div class="card"><b>${num(t.input_tokens)} / ${num(t.output_tokens)}</b><span>tokens in / out${t.cached_tokens ? ` (${num(t.cached_tokens)} cached)` : ""}</span></div>
        <div class="card"><b>${money(t.cost)}</b><span>cost</span></div>
        <div class="card"><b>${secs(t.latency) || "0 ms"}</b><span>in models</span></div>
        <div class="card"><b data-total="tool_calls">${esc(t.tool_calls)}</b><span>tool &amp; connector calls</span></div>
      </div>
      ${data.payloads_hidden ? `<p class="mute">You lack payloads.read: prompts, answers and arguments are hidden.</p>` : ""}
      ${(data.children || []).length ? `<div class="mute" data-children>runs it started: ${data.children.map((c) => `<a href="#/run/${esc(c.id)}">${esc(c.workflow)}</a> ${Podium.badge(c.status)}`).join(" · ")}</div>` : ""}
      <h3>Timeline</h3>${gantt(data) || `<p class="mute">Nothing has run yet.</p>`}
      <div class="filters"><h3 style="margin:0">Calls and decisions</h3>
        <select id="trace-kind" aria-label="show"><option value="">all (${data.calls.length})</option>${kinds.map((k) => `<option value="${esc(k)}"${k === only ? " selected" : ""}>${esc(k)} (${data.calls.filter((c) => c.kind === k).length})</option>`).join("")}</select>
        <button class="secondary" id="trace-open">Unfold all</button></div>
      ${shown.length ? calls(shown) : `<p class="mute">No model, tool or connector calls, decisions or approvals${only ? " of this kind" : ""}.</p>`}
    </section>`;
  }

  // After the page's HTML is in place: remember unfolded entries, wire the filter.
  function bind(root, rerender) {
    root.querySelectorAll("details.tentry").forEach((d) => d.addEventListener("toggle", () => (d.open ? opened.add(d.dataset.id) : opened.delete(d.dataset.id))));
    const kind = root.querySelector("#trace-kind");
    if (kind) kind.onchange = () => { only = kind.value; rerender(); };
    const all = root.querySelector("#trace-open");
    if (all) all.onclick = () => root.querySelectorAll("details.tentry").forEach((d) => { d.open = true; opened.add(d.dataset.id); });
  }

  Podium.trace = { view, bind, reset: () => { opened.clear(); only = ""; } };
})();
