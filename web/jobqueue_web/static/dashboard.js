// The jobqueue dashboard: plain JavaScript, no build step and nothing from a CDN.
// The token lives in sessionStorage and travels only in the Authorization header (no
// cookies: another site cannot make the browser act with it). Text from the server is
// only ever set with textContent, never parsed as HTML.
"use strict";

const API = "/api/v1";
const STATES = ["queued", "delayed", "active", "completed", "failed", "cancelled"];
const PAGE = 50;
const NEGATIVE_CONDITIONS = new Set(["FailureRateHigh", "ScalingLimited"]);
const $ = (id) => document.getElementById(id);

const app = {
  token: null,
  role: null,
  overview: null,
  route: { view: "queues" },
  page: { offset: 0, next: null },
  listKey: "",
  streamAbort: null,
  jobTimer: null,
};

// --- HTTP --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (app.token) headers.Authorization = `Bearer ${app.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "omit",
    cache: "no-store",
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    if (response.status === 401) showLogin("The token was refused.");
    throw new ApiError(response.status, body);
  }
  return body;
}

const enc = encodeURIComponent;

// --- small DOM helpers -------------------------------------------------------------------

// The children of `box` by their data-<key> attribute: the nodes a redraw keeps (renderQueues).
function childrenBy(box, key) {
  return new Map([...box.children].map((node) => [node.dataset[key], node]));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function fmtNum(n) { return n === null || n === undefined ? "–" : String(n); }
function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function fmtRatio(r) { return r === null || r === undefined ? "–" : `${(r * 100).toFixed(1)} %`; }
function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}
function short(id) { return id.length > 12 ? id.slice(0, 12) + "…" : id; }
function pretty(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// A sparkline as inline SVG: the last points of one series, scaled to their own maximum.
function sparkline(values, { label, format = fmtNum, max = null } = {}) {
  const w = 120, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  const last = values.length ? values[values.length - 1] : null;
  svg.setAttribute("aria-label", `${label}: ${format(last)}`);
  if (values.length > 1) {
    const top = Math.max(max || 0, ...values, 1e-9);
    const step = w / (values.length - 1);
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / top) * (h - 4)).toFixed(1)}`);
    const line = document.createElementNS(svg.namespaceURI, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  return el("span", { class: "sparkcell" }, svg, el("span", { class: "sparkval", text: format(last) }));
}

// --- token and sign-in -------------------------------------------------------------------

function takeTokenFromFragment() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("jobq-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + "#/");
  }
  app.token = sessionStorage.getItem("jobq-token");
}

function showLogin(message) {
  stopLive();
  app.token = null;
  sessionStorage.removeItem("jobq-token");
  $("main").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-error").textContent = message || "";
}

async function signIn() {
  try {
    const who = await api("/whoami");
    app.role = who.role;
    document.body.dataset.role = who.role;
    $("who").textContent = `${who.label} (${who.role})`;
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = !app.token;
    startLive();
    await route();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showLogin(String(error.message));
  }
}

// --- live updates: server-sent events read with fetch (EventSource cannot send a header) --

function stopLive() {
  if (app.streamAbort) app.streamAbort.abort();
  app.streamAbort = null;
  setLive(false);
}

function setLive(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").className = on ? "live on" : "live off";
}

async function startLive() {
  stopLive();
  const controller = new AbortController();
  app.streamAbort = controller;
  let delay = 1000;
  while (!controller.signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (app.token) headers.Authorization = `Bearer ${app.token}`;
      const response = await fetch(`${API}/live`, { headers, signal: controller.signal, credentials: "omit", cache: "no-store" });
      if (response.status === 401) { showLogin("The token was refused."); return; }
      if (!response.ok || !response.body) throw new Error(`live: HTTP ${response.status}`);
      setLive(true);
      delay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          const isOverview = block.split("\n").some((l) => l === "event: overview" || l === "event:overview");
          if (isOverview && data) onOverview(JSON.parse(data));
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

function onOverview(overview) {
  const previous = app.overview;
  app.overview = overview;
  const problems = [];
  if (overview.redis_error) problems.push(`Redis: ${overview.redis_error}`);
  if (overview.kubernetes === "error") problems.push(`Kubernetes: ${overview.kubernetes_error}`);
  $("banner").hidden = problems.length === 0;
  $("banner").textContent = problems.join(" · ");
  const view = app.route.view;
  if (view === "queues") renderQueues();
  if (view === "scaling") renderScaling();
  if (view === "queue") {
    renderQueueCards();
    const stats = findStats(app.route.queue);
    const before = previous && findStats(app.route.queue, previous);
    if (!before || !stats || countsKey(stats) !== countsKey(before)) loadJobs();
    loadWorkers();
  }
  document.body.dataset.liveVersion = String(Number(document.body.dataset.liveVersion || 0) + 1);
}

function findStats(queue, overview = app.overview) {
  return overview ? overview.queues.find((q) => q.queue === queue) : null;
}
function countsKey(s) {
  return STATES.map((k) => s[k]).join(",") + `,${s.completed_1m},${s.failed_1m}`;
}
// The JobQueues serving one of this Redis's queues (a foreign system's queue of the same
// name is another queue).
function jobqueuesOf(queue) {
  return app.overview ? app.overview.jobqueues.filter((jq) => jq.queue === queue && !jq.foreign) : [];
}

// --- views -------------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === "queue" && parts[1] && parts[2] === "job" && parts[3])
    return { view: "job", queue: parts[1], job: parts[3] };
  if (parts[0] === "queue" && parts[1])
    return { view: "queue", queue: parts[1], state: params.get("state") || "", search: params.get("search") || "" };
  if (parts[0] === "scaling") return { view: "scaling" };
  return { view: "queues" };
}

async function route() {
  if (!app.token && app.role === null) return;
  app.route = parseRoute();
  performance.mark("jobq-route");  // bench/dashboard measures from here to jobq-loaded
  clearTimeout(app.jobTimer);
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  $(`view-${app.route.view}`).hidden = false;
  document.body.dataset.view = app.route.view;
  delete document.body.dataset.loaded;
  if (!app.overview) {
    try { onOverview(await api("/overview")); } catch (_) { /* shown by the banner or login */ }
  }
  if (app.route.view === "queues") renderQueues();
  else if (app.route.view === "scaling") renderScaling();
  else if (app.route.view === "queue") await openQueue();
  else if (app.route.view === "job") await openJob();
  document.body.dataset.loaded = app.route.view;
  performance.mark("jobq-loaded");
}

// Live updates redraw the tables every tick. A row's link (and a state tab) stays the same
// node across redraws: a new node under the pointer between a click's press and release
// would swallow the click (the two would land on different elements).
function renderQueues() {
  const body = $("queues-body");
  const overview = app.overview;
  if (!overview) return;
  $("queues-empty").hidden = overview.queues.length > 0;
  const shown = childrenBy(body, "queue");
  const rows = [];
  for (const s of overview.queues) {
    const h = overview.history[s.queue] || [];
    const replicas = jobqueuesOf(s.queue).map((jq) => `${fmtNum(jq.ready_replicas)}/${fmtNum(jq.replicas)} (→${fmtNum(jq.desired_replicas)})`).join(", ");
    const row = shown.get(s.queue) || el("tr", { "data-queue": s.queue },
      el("td", {}, el("a", { href: `#/queue/${enc(s.queue)}`, text: s.queue })));
    rows.push(row);
    row.replaceChildren(row.firstElementChild,
      el("td", { class: "n", text: fmtNum(s.queued) }),
      el("td", { class: "n", text: fmtNum(s.active) }),
      el("td", { class: "n", text: fmtNum(s.delayed) }),
      el("td", { class: "n", text: fmtNum(s.failed) }),
      el("td", {}, sparkline(h.map((p) => p.backlog), { label: "backlog" })),
      el("td", {}, sparkline(h.map((p) => p.oldest_wait_seconds), { label: "oldest wait", format: fmtSeconds })),
      el("td", {}, sparkline(h.map((p) => p.failure_ratio), { label: "failure ratio", format: fmtRatio, max: 1 })),
      el("td", { class: "n", text: fmtNum(s.workers.length) }),
      el("td", { text: replicas || "–" }),
    );
  }
  body.replaceChildren(...rows);
  renderForeign(overview);
}

