// vagus serve's admin page: create, list and end sessions (the JSON API of
// docs/protocol.md "Admin API"), with each session's links, copy buttons and QR codes.

import { copyText, h, qrSvg } from "./ui.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";

function api(path, params = {}, method = "GET") {
  const q = new URLSearchParams({ token });
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, item);
  }
  return fetch(`/api/${path}?${q}`, { method }).then(async (r) => {
    let body = null;
    try {
      body = await r.json();
    } catch (err) {
      body = null;
    }
    if (!r.ok) throw new Error((body && (body.message || body.error)) || `HTTP ${r.status}`);
    return body;
  });
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").querySelector(".text").textContent = text;
}

// ---------- participants of a new session ----------
function personRow(name = "") {
  const row = h(
    "div",
    { class: "form-row person" },
    h("input", { type: "text", class: "p-name", placeholder: "name", value: name, maxlength: "40", "aria-label": "participant name", style: "width:9em" }),
    h(
      "select",
      { class: "p-kind", "aria-label": "how this participant joins" },
      h("option", { value: "relay", text: "strap via vagus relay" }),
      h("option", { value: "sim", text: "simulated subject" }),
      h("option", { value: "strap", text: "strap on this server" }),
    ),
    h("input", { type: "text", class: "p-addr hidden", placeholder: "strap address or name", "aria-label": "strap address or name", style: "flex:1 1 140px;min-width:0" }),
    h("button", { type: "button", class: "quiet", "aria-label": "remove", text: "×", onclick: () => row.remove() }),
  );
  row.querySelector(".p-kind").addEventListener("change", (e) => {
    row.querySelector(".p-addr").classList.toggle("hidden", e.target.value !== "strap");
  });
  return row;
}

$("add-person").addEventListener("click", () => $("people").append(personRow()));
$("people").append(personRow("client"));

$("create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const participants = [];
  for (const row of document.querySelectorAll(".person")) {
    const name = row.querySelector(".p-name").value.trim();
    if (!name) continue;
    const kind = row.querySelector(".p-kind").value;
    const addr = row.querySelector(".p-addr").value.trim();
    participants.push(kind === "relay" ? `${name}=relay` : kind === "sim" ? `${name}=sim` : `${name}=${addr}`);
  }
  if (!participants.length) {
    $("create-msg").textContent = "add at least one participant (a name)";
    return;
  }
  $("create-msg").textContent = "creating…";
  try {
    const s = await api("sessions", { title: $("title").value.trim(), participant: participants }, "POST");
    $("create-msg").textContent = `created ${s.session}`;
    $("created").replaceChildren(linksBlock(s, true));
    load();
  } catch (err) {
    $("create-msg").textContent = `not created: ${err.message}`;
  }
});

// ---------- links ----------
function abs(url) {
  return new URL(url, location.href).href;
}

function linksBlock(s, withQr) {
  const rows = [];
  if (s.urls && s.urls.practitioner) rows.push(["practitioner", "dashboard", s.urls.practitioner]);
  if (s.participants && !Array.isArray(s.participants)) {
    for (const [name, p] of Object.entries(s.participants)) if (p && p.url) rows.push([name, "breathing view", p.url]);
  } else if (s.urls && s.urls.participant) rows.push(["participant", "breathing view", s.urls.participant]);
  if (s.urls && s.urls.viewer) rows.push(["viewer", "read only", s.urls.viewer]);
  const qrBox = h("div");
  const box = h("div", { class: "links", style: "margin-top:0.7rem" });
  for (const [who, what, url] of rows) {
    const a = abs(url);
    const copy = h("button", { type: "button", text: "copy" });
    copy.addEventListener("click", () => copyText(copy, a));
    const qr = h("button", { type: "button", text: "QR" });
    qr.addEventListener("click", () => qrBox.replaceChildren(h("div", { class: "small muted", text: `${who}: scan with the phone's camera` }), h("div", { class: "qr" }, qrSvg(a))));
    box.append(h("div", { class: "link-row" }, h("span", { class: "who", text: `${who} · ${what}` }), h("code", { title: a, text: a }), copy, qr));
  }
  if (!rows.length) box.append(h("span", { class: "small muted", text: "links were shown when the session was created (tokens are stored hashed)" }));
  if (withQr) box.append(qrBox);
  else box.append(qrBox);
  return box;
}

// ---------- the list ----------
async function load() {
  try {
    const data = await api("sessions");
    setStatus("open", "connected");
    render(data.sessions || []);
  } catch (err) {
    setStatus("reconnecting", `cannot load: ${err.message}`);
  }
}

function participantNames(s) {
  if (Array.isArray(s.participants)) return s.participants.map((p) => (typeof p === "string" ? p : p.name)).join(", ");
  if (s.participants) return Object.keys(s.participants).join(", ");
  return "";
}

function render(sessions) {
  const rows = $("rows");
  if (!sessions.length) {
    rows.replaceChildren(h("tr", {}, h("td", { colspan: "5", class: "muted", text: "no sessions yet: create one above" })));
    return;
  }
  rows.replaceChildren(
    ...sessions.map((s) => {
      const created = s.created_unix_s ? new Date(s.created_unix_s * 1000).toLocaleString() : "";
      const state = s.ended ? "ended · saved" : s.recording ? "live · recording" : "live";
      const links = h("div", { class: "small" });
      if (s.urls && s.urls.practitioner) links.append(h("a", { href: s.urls.practitioner, target: "_blank", rel: "noopener", text: "dashboard" }), " ");
      if (s.urls && (s.urls.review || s.ended)) {
        const review = s.urls.review || (s.urls.practitioner ? s.urls.practitioner.replace("/dashboard?", "/review?") : null);
        if (review) links.append(h("a", { href: review, target: "_blank", rel: "noopener", text: "review" }), " ");
      }
      const more = h("button", { type: "button", class: "quiet small", text: "links" });
      const cell = h("td", { colspan: "5" }, linksBlock(s, true));
      if (!s.ended && !(s.urls && s.urls.practitioner)) {
        // The server keeps only token hashes: after a restart it can issue new links.
        const fresh = h("button", { type: "button", text: "new links" });
        fresh.addEventListener("click", async () => {
          try {
            const out = await api(`sessions/${encodeURIComponent(s.session)}/links`, {}, "POST");
            cell.replaceChildren(linksBlock(out, true));
          } catch (err) {
            fresh.textContent = `no new links: ${err.message}`;
          }
        });
        cell.append(fresh);
      }
      const detail = h("tr", { class: "hidden" }, cell);
      more.addEventListener("click", () => detail.classList.toggle("hidden"));
      links.append(more);
      const end = h("button", { type: "button", text: "end", disabled: s.ended });
      end.addEventListener("click", async () => {
        if (!confirm(`End session ${s.title || s.session}? Its recording is saved.`)) return;
        try {
          await api(`sessions/${encodeURIComponent(s.session)}/end`, {}, "POST");
          load();
        } catch (err) {
          alert(`not ended: ${err.message}`);
        }
      });
      const main = h(
        "tr",
        { dataset: { session: s.session } },
        h("td", {}, h("div", { text: s.title || "(untitled)" }), h("div", { class: "small muted", text: `${s.session} · ${created}` })),
        h("td", { text: participantNames(s) }),
        h("td", { text: state }),
        h("td", {}, links),
        h("td", {}, end),
      );
      const frag = document.createDocumentFragment();
      frag.append(main, detail);
      return frag;
    }),
  );
}

$("refresh").addEventListener("click", load);
load();
setInterval(load, 10000);
