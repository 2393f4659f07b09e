import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ensurePrivateDir, lockStateDir, StateDirError, StateDirLockedError } from "./lock.ts";
import { tempDir } from "./testkit.ts";

test("a locked state directory refuses a second lock, naming the holder; release frees it", async (t) => {
  const dir = join(tempDir(t), "state");
  const first = await lockStateDir(dir, { admin: "http://127.0.0.1:9901" });
  await assert.rejects(
    lockStateDir(dir),
    (error: unknown) =>
      error instanceof StateDirLockedError &&
      error.holder?.pid === process.pid &&
      error.message.includes(`pid ${process.pid}`) &&
      error.message.includes("admin http://127.0.0.1:9901") &&
      error.message.includes("--state-dir"),
  );
  await first.release();
  await first.release(); // idempotent
  const again = await lockStateDir(dir);
  await again.release();
});

test("one directory reached through a symlink is the same lock; another directory is not", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "state");
  mkdirSync(dir);
  symlinkSync(dir, join(root, "link"));
  const lock = await lockStateDir(dir);
  t.after(() => lock.release());
  await assert.rejects(lockStateDir(join(root, "link")), StateDirLockedError);
  const other = await lockStateDir(join(root, "other"));
  await other.release();
});

test("the lock of a process killed with SIGKILL is free at once", async (t) => {
  const dir = join(tempDir(t), "state");
  const script = `
    import { lockStateDir } from ${JSON.stringify(new URL("./lock.ts", import.meta.url).href)};
    await lockStateDir(${JSON.stringify(dir)});
    process.stdout.write("locked\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`child exited (${code})`)));
  });
  await assert.rejects(
    lockStateDir(dir),
    (error: unknown) => error instanceof StateDirLockedError && error.holder?.pid === child.pid,
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
  const lock = await lockStateDir(dir);
  await lock.release();
});

test("a state directory that is a file, or a private directory others can write, is refused", async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, "file"), "");
  await assert.rejects(lockStateDir(join(root, "file")), StateDirError);
  const shared = join(root, "shared");
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  await assert.rejects(ensurePrivateDir(shared), /can be written by other users/);
  chmodSync(shared, 0o700);
  await ensurePrivateDir(shared);
  await ensurePrivateDir(join(root, "new"));
});