// Foreign queues, read-only: what the operator last read of them (their JobQueue's
// status), no links into job lists and no buttons.
function renderForeign(overview) {
  const foreign = overview.jobqueues.filter((jq) => jq.foreign);
  $("foreign").hidden = foreign.length === 0;
  const body = $("foreign-body");
  body.replaceChildren();
  for (const jq of foreign) {
    const key = `${jq.namespace}/${jq.name}`;
    const h = (overview.foreign_history || {})[key] || [];
    body.append(el("tr", { "data-jobqueue": key, "data-source": jq.source },
      el("td", {}, el("a", { href: "#/scaling", text: key, title: "replicas and scale events" })),
      el("td", { text: jq.source }),
      el("td", { class: "clip", text: (jq.source_queues.length ? jq.source_queues.join(", ") : jq.queue) || "–" }),
      el("td", {}, sparkline(h.map((p) => p.backlog || 0), { label: "backlog", format: () => fmtNum(jq.backlog_total) })),
      el("td", {}, sparkline(h.map((p) => p.oldest_wait_seconds || 0), { label: "oldest wait", format: () => fmtSeconds(jq.oldest_wait_seconds) })),
      el("td", {}, sparkline(h.map((p) => p.failure_ratio || 0), { label: "failure ratio", format: () => fmtRatio(jq.failure_ratio), max: 1 })),
      el("td", { text: `${fmtNum(jq.ready_replicas)}/${fmtNum(jq.replicas)} (→${fmtNum(jq.desired_replicas)})` }),
      el("td", { class: "clip", text: jq.signals ? jq.signals.join(", ") : "–" }),
    ));
  }
}

