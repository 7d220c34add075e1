// Podium dashboard: vanilla JavaScript over the JSON API. Hash routes: #/runs, #/run/ID, #/approvals,
// #/audit, #/metrics, #/connectors, #/switches. The token (if the server has users) is kept in localStorage.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const json = (v) => esc(JSON.stringify(v, null, 2));
const when = (ts) => (ts ? new Date(ts * 1000).toLocaleString() : "");
const secs = (s) => (s == null ? "" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);
const badge = (s) => `<span class="status s-${esc(s)}" data-status="${esc(s)}">${esc(s)}</span>`;
let token = localStorage.getItem("podium-token") || "";
// Pages living in their own files (dashboard/*.js, loaded after this one) register here:
// Podium.page("name", async (view, params, parts) => {...}) serves #/name.
const extraPages = {};
window.Podium = { $, esc, json, when, secs, badge, api: (...a) => api(...a), toast: (m) => toast(m), page: (name, fn) => { extraPages[name] = fn; }, onLeave: (fn) => leaveHooks.push(fn) };
const leaveHooks = [];
let stream = null;
let timer = null;

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { ...opts, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  // Read every answer's body, a 401's too: API answers are `no-store`, so the browser's cache no
  // longer drains them, and an unread body keeps its request open (the page never goes idle).
  const text = await r.text();
  if (r.status === 401) { showLogin(); throw new Error("log in first"); }
  const data = r.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!r.ok) throw new Error(data?.error?.message || `HTTP ${r.status}`);
  return data;
}

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg; t.style.display = "block";
  setTimeout(() => (t.style.display = "none"), 3500);
}

function showLogin(message = "") {
  $("#login-error").textContent = message;
  const d = $("#login");
  if (!d.open) d.showModal();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  try {
    const me = await fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.json());
    if (me.error) throw new Error(me.error.message);
    localStorage.setItem("podium-token", token);
    $("#login").close();
    route();
  } catch (err) { $("#login-error").textContent = err.message; }
});
$("#logout").addEventListener("click", () => { localStorage.removeItem("podium-token"); token = ""; showLogin(); });

async function whoami() {
  const me = await api("/api/me");
  $("#who").textContent = me.local ? "local mode" : `${me.name} (${me.roles.join(", ")})`;
  $("#logout").hidden = me.local;
  return me;
}

