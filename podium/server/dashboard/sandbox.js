// Sandbox page (#/sandbox): what each system of the sandbox company received (podium demo, podium run),
// the finance mailbox and the business events the company published on its event bus. GET /api/sandbox.
"use strict";

Podium.page("sandbox", async (view) => {
  const { esc, json, when } = Podium;
  let timer = null;
  Podium.onLeave(() => clearInterval(timer));
  const records = (s) => s.received.map((r) => `<tr><td><code>${esc(r.operation)}</code></td>
      <td><pre>${json(r.body)}</pre></td><td>${when(r.at)}</td></tr>`).join("")
    || `<tr><td colspan="3" class="mute">Nothing received.</td></tr>`;
  const refresh = async () => {
    const data = await Podium.api("/api/sandbox");
    if (!data.exists) {
      view.innerHTML = `<div class="sandbox"><h1>Sandbox company</h1>
        <div class="panel" id="sandbox-empty"><p><b>No sandbox company has run here yet.</b></p>
        <p>Start one with <code>podium demo</code> (or a scenario under <code>podium run</code>): its CRM, support desk,
        marketing tool, ERP and finance mailbox record what they receive in <code>${esc(data.directory)}</code>,
        and this page shows it.</p></div></div>`;
      return;
    }
    const sent = data.events.filter((e) => e.sent_at != null).length;
    view.innerHTML = `<div class="sandbox"><h1>Sandbox company</h1>
      <p class="mute">What each system received, newest first, from <code>${esc(data.directory)}</code>.</p>
      <div class="cards">${data.systems.map((s) => `<div class="card" data-system="${esc(s.name)}">
        <b>${s.count}</b><span>${esc(s.title)}</span></div>`).join("")}
        <div class="card" data-system="events"><b>${data.events.length}</b><span>events published (${sent} on the bus)</span></div></div>
      ${data.systems.map((s) => `<section class="sandbox-system" data-system="${esc(s.name)}">
        <h2>${esc(s.title)} <span class="mute">${s.count} received</span></h2>
        <table><thead><tr><th class="w25">Operation</th><th>What it received</th><th class="w20">When</th></tr></thead><tbody>${records(s)}</tbody></table>
      </section>`).join("")}
      <h2>Mail in the finance mailbox</h2>
      <table id="sandbox-mails"><thead><tr><th class="w20">To</th><th class="w20">Subject</th><th>Body</th><th class="w20">When</th></tr></thead><tbody>
      ${data.mails.map((m) => `<tr><td>${esc(m.recipients)}</td><td>${esc(m.subject)}</td><td><pre>${esc(m.body)}</pre></td><td>${when(m.at)}</td></tr>`).join("")
        || `<tr><td colspan="4" class="mute">No mail.</td></tr>`}</tbody></table>
      <h2>Business events published</h2>
      <table id="sandbox-events"><thead><tr><th class="w20">Topic</th><th class="w15">From</th><th>Payload</th><th class="w20">On the bus</th></tr></thead><tbody>
      ${data.events.map((e) => `<tr data-topic="${esc(e.topic)}"><td><code>${esc(e.topic)}</code></td><td>${esc(e.system)}</td>
        <td><pre>${json(e.payload)}</pre></td><td>${e.sent_at == null ? '<span class="mute">waiting in the outbox</span>' : when(e.sent_at)}</td></tr>`).join("")
        || `<tr><td colspan="4" class="mute">No event.</td></tr>`}</tbody></table></div>`;
  };
  await refresh();
  timer = setInterval(() => refresh().catch(() => {}), 5000);
});