function renderQueueCards() {
  const s = findStats(app.route.queue);
  const cards = $("queue-cards");
  cards.replaceChildren();
  if (!s) return;
  const h = (app.overview.history[s.queue] || []);
  const card = (label, value, spark) => el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }), spark || null);
  cards.append(
    card("Backlog", fmtNum(s.queued + s.active + s.delayed_due), sparkline(h.map((p) => p.backlog), { label: "backlog" })),
    card("Oldest wait", fmtSeconds(s.oldest_queued_age_seconds), sparkline(h.map((p) => p.oldest_wait_seconds), { label: "oldest wait", format: fmtSeconds })),
    card("Failure ratio", fmtRatio(s.failure_ratio), sparkline(h.map((p) => p.failure_ratio), { label: "failure ratio", format: fmtRatio, max: 1 })),
    card("Done / failed (1 min)", `${s.completed_1m} / ${s.failed_1m}`),
    card("Workers", fmtNum(s.workers.length)),
  );
  for (const jq of jobqueuesOf(s.queue)) {
    cards.append(card(`Replicas ${jq.namespace}/${jq.name}`, `${fmtNum(jq.ready_replicas)} ready / ${fmtNum(jq.replicas)} / desired ${fmtNum(jq.desired_replicas)}`));
  }
  renderTabs(s);
}

function renderTabs(stats) {
  const tabs = $("state-tabs");
  const shown = childrenBy(tabs, "state");
  const links = [];
  for (const state of ["", ...STATES]) {
    const count = state ? ` (${stats ? stats[state] : "?"})` : "";
    const query = new URLSearchParams();
    if (state) query.set("state", state);
    const a = shown.get(state || "all") || el("a", { "data-state": state || "all", role: "tab" });
    a.href = `#/queue/${enc(app.route.queue)}?${query}`;
    a.textContent = (state || "all") + count;
    a.className = (app.route.state || "") === state ? "active" : "";
    links.push(a);
  }
  tabs.replaceChildren(...links);
}

async function openQueue() {
  $("queue-name").textContent = app.route.queue;
  $("search").value = app.route.search;
  app.page = { offset: 0, next: null };
  $("retry-all").hidden = app.role !== "write" || app.route.state !== "failed";
  renderQueueCards();
  if (!findStats(app.route.queue)) renderTabs(null);
  await Promise.all([loadJobs(), loadWorkers()]);
}

