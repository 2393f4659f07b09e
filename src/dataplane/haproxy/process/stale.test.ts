import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { isMasterOf, linuxProcessTable, stopStaleHAProxy } from "./stale.ts";
import { baseConfig, freePort, startHAProxy, tempDir, waitFor, writeConfig } from "./testkit.ts";

function httpConfig(dir: string, port: number): string {
  return `${baseConfig(dir)}
frontend fe
  bind 127.0.0.1:${port}
  http-request return status 200 content-type text/plain string ok
`;
}

const alive = async (pid: number): Promise<boolean> =>
  (await linuxProcessTable.commandLine(pid)) !== undefined;

test("isMasterOf: an haproxy command line with this master socket", () => {
  const args = ["/usr/sbin/haproxy", "-W", "-S", "/s/master.sock,mode,600", "-p", "/s/haproxy.pid"];
  assert.equal(isMasterOf(args, "/s/master.sock"), true);
  assert.equal(isMasterOf(args, "/other/master.sock"), false);
  assert.equal(isMasterOf(["/usr/bin/node", "-S", "/s/master.sock"], "/s/master.sock"), false);
  assert.equal(isMasterOf([], "/s/master.sock"), false);
});

test("the master writes its pid file; the stale HAProxy of a master socket is stopped, nothing else", async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, "haproxy.pid");
  const masterSocket = join(dir, "master.sock");
  writeConfig(dir, httpConfig(dir, await freePort()));
  const haproxy = await startHAProxy(t, dir, { pidFile });
  const pid = haproxy.pid ?? 0;
  assert.equal(Number(readFileSync(pidFile, "utf8").trim()), pid);

  // Another state directory's master socket, or a pid file naming something else: left alone.
  assert.equal(await stopStaleHAProxy(pidFile, join(dir, "other.sock")), undefined);
  const foreign = join(dir, "foreign.pid");
  writeFileSync(foreign, `${process.pid}\n`);
  assert.equal(await stopStaleHAProxy(foreign, masterSocket), undefined);
  assert.equal(await stopStaleHAProxy(join(dir, "missing.pid"), masterSocket), undefined);
  assert.equal(await alive(pid), true);

  assert.deepEqual(await stopStaleHAProxy(pidFile, masterSocket), { pid, stoppedBy: "SIGTERM" });
  assert.equal(await alive(pid), false);
});

test("HAProxy soft-stops when the process that started it is killed with SIGKILL", async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  writeConfig(dir, httpConfig(dir, port));
  const manager = new URL("./manager.ts", import.meta.url).href;
  const script = `
    import { HAProxyProcess } from ${JSON.stringify(manager)};
    const haproxy = new HAProxyProcess({ masterSocket: ${JSON.stringify(join(dir, "master.sock"))} });
    process.stdout.write(String(await haproxy.start(${JSON.stringify(join(dir, "haproxy.cfg"))})) + "\\n");
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.after(() => parent.kill("SIGKILL"));
  const master = await new Promise<number>((resolve, reject) => {
    parent.stdout.setEncoding("utf8").on("data", (text: string) => resolve(Number(text.trim())));
    parent.once("exit", (code) => reject(new Error(`parent exited (${code})`)));
  });
  assert.equal(await alive(master), true);
  parent.kill("SIGKILL");
  assert.ok(await waitFor(async () => !(await alive(master)), 10_000), "HAProxy outlived its parent");
});
