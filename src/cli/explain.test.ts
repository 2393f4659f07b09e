// `gatehouse explain` as a user runs it: against the bundled example's files, and against a real
// admin server (token required) serving the same configuration.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { startAdminServer } from "../admin/server.ts";
import { AdminStateStore } from "../admin/state.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import { loadSnapshot } from "../resources/load.ts";
import { DEFAULT_CONTROLLER_NAME, translate } from "../translate/index.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "gatehouse.js");
const EXAMPLE = join(ROOT, "examples", "basic");

function gatehouse(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("a request to the example: listener, rule and backends", async () => {
  const run = await gatehouse(
    "explain",
    "--config",
    EXAMPLE,
    "--host",
    "app.localhost",
    "--path",
    "/api/hello",
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Gateway default\/web, listener http \(HTTP port 8080\), host app\.localhost/);
  assert.match(run.stdout, /HTTPRoute default\/app rule 0 .*PathPrefix \/api/);
  assert.match(run.stdout, /backends: default\/api:8081 \(weight 1\)/);
});

test("a request nothing serves: exit 3 and the reason", async () => {
  const run = await gatehouse("explain", "--config", EXAMPLE, "--host", "shop.localhost");
  assert.equal(run.code, 3);
  assert.match(
    run.stdout,
    /no attached route has hostname shop\.localhost \(route hostnames here: app\.localhost\)/,
  );
  const json = await gatehouse("explain", "--config", EXAMPLE, "--host", "shop.localhost", "--json");
  assert.equal((JSON.parse(json.stdout) as { served: boolean }).served, false);
});

test("usage errors", async () => {
  assert.equal((await gatehouse("explain", "--host", "a")).code, 2);
  assert.equal((await gatehouse("explain", "--config", EXAMPLE, "--route", "default/app")).code, 2);
});

test("against a running instance's admin server, with its token", async () => {
  const loaded = await loadSnapshot(EXAMPLE);
  const { statuses, ir } = translate(loaded.snapshot, {
    controllerName: DEFAULT_CONTROLLER_NAME,
    now: "2025-01-01T00:00:00Z",
    validators: haproxyValidators,
  });
  const store = new AdminStateStore();
  store.setStatuses(statuses);
  store.recordApply(1, ir, { ok: true, method: "start" });
  const token = "explain-test-token-0123456789";
  const server = await startAdminServer({ state: store, host: "127.0.0.1", port: 0, token });
  const dir = await mkdtemp(join(tmpdir(), "gh-explain-"));
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, `${token}\n`);
  const url = server.address?.url ?? "";
  const denied = await gatehouse("explain", "--admin", url, "--route", "HTTPRoute/default/app");
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /401: give the admin token with --admin-token-file/);
  const run = await gatehouse(
    "explain",
    "--admin",
    url,
    "--admin-token-file",
    tokenFile,
    "--route",
    "HTTPRoute/default/app",
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /default\/web: Accepted=True \(Accepted\)/);
  assert.match(
    run.stdout,
    /rule 1 \(rule 1, match 0\): PathPrefix \/\n\s+backends: default\/frontend:8082 \(weight 3\), default\/frontend-canary:8082 \(weight 1\)/,
  );
  const missing = await gatehouse(
    "explain",
    "--admin",
    url,
    "--admin-token-file",
    tokenFile,
    "--route",
    "HTTPRoute/default/nope",
  );
  assert.equal(missing.code, 3);
  assert.match(missing.stdout, /no HTTPRoute default\/nope with a parent handled by this controller/);
});
