// roofline ui: the page's inputs <-> the URL <-> the JSON API; plotly draws the answers.
"use strict";

const FIELDS = ["model", "hardware", "system", "bandwidth", "flops", "memory", "scale_up_gb_per_s",
  "scale_out_gb_per_s", "gpus", "tp", "pp", "ep",
  "batch", "isl", "osl", "weight_dtype", "kv_dtype", "runtime", "ignore_memory"];
// the training tab's fields: element id t_<name>, URL key t.<name>
const TRAIN_FIELDS = ["model", "task", "precision", "recompute", "hardware", "system", "gpus", "tp", "pp", "cp", "ep",
  "global_batch", "micro_batch", "seq_len", "tokens"];
const DEBOUNCE_MS = 75;  // typing "128" is one update, not three
const GIB = 2 ** 30;
let pinned = null;   // state B: the configuration compared side by side
let sequence = 0;    // answers to an older input are dropped
let timer = null;
let changedAt = null; // performance.now() of the first input change not yet answered
let tab = "infer";   // the tab shown: "infer" or "train"
let trainSequence = 0, trainTimer = null, trainShown = false;

const $ = (id) => document.getElementById(id);

function readState(fields = FIELDS, idPrefix = "") {
  const state = {};
  for (const name of fields) {
    const el = $(idPrefix + name);
    const value = el.type === "checkbox" ? (el.checked ? "1" : "") : el.value.trim();
    if (value !== "") state[name] = value;
  }
  return state;
}

const readTrainState = () => readState(TRAIN_FIELDS, "t_");

function writeInputs(state, fields = FIELDS, idPrefix = "") {
  for (const name of fields) {
    if (!(name in state)) continue;
    const el = $(idPrefix + name);
    if (el.type === "checkbox") el.checked = state[name] === "1";
    else {
      if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === state[name])) addOption(el, state[name]);
      el.value = state[name];
    }
  }
}

function addOption(select, value, label) {
  const option = document.createElement("option");
  option.value = value;
  option.textContent = label || value;
  select.appendChild(option);
}

function query(state, prefix = "") {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) params.set(prefix + k, v);
  return params;
}

// The whole view in the query string: A's fields, B's as b.<name>, the tab, the training tab's as t.<name>.
function shareURL(state = readState()) {
  const params = query(state);
  if (pinned) for (const [k, v] of query(pinned, "b.")) params.set(k, v);
  if (tab !== "infer") params.set("tab", tab);
  if (tab === "train" || trainShown) for (const [k, v] of query(readTrainState(), "t.")) params.set(k, v);
  return `${location.pathname}?${params}`;
}

function stateFromURL() {
  const params = new URLSearchParams(location.search);
  const a = {}, b = {}, t = {};
  for (const [k, v] of params) {
    if (k.startsWith("b.")) b[k.slice(2)] = v;
    else if (k.startsWith("t.")) t[k.slice(2)] = v;
    else if (FIELDS.includes(k)) a[k] = v;
  }
  return [a, Object.keys(b).length ? b : null, t, params.get("tab") === "train" ? "train" : "infer"];
}

function showURL() {
  const url = shareURL();
  history.replaceState(null, "", url);
  $("share").href = url;
}

async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `error: HTTP ${response.status}`);
  return data;
}

function schedule() {
  if (changedAt === null) changedAt = performance.now();
  clearTimeout(timer);
  timer = setTimeout(update, DEBOUNCE_MS);
}

async function update() {
  const mine = ++sequence;
  const state = readState();
  showURL();
  for (const fmt of ["json", "csv", "xlsx", "html"]) $(`export_${fmt}`).href = `/api/export?fmt=${fmt}&${query(state)}`;
  document.body.dataset.busy = "1";
  try {
    const [a, sweepA, b, sweepB] = await Promise.all([post("/api/estimate", state), post("/api/sweep-batch", state),
      pinned ? post("/api/estimate", pinned) : null, pinned ? post("/api/sweep-batch", pinned) : null]);
    if (mine !== sequence) return;
    $("error").textContent = "";
    const received = performance.now();
    show(a, b, sweepA.rows, sweepB ? sweepB.rows : null);
    timing(received);
  } catch (err) {
    if (mine !== sequence) return;
    $("error").textContent = err.message;
  } finally {
    if (mine === sequence) document.body.dataset.busy = "";
  }
}

