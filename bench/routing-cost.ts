// Deterministic cost of Gatehouse's per-request routing: HAProxy instructions per request spent in
// `http_process_req_common` (the function that runs a proxy's `http-request` rules), counted by
// callgrind for configurations the real renderer produces from small IRs, next to a hand-written
// `default_backend` configuration. Unlike wall-clock throughput this does not move with other work
// on the machine, so it can compare routing shapes (fast routing with and without filters, the
// general chain for weights, header matches, wildcard hosts) precisely. Not part of `npm run bench` (valgrind makes
// HAProxy ~50× slower; a run takes about a minute):
//
//   node bench/routing-cost.ts [--quick]
//
// Needs valgrind (installed with apt-get when missing and root).
import { createServer as createNetServer } from "node:net";
import { createServer, request, Agent, type Server } from "node:http";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { IR, IRBackend, IRHTTPRule, IRVirtualHost } from "../src/ir/types.ts";
import { render } from "../src/dataplane/haproxy/render/index.ts";
import { gatewayIR } from "../src/dataplane/haproxy/render/testutil.ts";
import { isMain, runStandalone, type CommonOptions } from "./lib/cli.ts";
import { freePort } from "./lib/net.ts";
import { runSync, start, stop, tempDir } from "./lib/proc.ts";

const HOST = "bench.test";

interface Case {
  name: string;
  description: string;
  /** The request's Host header. */
  host: string;
  /** The haproxy.cfg to measure, given the port to bind and the backend's port. */
  config: (dir: string, port: number, backendPort: number) => string;
}

export interface RoutingCostResult {
  requests: number;
  haproxy: string;
  valgrind: string;
  cases: Array<{
    name: string;
    description: string;
    instructions: number;
    overReference: number;
    /** Instructions per request in process_stream (all of the stream's work). */
    stream: number;
    streamOverReference: number;
  }>;
}

function rule(path: string, backends: Array<[string, number]>, extra: Partial<IRHTTPRule> = {}): IRHTTPRule {
  return {
    id: `httproute/default/bench/rule/${path}`,
    route: { kind: "HTTPRoute", namespace: "default", name: "bench" },
    ruleIndex: 0,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: path }, headers: [], queryParams: [] },
    filters: [],
    backends: backends.map(([b, weight]) => ({ backend: `service/default/${b}/80`, weight, filters: [] })),
    ...extra,
  };
}

function ir(virtualHosts: IRVirtualHost[], backendPort: number): IR {
  const backend = (name: string): IRBackend => ({
    id: `service/default/${name}/80`,
    source: { kind: "Service", namespace: "default", name },
    port: 80,
    protocol: "http",
    endpoints: [{ address: "127.0.0.1", port: backendPort }],
  });
  return gatewayIR(virtualHosts, [backend("web"), backend("api")]);
}

/** The throughput bench's input: `/api` → api and `/` → web on bench.test, `/` → api on another host. */
function hosts(root: IRHTTPRule, wildcard = false): IRVirtualHost[] {
  return [
    { hostname: wildcard ? `*.${HOST}` : HOST, rules: [rule("/api", [["api", 1]]), root] },
    { hostname: `other.${HOST}`, rules: [rule("/", [["api", 1]])] },
  ];
}

/** Where the access-log cases forward their ring (a TCP server that reads and drops the lines). */
let logAddress = "127.0.0.1:9";

/** Renders `vhosts` into `dir` and makes it a standalone HAProxy on 127.0.0.1:port (no master, no socket). */
function rendered(
  dir: string,
  port: number,
  vhosts: IRVirtualHost[],
  backendPort: number,
  observe: { counters?: boolean; log?: boolean } = {},
): string {
  const out = render(ir(vhosts, backendPort), {
    stateDir: dir,
    runtimeSocket: join(dir, "haproxy.sock"),
    serverSlots: 1,
    hardStopAfter: "10s",
    ...(observe.counters === true ? { ruleCounters: true } : {}),
    ...(observe.log === true ? { accessLog: { address: logAddress, token: "bench" } } : {}),
  });
  for (const [file, content] of Object.entries(out.files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), content);
  }
  const lines = out.config
    .split("\n")
    .filter((l) => !/^\s+(master-worker|stats socket|stats timeout)\b/.test(l))
    .map((l) => (/^\s+bind :80$/.test(l) ? `  bind 127.0.0.1:${port}` : l));
  if (!lines.some((l) => l === `  bind 127.0.0.1:${port}`)) throw new Error("routing-cost: no `bind :80`");
  return lines.join("\n");
}

