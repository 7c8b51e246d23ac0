"use strict";
// What the web page says about one identified face: its decision, its best score and the threshold
// that score had to reach, in words. Loaded before app.js; node can require it (tests).

// 0.001 -> "1e-3", 0.00003 -> "3e-5", 0.25 -> "0.25".
function formatRate(rate) {
  if (!(rate > 0) || rate >= 0.1) return String(rate);
  const [mantissa, exponent] = rate.toExponential().split("e");
  return `${Number(Number(mantissa).toFixed(1))}e${Number(exponent)}`;
}

// Score and threshold with two decimals, or four when two would print them equal.
function scoreAndThreshold(score, threshold) {
  const digits = score.toFixed(2) === threshold.toFixed(2) ? 4 : 2;
  return [score.toFixed(digits), threshold.toFixed(digits)];
}

// One line for face `index` (0-based) of an identify response: `face` is one of its `faces`,
// `threshold` and `fmr` the response's own.
function faceVerdict(face, index, threshold, fmr) {
  const head = `Face ${index + 1}`;
  if (face.skipped) return `${head}: skipped, not searched (${face.skipped})`;
  if (face.rejected) return `${head}: rejected before matching (${face.rejected})`;
  const best = face.candidates[0];
  if (!best) return `${head}: unknown: nobody enrolled to compare with`;
  const [score, needed] = scoreAndThreshold(best.score, threshold);
  const rate = `FMR ${formatRate(fmr)}`;
  if (face.unknown) {
    return `${head}: unknown: nearest ${best.person} scored ${score}, below the ${needed} needed for a match (${rate})`;
  }
  return `${head}: ${face.person} (scored ${score}, at or above the ${needed} needed for a match, ${rate})`;
}

if (typeof module !== "undefined") module.exports = { faceVerdict, formatRate };
