"use strict";
// The camera section of the web page (loaded after app.js, whose api(), base(), enc(), guard(),
// requireAccess(), say() and livenessBadge() it uses): identify the faces in the live picture, and the
// active liveness challenge (blink / turn / smile on request) driven with the camera's frames.
//
// One request is in flight at a time: the next frame is taken only when the answer to the last
// one has arrived (then after IDENTIFY_EVERY_MS in identify mode, at once during a challenge).
const IDENTIFY_EVERY_MS = 300;
const FRAME_MAX_SIDE = 640;  // frames are scaled down to this before they are sent (JPEG)
const camera = { stream: null, running: false, mode: "identify", challenge: null, timer: null,
  inFlight: false, frameSize: [0, 0], lastSummary: null, lastInstruction: "" };

function cameraSay(message) { $("camera-status").textContent = message; }

// The current video frame as a JPEG blob, at most FRAME_MAX_SIDE pixels on its longest side.
function grabFrame() {
  const video = $("camera-video");
  const scale = Math.min(1, FRAME_MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  camera.frameSize = [canvas.width, canvas.height];
  return new Promise((resolve, reject) => canvas.toBlob(
    (blob) => blob ? resolve(blob) : reject(new Error("the browser could not encode a camera frame")),
    "image/jpeg", 0.85));
}

// Boxes ([x, y, w, h] in frame pixels) with a label and an optional badge under each, over the video.
function drawOverlay(items) {
  const overlay = $("camera-overlay");
  [overlay.width, overlay.height] = camera.frameSize;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  ctx.font = "16px system-ui, sans-serif";
  for (const { box, label, colour, dashed, badge, badgeColour } of items) {
    const [x, y, w, h] = box;
    ctx.lineWidth = 3;
    ctx.strokeStyle = colour;
    ctx.setLineDash(dashed ? [8, 6] : []);
    ctx.strokeRect(x, y, w, h);
    ctx.setLineDash([]);
    for (const [text, fill, top] of [[label, colour, Math.max(0, y - 22)], [badge, badgeColour, y + h]]) {
      if (!text) continue;
      ctx.fillStyle = fill;
      ctx.fillRect(x, Math.min(overlay.height - 22, top), ctx.measureText(text).width + 8, 22);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 4, Math.min(overlay.height - 22, top) + 16);
    }
  }
}

async function identifyFrame(blob) {
  requireAccess();
  const form = new FormData();
  form.append("image", blob, "camera.jpg");
  const r = await api("POST", base() + "/identify?top_k=1&liveness=true", form);
  drawOverlay(r.faces.map((f) => ({
    box: f.face.box,
    label: f.skipped ? "skipped" : f.unknown ? "unknown" : f.person,
    colour: f.skipped ? "#8c8c8c" : f.unknown ? "#d11a1a" : "#1fa31f",
    dashed: f.unknown,
    badge: f.liveness ? livenessBadge(f.liveness) : "",
    badgeColour: f.liveness && f.liveness.is_live ? "#1f6fb2" : "#c25400",
  })));
  // The list (read by screen readers) changes only when what it says changes, not on every frame.
  // No scores here: they change with every frame, and screen readers would be told each time.
  const lines = r.faces.map((f, i) => {
    const who = f.skipped ? "skipped (too poor to search)" : f.unknown ? "unknown" : f.person;
    const live = !f.liveness ? "" : f.liveness.judged === false ? " · NOT JUDGED (greyscale)"
      : f.liveness.is_live ? " · LIVE" : ` · SPOOF suspected (${f.liveness.attack_type})`;
    return { text: `Face ${i + 1}: ${who}${live}`, face: f };
  });
  const summary = lines.map((l) => l.text).join("\n");
  if (summary !== camera.lastSummary) {
    camera.lastSummary = summary;
    $("camera-results").replaceChildren(...lines.map(({ text, face }) => {
      const li = document.createElement("li");
      li.textContent = text;
      li.className = face.skipped ? "skipped" : face.unknown ? "unknown" : "known";
      if (face.person) li.dataset.person = face.person;
      if (face.liveness) {
        li.dataset.liveness = face.liveness.judged === false ? "not-judged" : face.liveness.is_live ? "live" : "spoof";
      }
      return li;
    }));
    $("camera-empty").hidden = r.faces.length > 0;
  }
}