// How long the last input change took to be answered on screen (the page's own clock, for the tests):
// data-answer-ms: until the numbers and figures are updated; data-server-ms: of it, waiting for the API.
function timing(received) {
  if (changedAt === null) return;
  const drawn = performance.now();
  document.body.dataset.answerMs = (drawn - changedAt).toFixed(1);
  document.body.dataset.drawMs = (drawn - received).toFixed(1);
  changedAt = null;
}

function show(a, b, sweepA, sweepB) {
  const h = a.headline;
  for (const key of ["ttft", "tpot", "throughput", "throughput_per_gpu"]) $(key).textContent = h[key] || "-";
  $("memory_total").textContent = `${h.memory_total} of ${h.memory_capacity}`;
  $("fit").textContent = h.fits ? "fits" : h.fit;
  $("warnings").textContent = a.warnings.map((w) => `warning: ${w}`).join("\n");
  showLinks(a.links);
  drawRoofline(a);
  drawMemory(a, b);
  drawBreakdown(a);
  drawSweep(sweepA, sweepB);
  showCompare(a, b);
}

const LAYOUT = { margin: { l: 60, r: 10, t: 30, b: 90 }, font: { size: 11 }, legend: { orientation: "h", y: -0.3 } };
const CONFIG = { displaylogo: false, responsive: true };

function drawRoofline(view) {
  const r = view.roofline;
  if (!r) { Plotly.react("roofline", [], { ...LAYOUT, title: { text: "roofline: not timed (does not fit)" } }, CONFIG); return; }
  const xs = [0.1, 1e5];
  const traces = [];
  for (const c of r.ceilings) for (const s of r.slopes) {
    const ridge = c.flops_per_s / s.bytes_per_s;
    traces.push({ x: [xs[0], ridge, xs[1]], y: [xs[0] * s.bytes_per_s, c.flops_per_s, c.flops_per_s],
      mode: "lines", name: `${c.dtype} / ${s.name} (ridge ${ridge.toFixed(0)} FLOP/B)`, hoverinfo: "name",
      line: { width: 1.5, dash: c.dtype === "bf16" ? "solid" : "dot" } });
  }
  for (const phase of ["prefill", "decode"]) {
    const pts = r.points.filter((p) => p.phase === phase);
    traces.push({ x: pts.map((p) => p.intensity_flops_per_byte), y: pts.map((p) => p.achieved_flops_per_s),
      mode: "markers", type: "scatter", name: phase, marker: { size: 9, symbol: phase === "prefill" ? "circle" : "diamond" },
      customdata: pts.map((p) => [p.name, p.flops.toExponential(3), p.bytes.toExponential(3), p.time, p.bound, p.detail]),
      hovertemplate: "<b>%{customdata[0]}</b><br>FLOPs %{customdata[1]}<br>bytes %{customdata[2]}<br>" +
        "time %{customdata[3]}<br>bound: %{customdata[4]}<br>kernel: %{customdata[5]}<extra>" + phase + "</extra>" });
  }
  Plotly.react("roofline", traces, { ...LAYOUT, title: { text: "operators on the roofline (prefill and a decode step)" },
    xaxis: { type: "log", title: { text: "arithmetic intensity (FLOP/byte)" } },
    yaxis: { type: "log", title: { text: "achieved FLOP/s" } } }, CONFIG);
}

function drawMemory(a, b) {
  const views = b ? [["A", a], ["B", b]] : [["A", a]];
  const parts = Object.keys(a.breakdown.memory_bytes);
  const traces = parts.map((part) => ({ type: "bar", orientation: "h", name: part,
    y: views.map(([n]) => n), x: views.map(([, v]) => v.breakdown.memory_bytes[part] / GIB),
    hovertemplate: `${part}: %{x:.2f} GiB<extra></extra>` }));
  Plotly.react("memory_plot", traces, { ...LAYOUT, barmode: "stack", title: { text: "memory per GPU (GiB)" },
    xaxis: { title: { text: "GiB" } } }, CONFIG);
}

