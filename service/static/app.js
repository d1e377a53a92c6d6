// The try-it page: send a photo to /explain, show the answer with a bar per class and, over
// the photo, the heatmap of where the model looked (a toggle hides it). A photo that is none
// of the model's classes (its labels are in the page, from the model folder) is said to be
// so, its bars muted.
"use strict";

const form = document.getElementById("upload-form");
const input = document.getElementById("photo");
const dropZone = document.getElementById("drop-zone");
const keyRow = document.getElementById("key-row");
const keyInput = document.getElementById("api-key");
const result = document.getElementById("result");
const preview = document.getElementById("preview");
const verdict = document.getElementById("verdict");
const bars = document.getElementById("bars");
const errorBox = document.getElementById("error");
const heatmap = document.getElementById("heatmap");
const showHeatmap = document.getElementById("show-heatmap");
const KEY_STORAGE = "mug-classifier-api-key";
const LABELS = JSON.parse(document.getElementById("model-labels").textContent);
const feedbackForm = document.getElementById("feedback");
const correctLabel = document.getElementById("correct-label");
const feedbackStatus = document.getElementById("feedback-status");
let feedbackOn = false;  // /health says whether corrections are kept
let lastAnswer = null;  // {file, requestId} of the answer a correction is about

function showError(message) {
  result.hidden = true;
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function percent(p) {
  return (p * 100).toFixed(1) + "%";
}

function drawHeatmap(values) {
  // Each cell's value as the opacity of a warm red: where the model looked stands out.
  heatmap.width = values[0].length;
  heatmap.height = values.length;
  const context = heatmap.getContext("2d");
  const pixels = context.createImageData(heatmap.width, heatmap.height);
  values.flat().forEach((value, i) => {
    pixels.data.set([255, Math.round(255 * (1 - value * 0.75)), Math.round(255 * (1 - value)), 255], i * 4);
  });
  context.putImageData(pixels, 0, 0);
  heatmap.dataset.peak = String(Math.max(...values.flat()));
}

function offerCorrection(file, prediction, requestId) {
  // "Wrong? It is ...": every other label, and none of them.
  lastAnswer = { file, requestId };
  const choices = LABELS.filter((label) => label !== prediction.label).map((label) => [label, label]);
  choices.push(["none", "none of these"]);
  correctLabel.replaceChildren(...choices.map(([value, text]) => Object.assign(
    document.createElement("option"), { value, textContent: text })));
  feedbackStatus.textContent = "";
  feedbackForm.hidden = !feedbackOn;
}

async function sendCorrection(event) {
  event.preventDefault();
  if (!lastAnswer) return;
  const body = new FormData();
  body.append("image", lastAnswer.file);
  body.append("label", correctLabel.value);
  if (lastAnswer.requestId) body.append("request_id", lastAnswer.requestId);
  const headers = {};
  const key = keyInput.value.trim();
  if (key) headers["X-API-Key"] = key;
  try {
    const response = await fetch("/feedback", { method: "POST", body, headers });
    const payload = await response.json();
    feedbackStatus.textContent = response.ok
      ? `Thank you: kept as ${payload.label}.`
      : `Not kept: ${payload.detail || response.status}`;
  } catch (error) {
    feedbackStatus.textContent = "Not kept: the service could not be reached.";
  }
}

function showPrediction(file, prediction) {
  errorBox.hidden = true;
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  const unknown = prediction.label === "unknown";
  if (unknown) {
    // None of the classes: say so plainly; the bars stay, muted, for the curious.
    verdict.replaceChildren(Object.assign(document.createElement("strong"), {
      textContent: `This photo does not look like any of: ${LABELS.join(", ")}.`,
    }), " The bars show how the model would split it among them anyway.");
  } else {
    const top = prediction.probabilities[prediction.label];
    verdict.replaceChildren("It is ", Object.assign(document.createElement("strong"), {
      textContent: prediction.label,
    }), ` (${percent(top)}).`);
  }
  verdict.classList.toggle("unknown", unknown);
  bars.classList.toggle("muted", unknown);
  drawHeatmap(prediction.heatmap);
  const sorted = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  bars.replaceChildren(...sorted.map(([name, p]) => {
    const item = document.createElement("li");
    item.dataset.label = name;
    const label = Object.assign(document.createElement("span"), { className: "name", textContent: name });
    const track = Object.assign(document.createElement("span"), { className: "track" });
    track.setAttribute("role", "progressbar");
    track.setAttribute("aria-label", name);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", (p * 100).toFixed(1));
    const fill = Object.assign(document.createElement("span"), { className: "fill" });
    fill.style.width = percent(p);
    track.append(fill);
    const value = Object.assign(document.createElement("span"), { className: "value", textContent: percent(p) });
    item.append(label, track, value);
    return item;
  }));
  result.hidden = false;
}

async function classify(file) {
  if (!file) return;
  const body = new FormData();
  body.append("image", file);
  const headers = {};
  const key = keyInput.value.trim();
  if (key) {
    headers["X-API-Key"] = key;
    sessionStorage.setItem(KEY_STORAGE, key);
  }
  let response;
  try {
    response = await fetch("/explain", { method: "POST", body, headers });
  } catch (error) {
    showError("The service could not be reached. Check your connection and try again.");
    return;
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (error) {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && payload.detail ? payload.detail : `HTTP ${response.status}`;
    if (response.status === 401) keyRow.hidden = false;
    showError(`Not classified: ${detail}`);
    return;
  }
  showPrediction(file, payload);
  offerCorrection(file, payload, response.headers.get("X-Request-ID"));
}

input.addEventListener("change", () => {
  classify(input.files[0]);
  input.value = "";  // the same file again still triggers a change
});
dropZone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    input.click();  // a key press is a user action, so the file dialog may open
  }
});
for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropZone.addEventListener(name, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  classify(event.dataTransfer.files[0]);
});
form.addEventListener("submit", (event) => event.preventDefault());
feedbackForm.addEventListener("submit", sendCorrection);
showHeatmap.addEventListener("change", () => heatmap.classList.toggle("hidden", !showHeatmap.checked));

keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";

fetch("/health")
  .then((response) => response.json())
  .then((health) => {
    document.getElementById("model-version").textContent = health.model_version || "loading";
    if (health.api_key_required) keyRow.hidden = false;
    feedbackOn = Boolean(health.feedback);
  })
  .catch(() => {
    document.getElementById("model-version").textContent = "unavailable";
  });
