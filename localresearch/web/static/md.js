// A small Markdown renderer for answers and reports. Safe by construction: every piece of text
// is HTML-escaped before any tag is added, and links keep only http(s) and in-page targets.
// Citations `[1]` / `[1, 2]` become links with data-n, which the caller handles on click.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function esc(text) { return String(text).replace(/[&<>"']/g, (c) => ESC[c]); }

const LIST = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;
const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;
const TABLE_SEP = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function safeHref(raw) {
  const url = raw.replace(/&amp;/g, "&");
  if (/^https?:\/\//i.test(url) || url.startsWith("#")) return esc(url);
  return null;
}

function text(t) {
  let h = esc(t);
  h = h.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (m, label, href) => {
    // A note on this machine opens in the page's file view (the caller handles the click).
    if (/^file:\/\//i.test(href)) return `<a href="#" class="file-link" data-url="${href}">${label}</a>`;
    const safe = safeHref(href);
    return safe ? `<a href="${safe}" target="_blank" rel="noopener noreferrer">${label}</a>` : label;
  });
  h = h.replace(/\*\*(?=\S)([^*]+?)\*\*/g, "<strong>$1</strong>");
  h = h.replace(/(^|[^*\w])\*(?=\S)([^*]+?)\*(?!\w)/g, "$1<em>$2</em>");
  h = h.replace(/(^|[^\w])_(?=\S)([^_]+?)_(?!\w)/g, "$1<em>$2</em>");
  h = h.replace(/\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\](?!\()/g, (m, list) =>
    list.split(/\s*,\s*/).map((n) => `<a href="#" class="cite" data-n="${n}">[${n}]</a>`).join(""));
  return h;
}

export function inline(t) {
  return t.split(/(`[^`\n]+`)/).map((part, i) =>
    i % 2 ? `<code>${esc(part.slice(1, -1))}</code>` : text(part)).join("");
}

function cells(row) {
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

function startsBlock(line, next) {
  return FENCE.test(line) || HEADING.test(line) || LIST.test(line) || /^\s*>/.test(line)
    || RULE.test(line) || (line.includes("|") && next !== undefined && TABLE_SEP.test(next));
}

export function render(src) {
  const lines = String(src || "").replace(/\r\n?/g, "\n").split("\n");
  let html = "";
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    if (FENCE.test(line)) {
      const fence = line.trim().slice(0, 3);
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++;
      html += `<pre><code>${esc(body.join("\n"))}</code></pre>`;
      continue;
    }
    const h = HEADING.exec(line);
    if (h) {
      const level = Math.min(h[1].length + 1, 6);
      html += `<h${level}>${inline(h[2])}</h${level}>`;
      i++;
      continue;
    }
    if (RULE.test(line)) { html += "<hr>"; i++; continue; }
    if (/^\s*>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      html += `<blockquote>${render(quoted.join("\n"))}</blockquote>`;
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1])) {
      const head = cells(line);
      i += 2;
      let body = "";
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
        body += `<tr>${cells(lines[i++]).map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`;
      }
      html += `<table><thead><tr>${head.map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table>`;
      continue;
    }
    const item = LIST.exec(line);
    if (item) {
      const ordered = /\d/.test(item[2]);
      const items = [];
      while (i < lines.length) {
        const m = LIST.exec(lines[i]);
        if (m) { items.push([m[3]]); i++; continue; }
        if (lines[i].trim() && /^\s+/.test(lines[i]) && items.length) { items.at(-1).push(lines[i++].trim()); continue; }
        break;
      }
      const tag = ordered ? "ol" : "ul";
      const start = ordered && parseInt(item[2], 10) !== 1 ? ` start="${parseInt(item[2], 10)}"` : "";
      html += `<${tag}${start}>${items.map((parts) => `<li>${inline(parts.join(" "))}</li>`).join("")}</${tag}>`;
      continue;
    }
    const para = [line];
    i++;
    while (i < lines.length && lines[i].trim() && !startsBlock(lines[i], lines[i + 1])) para.push(lines[i++]);
    html += `<p>${para.map(inline).join("<br>")}</p>`;
  }
  return html;
}

// The paragraph the daemon appends to a model's answer or report that does not stand on its own
// ("**Quoted from your notes**: …" / "**Quoted from the sources**: …", the last one so labelled):
// set apart (p.quoted in app.css) and, given `why`, followed by a line saying why.
export function markQuoted(root, why) {
  const label = [...root.querySelectorAll("p > strong:first-child")].reverse()
    .find((el) => /^Quoted from /.test(el.textContent) && !el.previousSibling);
  if (!label) return;
  const p = label.parentElement;
  p.classList.add("quoted");
  if (why) p.insertAdjacentHTML("afterend", `<p class="quoted-why">Quoted verbatim because ${esc(why)}.</p>`);
}