async function loadJobs() {
  const r = app.route;
  if (r.view !== "queue") return;
  const query = new URLSearchParams({ limit: String(PAGE), offset: String(app.page.offset) });
  if (r.state) query.set("state", r.state);
  if (r.search) query.set("search", r.search);
  const key = `${r.queue}?${query}`;
  app.listKey = key;
  let page;
  try { page = await api(`/queues/${enc(r.queue)}/jobs?${query}`); }
  catch (error) { $("search-note").textContent = error.message; return; }
  if (app.listKey !== key) return;  // a newer request went out meanwhile
  app.page.next = page.next_offset;
  const body = $("jobs-body");
  body.replaceChildren();
  for (const job of page.jobs) {
    const detail = job.error || (job.result === null ? "" : pretty(job.result));
    body.append(el("tr", { "data-job": job.id, "data-state": job.state },
      el("td", {}, el("a", { href: `#/queue/${enc(r.queue)}/job/${enc(job.id)}`, text: short(job.id), title: job.id })),
      el("td", { text: job.name }),
      el("td", {}, el("span", { class: `state ${job.state}`, text: job.state })),
      el("td", { class: "n", text: String(job.priority) }),
      el("td", { class: "n", text: `${job.attempts}/${job.max_attempts}` }),
      el("td", { text: fmtTime(job.created_at) }),
      el("td", { class: "clip", text: detail.slice(0, 200) }),
    ));
  }
  const from = page.jobs.length ? page.offset + 1 : 0;
  const total = page.total === null ? "" : ` of ${page.total}`;
  $("page-info").textContent = `${from}–${page.offset + page.jobs.length}${total}`;
  $("prev").disabled = page.offset === 0;
  $("next").disabled = page.next_offset === null;
  $("search-note").textContent = page.search ? `Looked at the newest ${page.searched} job(s) for “${page.search}”.` : "";
}

async function loadWorkers() {
  if (app.route.view !== "queue") return;
  let workers;
  try { workers = await api(`/queues/${enc(app.route.queue)}/workers`); } catch (_) { return; }
  const body = $("workers-body");
  body.replaceChildren();
  $("workers-empty").hidden = workers.length > 0;
  const now = Date.now() / 1000;
  for (const { worker, jobs } of workers) {
    const running = el("td", {});
    for (const job of jobs) {
      running.append(el("a", { href: `#/queue/${enc(app.route.queue)}/job/${enc(job.id)}`, text: `${job.name} ${short(job.id)}`, class: "chip" }));
    }
    body.append(el("tr", { "data-worker": worker.id },
      el("td", { text: worker.name }),
      el("td", { text: `${worker.host} / ${worker.pid}` }),
      el("td", { class: "n", text: String(worker.concurrency) }),
      el("td", { class: "n", text: String(worker.jobs_in_hand) }),
      el("td", { text: `${fmtSeconds(Math.max(0, now - worker.last_heartbeat))} ago` }),
      running,
    ));
  }
}

async function openJob() {
  const { queue, job: id } = app.route;
  $("job-id").textContent = id;
  $("job-queue-link").textContent = queue;
  $("job-queue-link").href = `#/queue/${enc(queue)}`;
  $("job-action-result").textContent = "";
  await loadJob();
}