function drawBreakdown(view) {
  const t = view.breakdown.time_s;
  if (!t) { Plotly.react("breakdown", [], { ...LAYOUT, title: { text: "time by operator class: not timed" } }, CONFIG); return; }
  const groups = Object.keys(t.prefill);
  const traces = groups.map((g) => {
    const ms = [t.prefill[g] * 1e3, t.decode[g] * 1e3];
    return { type: "bar", name: g, x: ["prefill of the batch", "decode step"], y: ms, customdata: ms,
      hovertemplate: `${g}: %{customdata:.3f} ms<extra></extra>` };
  });
  Plotly.react("breakdown", traces, { ...LAYOUT, barmode: "stack", barnorm: "percent",
    title: { text: "time by operator class (% of the phase; hover: ms)" }, yaxis: { title: { text: "%" } } }, CONFIG);
}

function drawSweep(rowsA, rowsB) {
  const trace = (rows, name) => ({ x: rows.map((r) => r.tpot_s * 1e3), y: rows.map((r) => r.output_tokens_per_s),
    text: rows.map((r) => `batch ${r.batch}`), mode: "lines+markers+text", textposition: "top left", name,
    hovertemplate: "%{text}: TPOT %{x:.2f} ms, %{y:,.0f} tok/s<extra>" + name + "</extra>" });
  const traces = [trace(rowsA, "A")];
  if (rowsB) traces.push(trace(rowsB, "B"));
  Plotly.react("sweep", traces, { ...LAYOUT, title: { text: "throughput vs latency over batch (the batches that fit)" },
    xaxis: { title: { text: "TPOT (ms)" } }, yaxis: { title: { text: "output tokens/s" } } }, CONFIG);
}

// The link fields' placeholders name the fabric the estimate runs on and its bandwidth (what-ifs applied).
function showLinks(links) {
  for (const name of ["scale_up", "scale_out"]) {
    const link = links[name];
    $(`${name}_gb_per_s`).placeholder = link ? `${link.link}: ${gbPerS(link)}` : "none in this system";
  }
}

const gbPerS = (link) => (link ? `${+link.gb_per_s.toPrecision(4)} GB/s` : "-");

function describe(result) {
  return `${result.model} on ${result.num_gpus} x ${result.hardware}, tp ${result.parallel.tp} pp ${result.parallel.pp}` +
    ` ep ${result.parallel.ep}, batch ${result.batch}, ${result.isl}/${result.osl}, weights ${result.precision.weight}` +
    `, KV ${result.precision.kv_cache}${result.runtime ? ", " + result.runtime : ""}`;
}

function showCompare(a, b) {
  $("compare").hidden = !b;
  if (!b) return;
  const rows = [["configuration", describe(a.result), describe(b.result)]];
  for (const [label, key] of [["TTFT", "ttft"], ["TPOT", "tpot"], ["throughput", "throughput"],
    ["memory per GPU", "memory_total"], ["fits", "fit"]]) rows.push([label, a.headline[key] || "-", b.headline[key] || "-"]);
  for (const [label, key] of [["scale-up link per GPU", "scale_up"], ["scale-out link per GPU", "scale_out"]])
    rows.push([label, gbPerS(a.links[key]), gbPerS(b.links[key])]);
  const body = $("compare").tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
    return tr;
  }));
}

// ---------------------------------------------------------------- the training tab

function showTab(name) {
  tab = name;
  for (const t of ["infer", "train"]) {
    $(t).hidden = t !== name;
    $(`tab_${t}`).setAttribute("aria-pressed", String(t === name));
  }
  showURL();
  if (name === "train" && !trainShown) { trainShown = true; updateTrain(); }
  else if (name === "train") window.dispatchEvent(new Event("resize"));  // plotly sizes plots drawn while hidden
}

function scheduleTrain() {
  clearTimeout(trainTimer);
  trainTimer = setTimeout(updateTrain, DEBOUNCE_MS);
}

async function updateTrain() {
  const mine = ++trainSequence;
  showURL();
  document.body.dataset.trainBusy = "1";
  try {
    const view = await post("/api/train", readTrainState());
    if (mine !== trainSequence) return;
    $("train_error").textContent = "";
    showTrain(view);
  } catch (err) {
    if (mine !== trainSequence) return;
    $("train_error").textContent = err.message;
  } finally {
    if (mine === trainSequence) document.body.dataset.trainBusy = "";
  }
}

