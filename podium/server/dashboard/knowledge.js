// Knowledge bases (#/knowledge): every base with its documents and chunks, and a search box that
// answers passages with their citations ([n], title, page or heading) and sources. Document text
// and titles are untrusted: escaped.
"use strict";

(() => {
  const { api, esc, when, $ } = Podium;
  const go = (kb, q) => { location.hash = `#/knowledge?${new URLSearchParams(q ? { kb, q } : { kb })}`; };

  Podium.page("knowledge", async (view, params) => {
    const { knowledge_bases: bases } = await api("/api/kb");
    const kb = params.get("kb") || bases[0]?.name || "";
    const query = params.get("q") || "";
    view.innerHTML = `<h1>Knowledge bases</h1>
      <div class="table-wrap"><table><thead><tr><th>Base</th><th>Documents</th><th>Chunks</th><th>Embedder</th></tr></thead><tbody>
      ${bases.map((b) => `<tr class="link${b.name === kb ? " selected" : ""}" data-kb="${esc(b.name)}"><td><b>${esc(b.name)}</b></td><td>${b.documents}</td><td>${b.chunks}</td><td><code>${esc(b.embedder)}</code></td></tr>`).join("")
        || `<tr><td colspan="4" class="mute">No knowledge base yet: podium kb ingest PATH --kb NAME, or POST /api/kb/NAME/documents.</td></tr>`}
      </tbody></table></div>
      ${kb ? `<form class="filters" id="kb-form"><b>Search <code>${esc(kb)}</code></b>
        <input id="kb-q" placeholder="a question, e.g. how long do refunds take?" value="${esc(query)}" size="40"><button>Search</button></form>
        <div id="kb-hits"></div><h2>Documents</h2><div id="kb-docs" class="mute">loading…</div>` : ""}`;
    view.querySelectorAll("tr[data-kb]").forEach((tr) => (tr.onclick = () => go(tr.dataset.kb)));
    if (!kb) return;
    $("#kb-form").onsubmit = (ev) => { ev.preventDefault(); go(kb, $("#kb-q").value.trim()); };
    const docs = api(`/api/kb/${encodeURIComponent(kb)}/documents`);
    if (query) {
      const r = await api(`/api/kb/${encodeURIComponent(kb)}/search?${new URLSearchParams({ query, k: "5" })}`);
      $("#kb-hits").innerHTML = `<h2>Passages <span class="mute">(${r.passages.length})</span></h2>` + (r.passages.map((p) => `
        <div class="panel passage" data-passage="${esc(p.ref)}">
          <div class="passage-head"><b>${esc(p.ref)}</b> <span class="citation">${esc(p.citation)}</span>
            <span class="mute">score ${Number(p.score).toFixed(4)}</span> <span class="mute">source <code>${esc(p.source)}</code></span></div>
          <div class="passage-text">${esc(p.text)}</div></div>`).join("") || `<p class="mute">No passage matches.</p>`)
        + (r.citations.length ? `<h2>Sources</h2><ol class="sources">${r.citations.map((c) => `<li>${esc(c.replace(/^\[\d+\]\s*/, ""))}</li>`).join("")}</ol>` : "");
    }
    const { documents } = await docs;
    $("#kb-docs").className = "";
    $("#kb-docs").innerHTML = `<div class="table-wrap"><table><thead><tr><th>Source</th><th>Title</th><th>Type</th><th>Chunks</th><th>Ingested</th></tr></thead><tbody>
      ${documents.map((d) => `<tr data-document="${esc(d.source)}"><td><code>${esc(d.source)}</code></td><td>${esc(d.title || "")}</td><td>${esc(d.type || "")}</td><td>${d.chunks}</td><td class="nowrap">${when(d.updated_at)}</td></tr>`).join("")
        || `<tr><td colspan="5" class="mute">No document.</td></tr>`}</tbody></table></div>`;
  });
})();
