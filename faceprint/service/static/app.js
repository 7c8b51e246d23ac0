"use strict";
// The faceprint web page: talks to the same REST API as any client, with the key the user types.
const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem("faceprint-key") || "", collection: "", keepImages: false,
  thumbs: {} };  // thumbs: "collection/person" -> data: URLs of the faces enrolled from this page
// The enrolment in progress: its photos and, per photo, the chosen face index (null: the only face).
const enrolment = { name: "", files: [], choices: [] };

function say(message, isError = false) {
  const el = $("status");
  el.textContent = message;
  el.className = isError ? "error" : "";
}

function requireAccess() {
  if (!state.key) throw new Error("No key yet: enter an API key first (Access, above).");
  if (!state.collection) throw new Error("No collection yet: choose or create a collection first (Access, above).");
}

async function api(method, path, body) {
  if (!state.key) throw new Error("No key yet: enter an API key first (Access, above).");
  const headers = { "Authorization": "Bearer " + state.key };
  const options = { method, headers };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = data.error || { code: "http_" + response.status, message: response.statusText };
    const error = new Error(err.message + " (" + err.code + ")");
    error.code = err.code;
    throw error;
  }
  return data;
}

const enc = encodeURIComponent;
const base = () => "/v1/collections/" + enc(state.collection);

// A collection as the list shows it: its name, and for a fair one "fair" with its threshold.
function collectionLabel(c) {
  return c.fair ? `${c.name} (fair, threshold ${c.threshold.toFixed(4)})` : c.name;
}

async function loadCollections() {
  const list = await api("GET", "/v1/collections");
  const select = $("collection");
  select.replaceChildren(...list.map((c) => new Option(collectionLabel(c), c.name)));
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
  state.keepImages = c.keep_images;
  $("threshold").textContent = `Threshold in use: ${c.threshold.toFixed(4)} ` +
    `${c.fair ? "fair-normalised score" : "cosine similarity"} ` +
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
    tr.appendChild(thumbCell(p.name));
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

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = src;
  });
}

// A square-ish JPEG crop of box [x, y, w, h] (plus a quarter of its size on every side) as a data: URL.
function cropToDataURL(img, box, size = 96) {
  const [x, y, w, h] = box;
  const x0 = Math.max(0, x - w / 4), y0 = Math.max(0, y - h / 4);
  const x1 = Math.min(img.naturalWidth, x + w * 1.25), y1 = Math.min(img.naturalHeight, y + h * 1.25);
  const scale = Math.min(1, size / Math.max(x1 - x0, y1 - y0));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round((x1 - x0) * scale));
  canvas.height = Math.max(1, Math.round((y1 - y0) * scale));
  canvas.getContext("2d").drawImage(img, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.85);
}

const MAX_THUMBS = 6;  // thumbnails shown per person in the people list

// A person's face thumbnails: in a collection that keeps images, the service's crop of each kept
// face (GET .../faces/{id}/thumbnail); else the crops returned when they were enrolled from this
// page (none after a reload: such a collection stores no image of anyone). At most MAX_THUMBS.
async function personThumbs(name) {
  if (!state.keepImages) return { urls: (state.thumbs[state.collection + "/" + name] || []).slice(0, MAX_THUMBS) };
  const detail = await api("GET", base() + "/persons/" + enc(name));
  const kept = detail.faces.filter((f) => f.has_image && f.box);
  const urls = await Promise.all(kept.slice(0, MAX_THUMBS).map(async (f) => {
    const response = await fetch(base() + "/persons/" + enc(name) + "/faces/" + f.id + "/thumbnail",
      { headers: { "Authorization": "Bearer " + state.key } });
    return response.ok ? URL.createObjectURL(await response.blob()) : null;
  }));
  return { urls: urls.filter(Boolean), more: Math.max(0, kept.length - MAX_THUMBS) };
}