const header = {
  type: "RequestHeaderModifier" as const,
  headers: { set: [{ name: "x-a", value: "1" }], add: [], remove: [] },
};

const CASES: Case[] = [
  {
    name: "hand-written",
    description: "one frontend, `default_backend`, one server (the throughput bench's reference)",
    host: HOST,
    config: (_dir, port, backendPort) =>
      [
        "global",
        "  nbthread 1",
        "defaults",
        "  mode http",
        "  option http-keep-alive",
        "  timeout connect 5s",
        "  timeout client 30s",
        "  timeout server 30s",
        "frontend fe",
        `  bind 127.0.0.1:${port}`,
        "  default_backend be",
        "backend be",
        `  server s1 127.0.0.1:${backendPort}`,
        "",
      ].join("\n"),
  },
  {
    name: "fast routing",
    description: "the throughput bench's routes: exact hostnames, PathPrefix rules, one backend each",
    host: HOST,
    config: (dir, port, bp) => rendered(dir, port, hosts(rule("/", [["web", 1]])), bp),
  },
  {
    name: "fast routing + rule counters",
    description: "the same with per-rule counters (rule id lookup, track-sc0, status-class lines)",
    host: HOST,
    config: (dir, port, bp) => rendered(dir, port, hosts(rule("/", [["web", 1]])), bp, { counters: true }),
  },
  {
    name: "fast routing + counters + access log",
    description: "the same plus the JSON access log line (header captures, log-format, the ring write)",
    host: HOST,
    config: (dir, port, bp) =>
      rendered(dir, port, hosts(rule("/", [["web", 1]])), bp, { counters: true, log: true }),
  },
  {
    name: "fast routing: a filter",
    description: "the same with a RequestHeaderModifier on the matched rule (found in fast-rules.map)",
    host: HOST,
    config: (dir, port, bp) => rendered(dir, port, hosts(rule("/", [["web", 1]], { filters: [header] })), bp),
  },
  {
    name: "chain: two weighted backends",
    description: "the matched rule splits 1:1 between two Services",
    host: HOST,
    config: (dir, port, bp) =>
      rendered(
        dir,
        port,
        hosts(
          rule("/", [
            ["web", 1],
            ["api", 1],
          ]),
        ),
        bp,
      ),
  },
  {
    name: "chain: a header match before",
    description: "a rule matching a header the request lacks precedes the matched rule",
    host: HOST,
    config: (dir, port, bp) => {
      const vhosts = hosts(rule("/", [["web", 1]]));
      vhosts[0]?.rules.unshift(
        rule("/", [["api", 1]], {
          id: "httproute/default/bench/rule/hdr",
          match: {
            path: { type: "PathPrefix", value: "/" },
            headers: [{ type: "Exact", name: "x-env", value: "prod" }],
            queryParams: [],
          },
        }),
      );
      return rendered(dir, port, vhosts, bp);
    },
  },
  {
    name: "chain: wildcard hostname",
    description: "the route's hostname is *.bench.test, the request's a.bench.test",
    host: `a.${HOST}`,
    config: (dir, port, bp) => rendered(dir, port, hosts(rule("/", [["web", 1]]), true), bp),
  },
];