// -- runs list ------------------------------------------------------------------------------------
async function runsPage(view, params) {
  const wfs = (await api("/api/workflows")).workflows;
  view.innerHTML = `<h1>Runs</h1>
    <div class="filters">
      <select id="f-wf"><option value="">all workflows</option>${wfs.map((w) => `<option>${esc(w.name)}</option>`).join("")}</select>
      <select id="f-status"><option value="">any status</option>${["pending", "running", "waiting", "completed", "failed", "cancelled"].map((s) => `<option>${s}</option>`).join("")}</select>
      <span class="mute" id="live">live</span>
      <span style="margin-left:auto"></span>
      <select id="start-wf">${wfs.map((w) => `<option>${esc(w.name)}</option>`).join("")}</select>
      <input id="start-input" placeholder='input JSON, e.g. {"name": "Ada"}' size="30">
      <button id="start">Start run</button>
    </div>
    <div class="table-wrap"><table><thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Created</th><th>Duration</th></tr></thead><tbody id="runs"></tbody></table></div>
    <p><button id="newest" hidden>Newest runs</button> <button id="older" hidden>Older runs</button></p>`;
  $("#f-wf").value = params.get("workflow") || "";
  $("#f-status").value = params.get("status") || "";
  let cursor = null; // a page of older runs (GET /api/runs?cursor=): pages by cursor stay fast at any depth
  const refresh = async () => {
    const q = new URLSearchParams({ limit: "100" });
    if ($("#f-wf").value) q.set("workflow", $("#f-wf").value);
    if ($("#f-status").value) q.set("status", $("#f-status").value);
    if (cursor) q.set("cursor", cursor);
    const { runs, next_cursor } = await api(`/api/runs?${q}`);
    $("#older").hidden = !next_cursor;
    $("#older").dataset.cursor = next_cursor || "";
    $("#newest").hidden = !cursor;
    $("#runs").innerHTML = runs.map((r) => `<tr class="link" data-run="${esc(r.id)}">
      <td><code>${esc(r.id)}</code></td><td>${esc(r.workflow)} <span class="mute">v${esc(r.version)}</span></td>
      <td>${badge(r.status)}</td><td>${when(r.created_at)}</td>
      <td>${secs(r.finished_at && r.started_at ? r.finished_at - r.started_at : null)}</td></tr>`).join("")
      || `<tr><td colspan="5" class="mute">No runs yet.</td></tr>`;
  };
  view.addEventListener("click", (e) => { const tr = e.target.closest("tr[data-run]"); if (tr) location.hash = `#/run/${tr.dataset.run}`; });
  // Live: the server sends an event each time a run starts or changes status; the list is fetched
  // again (at most every 200 ms). While the stream is down, the list is polled instead.
  let pending = false;
  const soon = () => { if (!pending) { pending = true; setTimeout(() => { pending = false; refresh().catch(() => {}); }, 200); } };
  const poll = (on) => {
    if (on && !timer) timer = setInterval(() => refresh().catch(() => {}), 1500);
    if (!on && timer) { clearInterval(timer); timer = null; }
    $("#live").textContent = on ? "polling" : "live";
    $("#live").dataset.mode = on ? "polling" : "live";
  };
  const listen = () => {
    if (!view.isConnected) return; // left for another page while loading: its stream is not ours to close
    if (stream) stream.close();
    const q = new URLSearchParams();
    if ($("#f-wf").value) q.set("workflow", $("#f-wf").value);
    if (token) q.set("token", token);
    stream = new EventSource(`/api/runs/stream?${q}`);
    stream.addEventListener("ready", () => { poll(false); soon(); });
    stream.addEventListener("run", soon);
    stream.onerror = () => poll(true); // EventSource reconnects by itself; "ready" stops the polling
  };
  $("#f-wf").onchange = () => { cursor = null; listen(); refresh(); };
  $("#f-status").onchange = () => { cursor = null; refresh(); };
  $("#older").onclick = () => { cursor = $("#older").dataset.cursor; refresh(); };
  $("#newest").onclick = () => { cursor = null; refresh(); };
  $("#start").onclick = async () => {
    try {
      const input = $("#start-input").value.trim() ? JSON.parse($("#start-input").value) : {};
      const { run } = await api("/api/runs", { method: "POST", body: { workflow: $("#start-wf").value, input } });
      location.hash = `#/run/${run.id}`;
    } catch (err) { toast(err.message); }
  };
  await refresh();
  poll(true);
  listen();
}

// -- run page: graph + step inspector ---------------------------------------------------------------
function layout(steps, colw = 190) {
  const depth = {};
  const byId = Object.fromEntries(steps.map((s) => [s.id, s]));
  const d = (id, seen = new Set()) => {
    if (depth[id] != null) return depth[id];
    if (seen.has(id)) return 0;
    seen.add(id);
    const deps = (byId[id]?.deps || []).filter((x) => byId[x]);
    return (depth[id] = deps.length ? 1 + Math.max(...deps.map((x) => d(x, seen))) : 0);
  };
  steps.forEach((s) => d(s.id));
  const cols = {};
  steps.forEach((s) => (cols[depth[s.id]] = cols[depth[s.id]] || []).push(s.id));
  const pos = {};
  Object.entries(cols).forEach(([c, ids]) => ids.forEach((id, i) => (pos[id] = { x: 20 + c * colw, y: 20 + i * 70 })));
  return pos;
}

// ``attr`` names the nodes (data-step: the run's steps, clickable; data-plan-step: a plan's), ``bw`` their width.
function graphSvg(steps, status, selected, attr = "step", bw = 150) {
  const pos = layout(steps, bw + 40);
  const w = Math.max(...Object.values(pos).map((p) => p.x)) + bw + 30;
  const h = Math.max(...Object.values(pos).map((p) => p.y)) + 70;
  const colors = { completed: "#3fb97c", running: "#4f8cff", waiting: "#e3a93b", failed: "#e5534b", cancelled: "#8b8f9c", skipped: "#5f6b85", pending: "#2a3550", planned: "#2a3550", kept: "#2f6f5a" };
  const edges = steps.flatMap((s) => s.deps.filter((d) => pos[d]).map((d) => {
    const a = pos[d], b = pos[s.id];
    return `<path d="M${a.x + bw},${a.y + 22} C${a.x + bw + 20},${a.y + 22} ${b.x - 20},${b.y + 22} ${b.x},${b.y + 22}"/>`;
  }));
  const nodes = steps.map((s) => {
    const p = pos[s.id], st = status[s.id] || "pending";
    return `<g data-${attr}="${esc(s.id)}"><rect class="${s.id === selected ? "sel" : ""}" data-${attr}="${esc(s.id)}" data-status="${esc(st)}" x="${p.x}" y="${p.y}" width="${bw}" height="44" fill="${colors[st] || colors.pending}"/>
      <text x="${p.x + 10}" y="${p.y + 19}">${esc(s.id)}</text><text x="${p.x + 10}" y="${p.y + 35}" opacity=".8">${esc(st)}${s.kind ? " · " + esc(s.kind) : ""}</text></g>`;
  });
  return `<svg class="graph" viewBox="0 0 ${w} ${h}" style="max-height:${h + 10}px"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4a5678"/></marker></defs>${edges.join("")}${nodes.join("")}</svg>`;
}

