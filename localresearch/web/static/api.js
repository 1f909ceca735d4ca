// Talking to the daemon: JSON requests in its error envelope, and Server-Sent Events read
// through fetch (unlike EventSource, fetch can send an API key and POST a body).

const KEY = "localresearch.apiKey";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A request that never reached the daemon (a network error, not an HTTP one): it is not running.
export const UNREACHABLE = "The daemon is not running — start it with `research daemon start`.";
export class Unreachable extends Error {}

let unauthorized = () => {};
let unreachable = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }
export function onUnreachable(fn) { unreachable = fn; }
function lost(err) {
  if (err?.name === "AbortError") return err;
  unreachable();
  return new Unreachable(UNREACHABLE);
}
export function apiKey() { return sessionStorage.getItem(KEY) || ""; }
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function send(path, { method = "GET", body, signal, accept, extra } = {}) {
  const h = headers({ ...(accept ? { Accept: accept } : {}), ...extra });
  let payload;
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, signal, credentials: "same-origin" });
  } catch (err) { throw lost(err); }
  if (!res.ok) {
    let err = null;
    try { err = (await res.json()).error; } catch { /* not the envelope */ }
    if (res.status === 401) unauthorized();
    throw new ApiError(res.status, err?.code || "http_error", err?.message || `${res.status} ${res.statusText}`);
  }
  return res;
}

export async function api(path, options = {}) {
  const res = await send(path, options);
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export async function download(path, filename) {
  const blob = await (await send(path)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// Reads an SSE response, calling onEvent(event, id, name) per `data:` frame; resolves at the end of
// the stream, rejects on a network error or an error envelope (before the stream opens).
export async function stream(path, { method = "GET", body, signal, lastEventId, onEvent }) {
  const extra = lastEventId ? { "Last-Event-ID": String(lastEventId) } : undefined;
  const res = await send(path, { method, body, signal, accept: "text/event-stream", extra });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let id = null;
  let name = "message";
  let data = [];
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch (err) { throw lost(err); }
    const { value, done } = chunk;
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      let line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (data.length) onEvent(JSON.parse(data.join("\n")), id, name);
        data = [];
        name = "message";
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? "" : line.slice(colon + 1);
      if (v.startsWith(" ")) v = v.slice(1);
      if (field === "data") data.push(v);
      else if (field === "id") id = v;
      else if (field === "event") name = v;
    }
  }
}
