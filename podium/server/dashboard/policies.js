// Policies (#/policies): every policy set, by workflow (`*`: the default), its versions from the
// audit log (who changed what, when), and a dry run of a decision: may this workflow call a tool,
// a connector operation or a provider, would an answer pass its banned-content check?
"use strict";

(() => {
  const { api, esc, when, $ } = Podium;
  const DEFAULTS = { allowed_tools: null, allowed_providers: null, approve_tools: [], max_tool_calls: null, allowed_connectors: null, approve_connectors: [], max_run_tokens: null, max_run_cost: null,
    max_daily_tokens: null, max_daily_cost: null, max_entity_tokens: null, max_entity_cost: null, entity_field: null,
    on_exceed: "stop", redact: [], pii_local_only: false, banned: [], tone: [], tone_threshold: 0.6, on_violation: "block" };
  const shown = (v) => (v === null ? "any" : Array.isArray(v) ? (v.length ? v.join(", ") : "none") : typeof v === "object" ? JSON.stringify(v) : String(v));
  const set = (p) => Object.entries(p || {}).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(DEFAULTS[k] ?? null) || !(k in DEFAULTS));
  const outcome = (o) => `<span class="status decision d-${esc(o)}" data-decision="${esc(o)}">${esc(o)}</span>`;

  function budgets(p) {
    const parts = [["run", p.max_run_tokens, p.max_run_cost], ["day", p.max_daily_tokens, p.max_daily_cost], ["entity/day", p.max_entity_tokens, p.max_entity_cost]]
      .filter(([, t, c]) => t != null || c != null)
      .map(([w, t, c]) => `${w}: ${[t != null ? `${t} tokens` : "", c != null ? `$${c}` : ""].filter(Boolean).join(" / ")}`);
    return parts.length ? `${esc(parts.join("; "))} <span class="mute">(over: ${esc(p.on_exceed)})</span>` : "none";
  }

  // What changed from one version to the next, field by field.
  function changes(before, after) {
    if (after == null) return `<span class="error">removed</span>`;
    const keys = [...new Set([...Object.keys(before || DEFAULTS), ...Object.keys(after)])];
    const diff = keys.filter((k) => JSON.stringify((before || DEFAULTS)[k] ?? null) !== JSON.stringify(after[k] ?? null));
    return diff.map((k) => `<div><code>${esc(k)}</code> ${esc(shown((before || DEFAULTS)[k] ?? null))} → <b>${esc(shown(after[k] ?? null))}</b></div>`).join("") || `<span class="mute">unchanged</span>`;
  }

  async function detail(box, wf, policy) {
    const hist = await api(`/api/policies/${encodeURIComponent(wf)}/history`).catch((e) => ({ error: e.message }));
    const versions = hist.versions || [];
    box.innerHTML = `<h2>Policy of <code>${esc(wf)}</code></h2>
      <div class="kv">${set(policy).map(([k, v]) => `<div>${esc(k)}</div><div>${esc(shown(v))}</div>`).join("") || "<div>all defaults</div><div></div>"}</div>
      <h2>Versions <span class="mute">(${versions.length})</span></h2>
      ${hist.error ? `<p class="mute">The history comes from the audit log: ${esc(hist.error)}</p>` : `<div class="table-wrap"><table class="versions"><thead><tr><th>#</th><th>When</th><th>By</th><th>Change</th></tr></thead><tbody>
        ${versions.map((v, i) => `<tr data-version="${i + 1}"><td>${i + 1}</td><td class="nowrap">${when(v.ts)}</td><td>${esc(v.by)}</td><td>${changes(i ? versions[i - 1].policy : null, v.policy)}</td></tr>`).reverse().join("")
          || `<tr><td colspan="4" class="mute">Set before the audit log kept policies.</td></tr>`}</tbody></table></div>`}`;
  }

  Podium.page("policies", async (view, params) => {
    const [{ policies }, { workflows }] = await Promise.all([api("/api/policies"), api("/api/workflows").catch(() => ({ workflows: [] }))]);
    const names = Object.keys(policies);
    const pick = params.get("workflow") || names[0] || "";
    const candidates = [...new Set([...names, ...workflows.map((w) => w.name)])];
    view.innerHTML = `<h1>Policies</h1>
      <div class="table-wrap"><table><thead><tr><th>Workflow</th><th>Tools</th><th>Providers</th><th>Approve tools</th><th>Connectors</th><th>Budgets</th><th>Redact</th><th>Output checks</th></tr></thead><tbody>
      ${names.map((n) => { const p = policies[n]; return `<tr class="link${n === pick ? " selected" : ""}" data-policy="${esc(n)}">
        <td><code>${esc(n)}</code>${n === "*" ? ` <span class="mute">default</span>` : ""}</td><td>${esc(shown(p.allowed_tools))}</td><td>${esc(shown(p.allowed_providers))}</td>
        <td>${esc(shown(p.approve_tools))}</td><td>${esc(shown(p.allowed_connectors ?? null))}${(p.approve_connectors || []).length ? ` <span class="mute">(approve: ${esc(p.approve_connectors.join(", "))})</span>` : ""}</td><td>${budgets(p)}</td><td>${esc(shown(p.redact))}${p.pii_local_only ? " · PII local only" : ""}</td>
        <td>${p.banned.length ? `banned: ${esc(p.banned.join(", "))}` : ""}${p.tone.length ? ` tone: ${esc(p.tone.join(", "))}` : ""}${p.banned.length || p.tone.length ? ` <span class="mute">(${esc(p.on_violation)})</span>` : "none"}</td></tr>`; }).join("")
        || `<tr><td colspan="8" class="mute">No policy is set: every workflow may use every tool and provider. Set one with podium policy set or PUT /api/policies/WORKFLOW.</td></tr>`}
      </tbody></table></div>
      <div class="page-cols"><section id="policy-detail"></section>
      <section class="panel"><h2>Test a decision</h2>
        <form id="decide-form" class="stack">
          <label>Workflow <select id="d-wf">${candidates.map((n) => `<option${n === pick ? " selected" : ""}>${esc(n)}</option>`).join("")}</select></label>
          <label>Tool <input id="d-tool" placeholder="e.g. search"></label>
          <label>Connector <input id="d-connector" placeholder="e.g. crm.updateContact"></label>
          <label>Provider <input id="d-provider" placeholder="e.g. openai"></label>
          <label>Agent <input id="d-agent" placeholder="optional"></label>
          <label>Answer <textarea id="d-answer" placeholder="a model answer to check for banned content"></textarea></label>
          <button>Decide</button></form>
        <div id="decision"></div></section></div>`;
    view.querySelectorAll("tr[data-policy]").forEach((tr) => (tr.onclick = () => { location.hash = `#/policies?workflow=${encodeURIComponent(tr.dataset.policy)}`; }));
    $("#decide-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const k of ["tool", "connector", "provider", "agent", "answer"]) if ($(`#d-${k}`).value.trim()) q.set(k, $(`#d-${k}`).value.trim());
      try {
        const d = await api(`/api/policies/${encodeURIComponent($("#d-wf").value)}/decision?${q}`);
        $("#decision").innerHTML = `<p>Decision: ${outcome(d.decision)} <span class="mute">under ${esc(d.applies.join(" and ") || "no policy")}</span></p>
          ${d.checks.map((c) => `<div class="check" data-check="${esc(c.check)}">${outcome(c.outcome)} <b>${esc(c.check)}</b> <code>${esc(c.subject)}</code><div class="mute">${esc(c.reason)}</div></div>`).join("")}
          <p class="mute">Not checked here: ${esc(d.not_checked.join("; "))}.</p>`;
      } catch (err) { $("#decision").innerHTML = `<p class="error">${esc(err.message)}</p>`; }
    };
    if (pick && policies[pick]) await detail($("#policy-detail"), pick, policies[pick]);
  });
})();
