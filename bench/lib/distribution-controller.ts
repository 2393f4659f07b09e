// The controller side of bench/distribution.ts, one process (its RSS and CPU time are its own): the
// data-plane CA (FileCAStore), a client certificate per Gateway, the real distribution server
// (HTTP/2, mTLS) and ConfigDistributor, and the translator in kubernetes mode over a fleet of
// Gateways held in memory as the kubernetes provider's cache holds them. It starts the pods process
// (lib/distribution-pods.ts), then measures: the pods connecting, the initial sync, and changes
// (each: one object replaced → buildSnapshot → translate → distributor.publish → every changed
// Gateway's pod has acked the new hash), with its own CPU time (process.cpuUsage) and RSS.
//
// Not here: the API server and its watches (the change starts where the provider builds the
// snapshot, without the provider's 30 ms debounce), status writes, and the infrastructure
// reconciler (KubernetesInfrastructure applies Deployments and Services through an API server).
//
// Input: one JSON argument (ControllerInput); the result (ControllerResult) is written to `out`.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CertificateAuthority } from "../../src/distribute/ca.ts";
import { FileCAStore } from "../../src/distribute/castore.ts";
import { ConfigDistributor } from "../../src/distribute/distributor.ts";
import { startDistributionServer } from "../../src/distribute/server.ts";
import { haproxyValidators } from "../../src/dataplane/haproxy/capabilities.ts";
import type { IR } from "../../src/ir/types.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { buildSnapshot } from "../../src/resources/snapshot.ts";
import { DEFAULT_CONTROLLER_NAME, translate } from "../../src/translate/index.ts";
import { cpus } from "node:os";
import { cpuTimes, descendants, statusBytes } from "./cpu.ts";
import { buildFleet, changeOne, changeShared, type Fleet } from "./fleet.ts";
import { sleep } from "./proc.ts";
import { round } from "./stats.ts";

export interface ControllerInput {
  gateways: number;
  routesPerGateway: number;
  /** Changes of each kind. */
  changes: number;
  /** Wait after the initial sync before the idle reading. */
  settleMs: number;
  /** Pause between changes. */
  gapMs: number;
  dir: string;
  out: string;
}

export interface ChangeSample {
  kind: "all" | "one";
  /** Gateways whose configuration changed (publish's answer). */
  changed: number;
  snapshotMs: number;
  translateMs: number;
  publishMs: number;
  /** From publish's return to the last ack. */
  acksMs: number;
  /** From the change to the last ack of every changed Gateway's pod. */
  totalMs: number;
  /** Controller CPU time (user + system) over totalMs. */
  cpuMs: number;
}

export interface PodsCheckStats {
  configs: number;
  refused: number;
  checkMs: number[];
}

export interface ControllerResult {
  gateways: number;
  routesPerGateway: number;
  routes: number;
  objects: number;
  /** Size of one Gateway's config message (JSON), bytes: min / max over the Gateways. */
  messageBytes: { min: number; max: number; total: number };
  certificates: { wallMs: number; cpuMs: number };
  connect: { wallMs: number; cpuMs: number };
  initialSync: {
    snapshotMs: number;
    translateMs: number;
    publishMs: number;
    acksMs: number;
    totalMs: number;
    cpuMs: number;
  };
  memory: {
    /** VmRSS settleMs after the initial sync (no forced GC). */
    idleRssMiB: number;
    idleHeapUsedMiB: number;
    /** VmHWM after the initial sync. */
    peakAfterSyncMiB: number;
    /** VmRSS and VmHWM after every change. */
    endRssMiB: number;
    peakRssMiB: number;
  };
  changes: ChangeSample[];
  /** Pods process: CPU seconds (from /proc, 10 ms ticks) and the checks' own times, per change kind. */
  pods: Record<"connect+initial" | "all" | "one", { cpuS: number; checks: PodsCheckStats }>;
  /**
   * Per change kind, over its block of changes: the share of the machine's CPU time (every CPU) used
   * by other processes than this controller and its pods process (other work on a shared machine).
   */
  foreignCpuShare: Record<"all" | "one", number>;
  podsRssMiB: number;
}

const MiB = 1024 * 1024;
const r1 = (n: number): number => round(n, 1);
const r2 = (n: number): number => round(n, 2);
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** Busy and total CPU seconds of the whole machine so far (every CPU). */
function machineCpu(): { busyS: number; totalS: number } {
  let busyS = 0;
  let totalS = 0;
  for (let i = 0; i < cpus().length; i++) {
    const t = cpuTimes(i);
    busyS += t.busyS;
    totalS += t.totalS;
  }
  return { busyS, totalS };
}
/** A /proc/<pid>/status field of this process (VmRSS, VmHWM), MiB. */
const status = (field: string, pid = process.pid): number => statusBytes(pid, field) / MiB;

