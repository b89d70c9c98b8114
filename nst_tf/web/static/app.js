// The page's script: the form sent to /runs, the runs' states from /events (server-sent events), the selected
// run's picture, progress and cost curve drawn in place. Everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);
const defaults = JSON.parse($("defaults").textContent);
const ACTIVE = ["queued", "starting", "running", "stopping"];
let runs = [];
let selected = null;

function applyPreset() {
  const preset = defaults[$("preset").value];
  $("iterations").value = preset.iterations;
  $("alpha").value = preset.alpha;
  $("beta").value = preset.beta;
  $("preserve_colors").disabled = !preset.colours;
}

function say(text, bad) {
  $("message").textContent = text;
  $("message").className = bad ? "bad" : "";
}

async function answer(response) {
  try {
    return await response.json();
  } catch (error) {
    return { error: `the server answered ${response.status}` };
  }
}

async function start(event) {
  event.preventDefault();
  say("sending…", false);
  let response;
  try {
    response = await fetch("/runs", { method: "POST", body: new FormData($("form")) });
  } catch (error) {
    say(`the server did not answer (${error.message})`, true);
    return;
  }
  const body = await answer(response);
  if (!response.ok) {
    say(body.error || `error ${response.status}`, true);
    return;
  }
  selected = body.number;
  say(`run ${body.number} queued`, false);
  render();
}

async function stop() {
  if (selected === null) return;
  const response = await fetch(`/runs/${selected}/stop`, { method: "POST" });
  if (!response.ok) say((await answer(response)).error, true);
}

function download() {
  if (selected === null) return;
  const link = document.createElement("a");
  link.href = `/runs/${selected}/result.png`;
  link.download = `nst_tf-run-${selected}.png`;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function svg(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawCurve(costs) {
  const curve = $("curve");
  curve.replaceChildren();
  const points = costs.filter(([, cost]) => cost > 0);
  if (points.length === 0) return;
  const logs = points.map(([, cost]) => Math.log10(cost));
  const low = Math.min(...logs), high = Math.max(...logs);
  const last = Math.max(points[points.length - 1][0], 1);
  const x = (iteration) => 50 + (340 * iteration) / last;
  const y = (log) => 145 - (high > low ? (130 * (log - low)) / (high - low) : 65);
  const line = points.map(([iteration], i) => `${x(iteration).toFixed(1)},${y(logs[i]).toFixed(1)}`).join(" ");
  curve.append(svg("polyline", { points: line }));
  curve.append(svg("text", { x: 2, y: 20 }, (10 ** high).toPrecision(3)));
  curve.append(svg("text", { x: 2, y: 150 }, (10 ** low).toPrecision(3)));
  curve.append(svg("text", { x: 330, y: 158 }, `iteration ${points[points.length - 1][0]}`));
  curve.append(svg("text", { x: 150, y: 12 }, "total cost (log scale)"));
}

function renderList() {
  const list = $("runs");
  list.replaceChildren();
  for (const run of runs) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `run ${run.number}: ${run.state}, ${run.iteration}/${run.iterations}`;
    button.title = run.summary;
    button.addEventListener("click", () => { selected = run.number; render(); });
    item.append(button, ` ${run.summary}`);
    item.className = run.number === selected ? "selected" : "";
    item.dataset.state = run.state;
    list.append(item);
  }
}

function renderRun(run) {
  const picture = $("picture");
  $("title").textContent = run ? `Run ${run.number}: ${run.state}` : "No run yet";
  $("progress").max = run ? run.iterations : 1;
  $("progress").value = run ? run.iteration : 0;
  $("progress_text").textContent = run ? `${run.iteration} of ${run.iterations} iterations` : "";
  $("run_message").textContent = run ? run.message : "";
  $("run_message").className = run && run.state === "failed" ? "bad" : "";
  const source = run && run.version > 0 ? `/runs/${run.number}/picture.png?v=${run.version}` : null;
  if (source === null) picture.removeAttribute("src");
  else if (picture.getAttribute("src") !== source) picture.setAttribute("src", source);
  $("stop").disabled = !(run && ACTIVE.includes(run.state));
  $("download").disabled = !(run && run.result);
  drawCurve(run ? run.costs : []);
}

function render() {
  if (selected === null && runs.length > 0) selected = runs[runs.length - 1].number;
  renderList();
  renderRun(runs.find((run) => run.number === selected) || null);
}

$("preset").addEventListener("change", applyPreset);
$("form").addEventListener("submit", start);
$("stop").addEventListener("click", stop);
$("download").addEventListener("click", download);
applyPreset();
const events = new EventSource("/events");
events.onmessage = (event) => {
  runs = JSON.parse(event.data).runs;
  render();
};
events.onerror = () => say("lost the server; trying again…", true);
events.onopen = () => { if ($("message").textContent.startsWith("lost the server")) say("", false); };
