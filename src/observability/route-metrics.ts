// Per-route metrics on /metrics, in Gateway API terms.
//
// Counts come from HAProxy itself: the `gh_rule_stats` stick table (src/dataplane/haproxy/render/
// metrics.ts) holds, per rule id, requests, bytes and responses by status class. They are read with
// `show table` on the runtime API when /metrics is scraped, and mapped to labels (gateway, listener,
// route kind/namespace/name, rule, backend Services) through the IR in effect. A reload gives HAProxy
// a new worker with an empty table: the worker's pid changes, the last values read from the old
// worker are kept as a base, so the totals only grow. (What the old worker counted after that last
// read — since the previous scrape — is not seen.) Durations are not in HAProxy's counters: the
// histogram is fed by the access log (see access-log.ts), so it exists only with access logs on.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { IR } from "../ir/types.ts";
import {
  RULE_STATS_TABLE,
  ruleCounterIdentities,
  STATUS_CLASSES,
  type RuleCounterIdentity,
} from "../dataplane/haproxy/render/metrics.ts";
import type { RenderOptions } from "../dataplane/haproxy/render/model.ts";
import type { RuntimeApi } from "../dataplane/haproxy/runtime/socket.ts";

/** What HAProxy counted for one rule id in one worker. */
export interface RuleCounts {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  /** Responses by status class, STATUS_CLASSES order. */
  classes: number[];
}

/** One read of the table: the worker's pid and its rows by rule id. */
export interface RuleStatsRead {
  pid: number;
  rows: Map<string, RuleCounts>;
  /** HAProxy's version (`show info`), when known. */
  version?: string;
}

/** Where the counts come from (the runtime API in production). */
export interface RuleStatsSource {
  read(): Promise<RuleStatsRead>;
}

/**
 * Parses `show table gh_rule_stats`: one line per entry,
 * `0x…: key=<rid> use=0 exp=0 http_req_cnt=3 bytes_in_cnt=80 bytes_out_cnt=500 gpc0=0 gpc1=3 …`.
 */
export function parseRuleStats(text: string): Map<string, RuleCounts> {
  const rows = new Map<string, RuleCounts>();
  for (const line of text.split("\n")) {
    const key = /\bkey=(\S+)/.exec(line)?.[1];
    if (key === undefined || line.startsWith("#")) continue;
    const num = (name: string): number => {
      const m = new RegExp(`\\b${name.replace(/[()]/g, "\\$&")}=(\\d+)`).exec(line);
      return m === null ? 0 : Number(m[1]);
    };
    rows.set(key, {
      requests: num("http_req_cnt"),
      bytesIn: num("bytes_in_cnt"),
      bytesOut: num("bytes_out_cnt"),
      classes: STATUS_CLASSES.map((_, i) => num(`gpc${i}`)),
    });
  }
  return rows;
}

/** Reads `show info` (pid, version) and, with `table` (default true), the rule counters. */
export function runtimeRuleStatsSource(api: RuntimeApi, table = true): RuleStatsSource {
  return {
    async read() {
      const [info, rows] = await api.commands(
        table ? ["show info", `show table ${RULE_STATS_TABLE}`] : ["show info"],
      );
      const pid = Number(/^Pid:\s*(\d+)/m.exec(info ?? "")?.[1] ?? 0);
      const version = /^Version:\s*(\S+)/m.exec(info ?? "")?.[1];
      return {
        pid,
        rows: parseRuleStats(table ? (rows ?? "") : ""),
        ...(version !== undefined ? { version } : {}),
      };
    },
  };
}

function add(a: RuleCounts, b: RuleCounts): RuleCounts {
  return {
    requests: a.requests + b.requests,
    bytesIn: a.bytesIn + b.bytesIn,
    bytesOut: a.bytesOut + b.bytesOut,
    classes: a.classes.map((v, i) => v + (b.classes[i] ?? 0)),
  };
}

const ZERO: RuleCounts = { requests: 0, bytesIn: 0, bytesOut: 0, classes: STATUS_CLASSES.map(() => 0) };

/**
 * Monotonic totals per rule id over successive reads, across workers: when the pid changes, the
 * previous worker's last values become part of the base. Pure (no I/O).
 */
export class RuleTotals {
  #pid: number | undefined;
  #base = new Map<string, RuleCounts>();
  #last = new Map<string, RuleCounts>();