function inspector(step, usage) {
  if (!step) return `<p class="mute">Select a step in the graph to inspect it.</p>`;
  const u = step.usage || {};
  const calls = step.calls.filter((c) => c.type === "step_completed" || c.type === "step_failed");
  return `<h2>Step <code>${esc(step.key)}</code> ${badge(step.status)}</h2>
    <div class="kv">
      <div>attempts</div><div>${step.attempts}</div>
      <div>latency</div><div>${secs(step.duration)}</div>
      <div>tokens</div><div>${u.input_tokens != null ? `${u.input_tokens} in / ${u.output_tokens} out` : "–"}</div>
      <div>cost</div><div>${u.cost != null ? u.cost.toFixed(6) : "–"}</div>
      ${step.reason ? `<div>reason</div><div>${esc(step.reason)}</div>` : ""}
      ${step.reused_from ? `<div>reused from</div><div><a href="#/run/${esc(step.reused_from)}">${esc(step.reused_from)}</a></div>` : ""}
    </div>
    <h2>Output</h2><pre>${json(step.output)}</pre>
    ${step.error ? `<h2>Error</h2><pre class="error">${json(step.error)}</pre>` : ""}
    ${step.errors.length > (step.error ? 1 : 0) ? `<h2>Failed attempts</h2><pre>${json(step.errors)}</pre>` : ""}
    ${calls.length ? `<h2>Calls (prompts, responses, tools)</h2>${calls.map((c) => `<div class="mute">${esc(c.step.split("/").slice(1).join("/"))}</div><pre>${json(c.data)}</pre>`).join("")}` : ""}`;
}

// A goal run's plans (GET /api/runs/ID/plan): each plan and replan as a graph of its skills, why it
// was made, for whom, its approval, and its steps' status in the child run that ran it.
function planView(goal) {
  const head = (p) => {
    const a = p.approval, who = p.for || {};
    const roles = who.roles === null ? "every role" : (who.roles || []).join(", ") || "no role";
    return `<b>${p.n === 1 ? "Plan" : "Replan"} ${p.n}</b>
      <span class="status plan-approval a-${esc(a.state.replace(" ", "-"))}" data-approval-state="${esc(a.state)}">approval: ${esc(a.state)}${a.by ? ` by ${esc(a.by)}` : ""}</span>
      ${p.run ? `<a href="#/run/${esc(p.run.id)}">run ${badge(p.run.status)}</a>` : ""}
      <span class="mute">${esc(p.planner)} · ${p.attempts} ${p.attempts === 1 ? "try" : "tries"} · est. $${Number(p.cost).toFixed(4)} · ~${Number(p.latency).toFixed(1)} s · for ${esc(who.by || "nobody")} (${esc(roles)})</span>`;
  };
  return `<h2>Plans <span class="mute">(${goal.plans.length})</span></h2>` + goal.plans.map((p) => {
    const kept = Object.entries(p.plan.kept || {}).map(([id, skill]) => ({ id, deps: [], kind: skill }));
    const steps = kept.concat(p.plan.steps.map((s) => ({ id: s.id, deps: s.needs || [], kind: s.skill })));
    const a = p.approval;
    return `<div class="panel plan" data-plan="${p.n}"><div class="plan-head">${head(p)}</div>
      <div class="plan-why" data-reason>${esc(p.reason)}</div>
      ${a.comment || a.edited ? `<div class="mute">approver: ${esc(a.comment)}${a.edited ? " (edited the plan)" : ""}</div>` : ""}
      ${steps.length ? graphSvg(steps, p.step_status || {}, null, "plan-step", 200) : ""}
      ${p.problems.length ? `<pre class="error">${p.problems.map(esc).join("\n")}</pre>` : ""}</div>`;
  }).join("");
}

