// Guided deep research on the research-sessions API: a topic, the daemon's clarifying questions,
// the user's answers, a plan whose tasks the user edits, then the run followed live on the
// session's event stream (resumed with Last-Event-ID), and the cited report.
import { api, stream, ApiError } from "./api.js";
import { esc, markQuoted, render } from "./md.js";
import { openLocation } from "./fileview.js";

const $ = (id) => document.getElementById(id);
const BASE = "/api/research/sessions";
let g = null; // { id, topic, phase, tasks, edited, report, lastId, controller }

// The sessions API answers in the spec's envelope: {success, data}.
async function call(path, options) {
  const reply = await api(`${BASE}${path}`, options);
  return reply?.data;
}

function step(name, shown = true) { $(`g-step-${name}`).hidden = !shown; }

function setPhase(phase) {
  g.phase = phase;
  const badge = $("g-phase");
  badge.textContent = phase;
  badge.dataset.status = { completed: "complete", error: "error", executing: "running" }[phase] || "queued";
  $("guided").dataset.phase = phase;
}

function fail(err) {
  $("g-error").textContent = err instanceof ApiError || err instanceof Error ? err.message : String(err);
}

function busy(button, on) { button.disabled = on; button.setAttribute("aria-busy", String(on)); }

function showView(id = "") {
  $("guided").dataset.id = id;
  delete $("guided").dataset.followed;
  $("job-empty").hidden = true;
  $("job").hidden = true;
  $("guided").hidden = false;
  document.dispatchEvent(new Event("route-changed")); // #research/guided/<id>
}

async function begin(topic) {
  g?.controller?.abort();
  g = { id: null, topic, phase: "", tasks: [], edited: false, report: "", lastId: 0, controller: null };
  showView();
  for (const s of ["questions", "plan", "run", "report"]) step(s, false);
  $("g-topic").textContent = topic;
  $("g-error").textContent = "";
  $("g-answers").value = "";
  delete $("g-run").dataset.done;
  const created = await call("", { method: "POST", body: {} });
  g.id = created.sessionId;
  showView(g.id);
  setPhase(created.phase);
  $("g-questions").innerHTML = `<p class="muted">Reading your notes on the topic…</p>`;
  step("questions");
  const asked = await call(`/${encodeURIComponent(g.id)}/questions`, { method: "POST", body: { topic } });
  setPhase(asked.phase);
  $("g-questions").innerHTML = render(asked.questions);
  $("g-answers").focus();
}

let seq = 0;
function taskRow(task) {
  const k = ++seq;
  const li = document.createElement("li");
  li.className = "task";
  li.dataset.state = task.state || "pending";
  li.innerHTML = `
    <label for="g-focus-${k}" class="sr"></label>
    <input id="g-focus-${k}" class="focus" value="${esc(task.focus)}" placeholder="aspect" required>
    <label for="g-query-${k}" class="sr"></label>
    <input id="g-query-${k}" class="query" value="${esc(task.query)}" placeholder="search" required>
    <span class="state muted"></span>
    <button type="button" class="small remove">Remove</button>`;
  return li;
}

// Labels follow the tasks' positions, so a screen reader names "Task 2" after an edit too.
function renumber() {
  [...$("g-tasks").children].forEach((li, i) => {
    const [focus, query] = li.querySelectorAll("label");
    focus.textContent = `Task ${i + 1} aspect`;
    query.textContent = `Task ${i + 1} search`;
    li.querySelector("button.remove").setAttribute("aria-label", `Remove task ${i + 1}`);
  });
}

function drawTasks(editable) {
  const list = $("g-tasks");
  list.innerHTML = "";
  g.tasks.forEach((t) => list.append(taskRow(t)));
  renumber();
  for (const el of list.querySelectorAll("input, button")) el.disabled = !editable;
  $("g-add-task").disabled = $("g-run").disabled = !editable;
}

function readTasks() {
  return [...$("g-tasks").querySelectorAll("li")].map((li) => ({
    focus: li.querySelector(".focus").value.trim(),
    query: li.querySelector(".query").value.trim(),
  }));
}

async function makePlan() {
  const path = `/${encodeURIComponent(g.id)}`;
  await call(`${path}/feedback`, { method: "POST", body: { feedback: $("g-answers").value } });
  const plan = await call(`${path}/plan`, { method: "POST" });
  setPhase(plan.phase);
  g.tasks = plan.tasks;
  g.edited = false;
  drawTasks(true);
  step("plan");
  $("g-tasks").querySelector("input")?.focus();
}

