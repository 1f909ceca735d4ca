// Memory: search as you type, the index's statistics, its sources, and reindex with progress.
import { api, stream } from "./api.js";
import { esc } from "./md.js";
import { openFile } from "./fileview.js";

const $ = (id) => document.getElementById(id);
export const DEBOUNCE_MS = 150;
let timer = 0;
let pending = null;
let lastHits = [];

function highlight(snippet, query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [];
  let html = esc(snippet);
  if (!words.length) return html;
  const pattern = new RegExp(`(${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
  return html.replace(/(<[^>]*>)|([^<]+)/g, (m, tag, body) => tag || body.replace(pattern, "<mark>$1</mark>"));
}

function snippet(text) {
  const flat = text.replace(/^#+\s+/gm, "").replace(/\s+/g, " ").trim();
  return flat.length > 320 ? `${flat.slice(0, 320)}…` : flat;
}

async function search(query) {
  const started = performance.now();
  pending?.abort();
  const controller = new AbortController();
  pending = controller;
  const info = $("search-info");
  const list = $("results");
  try {
    const data = await api(`/api/memory/search?${new URLSearchParams({ q: query, limit: "20" })}`, { signal: controller.signal });
    lastHits = data.results;
    list.innerHTML = data.results.map((h, k) => {
      const lines = h.line_end !== h.line_start ? `${h.line_start}-${h.line_end}` : `${h.line_start}`;
      return `<li><a href="#" class="hit" data-k="${k}"><span class="where">${esc(h.file)}:${lines}</span>
        ${h.heading ? `<span class="heading">${esc(h.heading)}</span>` : ""}</a>
        <p class="snippet">${highlight(snippet(h.content), query)}</p></li>`;
    }).join("");
    const ms = performance.now() - started;
    info.textContent = `${data.total} result${data.total === 1 ? "" : "s"} · ${ms.toFixed(0)} ms`;
    list.dataset.ms = ms.toFixed(1);
    list.dataset.query = query;
  } catch (err) {
    if (err.name === "AbortError") return;
    info.textContent = err.message || String(err);
    list.innerHTML = "";
  }
}

export async function loadStats() {
  let s;
  try { s = await api("/api/memory/stats"); } catch { return; }
  const last = s.index.last_indexed ? new Date(s.index.last_indexed).toLocaleString() : "never";
  const rows = [
    ["Files", s.files.total], ["Chunks", s.index.chunks],
    ["Database", `${(s.index.database_size_bytes / 1048576).toFixed(1)} MB`], ["Last indexed", last],
  ];
  if (s.embeddings) rows.push(["Embeddings", `${s.embeddings.model} (${s.embeddings.vectors} vectors)`]);
  if (s.index.indexing) rows.push(["Now", "indexing…"]);
  $("stats").innerHTML = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
}

// Asks before a source's files leave the index: Remove or Cancel (Escape) in a small dialog.
function confirmRemove(s) {
  const d = $("confirm-dialog");
  const n = s.files;
  const what = n === undefined ? "Its files" : `Its ${n} file${n === 1 ? "" : "s"}`;
  $("confirm-text").textContent = `${s.path}: ${what} leave the index at once (the files on disk stay).`;
  d.returnValue = "";
  d.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

export async function loadSources() {
  let data;
  try { data = await api("/api/memory/sources"); } catch { return; }
  const list = $("sources");
  list.innerHTML = "";
  for (const s of data.sources) {
    const li = document.createElement("li");
    li.className = "source";
    li.innerHTML = `<span class="path" title="${esc(s.path)}">${esc(s.path)}</span><span class="muted">${esc(s.origin)}${s.glob ? ` · ${esc(s.glob)}` : ""}</span>`;
    if (s.origin === "user") {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small";
      b.textContent = "Remove";
      b.setAttribute("aria-label", `Remove ${s.path}`);
      b.addEventListener("click", async () => {
        let now = s; // the count as it is now (a pass may have run since the list was drawn)
        try { now = (await api("/api/memory/sources")).sources.find((x) => x.path === s.path) || s; } catch { /* as listed */ }
        if (!(await confirmRemove(now))) return;
        b.disabled = true;
        try {
          const r = await api(`/api/memory/sources?${new URLSearchParams({ path: s.path })}`, { method: "DELETE" });
          $("reindex-label").textContent = `Removed ${r.path} (${r.files_removed} files)`;
        } catch (err) { $("reindex-label").textContent = err.message; }
        loadSources();
        loadStats();
      });
      li.append(b);
    }
    list.append(li);
  }
}

export async function reindex(force = false) {
  const bar = $("reindex-bar");
  const label = $("reindex-label");
  const button = $("reindex");
  button.disabled = true;
  bar.removeAttribute("value");
  bar.dataset.state = "running";
  label.textContent = "Reindexing…";
  try {
    await stream("/api/memory/reindex", {
      method: "POST", body: { force },
      onEvent: (ev) => {
        const d = ev.data;
        if (ev.type === "progress") {
          bar.max = Math.max(d.files_total, 1);
          bar.value = d.files_done;
          label.textContent = `${d.files_done} / ${d.files_total} files · ${d.file.split("/").pop()}`;
          bar.dataset.progress = String(Number(bar.dataset.progress || 0) + 1);
        } else if (ev.type === "done") {
          bar.max = 1; bar.value = 1;
          bar.dataset.state = "done";
          label.textContent = `Done in ${d.seconds.toFixed(1)} s: ${d.added} added, ${d.updated} updated, ${d.removed} removed, ${d.skipped} skipped`;
        } else if (ev.type === "error") {
          bar.dataset.state = "error";
          label.textContent = d.message;
        }
      },
    });
  } catch (err) {
    bar.dataset.state = "error";
    label.textContent = err.message;
  } finally {
    button.disabled = false;
    loadStats();
    loadSources();
    document.dispatchEvent(new Event("status-changed"));
  }
}

export function setupMemory() {
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    const q = $("search").value.trim();
    if (!q) { pending?.abort(); $("results").innerHTML = ""; $("search-info").textContent = ""; return; }
    timer = setTimeout(() => search(q), DEBOUNCE_MS);
  });
  $("results").addEventListener("click", (e) => {
    const link = e.target.closest("a.hit");
    if (!link) return;
    e.preventDefault();
    const h = lastHits[Number(link.dataset.k)];
    if (h) openFile(h.path, h.line_start, h.line_end, h.page);
  });
  $("reindex").addEventListener("click", () => reindex($("reindex-force").checked));
  $("source-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const path = $("source-path").value.trim();
    const glob = $("source-glob").value.trim();
    try {
      await api("/api/memory/sources", { method: "POST", body: glob ? { path, glob } : { path } });
      $("source-path").value = "";
      $("source-glob").value = "";
      await loadSources();
      reindex(false);
    } catch (err) {
      $("reindex-label").textContent = err.message;
    }
  });
}
