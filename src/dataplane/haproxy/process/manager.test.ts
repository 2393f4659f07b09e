import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../../../provider/clock.ts";
import {
  findHAProxy,
  HAProxyNotFoundError,
  HAProxyNotRunningError,
  HAProxyProcess,
  HAProxyReloadError,
  HAProxyStartError,
  parseShowProc,
  restartDelay,
} from "./manager.ts";
import type { HAProxyProcessEvent, ProcessLogger } from "./manager.ts";
import {
  baseConfig,
  freePort,
  httpGet,
  startBackend,
  startHAProxy,
  tempDir,
  waitFor,
  writeConfig,
} from "./testkit.ts";

function proxyConfig(dir: string, port: number, backendPort: number, hardStopAfter?: string): string {
  return `${baseConfig(dir, hardStopAfter)}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be

backend be
  server s1 127.0.0.1:${backendPort}
`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("findHAProxy finds haproxy on PATH and explains how to install it when missing", () => {
  assert.match(findHAProxy(), /\/haproxy$/);
  assert.equal(findHAProxy(findHAProxy()), findHAProxy());
  assert.throws(
    () => findHAProxy("haproxy", "/nonexistent-dir"),
    (error: unknown) =>
      error instanceof HAProxyNotFoundError && /install it with: apt-get install haproxy/.test(error.message),
  );
  assert.throws(() => findHAProxy("/nonexistent/haproxy"), HAProxyNotFoundError);
  assert.throws(
    () => new HAProxyProcess({ masterSocket: "/tmp/x.sock", binary: "/nonexistent/haproxy" }),
    HAProxyNotFoundError,
  );
});

test("restartDelay: the first restart at once, then backs off exponentially up to the cap", () => {
  const policy = { initialDelayMs: 100, multiplier: 2, maxDelayMs: 1_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((attempt) => restartDelay(policy, attempt)),
    [0, 100, 200, 400, 800, 1_000, 1_000],
  );
  assert.deepEqual(
    [1, 2].map((attempt) => restartDelay({}, attempt)),
    [0, 500],
  );
  assert.equal(restartDelay({ firstDelayMs: 50 }, 1), 50);
});

test("parseShowProc reads HAProxy 2.6 show proc", () => {
  const text = [
    "#<PID>          <type>          <reloads>       <uptime>        <version>      ",
    "539             master          3 [failed: 1]   0d00h00m47s     2.6.12-1+deb12u4",
    "# workers",
    "2613            worker          0               0d00h00m00s     2.6.12-1+deb12u4",
    "# old workers",
    "546             worker          3               0d00h00m47s     2.6.12-1+deb12u4",
    "# programs",
    "",
  ].join("\n");
  assert.deepEqual(parseShowProc(text), {
    master: { pid: 539, reloads: 3, failedReloads: 1, uptime: "0d00h00m47s", version: "2.6.12-1+deb12u4" },
    workers: [{ pid: 2613, reloads: 0, uptime: "0d00h00m00s", version: "2.6.12-1+deb12u4" }],
    oldWorkers: [{ pid: 546, reloads: 3, uptime: "0d00h00m47s", version: "2.6.12-1+deb12u4" }],
  });
});

test("validate runs haproxy -c", async (t) => {
  const dir = tempDir(t);
  const haproxy = new HAProxyProcess({ masterSocket: join(dir, "master.sock") });
  const good = writeConfig(dir, proxyConfig(dir, 1, 2));
  assert.deepEqual(await haproxy.validate(good), { ok: true, output: "Configuration file is valid" });
  writeFileSync(good, `${proxyConfig(dir, 1, 2)}  bogus-directive\n`);
  const bad = await haproxy.validate(good);
  assert.equal(bad.ok, false);
  assert.match(bad.output, /unknown keyword 'bogus-directive'/);
});

test("start, workers, reload, stop", async (t) => {
  const dir = tempDir(t);
  const backend = await startBackend(t, "app");
  const port = await freePort();
  writeConfig(dir, proxyConfig(dir, port, backend.port));
  const lines: string[] = [];
  const logger: ProcessLogger = {
    debug: () => undefined,
    info: (_fields, message) => lines.push(`info ${message}`),
    warn: (_fields, message) => lines.push(`warn ${message}`),
    error: (_fields, message) => lines.push(`error ${message}`),
  };
  const events: HAProxyProcessEvent[] = [];
  const haproxy = await startHAProxy(t, dir, { logger });
  haproxy.on((event) => events.push(event));

  const master = haproxy.pid;
  assert.ok(master !== undefined && isAlive(master));
  assert.equal(haproxy.state, "running");
  const [first] = await haproxy.workers();
  assert.ok(first !== undefined && first !== master);
  assert.equal((await httpGet(port, "/a")).body, "app /a");
  assert.ok(
    lines.some((line) => /^info New worker \(\d+\) forked$/.test(line)),
    lines.join("\n"),
  );
  await assert.rejects(haproxy.start(join(dir, "haproxy.cfg")), /already running/);

  const result = await haproxy.reload();
  assert.equal(result.reloads, 1);
  assert.equal(result.workers.length, 1);
  assert.notEqual(result.workers[0], first);
  assert.equal(haproxy.pid, master, "the master re-executes in place");
  assert.deepEqual(events, [{ type: "reloaded", pid: master, workers: result.workers }]);
  assert.ok(await waitFor(() => !isAlive(first)), "the idle old worker exits");
  assert.equal((await httpGet(port, "/b")).body, "app /b");

  const worker = result.workers[0] ?? 0;
  await haproxy.stop({ graceful: true });
  assert.equal(haproxy.state, "stopped");
  assert.equal(haproxy.pid, undefined);
  assert.ok(!isAlive(worker));
  assert.deepEqual(events.at(-1), { type: "exited", pid: master, code: 0, signal: null, expected: true });
  await assert.rejects(haproxy.reload(), HAProxyNotRunningError);
  await haproxy.stop(); // idempotent
});

test("a reload with a broken config fails and the old worker keeps serving", async (t) => {
  const dir = tempDir(t);
  const backend = await startBackend(t, "app");
  const port = await freePort();
  const config = proxyConfig(dir, port, backend.port);
  const path = writeConfig(dir, config);
  const haproxy = await startHAProxy(t, dir);
  const [worker] = await haproxy.workers();

  writeFileSync(path, `${config}  bogus-directive\n`);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      haproxy.reload(),
      (error: unknown) =>
        error instanceof HAProxyReloadError &&
        /could not load the new configuration/.test(error.message) &&
        /unknown keyword 'bogus-directive'/.test(error.output),
    );
    assert.deepEqual(await haproxy.workers(), [worker]);
    assert.equal((await httpGet(port, "/still")).body, "app /still");
  }
  assert.equal((await haproxy.processes()).master.failedReloads, 2);

  writeFileSync(path, config);
  const result = await haproxy.reload();
  assert.notDeepEqual(result.workers, [worker]);
  assert.equal((await haproxy.processes()).master.failedReloads, 0);
  assert.equal((await httpGet(port, "/again")).body, "app /again");
});