function thumbCell(name) {
  const td = document.createElement("td");
  td.className = "thumb";
  td.textContent = "-";
  td.title = "no image: the collection does not keep images and this face was not enrolled on this page";
  personThumbs(name).then(({ urls, more }) => {
    if (!urls.length) return;
    const images = urls.map((src, n) => {
      const img = new Image();
      if (src.startsWith("blob:")) img.onload = () => URL.revokeObjectURL(src);
      img.src = src;
      img.alt = `Face ${n + 1} of ${name}`;
      return img;
    });
    const extra = more ? [Object.assign(document.createElement("span"), { textContent: `+${more}` })] : [];
    td.replaceChildren(...images, ...extra);
    td.title = "";
  }).catch(() => {});
  return td;
}

async function deletePerson(name) {
  if (!confirm(`Delete ${name} and every face stored for them?`)) return;
  try {
    const r = await api("DELETE", base() + "/persons/" + enc(name));
    delete state.thumbs[state.collection + "/" + name];
    say(`Deleted ${name} (${r.faces_removed} faces).`);
    await showCollection();
  } catch (e) { say(e.message, true); }
}

// The passive liveness of /v1/liveness whose face box overlaps `box` [x, y, w, h] most (null when none does).
function livenessFor(box, checks) {
  let best = null;
  let bestOverlap = 0;
  const [x, y, w, h] = box;
  for (const c of checks) {
    if (!c.box) continue;
    const [a, b, cw, ch] = c.box;
    const iw = Math.min(x + w, a + cw) - Math.max(x, a);
    const ih = Math.min(y + h, b + ch) - Math.max(y, b);
    if (iw <= 0 || ih <= 0) continue;
    const overlap = (iw * ih) / (w * h + cw * ch - iw * ih);
    if (overlap > bestOverlap) [best, bestOverlap] = [c.liveness, overlap];
  }
  return best;
}

// The badge under a face box: LIVE and the live score, NOT JUDGED (a greyscale image), or SPOOF, the attack
// type and its probability.
function livenessBadge(live) {
  if (live.judged === false) return "NOT JUDGED (greyscale)";
  return live.is_live ? `LIVE ${live.score.toFixed(2)}`
    : `SPOOF ${live.attack_type} ${live.attack_probability.toFixed(2)}`;
}

function drawResults(file, result, checks = []) {
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
      const colour = f.skipped ? "#8c8c8c" : known ? "#1fa31f" : "#d11a1a";
      ctx.lineWidth = line;
      ctx.strokeStyle = colour;
      ctx.setLineDash(known ? [] : [8, 6]);
      ctx.strokeRect(x, y, w, h);
      const label = f.skipped ? "skipped" : known ? f.person : "unknown";
      const tw = ctx.measureText(label).width + 8;
      const th = parseInt(ctx.font, 10) + 6;
      ctx.setLineDash([]);
      ctx.fillStyle = colour;
      ctx.fillRect(x, Math.max(0, y - th), tw, th);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x + 4, Math.max(th - 6, y - 6));
      const live = livenessFor(f.face.box, checks);
      if (live) {
        const badge = livenessBadge(live);
        const bw = ctx.measureText(badge).width + 8;
        const top = Math.min(canvas.height - th, y + h);
        ctx.fillStyle = live.is_live ? "#1f6fb2" : "#c25400";
        ctx.fillRect(x, top, bw, th);
        ctx.fillStyle = "#fff";
        ctx.fillText(badge, x + 4, top + th - 6);
      }
    }
    URL.revokeObjectURL(img.src);
    $("result-figure").hidden = false;
  };
  img.src = URL.createObjectURL(file);
  const items = result.faces.map((f, i) => {
    const li = document.createElement("li");
    li.className = f.skipped ? "skipped" : f.unknown ? "unknown" : "known";
    li.textContent = faceVerdict(f, i, result.threshold, result.fmr);  // verdict.js
    const live = livenessFor(f.face.box, checks);
    if (live) {
      li.dataset.liveness = live.judged === false ? "not-judged" : live.is_live ? "live" : "spoof";
      li.textContent += live.judged === false ? ` · passive liveness: not judged (${live.reason})`
        : live.is_live ? ` · passive liveness: live (${live.score.toFixed(2)})`
        : ` · passive liveness: SPOOF suspected, ${live.attack_type} (${live.reason})`;
    }
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
  const fair = $("new-fair").checked;
  await api("POST", "/v1/collections", { name, keep_images: $("new-keep").checked, fair });
  state.collection = name;
  await loadCollections();
  say(`Created collection ${name}${fair ? " (fair scores)" : ""}.`);
}));

