// Ask and chat: answers stream over POST /api/chat/stream, in sessions kept by the daemon.
import { api, stream } from "./api.js";
import { esc, markQuoted, render } from "./md.js";
import { openFile } from "./fileview.js";

const $ = (id) => document.getElementById(id);
let session = null;
let running = null;

function scrollDown() { const log = $("chat-log"); log.scrollTop = log.scrollHeight; }

function bubble(role) {
  $("chat-empty").hidden = true;
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  $("chat-log").append(div);
  return div;
}

function userMessage(text) {
  const div = bubble("user");
  div.innerHTML = `<p>${esc(text).replace(/\n/g, "<br>")}</p>`;
}

function citationLabel(c) {
  const lines = c.line_end && c.line_end !== c.line_start ? `${c.line_start}-${c.line_end}` : `${c.line_start}`;
  return `${c.file}:${lines}${c.page ? ` (page ${c.page})` : ""}`;
}

// Why the daemon quoted the notes under a model's answer (done.evidence.reason), as the CLI says it.
const EVIDENCE_WHY = {
  unsupported: "most of the model's answer is not in your notes",
  strongest_uncited: "the model's answer does not cite the strongest passage",
};

function evidenceWhy(evidence) {
  return EVIDENCE_WHY[evidence.reason] || "the model's answer is not backed by your notes";
}

// The answer's Markdown, its [n] linked to the citations, and the list of cited places.
function fillAnswer(div, text, done) {
  const citations = done?.citations || [];
  let html = `<div class="md">${render(text)}</div>`;
  // Sentences the daemon could not match to any cited passage (answers that carry `sentences`).
  const unsupported = (done?.sentences || []).filter((s) => s && s.supported === false && s.claim !== false);
  if (unsupported.length) {
    html += `<div class="unsupported"><p class="warn">Not supported by any source:</p><ul>${unsupported.map((s) => `<li>${esc(s.text || "")}</li>`).join("")}</ul></div>`;
  }
  if (citations.length) {
    html += `<ol class="cites" aria-label="Sources">${citations.map((c) =>
      `<li value="${Number(c.n)}"><a href="#" class="cite" data-n="${Number(c.n)}">${esc(citationLabel(c))}</a></li>`).join("")}</ol>`;
  }
  if (done?.model) html += `<p class="meta">${esc(done.model)}</p>`;
  div.innerHTML = html;
  if (done?.evidence) markQuoted(div.querySelector(".md"), evidenceWhy(done.evidence));
  div.citations = citations;
}

function onCiteClick(e) {
  const link = e.target.closest("a.cite");
  if (!link) return;
  e.preventDefault();
  const msg = link.closest(".msg");
  const c = (msg?.citations || []).find((x) => Number(x.n) === Number(link.dataset.n));
  if (c) openFile(c.path || c.file, c.line_start, c.line_end || c.line_start, c.page);
}

async function ensureSession(question) {
  if (session) return session;
  const created = await api("/api/sessions", { method: "POST", body: { title: question.slice(0, 80) } });
  session = created.id;
  return session;
}

async function ask(question) {
  userMessage(question);
  const div = bubble("assistant");
  div.setAttribute("aria-busy", "true"); // screen readers read the answer once it is complete
  div.innerHTML = `<p class="muted">Thinking…</p>`;
  scrollDown();
  const controller = new AbortController();
  running = controller;
  $("stop").disabled = false;
  $("send").disabled = true;
  let text = "";
  let frame = 0;
  try {
    const body = { message: question, include_memory: $("use-memory").checked };
    const model = $("model").value;
    if (model) body.model = model;
    body.session_id = await ensureSession(question);
    await stream("/api/chat/stream", {
      method: "POST", body, signal: controller.signal,
      onEvent: (ev) => {
        if (ev.type === "delta") {
          text += ev.data.text;
          if (!frame) frame = requestAnimationFrame(() => { frame = 0; fillAnswer(div, text, null); div.classList.add("streaming"); scrollDown(); });
        } else if (ev.type === "done") {
          cancelAnimationFrame(frame); frame = 0;
          fillAnswer(div, ev.data.response ?? text, ev.data);
          div.classList.remove("streaming");
          div.classList.add("done");
        } else if (ev.type === "error") {
          div.insertAdjacentHTML("beforeend", `<p class="warn">${esc(ev.data.message)}</p>`);
        }
      },
    });
  } catch (err) {
    cancelAnimationFrame(frame);
    if (err.name === "AbortError") {
      fillAnswer(div, text, null);
      div.insertAdjacentHTML("beforeend", `<p class="muted">Stopped.</p>`);
    } else {
      div.innerHTML = `<p class="warn">${esc(err.message || String(err))}</p>`;
    }
  } finally {
    div.classList.remove("streaming");
    div.removeAttribute("aria-busy");
    running = null;
    $("stop").disabled = true;
    $("send").disabled = false;
    scrollDown();
    loadSessions();
  }
}

export async function loadSessions() {
  const list = $("sessions");
  let data;
  try { data = await api("/api/sessions?limit=50"); } catch { return; }
  list.innerHTML = "";
  for (const s of data.sessions) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "item";
    if (s.id === session) b.setAttribute("aria-current", "true");
    b.innerHTML = `<span class="title">${esc(s.title || "Untitled")}</span><span class="muted">${s.message_count} messages</span>`;
    b.addEventListener("click", () => openSession(s.id));
    li.append(b);
    list.append(li);
  }
}

async function openSession(id) {
  const data = await api(`/api/sessions/${encodeURIComponent(id)}`);
  session = id;
  const log = $("chat-log");
  log.querySelectorAll(".msg").forEach((m) => m.remove());
  for (const m of data.messages) {
    if (m.role === "user") userMessage(m.content);
    else if (m.role === "assistant") fillAnswer(bubble("assistant"), m.content, m);
  }
  scrollDown();
  loadSessions();
}

export async function loadModels() {
  const select = $("model");
  let data;
  try { data = await api("/api/models"); } catch { return; }
  select.innerHTML = "";
  const names = [];
  for (const p of data.providers) {
    if (!p.configured) continue;
    for (const m of p.models || []) names.push(`${p.id}/${m}`);
  }
  if (data.default && !names.includes(data.default)) names.unshift(data.default);
  for (const name of names) {
    const opt = document.createElement("option");
    opt.value = name === data.default ? "" : name;
    opt.textContent = name === data.default ? `${name} (default)` : name;
    select.append(opt);
  }
}

export function setupAsk() {
  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("question").value.trim();
    if (!q || running) return;
    $("question").value = "";
    ask(q);
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => running?.abort());
  $("new-chat").addEventListener("click", () => {
    session = null;
    $("chat-log").querySelectorAll(".msg").forEach((m) => m.remove());
    $("chat-empty").hidden = false;
    $("question").focus();
    loadSessions();
  });
  $("chat-log").addEventListener("click", onCiteClick);
}