function showTrain(view) {
  const h = view.headline;
  $("t_step_time").textContent = h["step time"];
  $("t_tokens_per_s_per_gpu").textContent = h["tokens/s/GPU"];
  $("t_tflops").textContent = `${h["model TFLOP/s/GPU"]} model TFLOP/s/GPU`;
  $("t_mfu").textContent = h.MFU;
  $("t_hfu").textContent = `HFU ${h.HFU}`;
  $("t_memory_total").textContent = h["memory per GPU"];
  $("t_fits").textContent = h.fits === "yes" ? "fits" : "does not fit";
  $("t_wall_time").textContent = h["wall time"] || "-";
  $("t_gpu_hours").textContent = h["GPU-hours"] ? `${h["GPU-hours"]} GPU-hours` : "give training tokens";
  drawTrainMemory(view);
  drawTrainParts(view);
  $("train_table").tBodies[0].replaceChildren(...view.overview.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
    return tr;
  }));
}

function drawTrainMemory(view) {
  const traces = Object.entries(view.memory_bytes).map(([part, bytes]) => ({ type: "bar", orientation: "h",
    name: part, y: ["per GPU"], x: [bytes / GIB], hovertemplate: `${part}: %{x:.2f} GiB<extra></extra>` }));
  const capacity = view.capacity_bytes / GIB;
  Plotly.react("train_memory", traces, { ...LAYOUT, barmode: "stack", title: { text: "memory per GPU (GiB; line: capacity)" },
    xaxis: { title: { text: "GiB" } }, shapes: [{ type: "line", x0: capacity, x1: capacity, yref: "paper", y0: 0, y1: 1,
      line: { color: "#b00020", width: 2, dash: "dash" } }] }, CONFIG);
}

function drawTrainParts(view) {
  const parts = Object.entries(view.parts_s).filter(([, s]) => s > 0);
  Plotly.react("train_parts", [{ type: "bar", x: parts.map(([p]) => p), y: parts.map(([, s]) => s),
    hovertemplate: "%{x}: %{y:.4g} s<extra></extra>" }],
  { ...LAYOUT, title: { text: "step time by part (s; exposed communication, bubble)" }, yaxis: { title: { text: "s" } } }, CONFIG);
}

async function upload(event) {
  const file = event.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const response = await fetch("/api/upload", { method: "POST", body: form });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `error: HTTP ${response.status}`);
    addOption($("model"), data.model, `${data.id} (uploaded)`);
    addOption($("t_model"), data.model, `${data.id} (uploaded)`);
    $("model").value = data.model;
    update();
  } catch (err) {
    $("error").textContent = err.message;
  } finally {
    event.target.value = "";
  }
}

async function start() {
  const catalog = await (await fetch("/api/catalog")).json();
  for (const id of catalog.models) addOption($("model"), id);
  addOption($("hardware"), "", "(the system's accelerator)");
  for (const id of catalog.hardware) addOption($("hardware"), id);
  for (const id of catalog.systems) addOption($("system"), id);
  for (const id of catalog.runtimes) addOption($("runtime"), id);
  for (const name of ["weight_dtype", "kv_dtype"]) {
    addOption($(name), "", "(as the model ships)");
    for (const id of catalog.dtypes) addOption($(name), id);
  }
  for (const id of catalog.models) addOption($("t_model"), id);
  addOption($("t_hardware"), "", "(the system's accelerator)");
  for (const id of catalog.hardware) addOption($("t_hardware"), id);
  for (const id of catalog.systems) addOption($("t_system"), id);
  for (const [name, key] of [["task", "tasks"], ["precision", "precisions"], ["recompute", "recomputes"]])
    for (const id of catalog.train[key]) addOption($(`t_${name}`), id);
  const [a, b, t, shownTab] = stateFromURL();
  writeInputs(Object.keys(a).length ? a : catalog.defaults);
  writeInputs({ ...catalog.train.defaults, ...t }, TRAIN_FIELDS, "t_");
  pinned = b;
  $("train_inputs").addEventListener("input", scheduleTrain);
  $("train_inputs").addEventListener("change", scheduleTrain);
  for (const name of ["infer", "train"]) $(`tab_${name}`).addEventListener("click", () => showTab(name));
  if (shownTab === "train") showTab("train");
  $("inputs").addEventListener("input", schedule);
  $("inputs").addEventListener("change", schedule);
  $("upload").addEventListener("change", upload);
  $("pin").addEventListener("click", () => { pinned = readState(); update(); });
  $("clear_b").addEventListener("click", () => { pinned = null; update(); });
  await update();
  document.body.dataset.started = "1";
}

start();
