"use strict";
// "What faces show": POST /v1/analyze, then each face's attributes drawn under its box and listed.
// Uses $, api, guard and say from app.js.

function attributeLines(f) {
  const lines = [];
  if (f.age || f.gender) {
    const parts = [];
    if (f.age) parts.push(`age ${Math.round(f.age.years)} (${Math.round(f.age.low)}-${Math.round(f.age.high)})`);
    if (f.gender) parts.push(`${f.gender.label} ${f.gender.confidence.toFixed(2)}`);
    lines.push(parts.join(", "));
  }
  if (f.expression) lines.push(`${f.expression.label} ${f.expression.confidence.toFixed(2)}`);
  if (f.pose) {
    const s = (v) => (v >= 0 ? "+" : "") + Math.round(v);
    lines.push(`yaw ${s(f.pose.yaw)} pitch ${s(f.pose.pitch)} roll ${s(f.pose.roll)}`);
  }
  if (f.eyes) lines.push(f.eyes.open ? "eyes open" : "eyes closed");
  if (f.quality) lines.push(`quality ${f.quality.score.toFixed(2)}` +
    (f.quality.reasons.length ? ` (${f.quality.reasons.join(", ")})` : ""));
  for (const [name, why] of Object.entries(f.not_estimated)) lines.push(`${name}: ${why}`);
  return lines;
}

function drawAttributes(file, result) {
  const img = new Image();
  img.onload = () => {
    const canvas = $("analyze-canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const size = Math.max(14, Math.round(img.naturalWidth / 45));
    ctx.font = `${size}px system-ui, sans-serif`;
    ctx.lineWidth = Math.max(2, Math.round(img.naturalWidth / 300));
    result.faces.forEach((f, i) => {
      const [x, y, w, h] = f.face.box;
      ctx.strokeStyle = "#1f6fb2";
      ctx.strokeRect(x, y, w, h);
      let top = Math.min(canvas.height - size, y + h);
      for (const line of [`#${i + 1}`, ...attributeLines(f)]) {
        ctx.fillStyle = "rgba(20, 20, 20, 0.8)";
        ctx.fillRect(x, top, ctx.measureText(line).width + 8, size + 6);
        ctx.fillStyle = "#fff";
        ctx.fillText(line, x + 4, top + size);
        top += size + 6;
      }
    });
    URL.revokeObjectURL(img.src);
    $("analyze-figure").hidden = false;
  };
  img.src = URL.createObjectURL(file);
  const items = result.faces.map((f, i) => {
    const li = document.createElement("li");
    li.textContent = `Face ${i + 1}: ` + attributeLines(f).join("; ");
    return li;
  });
  $("analyze-results").replaceChildren(...items);
  $("analyze-empty").hidden = result.faces.length > 0;
  $("analyze-empty").textContent = result.reason || "";
}

$("analyze-form").addEventListener("submit", guard(async () => {
  const file = $("analyze-file").files[0];
  const wanted = [...document.querySelectorAll("#analyze-form input[name=attribute]:checked")].map((c) => c.value);
  if (!wanted.length) throw new Error("Tick at least one attribute to read.");
  const form = new FormData();
  form.append("image", file);
  say("Reading the faces...");
  const result = await api("POST", "/v1/analyze?attributes=" + encodeURIComponent(wanted.join(",")), form);
  drawAttributes(file, result);
  say(`${result.faces.length} face(s) read.`);
}));
