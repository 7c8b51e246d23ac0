"use strict";
// The faceprint web page: talks to the same REST API as any client, with the key the user types.
const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem("faceprint-key") || "", collection: "" };

function say(message, isError = false) {
  const el = $("status");
  el.textContent = message;
  el.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = { "Authorization": "Bearer " + state.key };
  const options = { method, headers };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = data.error || { code: "http_" + response.status, message: response.statusText };
    throw new Error(err.message + " (" + err.code + ")");
  }
  return data;
}

const enc = encodeURIComponent;
const base = () => "/v1/collections/" + enc(state.collection);

async function loadCollections() {
  const list = await api("GET", "/v1/collections");
  const select = $("collection");
  select.replaceChildren(...list.map((c) => new Option(c.name, c.name)));
  if (list.some((c) => c.name === state.collection)) select.value = state.collection;
  state.collection = select.value;
  await showCollection();
}

async function showCollection() {
  if (!state.collection) {
    $("threshold").textContent = "No collection yet: create one (admin key) to enrol people.";
    $("people").replaceChildren();
    return;
  }
  const c = await api("GET", base());
  $("threshold").textContent = `Threshold in use: ${c.threshold.toFixed(4)} cosine similarity ` +
    `(false-match rate ${c.fmr}, profile ${c.profile}, model ${c.model}). ` +
    `${c.persons} people, ${c.faces} faces.`;
  await loadPeople();
}

async function loadPeople() {
  const people = await api("GET", base() + "/persons");
  const rows = people.map((p) => {
    const tr = document.createElement("tr");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "danger";
    button.textContent = "Delete";
    button.setAttribute("aria-label", "Delete " + p.name);
    button.addEventListener("click", () => deletePerson(p.name));
    for (const text of [p.name, String(p.face_count), p.created_at.slice(0, 19).replace("T", " ")]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.appendChild(button);
    tr.appendChild(td);
    tr.dataset.person = p.name;
    return tr;
  });
  $("people").replaceChildren(...rows);
  $("people-empty").hidden = people.length > 0;
}

async function deletePerson(name) {
  if (!confirm(`Delete ${name} and every face stored for them?`)) return;
  try {
    const r = await api("DELETE", base() + "/persons/" + enc(name));
    say(`Deleted ${name} (${r.faces_removed} faces).`);
    await showCollection();
  } catch (e) { say(e.message, true); }
}

function drawResults(file, result) {
  const img = new Image();
  img.onload = () => {
    const canvas = $("result-canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const line = Math.max(2, Math.round(img.naturalWidth / 300));
    ctx.font = `${Math.max(14, Math.round(img.naturalWidth / 40))}px system-ui, sans-serif`;
    for (const f of result.faces) {
      const [x, y, w, h] = f.face.box;
      const known = !f.unknown;
      ctx.lineWidth = line;
      ctx.strokeStyle = known ? "#1fa31f" : "#d11a1a";
      ctx.setLineDash(known ? [] : [8, 6]);
      ctx.strokeRect(x, y, w, h);
      const label = known ? f.person : "unknown";
      const tw = ctx.measureText(label).width + 8;
      const th = parseInt(ctx.font, 10) + 6;
      ctx.setLineDash([]);
      ctx.fillStyle = known ? "#1fa31f" : "#d11a1a";
      ctx.fillRect(x, Math.max(0, y - th), tw, th);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x + 4, Math.max(th - 6, y - 6));
    }
    URL.revokeObjectURL(img.src);
    $("result-figure").hidden = false;
  };
  img.src = URL.createObjectURL(file);
  const items = result.faces.map((f, i) => {
    const li = document.createElement("li");
    const best = f.candidates[0];
    li.className = f.unknown ? "unknown" : "known";
    li.textContent = f.unknown
      ? `Face ${i + 1}: unknown` + (best ? ` (nearest ${best.person}, score ${best.score.toFixed(3)})` : "")
      : `Face ${i + 1}: ${f.person} (score ${best.score.toFixed(3)})`;
    return li;
  });
  $("identify-results").replaceChildren(...items);
}

function guard(handler) {
  return async (event) => {
    event.preventDefault();
    try { await handler(event); } catch (e) { say(e.message, true); }
  };
}

$("key-form").addEventListener("submit", guard(async () => {
  state.key = $("api-key").value.trim();
  sessionStorage.setItem("faceprint-key", state.key);
  await loadCollections();
  say("Key accepted.");
}));

$("collection").addEventListener("change", guard(async () => {
  state.collection = $("collection").value;
  await showCollection();
}));
$("refresh").addEventListener("click", guard(loadCollections));

$("create-form").addEventListener("submit", guard(async () => {
  const name = $("new-name").value.trim();
  await api("POST", "/v1/collections", { name, keep_images: $("new-keep").checked });
  state.collection = name;
  await loadCollections();
  say(`Created collection ${name}.`);
}));

$("enrol-form").addEventListener("submit", guard(async () => {
  const name = $("enrol-name").value.trim();
  const files = $("enrol-files").files;
  const form = new FormData();
  for (const f of files) form.append("images", f, f.name);
  say(`Enrolling ${name} from ${files.length} photo(s)...`);
  const r = await api("POST", base() + "/persons/" + enc(name) + "/faces", form);
  say(`Enrolled ${r.name}: ${r.faces_added.length} face(s) added, ${r.face_count} in all.`);
  $("enrol-form").reset();
  await showCollection();
}));

$("identify-form").addEventListener("submit", guard(async () => {
  const file = $("identify-file").files[0];
  const form = new FormData();
  form.append("image", file, file.name);
  say("Identifying...");
  const r = await api("POST", base() + "/identify", form);
  drawResults(file, r);
  const known = r.faces.filter((f) => !f.unknown).length;
  say(`${r.faces.length} face(s): ${known} known, ${r.faces.length - known} unknown.`);
}));

if (state.key) {
  $("api-key").value = state.key;
  loadCollections().catch((e) => say(e.message, true));
}