function showEnrolled(r) {
  const images = r.thumbnails.map((src, n) => {
    const img = new Image();
    img.src = src;
    img.alt = `${r.name}, face ${n + 1} enrolled`;
    return img;
  });
  const key = state.collection + "/" + r.name;
  state.thumbs[key] = [...(state.thumbs[key] || []), ...r.thumbnails];
  const caption = document.createElement("span");
  caption.textContent = `Enrolled for ${r.name}:`;
  $("enrolled").replaceChildren(caption, ...images);
  $("enrolled").hidden = images.length === 0;
}

// Offer the faces of the first photo (without a choice yet) that holds several usable faces.
async function offerPicker() {
  for (let i = 0; i < enrolment.files.length; i++) {
    if (enrolment.choices[i] !== null) continue;
    const file = enrolment.files[i];
    const form = new FormData();
    form.append("image", file, file.name);
    const usable = (await api("POST", "/v1/detect", form)).faces.filter((f) => f.usable);
    if (usable.length < 2) continue;
    const url = URL.createObjectURL(file);
    let img;
    try { img = await loadImage(url); } finally { URL.revokeObjectURL(url); }
    const buttons = usable.map((f, n) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "face-choice";
      button.dataset.index = String(f.index);
      button.setAttribute("aria-label", `Face ${n + 1} of ${usable.length} in ${file.name}`);
      const crop = new Image();
      crop.src = cropToDataURL(img, f.box);
      crop.alt = "";
      button.appendChild(crop);
      button.addEventListener("click", guard(async () => {
        enrolment.choices[i] = f.index;
        $("face-picker").hidden = true;
        await submitEnrolment();
      }));
      return button;
    });
    $("picker-prompt").textContent =
      `${file.name} shows ${usable.length} faces: choose the one to enrol as ${enrolment.name}.`;
    $("picker-faces").replaceChildren(...buttons);
    $("face-picker").hidden = false;
    say(`Choose the face of ${enrolment.name} in ${file.name}.`);
    buttons[0].focus();
    return true;
  }
  return false;
}

async function submitEnrolment() {
  const { name, files, choices } = enrolment;
  const form = new FormData();
  for (const f of files) form.append("images", f, f.name);
  if (choices.some((c) => c !== null)) for (const c of choices) form.append("face", c === null ? "" : String(c));
  say(`Enrolling ${name} from ${files.length} photo(s)...`);
  let r;
  try {
    r = await api("POST", base() + "/persons/" + enc(name) + "/faces", form);
  } catch (e) {
    if (e.code === "multiple_faces" && await offerPicker()) return;
    throw e;
  }
  say(`Enrolled ${r.name}: ${r.faces_added.length} face(s) added, ${r.face_count} in all.`);
  showEnrolled(r);
  $("enrol-form").reset();
  await showCollection();
}

$("enrol-form").addEventListener("submit", guard(async () => {
  requireAccess();
  const files = [...$("enrol-files").files];
  Object.assign(enrolment, { name: $("enrol-name").value.trim(), files, choices: files.map(() => null) });
  $("face-picker").hidden = true;
  await submitEnrolment();
}));

$("picker-cancel").addEventListener("click", () => {
  $("face-picker").hidden = true;
  say("Enrolment cancelled: nothing was stored.");
});

$("identify-form").addEventListener("submit", guard(async () => {
  requireAccess();
  const file = $("identify-file").files[0];
  const form = new FormData();
  form.append("image", file, file.name);
  const check = new FormData();
  check.append("image", file, file.name);
  say("Identifying...");
  const [r, live] = await Promise.all([api("POST", base() + "/identify", form), api("POST", "/v1/liveness", check)]);
  drawResults(file, r, live.faces);
  const known = r.faces.filter((f) => !f.unknown).length;
  const skipped = r.faces.filter((f) => f.skipped).length;
  say(`${r.faces.length} face(s): ${known} known, ${r.faces.length - known - skipped} unknown` +
    (skipped ? `, ${skipped} skipped (too poor to search).` : "."));
}));

if (state.key) {
  $("api-key").value = state.key;
  loadCollections().catch((e) => say(e.message, true));
}
