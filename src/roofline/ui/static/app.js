// roofline ui: the page's inputs <-> the URL <-> the JSON API; plotly draws the answers.
"use strict";

const FIELDS = ["model", "hardware", "system", "bandwidth", "flops", "memory", "gpus", "tp", "pp", "ep",
  "batch", "isl", "osl", "weight_dtype", "kv_dtype", "runtime", "ignore_memory"];
const DEBOUNCE_MS = 75;  // typing "128" is one update, not three
const GIB = 2 ** 30;
let pinned = null;   // state B: the configuration compared side by side
let sequence = 0;    // answers to an older input are dropped
let timer = null;
let changedAt = null; // performance.now() of the first input change not yet answered

const $ = (id) => document.getElementById(id);

function readState() {
  const state = {};
  for (const name of FIELDS) {
    const el = $(name);
    const value = el.type === "checkbox" ? (el.checked ? "1" : "") : el.value.trim();
    if (value !== "") state[name] = value;
  }
  return state;
}

function writeInputs(state) {
  for (const name of FIELDS) {
    if (!(name in state)) continue;
    const el = $(name);
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

function shareURL(state) {
  const params = query(state);
  if (pinned) for (const [k, v] of query(pinned, "b.")) params.set(k, v);
  return `${location.pathname}?${params}`;
}

function stateFromURL() {
  const params = new URLSearchParams(location.search);
  const a = {}, b = {};
  for (const [k, v] of params) {
    if (k.startsWith("b.")) b[k.slice(2)] = v;
    else if (FIELDS.includes(k)) a[k] = v;
  }
  return [a, Object.keys(b).length ? b : null];
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
  history.replaceState(null, "", shareURL(state));
  $("share").href = shareURL(state);
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
  const body = $("compare").tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
    return tr;
  }));
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
  const [a, b] = stateFromURL();
  writeInputs(Object.keys(a).length ? a : catalog.defaults);
  pinned = b;
  $("inputs").addEventListener("input", schedule);
  $("inputs").addEventListener("change", schedule);
  $("upload").addEventListener("change", upload);
  $("pin").addEventListener("click", () => { pinned = readState(); update(); });
  $("clear_b").addEventListener("click", () => { pinned = null; update(); });
  await update();
  document.body.dataset.started = "1";
}

start();