async function runPage(view, id) {
  const at = `/api/runs/${encodeURIComponent(id)}`; // a child run's id holds '/' (PARENT.step/child): one path segment
  const live = {}; // the text of model calls as it is generated, by stream id (token events)
  delete view.dataset.stream; // set again when this run's stream listens
  let selected = null;
  let data = null;
  let goal = null;
  let trace = null; // GET /api/runs/ID/trace, drawn by trace.js
  Podium.trace?.reset();
  const render = () => {
    const r = data.run;
    const status = {};
    data.steps.forEach((s) => (status[s.step] = s.status));
    const steps = data.workflow?.steps || data.steps.map((s) => ({ id: s.step, deps: [], kind: null }));
    const step = data.steps.filter((s) => s.step === selected).pop();
    view.innerHTML = `<h1>Run <code>${esc(r.id)}</code> ${badge(r.status)}</h1>
      <div class="filters">
        <span>${esc(r.workflow)} v${esc(r.version)}</span><span class="mute">created ${when(r.created_at)}</span>
        ${r.forked_from ? `<span>forked from <a href="#/run/${esc(r.forked_from)}">${esc(r.forked_from)}</a></span>` : ""}
        <span style="margin-left:auto"></span>
        ${["completed", "failed", "cancelled"].includes(r.status) ? "" : `<button class="danger" id="cancel">Cancel</button>`}
        ${selected ? `<button class="secondary" id="fork">Fork from ${esc(selected)}</button>` : ""}
      </div>
      <div class="grid"><div>
        ${graphSvg(steps, status, selected)}
        ${goal ? planView(goal) : ""}
        <div id="live-text">${liveText(live)}</div>
        <h2>Input</h2><pre>${json(r.input)}</pre>
        ${r.output != null ? `<h2>Output</h2><pre>${json(r.output)}</pre>` : ""}
        ${r.error ? `<h2>Error</h2><pre class="error">${json(r.error)}</pre>` : ""}
        ${data.usage && data.usage.calls.length ? `<h2>Usage</h2><div class="kv"><div>tokens</div><div>${data.usage.total.input_tokens} in / ${data.usage.total.output_tokens} out</div><div>cost</div><div>${(data.usage.total.cost || 0).toFixed(6)}</div><div>model latency</div><div>${secs(data.usage.total.latency)}</div></div>` : ""}
        ${gatesSection(data)}
      </div><div class="panel" id="inspector">${inspector(step, data.usage)}</div></div>
      ${Podium.trace ? Podium.trace.view(trace) : ""}`;
    Podium.trace?.bind(view, render);
    view.querySelectorAll("[data-step]").forEach((el) => (el.onclick = () => { selected = el.dataset.step; render(); }));
    if ($("#cancel")) $("#cancel").onclick = () => api(`${at}/cancel`, { method: "POST" }).then(load, (e) => toast(e.message));
    if ($("#fork")) $("#fork").onclick = () => api(`${at}/fork`, { method: "POST", body: { from_step: selected } })
      .then(({ run }) => (location.hash = `#/run/${run.id}`), (e) => toast(e.message));
  };
  const isGoal = (d) => d.steps.some((s) => s.calls.some((c) => /^[^/]+\/plan(-\d+)?$/.test(c.step || "")));
  const load = async () => {
    [data, trace] = await Promise.all([api(at), api(`${at}/trace`).catch(() => null)]);
    goal = isGoal(data) ? await api(`${at}/plan`).catch(() => null) : null;
    render();
  };
  await load();
  if (!view.isConnected) return; // left for another page while loading: open no stream for this one
  // One read of the run (and its trace) at a time: events that arrive meanwhile get one read after it.
  let pending = false, reading = Promise.resolve();
  const url = `${at}/stream${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  const es = (stream = new EventSource(url)); // the handlers close this one, whatever page opened since
  const reload = () => {
    if (pending) return;
    pending = true;
    setTimeout(() => { reading = reading.then(() => { pending = false; return load(); }).catch(() => {}); }, 150);
  };
  es.addEventListener("step", reload);
  // The run ended: always one more read after the ones under way (never folded into a pending one),
  // and a second try if that read fails (a busy server), so the page never stays on "running".
  es.addEventListener("end", () => { es.close(); reading = reading.then(load).catch(() => new Promise((ok) => setTimeout(ok, 500)).then(load)).catch(() => {}); });
  es.addEventListener("ready", () => (view.dataset.stream = id)); // listening: tokens from here on
  es.addEventListener("token", (e) => {
    liveToken(live, JSON.parse(e.data));
    const box = $("#live-text");
    if (box) box.innerHTML = liveText(live);
  });
}

// -- run page: model answers while they are generated (event: token; docs/models.md#streaming) ------
function liveToken(live, t) {
  const s = (live[t.stream] ||= { where: `${t.step}/${t.call}`, text: "", state: "generating" });
  if (t.kind === "text") s.text += t.text;
  else if (t.kind === "restart") { s.text = ""; s.state = "started again"; }
  else if (t.kind === "end") s.state = t.finish === "error" ? "failed" : "done";
}

function liveText(live) {
  const all = Object.values(live);
  if (!all.length) return "";
  return `<h2>Live model text</h2>${all.map((s) => `<div class="mute">${esc(s.where)} · ${esc(s.state)}</div>
    <pre class="live">${esc(s.text)}</pre>`).join("")}`;
}

// -- run page: data-quality gates (the reports of the STEP/gate:NAME sub-steps, docs/ml.md) ----------
function gateReports(steps) {
  const seen = new Set();
  const all = steps.flatMap((s) => s.calls).filter((c) => !seen.has(c.seq) && seen.add(c.seq));
  const at = (c) => `${c.iteration}:${c.index}`;
  return all.filter((c) => c.type === "step_completed" && /^[^/]+\/gate:/.test(c.step) && c.data?.output?.rules).map((c) => {
    const [step, name] = [c.step.split("/")[0], c.step.split("/gate:")[1]];
    const mine = (prefix) => all.filter((x) => x.step.startsWith(`${step}/${prefix}`) && at(x) === at(c));
    const put = mine(`quarantine:${name}`).find((x) => x.type === "step_completed");
    const asked = mine(`signal:approval:gate:${step}:${name}:`);
    const decided = asked.find((x) => x.type === "step_completed")?.data?.output;
    return { step, name, report: c.data.output, iteration: c.iteration, index: c.index,
      quarantined: put?.data?.output?.rows || 0, asked: asked.length > 0, decided };
  });
}

function gatesSection(data) {
  const gates = gateReports(data.steps);
  if (!gates.length) return "";
  const outcome = (o) => `<span class="outcome o-${esc(o)}" data-outcome-chip="${esc(o)}">${esc(o)}</span>`;
  const verdict = (g) => {
    if (g.report.passed) return `<span class="status s-completed">passed</span>`;
    const d = g.decided;
    const person = !g.asked ? "" : d ? ` · ${d.approved ? "accepted" : "rejected"} by ${esc(d.by || "a person")}${d.comment ? ` (“${esc(d.comment)}”)` : ""}`
      : ` · <a href="#/approvals">waiting for a person</a>`;
    return `<span class="status s-failed">failed</span>${g.quarantined ? ` · ${esc(g.quarantined)} row(s) quarantined` : ""}${person}`;
  };
  const figures = (f) => Object.entries(f || {}).map(([k, v]) => `${esc(k)} ${esc(typeof v === "object" ? JSON.stringify(v) : v)}`).join(", ");
  return `<section class="gates"><h2>Data-quality gates</h2>${gates.map((g) => `
    <div class="gate panel" data-gate="${esc(g.name)}" data-gate-step="${esc(g.step)}" data-passed="${esc(g.report.passed)}">
      <div class="gate-head"><b>${esc(g.name)}</b> on step <code>${esc(g.step)}${g.index != null ? `[${g.index}]` : ""}</code>
        <span class="mute">${esc(g.report.rows)} rows checked in ${g.report.seconds < 0.001 ? "<1 ms" : esc(secs(g.report.seconds))}</span> ${verdict(g)}</div>
      <table><thead><tr><th>rule</th><th>on failure</th><th>result</th><th>bad rows</th><th>report</th></tr></thead><tbody>
      ${g.report.rules.map((r) => `<tr data-rule="${esc(r.rule)}" data-outcome="${esc(r.on)}" data-ok="${esc(r.ok)}">
        <td><code>${esc(r.rule)}</code></td><td>${outcome(r.on)}</td>
        <td>${r.ok ? `<span class="status s-completed">ok</span>` : `<span class="status s-failed">failed</span>`}</td>
        <td>${(r.bad || []).length}</td>
        <td>${esc(r.detail)}${r.figures && Object.keys(r.figures).length ? `<div class="mute">${figures(r.figures)}</div>` : ""}</td></tr>`).join("")}
      </tbody></table></div>`).join("")}</section>`;
}

// -- approvals ----------------------------------------------------------------------------------------
const inboxCount = (r) => (r.next_cursor ? `${r.approvals.length}+` : r.approvals.length || "");

async function approvalsPage(view) {
  let pages = 1; // the inbox is read a page (100, oldest first) at a time; "More" reads the next one
  const refresh = async () => {
    let r = await api("/api/approvals");
    $("#inbox-count").textContent = inboxCount(r);
    const approvals = [...r.approvals];
    for (let p = 1; p < pages && r.next_cursor; p++) {
      r = await api(`/api/approvals?cursor=${encodeURIComponent(r.next_cursor)}`);
      approvals.push(...r.approvals);
    }
    view.innerHTML = `<h1>Approvals inbox</h1>` + (approvals.map((a, i) => `<div class="panel approval" data-approval="${esc(a.run_id)}/${esc(a.name)}">
      <b>${esc(a.title)}</b> <span class="mute">${esc(a.workflow)} · step ${esc(a.step)} · run <a href="#/run/${esc(a.run_id)}">${esc(a.run_id)}</a> · ${when(a.requested_at)}${a.role ? ` · needs role ${esc(a.role)}` : ""}${a.deadline ? ` · due ${when(a.deadline)}` : ""}</span>
      <textarea id="payload-${i}">${json(a.payload)}</textarea>
      <input id="comment-${i}" placeholder="comment" size="50">
      <div class="actions"><button data-i="${i}" data-act="approve">Approve</button><button class="secondary" data-i="${i}" data-act="edit">Approve with edits</button><button class="danger" data-i="${i}" data-act="reject">Reject</button></div>
    </div>`).join("") || `<p class="mute">Nothing waits for a decision.</p>`)
      + (r.next_cursor ? `<p><button class="secondary" id="inbox-more">More (the next ${r.approvals.length})</button></p>` : "");
    const more = $("#inbox-more");
    if (more) more.onclick = () => { pages += 1; refresh(); };
    view.querySelectorAll("button[data-act]").forEach((b) => (b.onclick = async () => {
      const a = approvals[b.dataset.i];
      // `request`: the request shown here; a run that asked again under this name meanwhile is not decided by it
      const body = { approve: b.dataset.act !== "reject", comment: $(`#comment-${b.dataset.i}`).value, request: a.seq };
      if (b.dataset.act === "edit") { try { body.payload = JSON.parse($(`#payload-${b.dataset.i}`).value); body.edited = true; } catch (e) { return toast(`payload is not JSON: ${e.message}`); } }
      try {
        const done = await api(`/api/approvals/${encodeURIComponent(a.run_id)}/${encodeURIComponent(a.name)}`, { method: "POST", body });
        toast(done.decided === false
          ? "No effect: the request was decided by someone else, timed out or was asked again (audited as void)"
          : (body.approve ? "Approved" : "Rejected"));
        refresh();
      } catch (e) { toast(e.message); }
    }));
  };
  await refresh();
}