// Follows the session's events until its final report (or error); reconnects with the last id.
async function follow() {
  const controller = new AbortController();
  g.controller = controller;
  const mine = g;
  let delay = 500;
  mine.ended = false; // until the stream itself brings the final report (or error)
  delete $("guided").dataset.followed;
  while (!controller.signal.aborted && !mine.ended) {
    try {
      await stream(`${BASE}/${encodeURIComponent(mine.id)}/stream`, {
        signal: controller.signal,
        lastEventId: mine.lastId,
        onEvent: (data, id, name) => {
          const n = Number(id);
          if (n && n <= mine.lastId) return;
          if (n) mine.lastId = n;
          delay = 500;
          onEvent(mine, name, data);
        },
      });
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status !== 503) { fail(err); return; }
    }
    if (mine.ended) break;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 4000);
  }
  if (mine === g && mine.ended) $("guided").dataset.followed = "done";
}

function onEvent(mine, name, data) {
  if (mine !== g) return;
  if (name === "progress") {
    if (data.phase !== "executing") return; // the earlier steps were shown as they happened
    setPhase("executing");
    $("g-progress").value = data.progress;
    $("g-progress-label").textContent = `${data.progress}% · ${data.message}`;
    const li = document.createElement("li");
    li.textContent = data.message;
    $("g-log").append(li);
    const m = /^Task (\d+) of/.exec(data.message || "");
    const row = m && $("g-tasks").children[Number(m[1]) - 1];
    if (row) { row.dataset.state = "done"; row.querySelector(".state").textContent = "done"; }
  } else if (name === "final-report") {
    mine.ended = true;
    $("g-progress").value = 100;
    $("g-progress-label").textContent = "100% · Report written";
    showReport(data.finalReport);
    setPhase("completed");
    $("g-error").textContent = "";
  } else if (name === "error") {
    mine.ended = true;
    setPhase("error");
    fail(new Error(data.error));
  }
}

async function run() {
  const tasks = readTasks();
  if (!tasks.length || tasks.some((t) => !t.focus || !t.query)) {
    fail(new Error("Every task needs an aspect and a search; remove the empty ones."));
    return;
  }
  const path = `/${encodeURIComponent(g.id)}`;
  const changed = JSON.stringify(tasks) !== JSON.stringify(g.tasks.map(({ focus, query }) => ({ focus, query })));
  if (changed) {
    const plan = await call(`${path}/plan`, { method: "PUT", body: { tasks } });
    g.tasks = plan.tasks;
  }
  drawTasks(false);
  $("g-run").dataset.done = "1";
  $("g-log").innerHTML = "";
  $("g-progress").value = 0;
  step("run");
  setPhase("executing");
  const following = follow();
  try {
    const done = await call(`${path}/execute`, { method: "POST" });
    if (g.phase !== "completed") { showReport(done.finalReport); setPhase("completed"); }
    loadGuided();
  } catch (err) {
    // A dropped connection (a daemon restart) is not the end: the daemon resumes the session
    // and the stream, reconnecting, brings the rest.
    if (!(err instanceof ApiError)) $("g-progress-label").textContent = "Reconnecting…";
    else { if (err.status === 500) setPhase("error"); fail(err); }
  }
  await following;
}

