// bin/gatehouse.js keeps Node's compile cache in a private directory (GATEHOUSE_COMPILE_CACHE), and
// refuses a directory others can write: the cache holds code that is run.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const BIN = new URL("../../bin/gatehouse.js", import.meta.url).pathname;

async function version(env: Record<string, string>): Promise<string> {
  const cleanEnv = { ...process.env, ...env };
  delete cleanEnv["NODE_COMPILE_CACHE"];
  const { stdout } = await run(process.execPath, [BIN, "--version"], { env: cleanEnv });
  return stdout.trim();
}

const entries = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

test("the compile cache is written to a private directory and used by the next start", async () => {
  const root = mkdtempSync(join(tmpdir(), "gatehouse-cc-"));
  try {
    const dir = join(root, "cache");
    assert.match(await version({ GATEHOUSE_COMPILE_CACHE: dir }), /^gatehouse \d/);
    const written = entries(dir);
    assert.ok(written > 0, "no cache entries written");
    assert.match(await version({ GATEHOUSE_COMPILE_CACHE: dir }), /^gatehouse \d/);
    assert.equal(entries(dir), written, "a second start compiled again");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a directory others can write, or off, means no compile cache", async () => {
  const root = mkdtempSync(join(tmpdir(), "gatehouse-cc-"));
  try {
    const open = join(root, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.match(await version({ GATEHOUSE_COMPILE_CACHE: open }), /^gatehouse \d/);
    assert.equal(entries(open), 0);
    assert.match(
      await version({ GATEHOUSE_COMPILE_CACHE: "off", XDG_CACHE_HOME: join(root, "xdg") }),
      /^gatehouse/,
    );
    assert.deepEqual(readdirSync(root).sort(), ["open"]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