// -- audit --------------------------------------------------------------------------------------------
async function auditPage(view) {
  const [{ entries }, check] = await Promise.all([api("/api/audit?limit=500"), api("/api/audit/verify")]);
  view.innerHTML = `<h1>Audit log</h1><p>${check.intact ? `<span class="status s-completed">chain intact</span> ${check.entries} entries verified` : `<span class="status s-failed">tampered</span> ${esc(check.problem)}`}</p>
    <div class="table-wrap"><table class="audit"><thead><tr><th>#</th><th>When</th><th>Actor</th><th>Action</th><th>Target</th><th>Details</th></tr></thead><tbody>
    ${entries.slice().reverse().map((e) => `<tr><td>${e.seq}</td><td class="nowrap">${when(e.ts)}</td><td>${esc(e.actor)}</td><td><code>${esc(e.action)}</code></td><td class="text"><code>${esc(e.target)}</code></td><td class="text"><code>${esc(JSON.stringify(e.data))}</code></td></tr>`).join("")}</tbody></table></div>`;
}

// -- metrics ------------------------------------------------------------------------------------------
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? ([-0-9.e+Inf]+)$/);
    if (!m) continue;
    const labels = {};
    (m[2] || "").replace(/(\w+)="((?:[^"\\]|\\.)*)"/g, (_, k, v) => (labels[k] = v));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function barChart(title, rows) {
  if (!rows.length) return `<div class="panel"><h2>${esc(title)}</h2><p class="mute">No data yet.</p></div>`;
  const max = Math.max(...rows.map((r) => r.value), 1e-9);
  const h = rows.length * 26 + 10;
  return `<div class="panel"><h2>${esc(title)}</h2><svg class="chart" viewBox="0 0 420 ${h}" width="100%">${rows.map((r, i) => `
    <text x="0" y="${i * 26 + 20}">${esc(r.label)}</text>
    <rect class="bar ${r.cls || ""}" x="150" y="${i * 26 + 6}" height="18" width="${Math.max(2, (r.value / max) * 220)}"/>
    <text x="${156 + (r.value / max) * 220}" y="${i * 26 + 20}">${esc(r.text ?? r.value)}</text>`).join("")}</svg></div>`;
}