// The report's numbered Sources list: [n] → that source's place in the notes.
function sourcesOf(markdown) {
  const found = [];
  const part = markdown.split(/^## Sources\s*$/m)[1] || "";
  for (const line of part.split("\n")) {
    const m = /^(\d+)\.\s+(?:\[[^\]]*\]\(([^)\s]+)\))?.*?(?:`([^`]+)`)?\s*$/.exec(line);
    if (m) found[Number(m[1]) - 1] = { url: m[2] || "", location: m[3] || "" };
  }
  return found;
}

function showReport(markdown) {
  g.report = markdown || "";
  g.sources = sourcesOf(g.report);
  $("g-report").innerHTML = render(g.report);
  markQuoted($("g-report")); // the sources quoted under a model's report (it carries no reason)
  step("report");
  const view = $("job-view"); // scroll the report's own column, not the page around it
  view.scrollTop += $("g-step-report").getBoundingClientRect().top - view.getBoundingClientRect().top;
  $("guided").dataset.cited = String($("g-report").querySelectorAll("a.cite").length);
}

function onReportClick(e) {
  const link = e.target.closest("a.cite, a.file-link");
  if (!link || !g) return;
  e.preventDefault();
  const s = link.classList.contains("cite")
    ? g.sources[Number(link.dataset.n) - 1]
    : g.sources.find((x) => x?.url === link.dataset.url) || { url: link.dataset.url, location: "" };
  if (s) openLocation(s.url, s.location);
}

// The plan's tasks from its Markdown ("## N. Focus" then "Search: query"), for a session
// opened again (the session's detail carries the plan, not its task list).
function tasksOf(plan) {
  const tasks = [];
  const re = /^## \d+\. (.+)\n+Search: (.+)$/gm;
  for (let m; (m = re.exec(plan || "")); ) tasks.push({ focus: m[1].trim(), query: m[2].trim() });
  return tasks;
}

// Opens a session where it stands: its questions, its plan, its run (followed live) or report.
export async function openGuided(id) {
  g?.controller?.abort();
  const d = await call(`/${encodeURIComponent(id)}`);
  g = { id, topic: d.topic, phase: "", tasks: tasksOf(d.reportPlan), edited: false, report: "", lastId: 0, controller: null };
  showView(id);
  $("g-topic").textContent = d.topic || id;
  $("g-error").textContent = d.error || "";
  setPhase(d.phase);
  $("g-questions").innerHTML = render(d.questions || "");
  $("g-answers").value = d.feedback || "";
  const after = ["planning", "executing", "completed", "error"].includes(d.phase);
  step("questions", Boolean(d.questions));
  step("plan", after);
  drawTasks(d.phase === "planning");
  if (d.phase === "planning") delete $("g-run").dataset.done; else $("g-run").dataset.done = "1";
  $("g-run").disabled = d.phase !== "planning";
  step("run", ["executing", "completed", "error"].includes(d.phase));
  $("g-log").innerHTML = "";
  $("g-progress").value = d.progress;
  $("g-progress-label").textContent = `${d.progress}%`;
  step("report", false);
  if (d.finalReport) showReport(d.finalReport);
  if (d.phase === "executing") follow();
}

export async function loadGuided() {
  let rows;
  try { rows = await call(""); } catch { return; }
  const list = $("g-sessions");
  list.innerHTML = "";
  for (const r of rows.filter((x) => x.topic)) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "item";
    if (g?.id === r.id) b.setAttribute("aria-current", "true");
    b.innerHTML = `<span class="title">${esc(r.topic)}</span><span class="muted"><span class="badge">${esc(r.phase)}</span> ${esc(new Date(r.updatedAt).toLocaleString())}</span>`;
    b.addEventListener("click", () => openGuided(r.id).then(loadGuided).catch(fail));
    li.append(b);
    list.append(li);
  }
}

// The print view holds only the report in view (see @media print in app.css): the browser's
// print dialog then saves it as a PDF ("Save as PDF"), with no PDF library in the daemon.
export function printReport(which) {
  document.body.dataset.print = which;
  window.print();
}
window.addEventListener("afterprint", () => { delete document.body.dataset.print; });

function guard(button, work) {
  return async (e) => {
    e?.preventDefault();
    busy(button, true);
    $("g-error").textContent = "";
    try { await work(); } catch (err) { fail(err); } finally {
      busy(button, false);
      if (button.dataset.done) button.disabled = true; // a step taken once (the run)
    }
  };
}

export function setupGuided() {
  const form = $("guided-form");
  form.addEventListener("submit", guard(form.querySelector("button"), async () => {
    const topic = $("guided-topic").value.trim();
    if (!topic) return;
    $("guided-topic").value = "";
    await begin(topic);
    loadGuided();
  }));
  $("g-answer-form").addEventListener("submit", guard($("g-make-plan"), makePlan));
  $("g-run").addEventListener("click", guard($("g-run"), run));
  $("g-add-task").addEventListener("click", () => {
    $("g-tasks").append(taskRow({ focus: "", query: "" }));
    renumber();
    $("g-tasks").lastElementChild.querySelector("input").focus();
  });
  $("g-tasks").addEventListener("click", (e) => {
    const remove = e.target.closest("button.remove");
    if (!remove) return;
    const li = remove.closest("li");
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    renumber();
    (next?.querySelector("input") || $("g-add-task")).focus();
  });
  $("g-discard").addEventListener("click", guard($("g-discard"), async () => {
    if (!g) return;
    g.controller?.abort();
    if (g.id) await call(`/${encodeURIComponent(g.id)}`, { method: "DELETE" });
    g = null;
    $("guided").hidden = true;
    $("job-empty").hidden = false;
    document.dispatchEvent(new Event("route-changed"));
    loadGuided();
  }));
  $("g-export-md").addEventListener("click", () => {
    if (!g?.report) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([g.report], { type: "text/markdown" }));
    a.download = `${g.id}.md`;
    document.body.append(a);
    a.click();
    a.remove();
  });
  $("g-pdf").addEventListener("click", () => printReport("guided"));
  $("g-report").addEventListener("click", onReportClick);
}
