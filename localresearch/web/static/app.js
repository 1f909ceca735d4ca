// The page's entry: tabs, sign-in with an API key when the daemon asks for one, status line.
import { api, onUnauthorized, setApiKey } from "./api.js";
import { setupAsk, loadSessions, loadModels } from "./ask.js";
import { setupResearch, loadJobs } from "./research.js";
import { setupGuided, loadGuided } from "./guided.js";
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

function show(name, focus = false) {
  if (!TABS.includes(name)) name = "ask";
  for (const t of TABS) {
    const tab = $(`tab-${t}`);
    const on = t === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${t}`).hidden = !on;
  }
  if (focus) $(`tab-${name}`).focus();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
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
    return true;
  } catch (err) {
    $("status").textContent = err.status === 401 ? "Sign-in needed" : "Daemon not reachable";
    $("status").dataset.state = "error";
    return false;
  }
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
  show(location.hash.slice(1));
  refreshStatus();
  document.addEventListener("status-changed", refreshStatus);
  setInterval(() => { if (!document.hidden) refreshStatus(); }, 15000);
}

start();
