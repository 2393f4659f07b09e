// The lifecycle of `gatehouse serve` as users run it (the real command, as a child process):
// a missing --config is an error at start; one Gatehouse per state directory (the default is per
// instance: config path + admin address); a second instance on a listener port another holds
// reports that listener Programmed False while the holder keeps serving every request; the data
// plane stops with the control plane (Ctrl-C drains, kill -9 leaves no HAProxy holding the port, and
// an HAProxy still draining is stopped by the next start). Requests are counted throughout.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import type { StatusDocument } from "../../src/admin/state.ts";
import { startController } from "../../src/cli/controller.ts";
import { canBindExclusively } from "../../src/dataplane/haproxy/apply/applier.ts";
import { StateDirLockedError } from "../../src/dataplane/haproxy/process/lock.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { FakeKubeApi } from "../../src/provider/kubernetes/testing/fake.ts";
import { linuxProcessTable } from "../../src/dataplane/haproxy/process/stale.ts";
import { request } from "./client.ts";
import { startEchoBackend, type EchoBackend } from "./echo.ts";
import { freePorts, loopbackAddress, runGatehouse, type GatehouseProcess } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service } from "./resources.ts";
import { openWebSocket } from "./ws.ts";
import { writeFile } from "node:fs/promises";

interface Setup {
  ip: string;
  port: number;
  /** Admin and HAProxy metrics ports: [adminA, metricsA, adminB, metricsB]. */
  ports: number[];
  root: string;
  /** Config directories: A serves app.test from backend one, B the same port from backend two. */
  configA: string;
  configB: string;
  env: NodeJS.ProcessEnv;
  backends: EchoBackend[];
}

let s: Setup;

before(async () => {
  const ip = await loopbackAddress();
  const [port = 0, ...ports] = await freePorts(ip, 5);
  const root = await mkdtemp(join(tmpdir(), "gh-life-"));
  const one = await startEchoBackend("one");
  const two = await startEchoBackend("two");
  const config = (backend: EchoBackend): string =>
    docs(
      gatewayClass(),
      gateway("gw", ip, [{ name: "http", port }]),
      httpRoute("app", { hostnames: ["app.test"], rules: [{ backendRefs: [ref("app")] }] }),
      service("app", { endpoints: [backend.endpoint] }),
    );
  const configA = join(root, "a.yaml");
  const configB = join(root, "b.yaml");
  await writeFile(configA, config(one));
  await writeFile(configB, config(two));
  // Per-instance default state directories land under $XDG_RUNTIME_DIR: here, in this test's root.
  const env = { ...process.env, XDG_RUNTIME_DIR: root };
  s = { ip, port, ports, root, configA, configB, env, backends: [one, two] };
});

after(async () => {
  for (const b of s.backends) await b.close();
  await rm(s.root, { recursive: true, force: true });
});

/** `serve` of config A (instance 0) or B (instance 1), on its own admin and metrics ports. */
function serve(t: { after(fn: () => unknown): void }, instance: 0 | 1, config = s.configA): GatehouseProcess {
  const admin = s.ports[instance * 2] ?? 0;
  const metrics = s.ports[instance * 2 + 1] ?? 0;
  return runGatehouse(
    t,
    ["serve", "--config", config, "--admin", `${s.ip}:${admin}`, "--haproxy-metrics", `${s.ip}:${metrics}`],
    s.env,
  );
}

async function status(instance: 0 | 1): Promise<StatusDocument> {
  const res = await fetch(`http://${s.ip}:${s.ports[instance * 2] ?? 0}/status`);
  return (await res.json()) as StatusDocument;
}

/** The state directory a `serve` said it uses. */
async function stateDirOf(p: GatehouseProcess): Promise<string> {
  const line = await p.line(/gatehouse serve starting/);
  return (JSON.parse(line) as { stateDir: string }).stateDir;
}

