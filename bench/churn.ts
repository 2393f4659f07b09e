// 3. Failed requests during 1,000 changes under load: a steady load on one unchanged route (exact
// counting, keep-alive and new connections: lib/loadclient.ts) while 1,000 changes are written:
// routes with their own Service added and removed (new HAProxy backends: reloads), routes to an
// existing Service added and removed (map entries: runtime API), and endpoint changes of Services
// (server slots: runtime API). Every failure on the unchanged route counts; the target is 0.
// At the end, the final state is checked: every route still on disk answers, every removed one 404s.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMain, runStandalone } from "./lib/cli.ts";
import type { CommonOptions } from "./lib/cli.ts";
import {
  applyCounters,
  counterDelta,
  gatewayYaml,
  numberedRoute,
  removeFile,
  routeWithServiceYaml,
  routeYaml,
  serviceYaml,
  startGatehouse,
  writeAtomic,
} from "./lib/gatehouse.ts";
import type { ApplyCounters } from "./lib/gatehouse.ts";
import type { LoadReport } from "./lib/loadclient.ts";
import { freePort, LOOPBACK, tryGet } from "./lib/net.ts";
import { sleep, start, stop, tempDir } from "./lib/proc.ts";
import { BACKEND_BODY, startBackend } from "./lib/servers.ts";

const STEADY_HOST = "steady.bench.test";
const STEADY_PATH = "/steady/item";

export interface ChurnResult {
  setup: {
    changes: number;
    intervalMs: number;
    backgroundRoutes: number;
    load: string;
    mix: Record<string, number>;
    /** Changes per block of one family (route+service, endpoints, route-only, endpoints). */
    block: number;
  };
  durationS: number;
  applied: ApplyCounters;
  load: LoadReport;
  failures: number;
  failuresExcludingReuseRace: number;
  finalState: { checked: number; wrong: string[] };
  check: { target: string; failures: number; met: boolean };
  haproxyProcessesAtEnd: number;
}

type Op = "add-route+service" | "remove-route+service" | "add-route-only" | "remove-route-only" | "endpoints";

