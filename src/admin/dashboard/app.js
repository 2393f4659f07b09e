// The admin dashboard (served at / by src/admin/http.ts): read-only, everything from the admin API
// the page is served by (/status, /metrics), polled every 2 s. Names from resources are only ever
// set as text (textContent), never as markup. With a token configured, the API needs
// `Authorization: Bearer <token>`: the page asks for it and keeps it in sessionStorage (this tab).
/* global document, window, fetch, sessionStorage, URLSearchParams */
"use strict";

const POLL_MS = 2000;
/** Condition types whose healthy state is False (Gateway API's "negative polarity"). */
const NEGATIVE = new Set(["Conflicted"]);
const TOKEN_KEY = "gatehouse-admin-token";
let token = sessionStorage.getItem(TOKEN_KEY) ?? "";
/** The previous sample of per-rule counters: { at, values: Map<series, {requests, errors}> }. */
let previous;

class Unauthorized extends Error {}

async function get(path) {
  const headers = token === "" ? {} : { Authorization: `Bearer ${token}` };
  const res = await fetch(path, { headers, cache: "no-store" });
  if (res.status === 401) throw new Unauthorized(path);
  return res;
}

/** Prometheus text → [{ name, labels, value }] (the series the dashboard reads). */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (m === null) continue;
    const labels = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls !== undefined) e.className = cls;
  return e;
}

function conditionLine(c) {
  const span = el("span", `${c.type}: ${c.status}${c.reason ? ` (${c.reason})` : ""}`, "cond");
  const good = NEGATIVE.has(c.type) ? c.status === "False" : c.status === "True";
  span.classList.add(good ? "ok" : "bad");
  const wrap = el("span");
  wrap.append(span);
  // A condition that is not True says why: the same message as the object's status.
  if (!good && c.message) wrap.append(el("span", c.message, "why"));
  return wrap;
}

const objectName = (o) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
const routeKey = (kind, ns, name) => `${kind} ${ns}/${name}`;
const fmt = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** Per-rule counters of the per-route metrics, by route, with rates since the previous sample. */
function ruleStats(series, now) {
  const values = new Map();
  for (const s of series) {
    if (s.name !== "gatehouse_route_requests_total" && s.name !== "gatehouse_route_responses_total") continue;
    const l = s.labels;
    const key = JSON.stringify([
      l.gateway_namespace,
      l.gateway,
      l.listener,
      l.route_kind,
      l.route_namespace,
      l.route,
      l.rule,
    ]);
    const v = values.get(key) ?? { labels: l, requests: 0, errors: 0 };
    if (s.name === "gatehouse_route_requests_total") v.requests += s.value;
    else if (l.code_class === "5xx") v.errors += s.value;
    values.set(key, v);
  }
  const byRoute = new Map();
  for (const [key, v] of values) {
    const before = previous?.values.get(key);
    const dt = previous === undefined ? 0 : (now - previous.at) / 1000;
    const rate = before !== undefined && dt > 0 ? Math.max(0, v.requests - before.requests) / dt : undefined;
    const errorRate = before !== undefined && dt > 0 ? Math.max(0, v.errors - before.errors) / dt : undefined;
    const r = routeKey(v.labels.route_kind, v.labels.route_namespace, v.labels.route);
    const list = byRoute.get(r) ?? [];
    list.push({ ...v, rate, errorRate });
    byRoute.set(r, list);
  }
  previous = { at: now, values };
  return byRoute;
}

