// Heartbeat: its state, next and last run, pause/resume/run now, and the schedules.
import { api } from "./api.js";
import { esc } from "./md.js";

const $ = (id) => document.getElementById(id);
let paused = false;

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function say(text) { $("hb-message").textContent = text; }

function showResult(r) {
  if (!r) { $("hb-result").innerHTML = `<p class="muted">No run yet.</p>`; return; }
  const tasks = (r.tasks || []).map((t) =>
    `<li><span class="badge" data-status="${esc(t.status)}">${esc(t.status)}</span> ${esc(t.text)}${t.summary ? `<br><span class="muted">${esc(t.summary)}</span>` : ""}${t.error ? `<br><span class="warn">${esc(t.error)}</span>` : ""}</li>`).join("");
  $("hb-result").innerHTML = `<h3>Last run: <span class="badge" data-status="${esc(r.status)}">${esc(r.status)}</span> <span class="muted">${esc(r.trigger || "")}, ${r.ran ?? 0} ran, ${r.failed ?? 0} failed</span></h3>${tasks ? `<ul class="tasks">${tasks}</ul>` : ""}`;
}

export async function loadHeartbeat() {
  let s;
  try { s = await api("/api/heartbeat"); } catch (err) { say(err.message); return; }
  paused = s.paused;
  const state = !s.enabled ? "disabled" : s.running ? "running" : s.paused ? "paused" : "active";
  const badge = $("hb-state");
  badge.textContent = state;
  badge.dataset.status = state;
  $("hb-toggle").textContent = s.paused ? "Resume" : "Pause";
  $("hb-toggle").setAttribute("aria-pressed", String(s.paused));
  const rows = [
    ["Next run", s.paused ? "— (paused)" : s.next_run ? when(s.next_run) : s.enabled ? "—" : "disabled (heartbeat.enabled = false)"],
    ["Last run", when(s.last_run)], ["Interval", s.interval], ["Active hours", s.active_hours || "always"],
    ["Pending tasks", (s.pending || []).length], ["File", s.file],
  ];
  $("hb-info").innerHTML = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v ?? "—")}</dd>`).join("");
  showResult(s.last_result);
}

export async function loadSchedules() {
  let data;
  try { data = await api("/api/schedules"); } catch { return; }
  const body = $("schedules");
  body.innerHTML = "";
  for (const t of data.schedules) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${esc(t.every)}</td><td>${esc(t.text)}</td><td>${esc(t.kind)}</td><td>${esc(t.due_local || when(t.due))}</td><td></td>`;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "small";
    b.textContent = "Remove";
    b.setAttribute("aria-label", `Remove schedule: ${t.text}`);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await api(`/api/schedules/${encodeURIComponent(t.id)}`, { method: "DELETE" }); } catch (err) { say(err.message); }
      loadSchedules();
      loadHeartbeat();
    });
    tr.lastElementChild.append(b);
    body.append(tr);
  }
  if (!data.schedules.length) body.innerHTML = `<tr><td colspan="5" class="muted">No schedules yet.</td></tr>`;
}

export function setupHeartbeat() {
  $("hb-toggle").addEventListener("click", async () => {
    say("");
    $("hb-toggle").disabled = true;
    try { await api(`/api/heartbeat/${paused ? "resume" : "pause"}`, { method: "POST" }); } catch (err) { say(err.message); }
    $("hb-toggle").disabled = false;
    loadHeartbeat();
  });
  $("hb-run").addEventListener("click", async () => {
    const b = $("hb-run");
    say("");
    b.disabled = true;
    b.textContent = "Running…";
    try { showResult(await api("/api/heartbeat/run", { method: "POST" })); } catch (err) { say(err.message); }
    b.disabled = false;
    b.textContent = "Run now";
    loadHeartbeat();
  });
  $("schedule-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    say("");
    const body = {
      every: $("sched-every").value.trim(), question: $("sched-question").value.trim(),
      kind: $("sched-kind").value, priority: $("sched-priority").value,
    };
    try {
      await api("/api/schedules", { method: "POST", body });
      $("sched-every").value = "";
      $("sched-question").value = "";
    } catch (err) { say(err.message); }
    loadSchedules();
    loadHeartbeat();
  });
}
