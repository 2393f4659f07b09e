// The fake kubelet's log follow (conformance/minicluster/kubelet/logs.ts): a follower must see a
// container's last lines even when the Pod's directory is removed right after the container exits.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { followLog, LogWriter, readLog } from "../../conformance/minicluster/kubelet/logs.ts";

test("a follow reads the last lines written just before the log file is removed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-logs-"));
  const file = join(dir, "0.log");
  const writer = new LogWriter(file);
  writer.write("stdout", "first\n");
  const { text, offset } = readLog(file, {});
  assert.equal(text, "first\n");
  let running = true;
  const seen: string[] = [];
  const abort = new AbortController();
  const following = followLog(
    file,
    offset,
    {},
    (t) => seen.push(t),
    () => !running,
    abort.signal,
  );
  await sleep(50); // the follower is now waiting between two reads
  writer.write("stdout", "draining\n");
  writer.write("stderr", "stopped");
  writer.flush();
  running = false;
  rmSync(dir, { recursive: true, force: true });
  await following;
  assert.equal(seen.join(""), "draining\nstopped\n");
});

test("a follow stops at the budget of limitBytes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-logs-"));
  try {
    const file = join(dir, "0.log");
    const writer = new LogWriter(file);
    writer.write("stdout", "0123456789\nabcdef\n");
    const seen: string[] = [];
    await followLog(
      file,
      0,
      { limitBytes: 4 },
      (t) => seen.push(t),
      () => true,
      new AbortController().signal,
    );
    assert.equal(seen.join(""), "0123");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
