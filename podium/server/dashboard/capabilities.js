// Capabilities (#/capabilities): what workflows may reach outside the engine (the registry of tools,
// connectors, MCP servers and folders an admin registered) and the skills goal planners may put in
// a plan, with who may use each: the workflows whose policy decides about a tool, a skill's roles.
"use strict";

(() => {
  const { api, esc, when } = Podium;
  const chip = (text, cls) => `<span class="status ${cls}" data-use="${esc(text)}">${esc(text)}</span>`;
  const USE = { allowed: "s-completed", approval: "s-waiting", refused: "s-failed" };

  // A workflow whose policy has no say about it may use it (the `*` default's policy is listed too).
  function usedBy(c) {
    const entries = Object.entries(c.policies);
    if (!entries.length) return `<span class="mute">any workflow that names it</span>`;
    const list = entries.map(([wf, v]) => `<div>${chip(v, USE[v] || "")} <code>${esc(wf)}</code></div>`).join("");
    return list + (entries.some(([wf]) => wf === "*") ? "" : `<div class="mute">other workflows: allowed</div>`);
  }

  const fields = (schema) => Object.keys(schema?.properties || {}).map((k) => (schema.required || []).includes(k) ? k : `${k}?`).join(", ");

  Podium.page("capabilities", async (view) => {
    const d = await api("/api/capabilities");
    const caps = d.capabilities;
    const kinds = [...new Set(caps.map((c) => c.kind))];
    view.innerHTML = `<h1>Capabilities</h1>
      <div class="cards">
        <div class="card"><b>${caps.length}</b><span>registered</span></div>
        <div class="card"><b>${caps.filter((c) => c.tool).length}</b><span>callable as tools</span></div>
        <div class="card"><b>${caps.filter((c) => c.kind === "connector").length}</b><span>connectors</span></div>
        <div class="card"><b>${d.skills.length}</b><span>planner skills</span></div>
      </div>
      <h2>Registry <span class="mute">(what workflow files may reach, by name; changed by holders of <code>${esc(d.managed_by)}</code>)</span></h2>
      <div class="table-wrap"><table><thead><tr><th>Name</th><th>Kind</th><th>Reaches</th><th>Who may use it</th><th>Added</th></tr></thead><tbody>
      ${caps.map((c) => `<tr data-capability="${esc(c.name)}"><td><code>${esc(c.name)}</code>${c.description ? `<div class="mute">${esc(c.description)}</div>` : ""}</td>
        <td>${esc(c.kind)}${c.tool ? ` <span class="mute">tool</span>` : ""}</td><td class="text"><code>${esc(c.summary)}</code></td>
        <td>${usedBy(c)}</td><td class="nowrap">${esc(c.added_by)}<div class="mute">${when(c.added_at)}</div></td></tr>`).join("")
        || `<tr><td colspan="5" class="mute">Nothing is registered: workflow files can reach nothing outside the engine (podium tools add, podium connectors add).</td></tr>`}
      </tbody></table></div>
      ${kinds.length ? `<p class="mute">Kinds: ${kinds.map(esc).join(", ")}. A policy's <code>allowed_tools</code> narrows what a workflow may call; <code>approve_tools</code> asks a person first.</p>` : ""}
      <h2>Planner skills ${d.skills_source ? `<span class="mute">from <code>${esc(d.skills_source)}</code></span>` : ""}</h2>
      ${d.skills_error ? `<p class="error">${esc(d.skills_error)}</p>` : ""}
      ${d.skills_source ? `<div class="table-wrap"><table><thead><tr><th>Skill</th><th>Kind</th><th>Input → output</th><th>Cost</th><th>Latency</th><th>Roles</th><th>You</th></tr></thead><tbody>
        ${d.skills.map((s) => `<tr data-skill="${esc(s.name)}"><td><code>${esc(s.name)}</code><div class="mute">${esc(s.description)}</div></td>
          <td>${esc(s.kind)}${s.target ? `<div class="mute"><code>${esc(s.target)}</code></div>` : ""}</td>
          <td class="text">(${esc(fields(s.input))}) → (${esc(fields(s.output))})</td><td>$${Number(s.cost).toFixed(4)}</td><td>~${Number(s.latency).toFixed(1)} s</td>
          <td>${s.roles.length ? s.roles.map(esc).join(", ") : `<span class="mute">any role</span>`}</td>
          <td>${s.usable ? chip("may use", "s-completed") : chip("may not", "s-failed")}</td></tr>`).join("")}
        </tbody></table></div>` : `<p class="mute">No skill registry: the server plans goals over the skills of <code>$PODIUM_SKILLS</code> (module:attribute), which is not set.</p>`}`;
  });
})();