export async function runChurn(
  o: CommonOptions & { changes?: number; intervalMs?: number },
): Promise<ChurnResult> {
  const changes = o.changes ?? (o.quick ? 100 : 1000);
  const intervalMs = o.intervalMs ?? 50;
  const background = o.quick ? 20 : 100;
  const endpointServices = 5;
  /** Changes per block of one family. */
  const block = o.quick ? 25 : 50;

  const ports = [await freePort(), await freePort(), await freePort()];
  await startBackend(ports[0] ?? 0, undefined, ports.slice(1));
  const ep = (k: number) => `${LOOPBACK}:${ports[k % ports.length] ?? 0}`;
  const backend = ep(0);

  const dir = tempDir("churn-input");
  const gatewayPort = await freePort();
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml(gatewayPort));
  writeFileSync(
    join(dir, "steady.yaml"),
    routeWithServiceYaml(
      { name: "steady", hostname: STEADY_HOST, path: "/steady", service: "svc-steady" },
      backend,
    ),
  );
  writeFileSync(join(dir, "shared.yaml"), serviceYaml("svc-shared", [backend]));
  for (let i = 0; i < background; i++)
    writeFileSync(join(dir, `bg-${i}.yaml`), routeWithServiceYaml(numberedRoute("bg", i), backend));
  // Services whose endpoints change, each used by a route so that HAProxy has their backends.
  const epSet = (k: number, step: number): string[] => {
    const variants = [[ep(0)], [ep(0), ep(1)], [ep(1)], [ep(1), ep(2)], [ep(2), ep(0)]];
    return variants[(k + step) % variants.length] ?? [ep(0)];
  };
  for (let k = 0; k < endpointServices; k++) {
    const r = numberedRoute("ep", k);
    writeFileSync(join(dir, `ep-${k}.yaml`), `${routeYaml(r)}---\n${serviceYaml(r.service, epSet(k, 0))}`);
  }

  const g = await startGatehouse({ configDir: dir, label: "gatehouse-churn" });
  const steady = await tryGet(gatewayPort, STEADY_PATH, { host: STEADY_HOST });
  if (steady.status !== 200) throw new Error(`steady route answers ${steady.status}`);

  const loadArgs = {
    keepalive: o.quick ? 4 : 8,
    fresh: 2,
    interval: 5,
  };
  const load = start("loadclient", process.execPath, [
    join(import.meta.dirname, "lib", "loadclient.ts"),
    "--port",
    String(gatewayPort),
    "--host",
    STEADY_HOST,
    "--path",
    STEADY_PATH,
    "--body",
    BACKEND_BODY,
    "--keepalive",
    String(loadArgs.keepalive),
    "--fresh",
    String(loadArgs.fresh),
    "--interval-ms",
    String(loadArgs.interval),
    "--max-s",
    "1800",
  ]);
  await sleep(1000);

  const before = applyCounters(await g.metrics());
  const mix: Record<string, number> = {};
  const presentRS: string[] = [];
  const presentRO: string[] = [];
  const removed: string[] = [];
  const t0 = performance.now();
  let added = 0;
  for (let j = 0; j < changes; j++) {
    if (!load.alive()) throw new Error("the load client died");
    // Blocks of `block` changes of one family, so that each apply path is exercised on its own:
    // route+service add/remove (reloads), endpoints (server slots), route-only add/remove (maps).
    const family = Math.floor(j / block) % 4;
    let op: Op;
    if (family === 1 || family === 3) op = "endpoints";
    else if (family === 0)
      op = j % 2 === 1 && presentRS.length > 0 ? "remove-route+service" : "add-route+service";
    else op = j % 2 === 1 && presentRO.length > 0 ? "remove-route-only" : "add-route-only";
    mix[op] = (mix[op] ?? 0) + 1;
    if (op === "add-route+service") {
      const r = numberedRoute("ch-rs-", added++);
      writeAtomic(join(dir, `${r.name}.yaml`), routeWithServiceYaml(r, backend));
      presentRS.push(r.name);
    } else if (op === "remove-route+service") {
      const name = presentRS.shift() ?? "";
      removeFile(join(dir, `${name}.yaml`));
      removed.push(name);
    } else if (op === "add-route-only") {
      const r = numberedRoute("ch-ro-", added++);
      writeAtomic(join(dir, `${r.name}.yaml`), routeYaml({ ...r, service: "svc-shared" }));
      presentRO.push(r.name);
    } else if (op === "remove-route-only") {
      const name = presentRO.shift() ?? "";
      removeFile(join(dir, `${name}.yaml`));
      removed.push(name);
    } else {
      const k = j % endpointServices;
      const r = numberedRoute("ep", k);
      const step = Math.floor(j / endpointServices) + 1;
      writeAtomic(join(dir, `ep-${k}.yaml`), `${routeYaml(r)}---\n${serviceYaml(r.service, epSet(k, step))}`);
    }
    if ((j + 1) % 100 === 0) o.log(`churn: ${j + 1}/${changes} changes written`);
    await sleep(intervalMs);
  }
  await g.settled(300_000);
  const durationS = (performance.now() - t0) / 1000;
  await sleep(1000);
  const after = applyCounters(await g.metrics());
  await stop(load, { signal: "SIGTERM", graceMs: 15_000 });
  const line = readFileSync(load.logFile, "utf8")
    .split("\n")
    .find((l) => l.startsWith("LOADJSON "));
  if (line === undefined)
    throw new Error(`load client produced no report: ${readFileSync(load.logFile, "utf8").slice(-500)}`);
  const report = JSON.parse(line.slice("LOADJSON ".length)) as LoadReport;

  // Final state: a sample of present and removed routes.
  const wrong: string[] = [];
  const check = async (name: string, expectOk: boolean) => {
    const m = /^(ch-r[so]-)(\d+)$/.exec(name);
    if (m === null) return;
    const r = numberedRoute(m[1] ?? "", Number(m[2]));
    const res = await tryGet(gatewayPort, `${r.path}/x`, { host: r.hostname });
    const ok = res.status === 200 && res.body === BACKEND_BODY;
    if (ok !== expectOk) wrong.push(`${name}: expected ${expectOk ? "200" : "404"}, got ${res.status}`);
  };
  const sample = [...presentRS.slice(-25), ...presentRO.slice(-25)];
  for (const name of sample) await check(name, true);
  const gone = removed.slice(-50);
  for (const name of gone) await check(name, false);

  const haproxyProcesses = (await import("./lib/cpu.ts"))
    .groupProcesses(g.proc.pid)
    .filter((p) => p.comm === "haproxy").length;
  await g.stop();
  const failures =
    Object.values(report.badStatus).reduce((a, b) => a + b, 0) +
    Object.values(report.socketErrors).reduce((a, b) => a + b, 0);
  return {
    setup: {
      changes,
      intervalMs,
      backgroundRoutes: background,
      load: `${loadArgs.keepalive} keep-alive + ${loadArgs.fresh} new-connection workers, ${loadArgs.interval} ms between requests per worker, on ${STEADY_HOST}${STEADY_PATH}`,
      mix,
      block,
    },
    durationS: Math.round(durationS * 10) / 10,
    applied: counterDelta(before, after),
    load: report,
    failures,
    failuresExcludingReuseRace: failures - report.reusedSocketResets,
    finalState: { checked: sample.length + gone.length, wrong },
    check: { target: "failed requests on the unchanged route", failures, met: failures === 0 },
    haproxyProcessesAtEnd: haproxyProcesses,
  };
}

export function churnMarkdown(r: ChurnResult): string {
  const bad = Object.entries(r.load.badStatus).map(([s, n]) => `${n}× HTTP ${s}`);
  const sock = Object.entries(r.load.socketErrors).map(([c, n]) => `${n}× ${c}`);
  return [
    `### Failed requests during changes`,
    ``,
    `${r.setup.changes} changes written ${r.setup.intervalMs} ms apart over ${r.durationS} s, in blocks of ${r.setup.block} of one family (route+service add/remove → reloads; endpoints → server slots; route-only add/remove → maps), with ${r.setup.backgroundRoutes} other routes present (${Object.entries(
      r.setup.mix,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}); load: ${r.setup.load}.`,
    ``,
    `| Requests on the unchanged route | OK | Failed | of which keep-alive reuse races | Reloads | Runtime updates (map / server) | Translations | Final-state errors |`,
    `| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    `| ${r.load.requests} | ${r.load.ok} | ${r.failures} | ${r.load.reusedSocketResets} | ${r.applied.reloads}${r.applied.failedReloads > 0 ? ` (+${r.applied.failedReloads} failed)` : ""} | ${r.applied.runtime} (${r.applied.runtimeMap} / ${r.applied.runtimeServer}) | ${r.applied.translations} | ${r.finalState.wrong.length} of ${r.finalState.checked} |`,
    ``,
    `Failures: ${[...bad, ...sock].join(", ") || "none"}. Target 0 failed requests: ${r.check.met ? "met" : "**not met**"}.`,
  ].join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runChurn, churnMarkdown);
