// wordsight web page: choose or drop an image, see the top-k classes as bars and the image in words.
// Plain JS, no build step. Talks to the same API as any client (/v1/model, /v1/predict, /v1/zeroshot).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { tab: "classify", file: null, info: null, busy: false };

function apiHeaders() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...apiHeaders(), ...(options.headers || {}) } });
  let body = null;
  try { body = await res.json(); } catch (e) { body = { error: "bad_response", detail: res.statusText }; }
  if (!res.ok) {
    if (res.status === 401) $("key-box").open = true;
    const err = new Error(body.detail || body.error || res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("results").hidden = true;
  $("status").textContent = "";
}

function setStatus(text) {
  $("status").textContent = text;
}

function selectTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll(".tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  }
  $("zeroshot-panel").hidden = tab !== "zeroshot";
  showTextPanel();
  $("results").hidden = true;
  $("error").hidden = true;
  if (state.file && tab === "classify") run();
}

function showTextPanel() {  // the own-text box: on the classify tab, for a model that reads texts
  $("text-panel").hidden = !(state.tab === "classify" && readsTexts());
}

function readsTexts() {
  return Boolean(state.info && state.info.model && state.info.model.reads_texts);
}

function setFile(file) {
  if (!file) return;
  state.file = file;
  const url = URL.createObjectURL(file);
  $("preview").src = url;
  $("preview").hidden = false;
  $("drop-text").textContent = file.name;
  if (state.tab === "classify" || $("classes").value.trim()) run();
  else setStatus("Now type the class names and press the button.");
}

function parseClasses(text) {
  const classes = [];
  const descriptions = {};
  const lines = text.includes("\n") ? text.split("\n") : text.split(",");
  for (const line of lines) {
    const i = line.indexOf(":");
    const name = (i >= 0 ? line.slice(0, i) : line).trim();
    if (!name) continue;
    classes.push(name);
    const d = i >= 0 ? line.slice(i + 1).trim() : "";
    if (d) descriptions[name] = d;
  }
  return { classes, descriptions };
}

function isDetector() {
  return Boolean(state.info && state.info.model && state.info.model.kind === "anomaly");
}

function renderAnomaly(result) {  // an anomaly detector: decision, score beside its threshold, heatmap
  $("top-class").textContent = result.decision;
  $("anomaly").textContent = `anomaly score ${result.score.toFixed(4)} (threshold ${result.threshold.toFixed(4)}; ` +
    "higher is more normal)";
  $("anomaly").hidden = false;
  $("bars").replaceChildren();
  $("words-title").hidden = true;
  $("description").textContent = "";
  $("heatmap-box").hidden = !result.heatmap_png;
  if (result.heatmap_png) $("heatmap").src = "data:image/png;base64," + result.heatmap_png;
  $("error").hidden = true;
  $("results").hidden = false;
}

function renderSets(result) {  // the prediction set and "unknown", when the request asked for them
  $("set-line").hidden = result.prediction_set === undefined;
  if (result.prediction_set !== undefined) {
    $("set-line").textContent = `prediction set at ${Math.round(100 * result.coverage)}% coverage: ` +
      `{${result.prediction_set.join(", ")}}`;
  }
  $("unknown-line").hidden = result.unknown === undefined;
  if (result.unknown !== undefined) {
    $("unknown-line").textContent = result.unknown
      ? `unknown: less like the training classes than ${Math.round(100 * (1 - result.reject_rate))}% of the training images`
      : "known: like the training classes";
  }
}

// A multi-label model's answer: each tag of the label set with its own (independent) probability.
function tagLine(result) {
  if (!result.predicted.length) return "no tags";
  const p = Object.fromEntries((result.tags || result.top_k).map((t) => [t.class, t.probability]));
  return "tags: " + result.predicted
    .map((t) => (p[t] === undefined ? t : `${t} ${(100 * p[t]).toFixed(1)}%`)).join(", ");
}

function render(result) {
  $("anomaly").hidden = true;
  $("words-title").hidden = false;
  renderSets(result);
  const tags = Array.isArray(result.predicted);  // a multi-label model answers a set of tags
  $("top-class").textContent = tags ? tagLine(result) : result.predicted;
  const bars = $("bars");
  bars.replaceChildren();
  for (const item of result.top_k) {
    const li = document.createElement("li");
    const pct = (100 * item.probability);
    li.innerHTML = '<span class="name"></span><span class="track"><span class="bar"></span></span><span class="pct"></span>';
    li.querySelector(".name").textContent = item.class;
    li.querySelector(".name").title = item.class;
    li.querySelector(".bar").style.width = Math.max(pct, 0.5).toFixed(1) + "%";
    li.querySelector(".bar").style.display = "block";
    li.querySelector(".pct").textContent = pct.toFixed(1) + "%";
    if (tags && result.predicted.includes(item.class)) li.classList.add("tag");  // in the label set
    bars.appendChild(li);
  }
  $("description").textContent = result.description || "(no description available)";
  $("heatmap-box").hidden = true;
  $("error").hidden = true;
  $("results").hidden = false;
}

async function explain(form) {
  try {
    const body = await api("/v1/explain", { method: "POST", body: form });
    const r = body.results && body.results[0];
    if (r && r.heatmap_png) {
      $("heatmap").src = "data:image/png;base64," + r.heatmap_png;
      $("heatmap-box").hidden = false;
    }
  } catch (e) {
    // the heatmap is extra: predictions stay on screen without it
  }
}

async function run() {
  if (!state.file || state.busy) return;
  const form = new FormData();
  form.append("files", state.file, state.file.name);
  let path = "/v1/predict";
  if (state.tab === "zeroshot") {
    const { classes, descriptions } = parseClasses($("classes").value);
    if (classes.length < 2) { showError("Type at least two class names."); return; }
    form.append("classes", JSON.stringify(classes));
    if (Object.keys(descriptions).length) form.append("descriptions", JSON.stringify(descriptions));
    path = "/v1/zeroshot";
  } else if (readsTexts() && $("own-text").value.trim()) {
    form.append("texts", JSON.stringify([$("own-text").value.trim()]));  // one text per image
  }
  if (state.tab === "classify" && !$("sets-box").hidden) {
    if ($("coverage").value.trim()) form.append("coverage", $("coverage").value.trim());
    if ($("reject-rate").value.trim()) form.append("reject_rate", $("reject-rate").value.trim());
  }
  state.busy = true;
  setStatus("Thinking…");
  $("error").hidden = true;
  try {
    const body = await api(path, { method: "POST", body: form });
    if (state.tab === "classify" && isDetector()) {
      renderAnomaly(body.results[0]);
      setStatus("");
      return;
    }
    render(body.results[0]);
    setStatus(state.tab === "zeroshot" ? "Zero-shot: classes from your words only." : "");
    if (state.tab === "classify" && state.info && state.info.explain) {
      const again = new FormData();
      again.append("files", state.file, state.file.name);
      const shown = body.results[0].predicted;  // the class on screen (a paired model's text may move it)
      again.append("target", Array.isArray(shown) ? (shown[0] || body.results[0].top_k[0].class) : shown);
      explain(again);
    }
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
  }
}

async function loadInfo() {
  try {
    const info = await api("/v1/model");
    state.info = info;
    if (info.model && info.model.kind === "anomaly") {
      $("model-info").textContent = `${info.model.name}: anomaly detector (${info.model.method}, ` +
        `${info.model.encoders.join(" + ")}) · wordsight ${info.version}`;
    } else if (info.model) {
      $("sets-box").hidden = !info.model.sets;
      const what = info.model.task === "multi-label" ? "labels (tags)" : "classes";  // a label set per image
      $("model-info").textContent = `${info.model.name}: ${info.model.classes.length} ${what} ` +
        `(${info.model.encoders.join(" + ")}, ${info.model.head} head) · wordsight ${info.version}`;
      showTextPanel();
    } else {
      $("model-info").textContent = `zero-shot only (${info.zero_shot.encoder}) · wordsight ${info.version}`;
      $("tab-classify").disabled = true;
      selectTab("zeroshot");
    }
    if (!info.zero_shot.available) $("tab-zeroshot").disabled = true;
  } catch (e) {
    $("model-info").textContent = e.status === 401 ? "this server needs an API key (below)" : "model information unavailable: " + e.message;
  }
}

function init() {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => selectTab(b.dataset.tab));
  }
  $("file-input").addEventListener("change", (e) => setFile(e.target.files[0]));
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    if (e.dataTransfer.files.length) setFile(e.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file-input").click(); });
  $("zs-run").addEventListener("click", run);
  $("text-run").addEventListener("click", run);
  $("coverage").addEventListener("change", run);
  $("reject-rate").addEventListener("change", run);
  $("api-key").addEventListener("change", loadInfo);
  loadInfo();
}

init();