// What the page says when a challenge ends: LIVE, or NOT VERIFIED and the service's reason.
function challengeVerdict(result) {
  const steps = result.challenge.map((s) => s.replace("_", " ")).join(", then ");
  return result.live ? `LIVE: every step passed (${steps}) and the passive check too.`
    : `NOT VERIFIED: ${result.reason}.`;
}

async function challengeFrame(blob) {
  const form = new FormData();
  form.append("image", blob, "camera.jpg");
  const s = await api("POST", "/v1/liveness/challenges/" + enc(camera.challenge.id) + "/frames", form);
  drawOverlay(s.box ? [{ box: s.box, label: s.face_found ? "subject" : "", colour: "#0b5cad" }] : []);
  const left = s.remaining_s === null ? "" : ` (${Math.ceil(s.remaining_s)} s left)`;
  $("challenge-timer").textContent = s.done ? "" : (s.face_found ? "" : "No face in view. ") + left.trim();
  if (s.instruction && s.instruction !== camera.lastInstruction) {
    camera.lastInstruction = s.instruction;
    $("challenge-instruction").textContent = s.phase === "challenge"
      ? `Step ${s.step + 1} of ${s.steps.length}: ${s.instruction}` : s.instruction;
  }
  if (!s.done) return;
  const verdict = $("challenge-verdict");
  verdict.textContent = challengeVerdict(s.result);
  verdict.dataset.outcome = s.result.live ? "live" : "failed";
  verdict.className = s.result.live ? "known" : "unknown";
  $("challenge-instruction").textContent = "";
  endChallenge();
}

function endChallenge() {
  camera.mode = "identify";
  camera.challenge = null;
  camera.lastInstruction = "";
  camera.lastSummary = null;
  $("liveness-start").disabled = !camera.running;
  $("challenge-timer").textContent = "";
}

async function tick() {
  camera.timer = null;
  if (!camera.running || camera.inFlight) return;
  camera.inFlight = true;
  let wait = IDENTIFY_EVERY_MS;
  try {
    const video = $("camera-video");
    if (video.readyState >= 2 && video.videoWidth > 0) {
      const blob = await grabFrame();
      if (camera.mode === "liveness") { await challengeFrame(blob); wait = 0; } else await identifyFrame(blob);
    }
  } catch (e) {
    say(e.message, true);
    if (camera.mode === "liveness") endChallenge();
    wait = 2000;  // a failing service is not asked again at once
  } finally {
    camera.inFlight = false;
  }
  if (camera.running) camera.timer = setTimeout(tick, wait);
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("This browser gives no camera to this page: open it over https or at localhost.");
  }
  camera.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  const video = $("camera-video");
  video.srcObject = camera.stream;
  await video.play();
  camera.running = true;
  $("camera-view").hidden = false;
  $("camera-start").disabled = true;
  $("camera-stop").disabled = false;
  $("liveness-start").disabled = false;
  cameraSay("Camera on: faces are identified a few times a second.");
  $("camera-stop").focus();
  tick();
}

function stopCamera() {
  camera.running = false;
  if (camera.timer) clearTimeout(camera.timer);
  if (camera.stream) for (const track of camera.stream.getTracks()) track.stop();
  camera.stream = null;
  endChallenge();
  $("camera-video").srcObject = null;
  $("camera-view").hidden = true;
  $("camera-start").disabled = false;
  $("camera-stop").disabled = true;
  $("liveness-start").disabled = true;
  $("challenge-instruction").textContent = "";
  cameraSay("Camera off.");
  $("camera-start").focus();
}

async function startChallenge() {
  const c = await api("POST", "/v1/liveness/challenges", { n_steps: 2 });
  camera.challenge = c;
  camera.mode = "liveness";
  camera.lastInstruction = "";
  $("liveness-start").disabled = true;
  const verdict = $("challenge-verdict");
  verdict.textContent = "";
  delete verdict.dataset.outcome;
  $("challenge-steps").textContent = `Liveness check: ${c.instructions.length} steps in random order. ` +
    c.instructions.map((t, i) => `${i + 1}. ${t}`).join(" ");
  $("challenge-instruction").textContent = c.instruction;
}

$("camera-start").addEventListener("click", guard(startCamera));
$("camera-stop").addEventListener("click", guard(async () => stopCamera()));
$("liveness-start").addEventListener("click", guard(startChallenge));