async function metricsPage(view) {
  const m = parseMetrics(await api("/metrics"));
  const get = (n) => m.filter((x) => x.name === n);
  const sum = (n) => get(n).reduce((a, x) => a + x.value, 0);
  const gauge = (n, s) => (get(n).find((x) => !s || x.labels.status === s) || { value: 0 }).value;
  const cls = { completed: "ok", failed: "fail" };
  const runs = get("podium_runs_total").map((x) => ({ label: `${x.labels.workflow} ${x.labels.status}`, value: x.value, cls: cls[x.labels.status] }));
  const cnt = Object.fromEntries(get("podium_step_duration_seconds_count").map((x) => [`${x.labels.workflow}.${x.labels.step}`, x.value]));
  const lat = get("podium_step_duration_seconds_sum").map((x) => { const k = `${x.labels.workflow}.${x.labels.step}`; const v = x.value / (cnt[k] || 1); return { label: k, value: v, text: secs(v) }; });
  const tokens = get("podium_tokens_total").map((x) => ({ label: `${x.labels.model} ${x.labels.direction}`, value: x.value }));
  const http = get("podium_http_requests_total").filter((x) => x.labels.route.startsWith("/api")).sort((a, b) => b.value - a.value).slice(0, 8).map((x) => ({ label: `${x.labels.method} ${x.labels.route}`.slice(0, 24), value: x.value }));
  view.innerHTML = `<h1>Metrics</h1><div class="cards">
    <div class="card"><b>${sum("podium_runs_total")}</b><span>runs ended</span></div>
    <div class="card"><b>${gauge("podium_runs_unfinished", "running")}</b><span>running</span></div>
    <div class="card"><b>${gauge("podium_runs_unfinished", "waiting")}</b><span>waiting</span></div>
    <div class="card"><b>${gauge("podium_queue_depth")}</b><span>queue depth</span></div>
    <div class="card"><b>${sum("podium_events_ingested_total")}</b><span>events ingested</span></div>
    <div class="card"><b>${gauge("podium_dead_letters")}</b><span>dead letters</span></div>
    <div class="card"><b>${sum("podium_cost_total").toFixed(4)}</b><span>model cost</span></div>
  </div><div class="charts">${barChart("Runs by workflow and status", runs)}${barChart("Mean step latency", lat)}${barChart("Tokens by model", tokens)}${barChart("API requests", http)}</div>
  <p class="mute">Prometheus scrapes <code>/metrics</code>.</p>`;
}