test("concurrent reload calls are coalesced", async (t) => {
  const dir = tempDir(t);
  writeConfig(dir, proxyConfig(dir, await freePort(), 1));
  const haproxy = await startHAProxy(t, dir);
  const results = await Promise.all([haproxy.reload(), haproxy.reload(), haproxy.reload(), haproxy.reload()]);
  assert.equal(results[0]?.reloads, 1);
  for (const result of results.slice(1)) assert.equal(result.reloads, 2);
  assert.equal((await haproxy.processes()).master.reloads, 2);
});

test("start reports why HAProxy did not come up", async (t) => {
  const dir = tempDir(t);
  const blocker = await startBackend(t, "blocker");
  writeConfig(dir, proxyConfig(dir, blocker.port, 1));
  const haproxy = new HAProxyProcess({ masterSocket: join(dir, "master.sock"), restart: { enabled: false } });
  t.after(() => haproxy.stop({ graceful: false }));
  await assert.rejects(
    haproxy.start(join(dir, "haproxy.cfg")),
    (error: unknown) => error instanceof HAProxyStartError && /cannot bind socket/.test(error.output),
  );
  assert.equal(haproxy.state, "failed");
  assert.equal(haproxy.pid, undefined);

  writeConfig(dir, "global\n  bogus\n");
  await assert.rejects(
    haproxy.start(join(dir, "haproxy.cfg")),
    (error: unknown) => error instanceof HAProxyStartError && /exited during startup/.test(error.message),
  );
});

test("a crash is detected and HAProxy is restarted with backoff on the injected clock", async (t) => {
  const dir = tempDir(t);
  const backend = await startBackend(t, "app");
  const port = await freePort();
  writeConfig(dir, proxyConfig(dir, port, backend.port));
  const clock = new ManualClock();
  const haproxy = await startHAProxy(t, dir, {
    clock,
    restart: {
      firstDelayMs: 100,
      initialDelayMs: 300,
      multiplier: 3,
      maxDelayMs: 1_000,
      resetAfterMs: 60_000,
    },
  });
  const events: HAProxyProcessEvent[] = [];
  haproxy.on((event) => events.push(event));
  const master = haproxy.pid ?? 0;

  const crash = async (): Promise<void> => {
    const [worker] = await haproxy.workers();
    process.kill(worker ?? 0, "SIGKILL");
    assert.ok(await waitFor(() => haproxy.state === "restart-pending"));
  };

  await crash();
  assert.deepEqual(events, [
    { type: "exited", pid: master, code: 137, signal: null, expected: false },
    { type: "restart-scheduled", attempt: 1, delayMs: 100 },
  ]);
  assert.equal(haproxy.pid, undefined);
  clock.advance(99);
  assert.equal(haproxy.state, "restart-pending", "no restart before the delay");
  clock.advance(1);
  assert.ok(await waitFor(() => haproxy.state === "running"));
  assert.deepEqual(events.at(-1), { type: "restarted", pid: haproxy.pid, attempt: 1 });
  assert.equal((await httpGet(port, "/back")).body, "app /back");

  // A second crash soon after: the delay grows.
  clock.advance(1_000);
  await crash();
  assert.deepEqual(events.at(-1), { type: "restart-scheduled", attempt: 2, delayMs: 300 });
  clock.advance(300);
  assert.ok(await waitFor(() => haproxy.state === "running"));

  // After a long healthy run, the backoff starts over.
  clock.advance(60_000);
  await crash();
  assert.deepEqual(events.at(-1), { type: "restart-scheduled", attempt: 1, delayMs: 100 });

  // stop() cancels the pending restart.
  await haproxy.stop();
  assert.equal(clock.pending, 0);
  assert.equal(haproxy.state, "stopped");
});

