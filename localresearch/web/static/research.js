// Deep research: start jobs, watch one live (dimensions, sources, the report as it is written),
// cancel, export; the stream resumes with Last-Event-ID after a drop or a daemon restart.
import { api, stream, download, ApiError } from "./api.js";
import { esc, markQuoted, render } from "./md.js";
import { openLocation } from "./fileview.js";
import { printReport } from "./guided.js";

const $ = (id) => document.getElementById(id);
let watching = null; // { id, controller }
let job = null;

function fresh(id) {
  return { id, query: "", status: "running", phase: "", dims: new Map(), report: "", sources: [], events: 0, lastId: 0 };
}

function dim(name) {
  if (!job.dims.has(name)) job.dims.set(name, { name, state: "pending", sources: 0, finding: "" });
  return job.dims.get(name);
}

function apply(ev) {
  const d = ev.data || {};
  job.events += 1;
  switch (ev.type) {
    case "scope_started": job.query = d.query || job.query; job.phase = "Scoping the question"; break;
    case "scope_complete": (d.dimensions || []).forEach((n) => dim(n)); job.phase = "Researching"; break;
    case "dimension_started": dim(d.dimension).state = "researching"; break;
    case "dimension_source": dim(d.dimension).sources += 1; job.sources.push(d); break;
    case "dimension_complete": {
      const x = dim(d.dimension);
      x.state = "done"; x.sources = d.sourceCount ?? x.sources; x.finding = d.keyFinding || d.summary || "";
      break;
    }
    case "evaluate_started": job.phase = `Looking for gaps (round ${d.iteration ?? ""})`; break;
    case "evaluate_complete": (d.newDimensions || []).forEach((n) => dim(n)); break;
    case "synthesis_started": job.phase = "Writing the report"; break;
    case "synthesis_delta": job.report += d.text || ""; break;
    case "error": job.phase = `Error: ${d.message}`; break;
    case "done": job.status = d.status; job.phase = "Finished"; break;
    default: break;
  }
}

let frame = 0;
function paint() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    if (!job) return;
    $("job-query").textContent = job.query || job.id;
    const badge = $("job-status");
    badge.textContent = job.status;
    badge.dataset.status = job.status;
    $("job-phase").textContent = job.phase + (job.reconnecting ? " — reconnecting…" : "");
    const ended = ["complete", "cancelled", "error"].includes(job.status);
    $("job-cancel").disabled = ended;
    $("job-export-md").disabled = $("job-export-html").disabled = $("job-pdf").disabled = !(ended && job.report);
    $("dims").innerHTML = [...job.dims.values()].map((x) => `<tr data-state="${esc(x.state)}">
      <td>${esc(x.name)}</td><td><span class="state">${esc(x.state)}</span></td><td>${x.sources}</td>
      <td>${esc(x.finding)}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">Planning the dimensions…</td></tr>`;
    $("report").innerHTML = job.report ? render(job.report) : `<p class="muted">The report appears here as it is written.</p>`;
    markQuoted($("report")); // the sources quoted under a model's report (it carries no reason)
    $("job-sources").innerHTML = job.sources.map((s, k) =>
      `<li><a href="#" data-k="${k}" class="src">${esc(s.title || s.location || s.url)}</a> <span class="muted">${esc(s.location || "")}</span></li>`).join("");
    const view = $("job");
    view.dataset.status = job.status;
    view.dataset.events = String(job.events);
  });
}

