// The cited file at its lines: a dialog showing a window of the file, cited lines highlighted.
import { api } from "./api.js";
import { esc } from "./md.js";

const dialog = () => document.getElementById("file-dialog");

export async function openFile(path, line = 1, end = line, page = null) {
  const d = dialog();
  const title = document.getElementById("file-title");
  const where = document.getElementById("file-path");
  const pre = document.getElementById("file-lines");
  title.textContent = "Loading…";
  where.textContent = path;
  pre.textContent = "";
  if (!d.open) d.showModal();
  let view;
  try {
    const q = new URLSearchParams({ path, line: String(line || 1), end: String(end || line || 1) });
    if (page) q.set("page", String(page)); // a PDF: its citations count lines within the page
    view = await api(`/api/memory/file?${q}`);
  } catch (err) {
    title.textContent = "Cannot show this file";
    pre.textContent = err.message || String(err);
    return;
  }
  const span = view.line_end > view.line_start ? `${view.line_start}-${view.line_end}` : `${view.line_start}`;
  title.textContent = `${view.file}:${span}`;
  where.textContent = `${view.path} — ${view.total_lines} lines`;
  const width = String(view.first_line + view.lines.length).length;
  pre.innerHTML = view.lines.map((text, k) => {
    const n = view.first_line + k;
    const hit = n >= view.line_start && n <= view.line_end;
    return `<span class="ln${hit ? " hl" : ""}" data-line="${n}"><span class="no" aria-hidden="true">${String(n).padStart(width)}</span>${esc(text) || " "}</span>`;
  }).join("");
  const first = pre.querySelector(".hl");
  if (first) {
    first.setAttribute("aria-label", `cited line ${view.line_start}`);
    pre.scrollTop = Math.max(0, first.offsetTop - pre.clientHeight / 3);
  }
  pre.focus();
}

export function setupFileView() {
  document.getElementById("file-close").addEventListener("click", () => dialog().close());
  dialog().addEventListener("click", (e) => { if (e.target === dialog()) dialog().close(); });
}

// A research source's location: `file://` URL plus "file:12-18", or a web page.
export function openLocation(url, location) {
  if (url && url.startsWith("file://")) {
    const path = decodeURIComponent(url.slice(7).split("#")[0]);
    const m = /:(\d+)(?:-(\d+))?$/.exec(location || "");
    openFile(path, m ? Number(m[1]) : 1, m ? Number(m[2] || m[1]) : 1);
  } else if (url && /^https?:\/\//i.test(url)) {
    window.open(url, "_blank", "noopener,noreferrer");
  }
}
