// The page's entry: tabs, sign-in with an API key when the daemon asks for one, status line.
import { api, onUnauthorized, onUnreachable, setApiKey, UNREACHABLE } from "./api.js";
import { setupAsk, loadSessions, loadModels } from "./ask.js";
import { setupResearch, loadJobs, watch } from "./research.js";
import { setupGuided, loadGuided, openGuided } from "./guided.js";
import { setupMemory, loadStats, loadSources } from "./memory.js";
import { setupHeartbeat, loadHeartbeat, loadSchedules } from "./heartbeat.js";
import { setupFileView } from "./fileview.js";

const $ = (id) => document.getElementById(id);
const TABS = ["ask", "research", "memory", "heartbeat"];
const LOADERS = {
  ask: () => { loadSessions(); loadModels(); },
  research: () => { loadJobs(); loadGuided(); },
  memory: () => { loadStats(); loadSources(); },
  heartbeat: () => { loadHeartbeat(); loadSchedules(); },
};
const loaded = new Set();
let current = "ask";
let down = false; // the last request never reached the daemon

// The research view open (a job, or a guided session) as the rest of the URL: #research/<id>.
function researchRoute() {
  const job = $("job"), guided = $("guided");
  if (!job.hidden && job.dataset.id) return encodeURIComponent(job.dataset.id);
  if (!guided.hidden && guided.dataset.id) return `guided/${encodeURIComponent(guided.dataset.id)}`;
  return "";
}

function setHash() {
  const sub = current === "research" ? researchRoute() : "";
  const hash = `#${current}${sub ? `/${sub}` : ""}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function openRoute(rest) {
  const id = decodeURIComponent(rest[rest.length - 1]);
  if (rest.length === 2 && rest[0] === "guided") openGuided(id).catch(() => {});
  else if (rest.length === 1) watch(id);
}

function show(hash, focus = false) {
  let [name, ...rest] = (hash || "").split("/");
  if (!TABS.includes(name)) { name = "ask"; rest = []; }
  current = name;
  for (const t of TABS) {
    const tab = $(`tab-${t}`);
    const on = t === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${t}`).hidden = !on;
  }
  if (focus) $(`tab-${name}`).focus();
  if (name === "research" && rest.length && rest.join("/") !== researchRoute()) openRoute(rest);
  else setHash();
  if (!loaded.has(name)) { loaded.add(name); LOADERS[name](); }
  else if (name !== "ask") LOADERS[name]();
}

function setupTabs() {
  const bar = document.querySelector(".tabs");
  bar.addEventListener("click", (e) => {
    const tab = e.target.closest("[role=tab]");
    if (tab) show(tab.dataset.tab);
  });
  bar.addEventListener("keydown", (e) => {
    const i = TABS.indexOf(document.activeElement?.dataset?.tab);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    show(TABS[(next + TABS.length) % TABS.length], true);
  });
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
}

async function refreshStatus() {
  try {
    const s = await api("/api/status");
    const m = s.memory ? `${s.memory.files_indexed} files, ${s.memory.chunks} chunks` : "memory starting";
    $("status").textContent = `${s.model ?? "no model"} · ${m} · v${s.version}`;
    $("status").dataset.state = "ok";
    $("status").title = "";
    if (down) { // back: the open section's lists again
      down = false;
      loaded.clear();
      show(location.hash.slice(1));
    }
    return true;
  } catch (err) {
    if (!down) {
      $("status").textContent = err.status === 401 ? "Sign-in needed" : "Daemon not reachable";
      $("status").dataset.state = "error";
    }
    return false;
  }
}

// A request that never reached the daemon: say so at once, and look again every 3 s.
function unreachable() {
  $("status").textContent = "Daemon not running";
  $("status").title = UNREACHABLE;
  $("status").dataset.state = "error";
  if (!down) { down = true; poll(3000); }
}

let timer = 0;
function poll(ms) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if (!document.hidden) await refreshStatus();
    poll(down ? 3000 : 15000);
  }, ms);
}

// Another tab may have started a job: the lists follow when the page is seen again, and every 10 s.
let seen = 0;
function onSeen() {
  if (document.hidden || Date.now() - seen < 1000) return;
  seen = Date.now();
  refreshStatus();
  if (current === "research") LOADERS.research();
}

function setupLogin() {
  const dialog = $("login-dialog");
  onUnauthorized(() => { if (!dialog.open) dialog.showModal(); });
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    setApiKey($("login-key").value.trim());
    $("login-key").value = "";
    if (await refreshStatus()) {
      dialog.close();
      loaded.clear();
      show(location.hash.slice(1));
    } else {
      $("login-why").textContent = "That key was not accepted. Try again.";
    }
  });
}

function start() {
  setupTabs();
  setupLogin();
  setupFileView();
  setupAsk();
  setupResearch();
  setupGuided();
  setupMemory();
  setupHeartbeat();
  const params = new URLSearchParams(location.search);
  if (params.get("signin") === "expired") {
    const n = $("notice");
    n.textContent = "That sign-in link has expired or was already used: run `research web` again.";
    n.hidden = false;
    history.replaceState(null, "", `/${location.hash}`);
  }
  onUnreachable(unreachable);
  show(location.hash.slice(1));
  refreshStatus();
  document.addEventListener("status-changed", refreshStatus);
  document.addEventListener("route-changed", setHash);
  document.addEventListener("visibilitychange", onSeen);
  window.addEventListener("focus", onSeen);
  poll(15000);
  setInterval(() => { // not while the keyboard is in a list: redrawing it would lose the focus
    if (!document.hidden && !down && current === "research" && !document.activeElement?.closest(".list")) LOADERS.research();
  }, 10000);
}

start();