test("a restart that fails is retried, and gives up after maxAttempts", async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const path = writeConfig(dir, proxyConfig(dir, port, 1));
  const clock = new ManualClock();
  const haproxy = await startHAProxy(t, dir, { clock, restart: { initialDelayMs: 10, maxAttempts: 2 } });
  const events: HAProxyProcessEvent[] = [];
  haproxy.on((event) => events.push(event));

  writeFileSync(path, "global\n  bogus\n");
  const [worker] = await haproxy.workers();
  process.kill(worker ?? 0, "SIGKILL");
  assert.ok(await waitFor(() => haproxy.state === "restart-pending"));
  clock.advance(10);
  assert.ok(
    await waitFor(() => events.some((event) => event.type === "restart-scheduled" && event.attempt === 2)),
  );
  clock.advance(20);
  assert.ok(await waitFor(() => haproxy.state === "failed"));
  assert.deepEqual(
    events.map((event) => event.type),
    [
      "exited",
      "restart-scheduled",
      "exited",
      "restart-failed",
      "restart-scheduled",
      "exited",
      "restart-failed",
      "gave-up",
    ],
  );
});

test("reloads are hitless under load: keep-alive and new connections", async (t) => {
  const dir = tempDir(t);
  const backend = await startBackend(t, "app");
  const port = await freePort();
  writeConfig(dir, proxyConfig(dir, port, backend.port));
  const haproxy = await startHAProxy(t, dir);

  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loop = async (agent: Agent | false): Promise<void> => {
    while (running) {
      try {
        const response = await httpGet(port, "/load", { agent });
        if (response.status === 200 && response.body === "app /load") ok++;
        else failures.push(`status ${response.status}: ${response.body}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const agents = [1, 2, 3].map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  t.after(() => agents.forEach((agent) => agent.destroy()));
  const loops = [...agents.map((agent) => loop(agent)), loop(false), loop(false)];

  const reloads: number[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    reloads.push((await haproxy.reload()).reloads);
  }
  await new Promise((resolve) => setTimeout(resolve, 250));
  running = false;
  await Promise.all(loops);

  assert.deepEqual(reloads, [1, 2, 3, 4, 5]);
  assert.deepEqual(failures, []);
  assert.ok(ok > 200, `only ${ok} requests`);
});

test("a long-lived tunnel and a streaming response survive a reload", async (t) => {
  const dir = tempDir(t);
  const backend = await startBackend(t, "app");
  const port = await freePort();
  writeConfig(dir, proxyConfig(dir, port, backend.port, "20s"));
  const haproxy = await startHAProxy(t, dir);
  const [oldWorker] = await haproxy.workers();

  // An upgraded (WebSocket-like) connection: the backend echoes whatever we send.
  const tunnel: Socket = connect(port, "127.0.0.1");
  t.after(() => tunnel.destroy());
  let received = "";
  tunnel.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
  tunnel.write("GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
  assert.ok(await waitFor(() => received.includes("\r\n\r\n")), received);
  assert.match(received, /^HTTP\/1\.1 101 /);
  received = "";
  tunnel.write("before reload\n");
  assert.ok(await waitFor(() => received === "before reload\n"), received);

  // A long chunked response.
  const stream = connect(port, "127.0.0.1");
  t.after(() => stream.destroy());
  let streamed = "";
  stream.setEncoding("utf8").on("data", (chunk: string) => (streamed += chunk));
  stream.write("GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n");
  assert.ok(await waitFor(() => streamed.includes("tick 1\n")));

  const result = await haproxy.reload();
  assert.deepEqual(result.oldWorkers, [oldWorker], "the old worker lingers for its connections");
  const ticksAtReload = (streamed.match(/tick/g) ?? []).length;

  received = "";
  tunnel.write("after reload\n");
  assert.ok(await waitFor(() => received === "after reload\n"), received);
  assert.ok(await waitFor(() => (streamed.match(/tick/g) ?? []).length >= ticksAtReload + 3));
  assert.ok(!tunnel.destroyed && !stream.destroyed);
  assert.equal((await httpGet(port, "/new")).body, "app /new", "new connections go to the new worker");

  // Once the long-lived connections end, the old worker exits.
  tunnel.destroy();
  stream.destroy();
  assert.ok(await waitFor(async () => (await haproxy.processes()).oldWorkers.length === 0));
});