// -- connectors: health of every connector the server holds or has registered ---------------------
function expiry(s) {
  if (s == null) return "–";
  if (s <= 0) return `<span class="error">expired</span>`;
  return s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

async function connectorsPage(view) {
  const refresh = async () => {
    const { connectors } = await api("/api/connectors");
    const tag = (text, cls) => `<span class="status s-${cls}" data-status="${esc(text)}">${esc(text)}</span>`;
    const ok = (c) => (c.ok === true ? tag("ok", "completed") : c.ok === false ? tag("down", "failed") : "–");
    view.innerHTML = `<h1>Connectors</h1>
      <div class="cards">
        <div class="card"><b>${connectors.length}</b><span>connectors</span></div>
        <div class="card"><b>${connectors.filter((c) => c.ok === false).length}</b><span>down</span></div>
        <div class="card"><b>${connectors.filter((c) => c.breaker && c.breaker !== "closed").length}</b><span>breakers open</span></div>
        <div class="card"><b>${connectors.reduce((a, c) => a + (c.quarantine_depth || 0), 0)}</b><span>quarantined</span></div>
      </div>
      <div class="table-wrap"><table><thead><tr><th>Connector</th><th>Kind</th><th>Health</th><th>Breaker</th><th>Calls</th><th>Errors</th><th>p50</th><th>p95</th><th>Token expires</th><th>Drift</th><th>Quarantine</th></tr></thead><tbody>
      ${connectors.map((c) => `<tr data-connector="${esc(c.name)}" data-ok="${esc(c.ok)}">
        <td><code>${esc(c.name)}</code></td><td>${esc(c.kind ?? "")}</td>
        <td>${ok(c)} <span class="mute">${esc(c.error || c.health?.error || "")}</span></td>
        <td data-breaker="${esc(c.breaker ?? "")}">${c.breaker ? tag(c.breaker, c.breaker === "closed" ? "completed" : c.breaker === "open" ? "failed" : "waiting") : "–"}</td>
        <td>${c.calls ?? "–"}</td><td>${c.errors ?? "–"}</td>
        <td>${c.latency_p50 == null ? "–" : secs(c.latency_p50)}</td><td>${c.latency_p95 == null ? "–" : secs(c.latency_p95)}</td>
        <td>${expiry(c.token_expires_in)}</td><td>${c.drifted ?? "–"}</td><td>${c.quarantine_depth ?? "–"}</td></tr>`).join("")
        || `<tr><td colspan="11" class="mute">No connector: pass Client(connectors=...) or register one with podium connectors add.</td></tr>`}
      </tbody></table></div>
      <p class="mute">Calls, errors and latency are this server's; <code>podium connectors status</code> probes from the command line; Prometheus scrapes <code>podium_connector_*</code> from <code>/metrics</code>.</p>`;
  };
  await refresh();
  timer = setInterval(() => refresh().catch(() => {}), 10000);
}

// -- kill switches ------------------------------------------------------------------------------------
async function switchesPage(view) {
  const refresh = async () => {
    const { switches } = await api("/api/switches");
    view.innerHTML = `<h1>Kill switches</h1>
      <div class="filters"><select id="k-scope">${["workflow", "kind", "provider", "agent", "connector", "all"].map((s) => `<option>${s}</option>`).join("")}</select>
      <input id="k-name" placeholder="name (e.g. a workflow)"><select id="k-mode"><option>pause</option><option>cancel</option></select>
      <input id="k-reason" placeholder="reason" size="30"><button class="danger" id="k-set">Switch off</button></div>
      <div class="table-wrap"><table><thead><tr><th>Switch</th><th>Mode</th><th>Reason</th><th>By</th><th>Since</th><th></th></tr></thead><tbody>
      ${Object.entries(switches).map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td>${esc(v.mode)}</td><td>${esc(v.reason)}</td><td>${esc(v.by)}</td><td>${when(v.ts)}</td><td><button class="secondary" data-clear="${esc(k)}">Switch on</button></td></tr>`).join("") || `<tr><td colspan="6" class="mute">Everything is on.</td></tr>`}</tbody></table></div>`;
    $("#k-set").onclick = () => api("/api/switches", { method: "POST", body: { scope: $("#k-scope").value, name: $("#k-name").value || "*", mode: $("#k-mode").value, reason: $("#k-reason").value } }).then(refresh, (e) => toast(e.message));
    view.querySelectorAll("[data-clear]").forEach((b) => (b.onclick = () => { const [s, ...n] = b.dataset.clear.split(":"); api(`/api/switches/${s}/${encodeURIComponent(n.join(":"))}`, { method: "DELETE" }).then(refresh, (e) => toast(e.message)); }));
  };
  await refresh();
}

async function route() {
  if (stream) { stream.close(); stream = null; }
  if (timer) { clearInterval(timer); timer = null; }
  while (leaveHooks.length) { try { leaveHooks.pop()(); } catch (_) { /* a page's cleanup never blocks navigation */ } }
  const old = $("#view");
  const view = old.cloneNode(false); // drop old listeners
  old.replaceWith(view);
  const [path, query] = (location.hash.slice(1) || "/runs").split("?");
  const parts = path.split("/").filter(Boolean);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === (parts[0] === "run" ? "runs" : parts[0])));
  try {
    await whoami();
    api("/api/approvals").then((r) => ($("#inbox-count").textContent = inboxCount(r)), () => {});
    const pages = { runs: runsPage, approvals: approvalsPage, audit: auditPage, metrics: metricsPage, connectors: connectorsPage, switches: switchesPage, ...extraPages };
    if (parts[0] === "run") await runPage(view, parts.slice(1).join("/"));
    else await (pages[parts[0]] || runsPage)(view, new URLSearchParams(query || ""), parts);
  } catch (err) {
    view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
}

window.addEventListener("hashchange", route);
// Page files are plain scripts after this one: route once they have registered.
window.addEventListener("DOMContentLoaded", route);
