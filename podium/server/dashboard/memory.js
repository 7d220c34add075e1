// Memory and the entity graph (#/memory): find an entity by its id, see its properties, what is
// remembered about it (facts, events...) and its relations, drawn around it. Entity ids, facts and
// properties come from workflows and their data: every one is escaped.
"use strict";

(() => {
  const { api, esc, when, $ } = Podium;
  const link = (id) => `#/memory?entity=${encodeURIComponent(id)}`;
  const short = (s, n = 26) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

  // The entity in the middle, its neighbours on a circle, one labelled edge each.
  function graph(center, relations) {
    const others = [...new Set(relations.map((r) => (r.src === center ? r.dst : r.src)))].slice(0, 16);
    if (!others.length) return `<p class="mute">No relations.</p>`;
    const w = 640, h = 300, cx = w / 2, cy = h / 2, rx = 235, ry = 105;
    const at = Object.fromEntries(others.map((id, i) => {
      const a = (2 * Math.PI * i) / others.length - Math.PI / 2;
      return [id, { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) }];
    }));
    const edges = relations.filter((r) => at[r.src === center ? r.dst : r.src]).map((r) => {
      const o = at[r.src === center ? r.dst : r.src];
      const [a, b] = r.src === center ? [{ x: cx, y: cy }, o] : [o, { x: cx, y: cy }];
      return `<line x1="${a.x}" y1="${a.y}" x2="${b.x}" y2="${b.y}"/>
        <text class="edge" x="${(a.x + b.x) / 2}" y="${(a.y + b.y) / 2 - 4}" text-anchor="middle">${esc(short(r.relation, 20))}</text>`;
    });
    const node = (id, p, main) => `<a href="${esc(link(id))}" data-node="${esc(id)}"><rect class="${main ? "main" : ""}" x="${p.x - 80}" y="${p.y - 14}" width="160" height="28" rx="8"/>
      <text x="${p.x}" y="${p.y + 4}" text-anchor="middle">${esc(short(id, 24))}</text></a>`;
    return `<svg class="entity-graph" viewBox="0 0 ${w} ${h}" role="img" aria-label="relations of ${esc(center)}">
      <defs><marker id="m-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4a5678"/></marker></defs>
      ${edges.join("")}${others.map((id) => node(id, at[id], false)).join("")}${node(center, { x: cx, y: cy }, true)}</svg>`;
  }

  async function entityView(box, id, query) {
    const q = new URLSearchParams({ limit: "100" });
    if (query) q.set("query", query);
    const [view, recalled] = await Promise.all([
      api(`/api/graph/${encodeURIComponent(id)}`).catch((e) => ({ error: e.message })),
      api(`/api/memory/${encodeURIComponent(id)}?${q}`),
    ]);
    const e = view.entity;
    const rels = view.relations || [];
    const props = Object.entries(e?.properties || {});
    box.innerHTML = `<h2>Entity <code data-entity="${esc(id)}">${esc(id)}</code> ${e ? `<span class="status">${esc(e.type)}</span>` : ""}</h2>
      ${view.error ? `<p class="mute">${esc(view.error)}</p>` : ""}
      ${e ? `<div class="kv"><div>updated</div><div>${when(e.updated_at)}</div><div>created</div><div>${when(e.created_at)}</div>
        ${props.map(([k, v]) => `<div>${esc(k)}</div><div>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</div>`).join("")}</div>` : ""}
      <div class="page-cols"><section>
        <h2>What is remembered <span class="mute">(${recalled.items.length})</span></h2>
        <form class="filters" id="recall-form"><input id="recall-q" placeholder="rank by meaning, e.g. how to contact them" value="${esc(query || "")}"><button class="secondary">Recall</button></form>
        <div class="table-wrap"><table class="facts"><thead><tr><th>Kind</th><th>Text</th><th>When</th>${query ? "<th>Score</th>" : ""}<th>Run</th></tr></thead><tbody>
        ${recalled.items.map((i) => `<tr data-fact="${esc(i.id)}"><td><span class="status">${esc(i.kind)}</span></td><td class="text">${esc(i.text)}${i.expires_at ? `<div class="mute">expires ${when(i.expires_at)}</div>` : ""}</td>
          <td class="nowrap">${when(i.created_at)}</td>${query ? `<td>${i.score == null ? "" : Number(i.score).toFixed(3)}</td>` : ""}
          <td>${i.run_id ? `<a href="#/run/${esc(i.run_id)}"><code>${esc(short(i.run_id, 12))}</code></a>${i.step ? ` <span class="mute">${esc(i.step)}</span>` : ""}` : ""}</td></tr>`).join("")
          || `<tr><td colspan="5" class="mute">Nothing is remembered about it.</td></tr>`}
        </tbody></table></div></section>
      <section><h2>Relations <span class="mute">(${rels.length})</span></h2>${graph(id, rels)}
        <div class="table-wrap"><table class="relations"><thead><tr><th>From</th><th>Relation</th><th>To</th><th>Since</th></tr></thead><tbody>
        ${rels.map((r) => `<tr data-relation="${esc(r.relation)}"><td>${r.src === id ? `<code>${esc(r.src)}</code>` : `<a href="${esc(link(r.src))}"><code>${esc(r.src)}</code></a>`}</td>
          <td><b>${esc(r.relation)}</b>${Object.keys(r.properties || {}).length ? `<div class="mute">${esc(JSON.stringify(r.properties))}</div>` : ""}</td>
          <td>${r.dst === id ? `<code>${esc(r.dst)}</code>` : `<a href="${esc(link(r.dst))}"><code>${esc(r.dst)}</code></a>`}</td><td class="nowrap">${when(r.created_at)}</td></tr>`).join("")
          || `<tr><td colspan="4" class="mute">No relations.</td></tr>`}
        </tbody></table></div></section></div>`;
    $("#recall-form", box).onsubmit = (ev) => {
      ev.preventDefault();
      entityView(box, id, $("#recall-q", box).value.trim()).catch((err) => Podium.toast(err.message));
    };
  }

  Podium.page("memory", async (view, params) => {
    const search = params.get("q") || "";
    const entity = params.get("entity");
    view.innerHTML = `<h1>Memory and entity graph</h1>
      <form class="filters" id="entity-form"><input id="entity-q" placeholder="find an entity, e.g. customer:42 or acme" value="${esc(search)}" size="34">
        <input id="entity-type" placeholder="type (optional)" value="${esc(params.get("type") || "")}" size="14"><button>Find</button></form>
      <div id="entity-hits"></div><div id="entity"></div>`;
    $("#entity-form").onsubmit = (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      if ($("#entity-q").value.trim()) q.set("q", $("#entity-q").value.trim());
      if ($("#entity-type").value.trim()) q.set("type", $("#entity-type").value.trim());
      location.hash = `#/memory?${q}`;
    };
    if (!entity || search) {
      const q = new URLSearchParams({ limit: "50" });
      if (search) q.set("search", search);
      if (params.get("type")) q.set("type", params.get("type"));
      const { entities } = await api(`/api/graph?${q}`);
      $("#entity-hits").innerHTML = `<div class="table-wrap"><table><thead><tr><th>Entity</th><th>Type</th><th>Properties</th><th>Updated</th></tr></thead><tbody>
        ${entities.map((e) => `<tr class="link" data-hit="${esc(e.id)}"><td><a href="${esc(link(e.id))}"><code>${esc(e.id)}</code></a></td><td>${esc(e.type)}</td>
          <td class="text">${esc(Object.entries(e.properties).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", "))}</td><td class="nowrap">${when(e.updated_at)}</td></tr>`).join("")
          || `<tr><td colspan="4" class="mute">${search ? "No entity id contains that text." : "No entity yet: steps create them with memory.of(ctx).remember(...) or relate(...)."}</td></tr>`}
        </tbody></table></div>`;
      $("#entity-hits").onclick = (ev) => { const tr = ev.target.closest("tr[data-hit]"); if (tr && !ev.target.closest("a")) location.hash = link(tr.dataset.hit); };
    }
    if (entity) await entityView($("#entity"), entity, "");
  });
})();