  update(read: RuleStatsRead): void {
    if (this.#pid !== undefined && read.pid !== this.#pid) {
      for (const [rid, c] of this.#last) this.#base.set(rid, add(this.#base.get(rid) ?? ZERO, c));
      this.#last = new Map();
    }
    this.#pid = read.pid;
    // Within a worker, a value never decreases; an entry HAProxy dropped (table full) keeps its last.
    for (const [rid, c] of read.rows) this.#last.set(rid, c);
  }

  totals(): Map<string, RuleCounts> {
    const out = new Map(this.#base);
    for (const [rid, c] of this.#last) out.set(rid, add(out.get(rid) ?? ZERO, c));
    return out;
  }
}

export const ROUTE_LABELS = [
  "gateway_namespace",
  "gateway",
  "listener",
  "route_kind",
  "route_namespace",
  "route",
  "rule",
  "backend",
] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

export function routeLabels(id: RuleCounterIdentity): Record<RouteLabel, string> {
  const [gatewayNamespace = "", gateway = ""] = id.gateway.split("/");
  return {
    gateway_namespace: gatewayNamespace,
    gateway,
    listener: id.listener,
    route_kind: id.routeKind,
    route_namespace: id.routeNamespace,
    route: id.routeName,
    rule: id.rule,
    backend: id.backends.join(","),
  };
}

/** Duration buckets of `gatehouse_route_request_duration_seconds` (seconds). */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface RouteMetrics {
  /** The IR just applied (rule ids are computed from it with the same render options). */
  setIR(ir: IR): void;
  /** Rule id → identity in the IR in effect (for the access log). */
  identity(rid: string): RuleCounterIdentity | undefined;
  /** One finished request seen in the access log: duration (ms, total time) of a counted rule. */
  observeDuration(rid: string, totalMs: number): void;
}

/**
 * Registers the per-route metrics on `registry`: counters filled from `source` at each collection,
 * the duration histogram from `observeDuration`. Rule ids no longer in the IR keep being reported
 * under their last identity (their counters must not vanish before the next scrape sees them).
 */
export function createRouteMetrics(
  registry: Registry,
  source: RuleStatsSource,
  renderOptions: RenderOptions,
  onError: (error: unknown) => void = () => {},
): RouteMetrics {
  const totals = new RuleTotals();
  let ir: IR | undefined;
  let identities = new Map<string, RuleCounterIdentity>();
  let stale = true;
  const known = new Map<string, RuleCounterIdentity>();
  const current = (): Map<string, RuleCounterIdentity> => {
    if (stale && ir !== undefined) {
      identities = ruleCounterIdentities(ir, renderOptions);
      for (const [rid, id] of identities) known.set(rid, id);
      stale = false;
    }
    return identities;
  };
  const labelNames = [...ROUTE_LABELS];
  // The table is read once per scrape: the registry starts every metric's collect() in the same turn
  // of the event loop, so they share one read (forgotten on the next turn).
  let pending: Promise<Map<string, RuleCounts>> | undefined;
  let version: string | undefined;
  const read = (): Promise<Map<string, RuleCounts>> =>
    (pending ??= (async () => {
      try {
        const got = await source.read();
        totals.update(got);
        if (got.version !== undefined) version = got.version;
      } catch (error) {
        onError(error);
      }
      setImmediate(() => (pending = undefined));
      current();
      return totals.totals();
    })());
  const counter = <L extends string>(
    name: string,
    help: string,
    extra: readonly L[],
    fill: (c: Counter<RouteLabel | L>, labels: Record<RouteLabel, string>, counts: RuleCounts) => void,
  ): Counter<RouteLabel | L> => {
    const c: Counter<RouteLabel | L> = new Counter({
      name,
      help,
      labelNames: [...ROUTE_LABELS, ...extra],
      registers: [registry],
      collect: async () => {
        const snapshot = await read();
        c.reset();
        for (const [rid, counts] of snapshot) {
          const id = known.get(rid);
          if (id !== undefined) fill(c, routeLabels(id), counts);
        }
      },
    });
    return c;
  };
  counter(
    "gatehouse_route_requests_total",
    "HTTP requests matched by a route rule, counted by HAProxy",
    [],
    (c, l, n) => c.inc(l, n.requests),
  );
  counter(
    "gatehouse_route_responses_total",
    "HTTP responses to requests matched by a route rule, by status class (HAProxy's own responses included)",
    ["code_class"],
    (c, l, n) => STATUS_CLASSES.forEach((cls, i) => c.inc({ ...l, code_class: cls }, n.classes[i] ?? 0)),
  );
  counter(
    "gatehouse_route_request_bytes_total",
    "Bytes received from clients (headers and bodies) on requests matched by a route rule",
    [],
    (c, l, n) => c.inc(l, n.bytesIn),
  );
  counter(
    "gatehouse_route_response_bytes_total",
    "Bytes sent to clients (headers and bodies) on requests matched by a route rule",
    [],
    (c, l, n) => c.inc(l, n.bytesOut),
  );
  const info: Gauge<"version"> = new Gauge({
    name: "gatehouse_haproxy_info",
    help: "1, labelled with the version of the HAProxy serving (read with the per-route counters)",
    labelNames: ["version"],
    registers: [registry],
    collect: async () => {
      await read();
      info.reset();
      if (version !== undefined) info.set({ version }, 1);
    },
  });
  const duration = new Histogram({
    name: "gatehouse_route_request_duration_seconds",
    help: "Total time of requests matched by a route rule (HAProxy's Ta: from the first request byte to the last response byte), from the access log",
    labelNames,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const children = new WeakMap<RuleCounterIdentity, { observe(value: number): void }>();
  return {
    setIR(next) {
      ir = next;
      stale = true;
    },
    identity(rid) {
      return current().get(rid) ?? known.get(rid);
    },
    observeDuration(rid, totalMs) {
      const id = this.identity(rid);
      if (id === undefined || totalMs < 0) return;
      // The labelled child of an identity is looked up once (prom-client hashes the labels each time).
      let child = children.get(id);
      if (child === undefined) children.set(id, (child = duration.labels(routeLabels(id))));
      child.observe(totalMs / 1000);
    },
  };
}