async function get(port: number, host: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

async function waitListening(port: number, deadlineMs: number): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  for (;;) {
    try {
      await get(port, "probe.invalid", agent);
      return;
    } catch (err) {
      if (Date.now() > deadlineMs)
        throw new Error(`routing-cost: HAProxy did not listen on ${port}`, { cause: err });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Instructions per request in `fn` (and what it calls) for `config`, over `n` identical requests:
 * `http_process_req_common` runs the `http-request` rules; `process_stream` is all of a request's
 * stream work (analysers, `http-after-response`, stick counters, the log line; not the kernel's
 * share of system calls, which callgrind does not see).
 */
async function measure(c: Case, backendPort: number, n: number, fn: string): Promise<number> {
  const dir = tempDir("rc"); // short: unix socket paths under the state dir are limited
  const port = await freePort();
  writeFileSync(join(dir, "haproxy.cfg"), c.config(dir, port, backendPort));
  const check = runSync("haproxy", ["-c", "-q", "-f", join(dir, "haproxy.cfg")], 30_000);
  if (check.status !== 0) throw new Error(`routing-cost: ${c.name}: haproxy -c: ${check.stderr}`);
  const cg = join(dir, "cg");
  mkdirSync(cg);
  const proc = start(`valgrind-${c.name}`, "valgrind", [
    "--tool=callgrind",
    `--toggle-collect=${fn}`,
    `--callgrind-out-file=${join(cg, "out.%p")}`,
    "haproxy",
    "-f",
    join(dir, "haproxy.cfg"),
    "-db",
  ]);
  try {
    await waitListening(port, Date.now() + 60_000);
    // The probe answered (404 or 200): measure from a clean count of identical requests.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < n; i++) {
      const status = await get(port, c.host, agent);
      if (status !== 200)
        throw new Error(`routing-cost: ${c.name}: GET / (Host ${c.host}) answered ${status}`);
    }
    agent.destroy();
  } finally {
    await stop(proc);
  }
  let total = 0;
  for (const f of readdirSync(cg)) {
    const m = /^summary:\s+(\d+)/m.exec(readFileSync(join(cg, f), "utf8"));
    if (m !== null) total += Number(m[1]);
  }
  if (total === 0) throw new Error(`routing-cost: ${c.name}: callgrind counted nothing (no symbols?)`);
  // The probe request is counted too: subtract one request's share at the measured rate.
  return Math.round(total / (n + 1));
}

function ensureValgrind(o: CommonOptions): string {
  if (runSync("sh", ["-c", "command -v valgrind"], 10_000).status !== 0) {
    if (process.getuid?.() !== 0) throw new Error("valgrind is missing: apt-get install valgrind");
    o.log("installing valgrind with apt-get");
    const r = runSync(
      "env",
      ["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends", "valgrind"],
      600_000,
    );
    if (r.status !== 0) throw new Error(`could not install valgrind: ${r.stderr.slice(-400)}`);
  }
  return runSync("valgrind", ["--version"], 10_000).stdout.trim();
}

export async function runRoutingCost(o: CommonOptions): Promise<RoutingCostResult> {
  const valgrind = ensureValgrind(o);
  const haproxy = runSync("haproxy", ["-v"], 10_000).stdout.split("\n")[0]?.trim() ?? "";
  const n = o.quick ? 100 : 400;
  const backendPort = await freePort();
  const backend: Server = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((resolve) => backend.listen(backendPort, "127.0.0.1", resolve));
  const cases: RoutingCostResult["cases"] = [];
  const logSink = createNetServer((socket) => socket.resume());
  await new Promise<void>((resolve) => logSink.listen(0, "127.0.0.1", resolve));
  const sinkAddress = logSink.address();
  logAddress = `127.0.0.1:${typeof sinkAddress === "object" && sinkAddress !== null ? sinkAddress.port : 0}`;
  try {
    let reference = 0;
    let streamReference = 0;
    for (const c of CASES) {
      const instructions = await measure(c, backendPort, n, "http_process_req_common");
      const stream = await measure(c, backendPort, n, "process_stream");
      if (c.name === "hand-written") {
        reference = instructions;
        streamReference = stream;
      }
      cases.push({
        name: c.name,
        description: c.description,
        instructions,
        overReference: instructions - reference,
        stream,
        streamOverReference: stream - streamReference,
      });
      o.log(`${c.name}: ${instructions} (rules), ${stream} (stream) instructions per request`);
    }
  } finally {
    await new Promise((resolve) => backend.close(resolve));
    logSink.close();
    logSink.unref();
  }
  return { requests: n, haproxy, valgrind, cases };
}

export function routingCostMarkdown(r: RoutingCostResult): string {
  const n = (v: number): string => v.toLocaleString("en-US");
  const rows = r.cases.map(
    (c) =>
      `| ${c.name} | ${n(c.instructions)} | ${n(c.overReference)} | ${n(c.stream)} | ${n(c.streamOverReference)} | ${c.description} |`,
  );
  return [
    `HAProxy instructions per request, callgrind, ${r.requests} identical keep-alive requests per case; ${r.haproxy}; ${r.valgrind}. "rules": in \`http_process_req_common\` (frontend and backend \`http-request\` rules); "stream": in \`process_stream\` (all of the request's stream work: analysers, \`http-after-response\`, stick counters, the log line written into the ring; not the ring's forwarding to Gatehouse, a task of its own, nor the kernel's share of system calls).`,
    "",
    "| Configuration | rules | over hand-written | stream | over hand-written | what |",
    "| --- | ---: | ---: | ---: | ---: | --- |",
    ...rows,
  ].join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runRoutingCost, routingCostMarkdown);