async function servedBy(timeoutMs = 2000): Promise<string> {
  try {
    const res = await request({ address: s.ip, port: s.port, host: "app.test", timeoutMs });
    return res.status === 200 ? (res.echo?.backend ?? "?") : String(res.status);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Requests to app.test in a loop until stopped: how many each backend answered, and failures. */
function load(): { stop(): Promise<{ by: Record<string, number>; failed: string[] }> } {
  let running = true;
  const by: Record<string, number> = {};
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      const who = await servedBy();
      if (who === "one" || who === "two") by[who] = (by[who] ?? 0) + 1;
      else failed.push(who);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { by, failed };
    },
  };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const alive = async (pid: number): Promise<boolean> =>
  (await linuxProcessTable.commandLine(pid)) !== undefined;

async function haproxyPid(stateDir: string): Promise<number> {
  return Number((await readFile(join(stateDir, "haproxy.pid"), "utf8")).trim());
}

interface ListenerCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

function listenerProgrammed(doc: StatusDocument): ListenerCondition | undefined {
  const gw = doc.objects.find((o) => o.kind === "Gateway" && o.metadata.name === "gw");
  const listeners = gw?.status["listeners"] as
    Array<{ name: string; conditions: ListenerCondition[] }> | undefined;
  return listeners?.find((l) => l.name === "http")?.conditions.find((c) => c.type === "Programmed");
}

describe("gatehouse serve lifecycle", () => {
  test("a --config path that does not exist is an error at start", async (t) => {
    const p = runGatehouse(t, ["serve", "--config", join(s.root, "no/such/path")], s.env);
    assert.equal(await p.exited, 1);
    assert.ok(
      p.lines.some((l) => /--config .*no\/such\/path: no such file or directory/.test(l)),
      p.lines.join("\n"),
    );
  });

  test("one Gatehouse per state directory: a second one exits at once naming the first (serve and controller)", async (t) => {
    const a = serve(t, 0);
    const stateDir = await stateDirOf(a);
    assert.ok(stateDir.startsWith(join(s.root, "gatehouse") + "/"), stateDir);
    await until("A to serve", async () => (await servedBy()) === "one");
    const traffic = load();

    // The same config and admin address: the same per-instance directory.
    const b = serve(t, 0);
    const started = performance.now();
    assert.equal(await b.exited, 1);
    const refusedMs = performance.now() - started;
    const message = b.lines.join("\n");
    assert.match(
      message,
      new RegExp(`state directory ${stateDir} is in use by another Gatehouse \\(pid ${a.pid}`),
    );

    // Controller mode runs the same pipeline: the same lock.
    const controller = startController({
      serve: { stateDir, admin: { host: s.ip, port: 0 }, metricsAddress: `${s.ip}:${s.ports[3] ?? 0}` },
      kubeConfig: new KubeConfig(),
      api: new FakeKubeApi(),
      logger: createLogger({ format: "json", level: "error", destination: { write: () => {} } }),
      leaderElection: false,
    });
    await assert.rejects(
      controller,
      (e: unknown) => e instanceof StateDirLockedError && e.holder?.pid === a.pid,
    );

    const { by, failed } = await traffic.stop();
    t.diagnostic(
      `second instance refused after ${Math.round(refusedMs)} ms; A served ${by["one"] ?? 0}, failed ${failed.length}`,
    );
    assert.deepEqual(failed, []);
    assert.equal(by["two"], undefined);
    assert.equal((await status(0)).dataplane.lastApply?.result, "success");
    a.child.kill("SIGTERM");
    assert.equal(await a.exited, 0);
  });

  test("a second instance on a listener port the first holds: its listener Programmed False, the first serves every request", async (t) => {
    const a = serve(t, 0);
    await until("A to serve", async () => (await servedBy()) === "one");
    const traffic = load();
    const b = serve(t, 1, s.configB);
    const [dirA, dirB] = [await stateDirOf(a), await stateDirOf(b)];
    assert.notEqual(dirA, dirB, "different admin addresses: different default state directories");
    await until("B to report its listener", async () => {
      try {
        return listenerProgrammed(await status(1))?.status === "False";
      } catch {
        return false;
      }
    });
    // A while: B retries its listener meanwhile.
    await new Promise((r) => setTimeout(r, 1500));
    const { by, failed } = await traffic.stop();
    t.diagnostic(`with B running: A served ${by["one"] ?? 0}, B ${by["two"] ?? 0}, failed ${failed.length}`);
    assert.deepEqual(failed, []);
    assert.equal(by["two"], undefined, "B served requests on A's port");
    const programmed = listenerProgrammed(await status(1));
    assert.equal(programmed?.reason, "Pending");
    assert.match(programmed?.message ?? "", /cannot listen on .*: the address is in use by another process/);
    assert.equal(listenerProgrammed(await status(0))?.status, "True");
    // Once A is gone, B takes the port over by itself.
    a.child.kill("SIGTERM");
    assert.equal(await a.exited, 0);
    await until("B to serve the freed port", async () => (await servedBy()) === "two", 40_000);
    await until(
      "B's listener Programmed True",
      async () => listenerProgrammed(await status(1))?.status === "True",
    );
    b.child.kill("SIGTERM");
    assert.equal(await b.exited, 0);
  });

  test("Ctrl-C (SIGINT to the process group): in-flight requests finish, HAProxy stops, the port is free", async (t) => {
    const a = serve(t, 0);
    const stateDir = await stateDirOf(a);
    await until("A to serve", async () => (await servedBy()) === "one");
    const master = await haproxyPid(stateDir);
    const slow = request({
      address: s.ip,
      port: s.port,
      host: "app.test",
      headers: { "x-echo-delay-ms": "1000" },
      timeoutMs: 10_000,
    });
    await new Promise((r) => setTimeout(r, 200));
    process.kill(-a.pid, "SIGINT");
    const res = await slow;
    assert.equal(res.status, 200, "the request in flight was cut");
    assert.equal(await a.exited, 0);
    assert.equal(await alive(master), false, "HAProxy outlived Gatehouse");
    assert.equal(await canBindExclusively(s.ip, s.port), undefined);
  });

  test("kill -9 of Gatehouse: HAProxy frees the port at once; the next start stops it if still draining", async (t) => {
    const a = serve(t, 0);
    const stateDir = await stateDirOf(a);
    await until("A to serve", async () => (await servedBy()) === "one");
    const master = await haproxyPid(stateDir);
    // A WebSocket keeps the soft-stopping HAProxy alive (up to hard-stop-after).
    const ws = await openWebSocket({ address: s.ip, port: s.port, host: "app.test" });
    assert.equal(await ws.roundTrip("hello"), "one:hello");
    const killed = performance.now();
    a.child.kill("SIGKILL");
    await a.exited;
    await until(
      "the listener port to be free",
      async () => (await canBindExclusively(s.ip, s.port)) === undefined,
    );
    t.diagnostic(`port free ${Math.round(performance.now() - killed)} ms after kill -9`);
    assert.equal(await alive(master), true, "HAProxy should still drain the WebSocket");

    const again = serve(t, 0);
    assert.equal(await stateDirOf(again), stateDir);
    await again.line(/stopped the HAProxy an earlier Gatehouse left running/);
    await until("the new instance to serve", async () => (await servedBy()) === "one");
    assert.equal(await alive(master), false);
    ws.close();
    again.child.kill("SIGTERM");
    assert.equal(await again.exited, 0);
  });
});
