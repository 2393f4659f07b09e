import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { baseConfig, freePort, startHAProxy, tempDir, writeConfig } from "../process/testkit.ts";
import { addMapEntries, addMapEntry, showInfo, showMap } from "./commands.ts";
import {
  checkCommandLine,
  checkPayload,
  cliArg,
  encodeRequest,
  interpretResponse,
  RuntimeCommandError,
  RuntimeConnectionError,
  RuntimeRequestError,
  RuntimeTimeoutError,
  UnixSocketRuntimeApi,
  workerRuntimeApi,
} from "./socket.ts";

test("cliArg escapes what the 2.6 CLI parser would split on and rejects what it cannot carry", () => {
  assert.equal(cliArg("plain/value-1.2"), "plain/value-1.2");
  assert.equal(cliArg("a b;c\\d<<"), "a\\ b\\;c\\\\d\\<\\<");
  assert.equal(cliArg(`"quoted" 'x' #y`), `"quoted"\\ 'x'\\ #y`);
  for (const bad of ["", "a\nb", "a\rb", "a\tb", "a\u0000b", "a\u007fb"]) {
    assert.throws(() => cliArg(bad), RuntimeRequestError, JSON.stringify(bad));
  }
});

test("raw requests are checked: one command, no payload marker, no blank line in a payload", () => {
  assert.equal(checkCommandLine("set map m k v\\;x"), "set map m k v\\;x");
  assert.equal(checkCommandLine("set map m k v\\\\\\;x"), "set map m k v\\\\\\;x");
  for (const bad of [
    "",
    "  ",
    "show info; show map",
    "show info\\\\; show map",
    "show info\nshow map",
    "add map m <<",
    "x y<<  ",
  ]) {
    assert.throws(() => checkCommandLine(bad), RuntimeRequestError, JSON.stringify(bad));
  }
  assert.equal(checkPayload("a b\nc d\n"), "a b\nc d");
  for (const bad of ["", "\n", "a\n\nb", "\na", "a\r\nb", "a\u0000"]) {
    assert.throws(() => checkPayload(bad), RuntimeRequestError, JSON.stringify(bad));
  }
  assert.equal(encodeRequest("show info"), "show info\n");
  assert.equal(encodeRequest("show info", "@1"), "@1 show info\n");
  assert.equal(encodeRequest({ command: "add map m", payload: "k v\n" }), "add map m <<\nk v\n\n");
  assert.throws(() => encodeRequest("show info", "@1; show proc"), RuntimeRequestError);
});

test("interpretResponse strips the terminator and recognises refusals", () => {
  assert.equal(interpretResponse("x", "\n"), "");
  assert.equal(interpretResponse("x", "New version created: 1\n\n"), "New version created: 1\n");
  assert.throws(() => interpretResponse("x", ""), RuntimeCommandError);
  assert.throws(() => interpretResponse("bogus", "Unknown command, but maybe ...\n\n"), RuntimeCommandError);
  assert.throws(() => interpretResponse("x", "Permission denied\n\n"), RuntimeCommandError);
  assert.throws(
    () => interpretResponse("@2 x", "Can't find the target PID matching the prefix '@2'\n"),
    RuntimeCommandError,
  );
});

test("connection errors and timeouts are typed", async (t) => {
  const dir = tempDir(t);
  await assert.rejects(
    new UnixSocketRuntimeApi({ socketPath: join(dir, "missing.sock") }).command("show info"),
    (error: unknown) => error instanceof RuntimeConnectionError && /is HAProxy running/.test(error.message),
  );
  // Reads the request, never answers, never closes.
  const sockets: Socket[] = [];
  const silent = createServer({ allowHalfOpen: true }, (socket) => sockets.push(socket.resume()));
  const path = join(dir, "silent.sock");
  await new Promise<void>((resolve) => silent.listen(path, resolve));
  t.after(() => {
    sockets.forEach((socket) => socket.destroy());
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const started = Date.now();
  await assert.rejects(
    new UnixSocketRuntimeApi({ socketPath: path, timeoutMs: 100 }).command("show info"),
    (error: unknown) => error instanceof RuntimeTimeoutError && error.timeoutMs === 100,
  );
  assert.ok(Date.now() - started < 1_000);
});

test("against HAProxy: values cannot inject commands, big requests are refused or split", async (t) => {
  const dir = tempDir(t);
  const map = join(dir, "hosts.map");
  writeFileSync(map, "keep.test be_keep\n");
  writeConfig(
    dir,
    `${baseConfig(dir)}
frontend fe
  bind 127.0.0.1:${await freePort()}
  http-request set-var(txn.be) req.hdr(host),map_str(${map})
  http-request return status 200
`,
  );
  const haproxy = await startHAProxy(t, dir);
  const stats = new UnixSocketRuntimeApi({ socketPath: join(dir, "admin.sock"), timeoutMs: 2_000 });

  // Each of these, sent unescaped, would run a second command, swallow the next line as payload,
  // or store a truncated value.
  const values = [`v;clear map ${map}`, "v<<", "v <<", "a b  c", "back\\slash\\;", `"quoted value"`, "#hash"];
  for (const [i, value] of values.entries()) await addMapEntry(stats, map, `k${i}.test`, value);
  const entries = await showMap(stats, map);
  assert.deepEqual(
    entries.map(({ key, value }) => [key, value]),
    [["keep.test", "be_keep"], ...values.map((value, i) => [`k${i}.test`, value])],
  );
  for (const key of ["a b", "a\nb", "#x", ""]) {
    await assert.rejects(addMapEntry(stats, map, key, "v"), RuntimeRequestError);
  }
  await assert.rejects(addMapEntry(stats, map, "k", "v\nclear map x"), RuntimeRequestError);
  await assert.rejects(stats.command(`show map ${map}; clear map ${map}`), RuntimeRequestError);
  await assert.rejects(stats.command("bogus command"), RuntimeCommandError);

  // A request beyond the CLI buffer would hang or drop the connection: refused before sending.
  await assert.rejects(
    stats.command(`add map ${map} big ${"x".repeat(20_000)}`),
    /exceeds the 14336-byte limit/,
  );
  // Bulk payloads are split to fit.
  const bulk = Array.from({ length: 2_000 }, (_, i) => [`host-${i}.example.test`, `backend_${i}`] as const);
  const sent = await addMapEntries(stats, map, bulk);
  assert.ok(sent >= 4, `${sent} commands`);
  assert.equal((await showMap(stats, map)).length, 1 + values.length + bulk.length);

  // The master CLI routes to the current worker; session settings do not carry over there.
  const workerPid = (await haproxy.workers())[0];
  assert.equal((await showInfo(workerRuntimeApi(haproxy.masterSocket)))["Pid"], String(workerPid));
  assert.equal((await showInfo(stats))["Pid"], String(workerPid));
  await assert.rejects(
    new UnixSocketRuntimeApi({ socketPath: haproxy.masterSocket, target: "@!1" }).command("show info"),
    /Can't find the target PID/,
  );
  assert.deepEqual(
    await stats.commands(["show map", `show map ${map}`]).then((answers) => answers.length),
    2,
  );
});