/** Resolves at the last of `ids`' acks of their published hash (one pod each); rejects on a refusal. */
function waitAcked(d: ConfigDistributor, ids: readonly string[], timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const pending = new Set(ids);
    let unsubscribe = (): void => undefined;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(
        new Error(`${pending.size} Gateway(s) not acked within ${timeoutMs} ms, e.g. ${[...pending][0]}`),
      );
    }, timeoutMs);
    const look = (id: string): void => {
      if (!pending.has(id)) return;
      const s = d.gateway(id);
      const pod = s.pods[0];
      if (s.hash === undefined || s.pods.length !== 1 || pod?.hash !== s.hash) return;
      if (!pod.applied) {
        clearTimeout(timer);
        unsubscribe();
        reject(new Error(`${id}: the pod refused its configuration: ${pod.error ?? "?"}`));
        return;
      }
      pending.delete(id);
      if (pending.size === 0) {
        const at = performance.now();
        clearTimeout(timer);
        unsubscribe();
        resolve(at);
      }
    };
    unsubscribe = d.onChange(look);
    for (const id of ids) look(id);
  });
}

/** Resolves when every Gateway has `n` pods connected. */
function waitConnected(d: ConfigDistributor, ids: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const missing = (): number => ids.filter((id) => d.gateway(id).pods.length !== 1).length;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`${missing()} Gateway(s) without a connected pod after ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = d.onChange(() => {
      if (missing() > 0) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

function translateFleet(fleet: Fleet): { ir: IR; snapshotMs: number; translateMs: number } {
  const t0 = performance.now();
  const { snapshot } = buildSnapshot(
    [...fleet.objects.values()].map((object) => ({ object, source: { description: "kubernetes" } })),
  );
  const t1 = performance.now();
  const { ir } = translate(snapshot, {
    controllerName: DEFAULT_CONTROLLER_NAME,
    now: new Date().toISOString(),
    validators: haproxyValidators,
    infrastructure: "kubernetes",
  });
  return { ir, snapshotMs: t1 - t0, translateMs: performance.now() - t1 };
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? "") as ControllerInput;
  const logger = createLogger({ level: "info" });
  const fleet = buildFleet(input.gateways, input.routesPerGateway);
  const ca = await CertificateAuthority.open(new FileCAStore(join(input.dir, "ca")));
  const distributor = new ConfigDistributor({ logger: logger.child({ component: "distribute" }) });
  const server = await startDistributionServer({
    listen: { host: "127.0.0.1", port: 0 },
    ca,
    distributor,
    serverNames: { dnsNames: [], ipAddresses: ["127.0.0.1"] },
    logger: logger.child({ component: "distribute" }),
  });

  // A client certificate per Gateway (what KubernetesInfrastructure issues into each Gateway's Secret).
  let t = performance.now();
  let c = cpuMs();
  const pods: Array<{ namespace: string; name: string; tlsDir: string }> = [];
  for (const id of fleet.gatewayIds) {
    const [namespace = "", name = ""] = id.split("/");
    const issued = await ca.issueClient({ namespace, name });
    const tlsDir = join(input.dir, "pods", namespace);
    mkdirSync(tlsDir, { recursive: true });
    writeFileSync(join(tlsDir, "tls.crt"), issued.certPem);
    writeFileSync(join(tlsDir, "tls.key"), issued.keyPem, { mode: 0o600 });
    writeFileSync(join(tlsDir, "ca.crt"), issued.caPem);
    pods.push({ namespace, name, tlsDir });
  }
  const certificates = { wallMs: performance.now() - t, cpuMs: cpuMs() - c };

  // The pods: connected before the first configuration exists (they wait for it).
  const podsStarted = performance.now();
  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, "distribution-pods.ts"),
      JSON.stringify({ controller: `127.0.0.1:${server.address.port}`, pods }),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const podsPid = child.pid ?? 0;
  const podsLines = createInterface({ input: child.stdout });
  const replies: Array<(line: string) => void> = [];
  podsLines.on("line", (line) => replies.shift()?.(line));
  const podsStats = (): Promise<PodsCheckStats> =>
    new Promise((resolve) => {
      replies.push((line) => resolve(JSON.parse(line) as PodsCheckStats));
      child.stdin.write("stats\n");
    });
  const podsCpuS = (): number => descendants(process.pid).find((p) => p.pid === podsPid)?.cpuS ?? Number.NaN;
  c = cpuMs();
  await waitConnected(distributor, fleet.gatewayIds, 120_000);
  const connect = { wallMs: performance.now() - podsStarted, cpuMs: cpuMs() - c };

  // Initial sync: the whole fleet translated and published to every connected pod.
  t = performance.now();
  c = cpuMs();
  const first = translateFleet(fleet);
  const tp = performance.now();
  const published = distributor.publish(first.ir);
  const publishMs = performance.now() - tp;
  if (published.length !== input.gateways)
    throw new Error(`initial publish: ${published.length} Gateways, expected ${input.gateways}`);
  const acked = await waitAcked(distributor, fleet.gatewayIds, 120_000);
  const initialSync = {
    snapshotMs: first.snapshotMs,
    translateMs: first.translateMs,
    publishMs,
    acksMs: acked - tp - publishMs,
    totalMs: acked - t,
    cpuMs: cpuMs() - c,
  };
  const podsConnectInitial = { cpuS: podsCpuS(), checks: await podsStats() };
  const sizes = fleet.gatewayIds.map((id) => {
    const cur = distributor.current(id);
    return JSON.stringify({ type: "config", hash: cur?.hash, ir: cur?.ir }).length;
  });
  const messageBytes = {
    min: Math.min(...sizes),
    max: Math.max(...sizes),
    total: sizes.reduce((a, b) => a + b, 0),
  };
  const peakAfterSyncMiB = status("VmHWM");
  await sleep(input.settleMs);
  const idleRssMiB = status("VmRSS");
  const idleHeapUsedMiB = process.memoryUsage().heapUsed / MiB;

  // Changes: first every Gateway's (the shared Service's endpoints), then one Gateway's at a time.
  const changes: ChangeSample[] = [];
  const podsByKind: Partial<ControllerResult["pods"]> = { "connect+initial": podsConnectInitial };
  const foreignCpuShare = { all: Number.NaN, one: Number.NaN };
  let version = 0;
  for (const kind of ["all", "one"] as const) {
    const podsCpu0 = podsCpuS();
    const machine0 = machineCpu();
    const own0 = cpuMs();
    for (let k = 0; k < input.changes; k++) {
      await sleep(input.gapMs);
      version++;
      const t0 = performance.now();
      const c0 = cpuMs();
      if (kind === "all") changeShared(fleet, version);
      else changeOne(fleet, k % input.gateways, version);
      const { ir, snapshotMs, translateMs } = translateFleet(fleet);
      const t1 = performance.now();
      const changed = distributor.publish(ir);
      const t2 = performance.now();
      const expected = kind === "all" ? input.gateways : 1;
      if (changed.length !== expected)
        throw new Error(`${kind} change ${k}: ${changed.length} Gateways changed, expected ${expected}`);
      const last = await waitAcked(distributor, changed, 60_000);
      changes.push({
        kind,
        changed: changed.length,
        snapshotMs: r2(snapshotMs),
        translateMs: r2(translateMs),
        publishMs: r2(t2 - t1),
        acksMs: r2(last - t2),
        totalMs: r2(last - t0),
        cpuMs: r2(cpuMs() - c0),
      });
    }
    await sleep(200);
    const podsCpu = podsCpuS() - podsCpu0;
    const machine = machineCpu();
    const foreignS = machine.busyS - machine0.busyS - (cpuMs() - own0) / 1000 - podsCpu;
    foreignCpuShare[kind] = Math.max(0, foreignS) / Math.max(1e-9, machine.totalS - machine0.totalS);
    podsByKind[kind] = { cpuS: podsCpu, checks: await podsStats() };
  }
  const podsRssMiB = status("VmRSS", podsPid);
  const result: ControllerResult = {
    gateways: input.gateways,
    routesPerGateway: input.routesPerGateway,
    routes: fleet.routes,
    objects: fleet.objects.size,
    messageBytes,
    certificates: { wallMs: r1(certificates.wallMs), cpuMs: r1(certificates.cpuMs) },
    connect: { wallMs: r1(connect.wallMs), cpuMs: r1(connect.cpuMs) },
    initialSync: {
      snapshotMs: r1(initialSync.snapshotMs),
      translateMs: r1(initialSync.translateMs),
      publishMs: r1(initialSync.publishMs),
      acksMs: r1(initialSync.acksMs),
      totalMs: r1(initialSync.totalMs),
      cpuMs: r1(initialSync.cpuMs),
    },
    memory: {
      idleRssMiB: r1(idleRssMiB),
      idleHeapUsedMiB: r1(idleHeapUsedMiB),
      peakAfterSyncMiB: r1(peakAfterSyncMiB),
      endRssMiB: r1(status("VmRSS")),
      peakRssMiB: r1(status("VmHWM")),
    },
    changes,
    pods: podsByKind as ControllerResult["pods"],
    podsRssMiB: r1(podsRssMiB),
    foreignCpuShare: { all: r2(foreignCpuShare.all), one: r2(foreignCpuShare.one) },
  };
  writeFileSync(input.out, `${JSON.stringify(result)}\n`);
  child.stdin.end();
  await new Promise((resolve) => child.once("exit", resolve));
  await server.close();
}

try {
  await main();
  process.exit(0);
} catch (err) {
  process.stderr.write(
    `distribution controller failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
}