function renderRoutes(status, byRoute, haveMetrics) {
  const body = document.querySelector("#routes tbody");
  const rows = [];
  const routes = status.objects.filter((o) => o.kind.endsWith("Route"));
  for (const route of routes) {
    const tr = el("tr");
    tr.dataset.route = routeKey(route.kind, route.metadata.namespace ?? "", route.metadata.name);
    tr.append(el("td", `${route.kind} ${objectName(route)}`));
    const parents = el("td");
    for (const p of route.status.parents ?? []) {
      const ref = p.parentRef ?? {};
      parents.append(
        el(
          "strong",
          `${ref.kind ?? "Gateway"} ${ref.namespace ?? route.metadata.namespace}/${ref.name}${ref.sectionName ? ` (${ref.sectionName})` : ""}`,
        ),
      );
      for (const c of p.conditions ?? []) parents.append(conditionLine(c));
    }
    if ((route.status.parents ?? []).length === 0)
      parents.append(el("span", "no parent accepted it (no status from this controller)", "why"));
    tr.append(parents);
    const rules = el("td");
    const stats = byRoute.get(tr.dataset.route) ?? [];
    stats.sort((a, b) => String(a.labels.rule).localeCompare(String(b.labels.rule)));
    for (const s of stats) {
      const line = el("span", undefined, "cond num");
      line.dataset.rule = s.labels.rule;
      line.append(`rule ${s.labels.rule} → ${s.labels.backend || "(no backend)"}: `);
      line.append(el("span", s.requests, "requests"));
      line.append(` requests, ${s.rate === undefined ? "…" : fmt(s.rate)} req/s, `);
      const err = el("span", `${s.errorRate === undefined ? "…" : fmt(s.errorRate)} 5xx/s`);
      if ((s.errorRate ?? 0) > 0) err.className = "bad";
      line.append(err);
      rules.append(line);
    }
    if (stats.length === 0) rules.append(el("span", haveMetrics ? "no traffic counted yet" : "—", "muted"));
    tr.append(rules);
    rows.push(tr);
  }
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", "no routes", "muted");
    td.colSpan = 3;
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function renderGateways(status) {
  const box = document.querySelector("#gateways");
  const items = [];
  for (const gw of status.objects.filter((o) => o.kind === "Gateway")) {
    const div = el("div", undefined, "gateway");
    div.dataset.gateway = objectName(gw);
    div.append(el("strong", `Gateway ${objectName(gw)}`));
    const addresses = (gw.status.addresses ?? []).map((a) => a.value).join(", ");
    if (addresses) div.append(el("span", ` ${addresses}`, "muted"));
    for (const c of gw.status.conditions ?? []) div.append(conditionLine(c));
    const table = el("table");
    const head = el("tr");
    for (const h of ["Listener", "Attached routes", "Conditions"]) head.append(el("th", h));
    table.append(head);
    for (const l of gw.status.listeners ?? []) {
      const tr = el("tr");
      tr.append(el("td", l.name), el("td", l.attachedRoutes ?? 0, "num"));
      const td = el("td");
      for (const c of l.conditions ?? []) td.append(conditionLine(c));
      tr.append(td);
      table.append(tr);
    }
    div.append(table);
    items.push(div);
  }
  if (items.length === 0) items.push(el("p", "no Gateways", "muted"));
  box.replaceChildren(...items);
}

function renderDataplane(status, series) {
  const dp = status.dataplane ?? {};
  const sum = (name) => series.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
  const haproxy = series.find((s) => s.name === "gatehouse_haproxy_info");
  const facts = [
    ["Input generation", status.generation ?? "none yet"],
    ["Serving generation", dp.appliedGeneration ?? "none yet"],
    [
      "Last apply",
      dp.lastApply
        ? `${dp.lastApply.result} (${dp.lastApply.method ?? "?"}) at ${dp.lastApply.at}`
        : "none yet",
    ],
    ["Reloads", series.length === 0 ? "—" : sum("gatehouse_reloads_total")],
    ["Runtime updates", series.length === 0 ? "—" : sum("gatehouse_runtime_updates_total")],
    ["HAProxy version", haproxy?.labels.version ?? "unknown"],
  ];
  if (dp.lastError)
    facts.push([
      "Last failure",
      `generation ${dp.lastError.generation} at ${dp.lastError.at}: ${dp.lastError.error ?? ""}`,
    ]);
  const dl = document.querySelector("#dataplane");
  dl.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  const events = (dp.events ?? [])
    .slice(-10)
    .reverse()
    .map((e) => el("li", `${e.at} ${e.message}`));
  document
    .querySelector("#events")
    .replaceChildren(...(events.length ? events : [el("li", "none", "muted")]));
}

function renderErrors(status) {
  const items = [
    ...(status.errors ?? []).map((e) => el("li", e.message, "bad")),
    ...(status.warnings ?? []).map((w) => el("li", w, "muted")),
  ];
  document.querySelector("#errors").replaceChildren(...(items.length ? items : [el("li", "none", "muted")]));
}

async function refresh() {
  try {
    const statusRes = await get("/status");
    if (!statusRes.ok) throw new Error(`/status answered ${statusRes.status}`);
    const status = await statusRes.json();
    const metricsRes = await get("/metrics").catch((e) => {
      if (e instanceof Unauthorized) throw e;
      return undefined;
    });
    const text = metricsRes?.ok ? await metricsRes.text() : "";
    const series = parseMetrics(text);
    const haveMetrics = series.some((s) => s.name.startsWith("gatehouse_route_"));
    document.querySelector("#rates-note").textContent = haveMetrics
      ? "Counted by HAProxy per route rule; rates over the last poll (every 2 s)."
      : "No per-route counters on this admin server (off, or in the data-plane pods' /metrics in --infrastructure kubernetes).";
    document.querySelector("#version").textContent = status.version ? `version ${status.version}` : "";
    renderDataplane(status, series);
    renderRoutes(status, ruleStats(series, Date.now()), haveMetrics);
    renderGateways(status);
    renderErrors(status);
    document.querySelector("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.querySelector("#login").hidden = true;
    document.querySelector("#main").hidden = false;
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e instanceof Unauthorized) {
      document.querySelector("#main").hidden = true;
      document.querySelector("#login").hidden = false;
      if (token !== "") document.querySelector("#login-error").textContent = "That token was refused.";
      return;
    }
    document.querySelector("#updated").textContent = `update failed: ${e.message}`;
  }
}

document.querySelector("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = document.querySelector("#token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  void refresh();
});

void refresh();
window.setInterval(
  () => void refresh(),
  Number(new URLSearchParams(window.location.search).get("poll")) || POLL_MS,
);