// Replays the job's events from the start, then follows it live until `done`.
export async function watch(id) {
  watching?.controller.abort();
  const controller = new AbortController();
  watching = { id, controller };
  job = fresh(id);
  $("job-empty").hidden = true;
  $("guided").hidden = true;
  $("job").hidden = false;
  $("job").dataset.id = id;
  document.dispatchEvent(new Event("route-changed")); // #research/<id>: kept through a reload
  paint();
  let delay = 500;
  while (!controller.signal.aborted && !["complete", "cancelled", "error"].includes(job.status)) {
    try {
      await stream(`/api/research/deep/${encodeURIComponent(id)}`, {
        signal: controller.signal,
        lastEventId: job.lastId,
        onEvent: (ev, eventId) => {
          const n = Number(eventId);
          if (n && n <= job.lastId) return; // never apply an event twice
          if (n) job.lastId = n;
          job.reconnecting = false;
          delay = 500;
          apply(ev);
          paint();
        },
      });
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status !== 503) { job.phase = err.message; paint(); return; }
    }
    if (controller.signal.aborted || ["complete", "cancelled", "error"].includes(job.status)) break;
    job.reconnecting = true;
    paint();
    document.dispatchEvent(new Event("status-changed"));
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 4000);
  }
  if (controller.signal.aborted) return;
  document.dispatchEvent(new Event("status-changed"));
  try {
    const full = await api(`/api/research/deep/${encodeURIComponent(id)}/report?format=json`);
    job.report = full.markdown || job.report;
    job.cited = full.sources || [];
  } catch { /* no report (an error, or cancelled before any) */ }
  paint();
  loadJobs();
}

function onReportClick(e) {
  const link = e.target.closest("a.cite, a.src, a.file-link");
  if (!link || !job) return;
  e.preventDefault();
  const cited = job.cited || [];
  let s = null;
  if (link.classList.contains("src")) s = job.sources[Number(link.dataset.k)];
  else if (link.classList.contains("file-link")) {
    const url = link.dataset.url;
    s = cited.find((x) => x.url === url) || job.sources.find((x) => x.url === url) || { url, location: "" };
  } else s = cited[Number(link.dataset.n) - 1]; // the report numbers its sources 1..N in order
  if (s) openLocation(s.url, s.location);
}

export async function loadJobs() {
  const status = $("job-filter").value;
  const q = new URLSearchParams({ limit: "50" });
  if (status) q.set("status", status);
  let data;
  try { data = await api(`/api/research/deep?${q}`); } catch { return; }
  const list = $("jobs");
  list.innerHTML = "";
  for (const j of data.jobs) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "item";
    if (watching?.id === j.researchId) b.setAttribute("aria-current", "true");
    const when = new Date(j.createdAt).toLocaleString();
    b.innerHTML = `<span class="title">${esc(j.query)}</span><span class="muted"><span class="badge" data-status="${esc(j.status)}">${esc(j.status)}</span> ${esc(when)}</span>`;
    b.addEventListener("click", () => { watch(j.researchId); loadJobs(); });
    li.append(b);
    list.append(li);
  }
  if (!data.jobs.length) list.innerHTML = `<li class="muted">No jobs${status ? ` with status ${esc(status)}` : ""}.</li>`;
}

export function setupResearch() {
  $("deep-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const query = $("deep-query").value.trim();
    if (!query) return;
    try {
      const started = await api("/api/research/deep", {
        method: "POST",
        body: { query, dimensions: Number($("deep-dims").value), rounds: Number($("deep-rounds").value) },
      });
      $("deep-query").value = "";
      watch(started.researchId);
      loadJobs();
    } catch (err) {
      $("job-empty").hidden = false;
      $("job-empty").textContent = err.message;
    }
  });
  $("job-cancel").addEventListener("click", async () => {
    if (!job) return;
    $("job-cancel").disabled = true;
    job.phase = "Cancelling…";
    paint();
    try { await api(`/api/research/deep/${encodeURIComponent(job.id)}`, { method: "DELETE" }); } catch (err) { job.phase = err.message; paint(); }
  });
  $("job-export-md").addEventListener("click", () => job && download(`/api/research/deep/${job.id}/report?format=md`, `${job.id}.md`));
  $("job-export-html").addEventListener("click", () => job && download(`/api/research/deep/${job.id}/report?format=html`, `${job.id}.html`));
  $("job-pdf").addEventListener("click", () => job && printReport("job"));
  $("job-filter").addEventListener("change", loadJobs);
  $("report").addEventListener("click", onReportClick);
  $("job-sources").addEventListener("click", onReportClick);
}