async function loadJob() {
  const { queue, job: id, view } = app.route;
  if (view !== "job") return;
  let detail;
  try { detail = await api(`/queues/${enc(queue)}/jobs/${enc(id)}`); }
  catch (error) { $("job-state").textContent = error.message; return; }
  if (app.route.job !== id) return;
  const job = detail.job;
  $("job-state").textContent = job.state;
  $("job-state").className = `state ${job.state}`;
  const write = app.role === "write";
  $("job-retry").hidden = !write || !["failed", "cancelled"].includes(job.state);
  $("job-cancel").hidden = !write || !["queued", "delayed", "active"].includes(job.state) || job.cancel_requested;
  const fields = $("job-fields");
  fields.replaceChildren();
  const add = (k, v) => fields.append(el("dt", { text: k }), el("dd", { text: v }));
  add("Name", job.name);
  add("Attempts", `${job.attempts} of ${job.max_attempts}` + (job.lapses ? ` (${job.lapses} lapsed)` : ""));
  add("Priority", String(job.priority));
  add("Backoff", job.backoff);
  add("Created", fmtTime(job.created_at));
  add("Started", fmtTime(job.started_at));
  add("Finished", fmtTime(job.finished_at));
  if (job.run_at) add("Runs at", fmtTime(job.run_at));
  if (job.worker) add("Worker", job.worker);
  if (job.dedup_key) add("Dedup key", job.dedup_key);
  if (job.progress) add("Progress", `${job.progress}%` + (job.progress_message ? ` ${job.progress_message}` : ""));
  if (job.corrupt_fields.length) add("Damaged fields", job.corrupt_fields.join(", "));
  $("job-payload").textContent = pretty(job.payload);
  $("job-result").textContent = pretty(job.result);
  $("job-error").textContent = job.error || "";
  const list = $("job-timeline");
  list.replaceChildren();
  for (const entry of detail.timeline) {
    list.append(el("li", { "data-event": entry.event },
      el("time", { text: fmtTime(entry.at) }), " ",
      el("strong", { text: entry.event }),
      entry.data ? el("span", { class: "muted", text: ` ${entry.data}` }) : null));
  }
  $("timeline-note").textContent = detail.timeline_complete ? "" : "Older events of this job are no longer in the queue's event stream; the record's own times are shown.";
  if (!["completed", "failed", "cancelled"].includes(job.state)) {
    clearTimeout(app.jobTimer);
    app.jobTimer = setTimeout(loadJob, 1000);
  }
}

async function jobAction(action) {
  const { queue, job: id } = app.route;
  const out = $("job-action-result");
  out.textContent = "…";
  try {
    const result = await api(`/queues/${enc(queue)}/jobs/${enc(id)}/${action}`, { method: "POST" });
    out.textContent = action === "retry" ? `retrying (${result.state})` : `cancel: ${result.result}`;
  } catch (error) {
    out.textContent = error.message;
  }
  await loadJob();
}

function renderScaling() {
  const box = $("jobqueues");
  const overview = app.overview;
  if (!overview) return;
  $("scaling-note").textContent = overview.kubernetes === "off"
    ? "Kubernetes is off for this dashboard (start it with --kube to show JobQueues)."
    : overview.jobqueues.length ? "" : "No JobQueues found.";
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  box.replaceChildren();
  for (const jq of overview.jobqueues) {
    const key = `${jq.namespace}/${jq.name}`;
    const conditions = el("ul", { class: "conditions" });
    for (const c of jq.conditions) {
      // Most conditions are good when True; these two are trouble when True.
      const good = NEGATIVE_CONDITIONS.has(c.type) ? c.status === "False" : c.status === "True";
      conditions.append(el("li", { class: `cond ${c.status === "Unknown" ? "unknown" : good ? "good" : "bad"}`, "data-status": c.status, title: c.message || "", text: `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ""}` }));
    }
    const chart = el("div", { class: "chart", "data-testid": `replicas-chart-${key}` });
    const details = el("details", { "data-key": key, class: "jobqueue" },
      el("summary", {},
        el("strong", { text: key }), " ",
        el("span", { class: "muted", text: `queue ${jq.queue} · ${jq.source}${jq.foreign ? " (read-only)" : ""}` }), " ",
        el("span", { class: "replicas", "data-testid": `replicas-${key}`, text: `desired ${fmtNum(jq.desired_replicas)} · current ${fmtNum(jq.replicas)} · ready ${fmtNum(jq.ready_replicas)}` }),
        jq.last_scale_reason ? el("span", { class: "muted", text: ` · last scale ${jq.last_scale_reason} ${fmtTime(jq.last_scale_time)}` }) : null),
      conditions, chart,
      el("ol", { class: "events", "data-testid": `scale-events-${key}` }));
    if (open.has(key) || overview.jobqueues.length === 1) details.open = true;
    box.append(details);
    loadReplicaChart(jq, chart, details.querySelector("ol.events"));
  }
}

