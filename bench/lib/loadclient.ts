// A steady HTTP load that counts every outcome exactly, run as its own process:
//   node bench/lib/loadclient.ts --port P --host H --path /x --keepalive 8 --fresh 2 --interval-ms 5 --max-s 600
// `keepalive` workers each reuse one connection (an Agent with keepAlive, one socket); `fresh`
// workers open a new connection per request (`Connection: close`). Each worker sends its next
// request `interval-ms` after the previous one completed. On SIGTERM (or after max-s) it stops, waits
// for requests in flight, prints one JSON line (LoadReport) on stdout and exits.
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";

export interface LoadReport {
  requests: number;
  ok: number;
  /** Responses other than 200 with the expected body, by status. */
  badStatus: Record<string, number>;
  /** Socket-level failures by code (ECONNRESET, ECONNREFUSED, EPIPE, TIMEOUT...). */
  socketErrors: Record<string, number>;
  /**
   * Failures of a request sent on a reused keep-alive connection that the server had closed
   * (ECONNRESET / "socket hang up" with `reusedSocket`): the race HTTP clients retry for idempotent
   * requests. Included in socketErrors too.
   */
  reusedSocketResets: number;
  byWorker: {
    keepalive: { requests: number; failures: number };
    fresh: { requests: number; failures: number };
  };
  /** The first failures, with the time since start (ms). */
  firstFailures: Array<{ t: number; worker: string; what: string }>;
  durationS: number;
}

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    path: { type: "string", default: "/" },
    body: { type: "string" },
    keepalive: { type: "string", default: "8" },
    fresh: { type: "string", default: "2" },
    "interval-ms": { type: "string", default: "5" },
    "max-s": { type: "string", default: "600" },
  },
});
const port = Number(values.port);
const host = values.host ?? `127.0.0.1:${port}`;
const path = values.path ?? "/";
const expected = values.body;
const intervalMs = Number(values["interval-ms"]);
const started = performance.now();
let stopping = false;

const report: LoadReport = {
  requests: 0,
  ok: 0,
  badStatus: {},
  socketErrors: {},
  reusedSocketResets: 0,
  byWorker: { keepalive: { requests: 0, failures: 0 }, fresh: { requests: 0, failures: 0 } },
  firstFailures: [],
  durationS: 0,
};

function fail(kind: "keepalive" | "fresh", what: string): void {
  report.byWorker[kind].failures++;
  if (report.firstFailures.length < 50)
    report.firstFailures.push({ t: Math.round(performance.now() - started), worker: kind, what });
}

function once(kind: "keepalive" | "fresh", agent: Agent | undefined): Promise<void> {
  return new Promise((resolve) => {
    report.requests++;
    report.byWorker[kind].requests++;
    let settled = false;
    const done = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "GET",
        agent: agent ?? false,
        headers: { host, ...(agent === undefined ? { connection: "close" } : {}) },
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 200 && (expected === undefined || body === expected)) report.ok++;
          else {
            const key = String(res.statusCode ?? 0);
            report.badStatus[key] = (report.badStatus[key] ?? 0) + 1;
            fail(kind, `status ${key}`);
          }
          done();
        });
        res.on("error", (err: NodeJS.ErrnoException) => {
          const code = err.code ?? err.message;
          report.socketErrors[code] = (report.socketErrors[code] ?? 0) + 1;
          fail(kind, `response ${code}`);
          done();
        });
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (settled) return;
      const code = err.code ?? err.message;
      report.socketErrors[code] = (report.socketErrors[code] ?? 0) + 1;
      const reused = req.reusedSocket && (code === "ECONNRESET" || err.message === "socket hang up");
      if (reused) report.reusedSocketResets++;
      fail(kind, `${code}${reused ? " (reused keep-alive connection)" : ""}: ${err.message}`);
      done();
    });
    req.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function worker(kind: "keepalive" | "fresh"): Promise<void> {
  const agent = kind === "keepalive" ? new Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
  while (!stopping) {
    await once(kind, agent);
    if (intervalMs > 0) await sleep(intervalMs);
  }
  agent?.destroy();
}

const workers = [
  ...Array.from({ length: Number(values.keepalive) }, () => worker("keepalive")),
  ...Array.from({ length: Number(values.fresh) }, () => worker("fresh")),
];
const stop = () => {
  stopping = true;
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
const limit = setTimeout(stop, Number(values["max-s"]) * 1000);
await Promise.all(workers);
clearTimeout(limit);
report.durationS = Math.round((performance.now() - started) / 10) / 100;
process.stdout.write(`LOADJSON ${JSON.stringify(report)}\n`);
process.exit(0);