async function loadReplicaChart(jq, chart, eventsList) {
  let detail;
  try { detail = await api(`/jobqueues/${enc(jq.namespace)}/${enc(jq.name)}`); } catch (_) { return; }
  chart.replaceChildren(replicaChart(detail.replicas_history, detail.scale_events));
  eventsList.replaceChildren();
  for (const e of detail.scale_events.slice().reverse()) {
    eventsList.append(el("li", { "data-reason": e.reason }, el("time", { text: fmtTime(new Date(e.at * 1000).toISOString()) }), " ", el("strong", { text: e.reason }), " ", el("span", { text: e.message })));
  }
}

// Replicas over time: desired, current and ready as step lines, scale events as ticks.
function replicaChart(samples, events) {
  const w = 640, h = 160, pad = 24;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "replicas-chart");
  if (!samples.length) return el("p", { class: "muted", text: "No samples yet." });
  const now = Date.now() / 1000;
  const t0 = Math.min(samples[0].at, ...events.map((e) => e.at).filter((t) => t >= samples[0].at - 600));
  const t1 = Math.max(now, samples[samples.length - 1].at);
  const top = Math.max(1, ...samples.flatMap((s) => [s.desired || 0, s.current || 0, s.ready || 0]));
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  for (const [k, cls] of [["desired", "desired"], ["current", "current"], ["ready", "ready"]]) {
    let d = "";
    samples.forEach((s, i) => {
      const v = s[k] === null ? 0 : s[k];
      d += i === 0 ? `M${x(s.at).toFixed(1)},${y(v).toFixed(1)}` : `H${x(s.at).toFixed(1)}V${y(v).toFixed(1)}`;
    });
    d += `H${x(t1).toFixed(1)}`;
    const path = document.createElementNS(svg.namespaceURI, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", cls);
    svg.append(path);
  }
  for (const e of events) {
    if (e.at < t0) continue;
    const line = document.createElementNS(svg.namespaceURI, "line");
    line.setAttribute("x1", x(e.at)); line.setAttribute("x2", x(e.at));
    line.setAttribute("y1", pad / 2); line.setAttribute("y2", h - pad);
    line.setAttribute("class", e.reason === "ScaledUp" ? "up" : "down");
    const title = document.createElementNS(svg.namespaceURI, "title");
    title.textContent = `${e.reason}: ${e.message}`;
    line.append(title);
    svg.append(line);
  }
  const label = document.createElementNS(svg.namespaceURI, "text");
  label.setAttribute("x", 2); label.setAttribute("y", pad - 8);
  label.textContent = `max ${top}`;
  svg.append(label);
  const legend = el("div", { class: "legend" }, el("span", { class: "desired", text: "desired" }), el("span", { class: "current", text: "current" }), el("span", { class: "ready", text: "ready" }), el("span", { class: "up", text: "scale up" }), el("span", { class: "down", text: "scale down" }));
  return el("div", {}, svg, legend);
}

// --- wiring ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    app.token = $("token").value.trim();
    sessionStorage.setItem("jobq-token", app.token);
    $("token").value = "";
    signIn();
  });
  $("logout").addEventListener("click", () => showLogin(""));
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (app.route.state) query.set("state", app.route.state);
    const text = $("search").value.trim();
    if (text) query.set("search", text);
    location.hash = `#/queue/${enc(app.route.queue)}?${query}`;
  });
  $("prev").addEventListener("click", () => { app.page.offset = Math.max(0, app.page.offset - PAGE); loadJobs(); });
  $("next").addEventListener("click", () => { if (app.page.next !== null) { app.page.offset = app.page.next; loadJobs(); } });
  $("job-retry").addEventListener("click", () => jobAction("retry"));
  $("job-cancel").addEventListener("click", () => jobAction("cancel"));
  $("retry-all").addEventListener("click", async () => {
    try {
      const r = await api(`/queues/${enc(app.route.queue)}/retry-failed`, { method: "POST" });
      $("search-note").textContent = `Retrying ${r.retried} job(s); ${r.skipped} left in the dead letter.`;
    } catch (error) { $("search-note").textContent = error.message; }
    loadJobs();
  });
  window.addEventListener("hashchange", () => { if (!/token=/.test(location.hash)) route(); });
  if (app.token) signIn();
  else api("/whoami").then(() => signIn()).catch(() => showLogin(""));
});
