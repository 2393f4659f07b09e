import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../clock.ts";
import type { ProviderUpdate } from "../types.ts";
import { FileProvider } from "./provider.ts";
import type { FileProviderOptions } from "./provider.ts";
import { FakeWatcher, MemoryFileSystem } from "./testing.ts";

const service = (name: string, port = 80): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  ports:
    - port: ${port}
`;

function setup(files: Record<string, string>, options: Partial<FileProviderOptions> = {}) {
  const fs = new MemoryFileSystem(files);
  const clock = new ManualClock();
  const watcher = new FakeWatcher();
  const updates: ProviderUpdate[] = [];
  const warnings: string[] = [];
  const provider = new FileProvider({
    path: "/cfg",
    fs,
    clock,
    watcher: watcher.factory,
    onWarning: (message) => warnings.push(message),
    ...options,
  });
  const start = () => provider.start((update) => updates.push(update));
  /** Moves the clock and waits for the load it may have started. */
  const advance = async (ms: number) => {
    clock.advance(ms);
    await provider.whenIdle();
  };
  const services = () => [...(updates.at(-1)?.snapshot.services.keys() ?? [])];
  return { fs, clock, watcher, updates, warnings, provider, start, advance, services };
}

const change = (filename: string) => ({ type: "change" as const, filename });
const rename = (filename: string | null) => ({ type: "rename" as const, filename });

describe("FileProvider", () => {
  test("start loads once, delivers generation 1 and resolves after delivery", async () => {
    const t = setup({ "/cfg/a.yaml": service("a"), "/cfg/sub/b.yml": service("b") });
    await t.start();
    assert.equal(t.updates.length, 1);
    assert.equal(t.updates[0]?.generation, 1);
    assert.deepEqual(t.services(), ["default/a", "default/b"]);
    assert.deepEqual(t.updates[0]?.errors, []);
    assert.equal(t.provider.loadCount, 1);
    assert.deepEqual(t.watcher.open(), ["/", "/cfg (recursive)"]);
    await t.provider.stop();
  });

  test("a burst of 1,000 changes costs one load", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    for (let i = 0; i < 1000; i++) {
      t.fs.write("/cfg/a.yaml", service("a", 1000 + i));
      t.watcher.on("/cfg").emit(change("a.yaml"));
    }
    assert.equal(t.clock.pending, 1, "one timer for the whole burst");
    await t.advance(49);
    assert.equal(t.provider.loadCount, 1, "nothing before the debounce window closes");
    await t.advance(1);
    assert.equal(t.provider.loadCount, 2);
    assert.equal(t.updates.length, 2);
    assert.equal(t.updates[1]?.generation, 2);
    assert.equal(t.updates[1]?.snapshot.services.get("default/a")?.spec?.ports?.[0]?.port, 1999);
    await t.advance(10_000);
    assert.equal(t.provider.loadCount, 2, "and nothing after it");
    await t.provider.stop();
  });

  test("each change inside the window extends it, up to maxDelayMs", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { debounceMs: 50, maxDelayMs: 200 });
    await t.start();
    // A change every 30 ms for 1 s: the quiet window never closes, the max delay bounds the wait.
    for (let ms = 0; ms < 1000; ms += 30) {
      t.watcher.on("/cfg").emit(change("a.yaml"));
      await t.advance(30);
    }
    const loads = t.provider.loadCount - 1;
    assert.ok(loads >= 4 && loads <= 6, `~1000/200 loads, got ${loads}`);
    await t.provider.stop();
  });

  test("changes during a load cause exactly one more load after it", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    let release!: () => void;
    t.fs.gate = new Promise((resolve) => (release = resolve));
    t.fs.write("/cfg/a.yaml", service("a", 81));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    t.clock.advance(50);
    assert.equal(t.provider.loadCount, 2, "the second load is in flight");
    // 1,000 changes while the load is held: no load starts, no timer is set.
    for (let i = 0; i < 1000; i++) {
      t.fs.write("/cfg/a.yaml", service("a", 2000 + i));
      t.watcher.on("/cfg").emit(change("a.yaml"));
      t.clock.advance(1);
    }
    assert.equal(t.provider.loadCount, 2);
    assert.equal(t.clock.pending, 0);
    t.fs.gate = undefined;
    release();
    await t.provider.whenIdle();
    // The held load read the file after the changes, but it started before them: one more load.
    assert.equal(t.clock.pending, 1);
    await t.advance(50);
    assert.equal(t.provider.loadCount, 3);
    await t.advance(10_000);
    assert.equal(t.provider.loadCount, 3);
    assert.equal(t.updates.at(-1)?.snapshot.services.get("default/a")?.spec?.ports?.[0]?.port, 2999);
    await t.provider.stop();
  });

  test("an unchanged input is loaded but not delivered again", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    t.watcher.on("/cfg").emit(change(".a.yaml.swp"));
    await t.advance(50);
    assert.equal(t.provider.loadCount, 2);
    assert.equal(t.updates.length, 1);
    t.fs.write("/cfg/b.yaml", service("b"));
    t.watcher.on("/cfg").emit(rename("b.yaml"));
    await t.advance(50);
    assert.equal(t.updates.length, 2);
    assert.equal(t.updates[1]?.generation, 2);
    await t.provider.stop();
  });

  test("emitUnchanged delivers every load", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { emitUnchanged: true });
    await t.start();
    t.watcher.on("/cfg").emit(change("a.yaml"));
    await t.advance(50);
    assert.deepEqual(
      t.updates.map((update) => update.generation),
      [1, 2],
    );
    await t.provider.stop();
  });

  test("a YAML syntax error in one file keeps the other files' objects", async () => {
    const t = setup({
      "/cfg/a.yaml": service("a"),
      "/cfg/b.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: b\n",
      "/cfg/c.yaml": `${service("c")}---\n- not: a mapping\n`,
    });
    await t.start();
    const update = t.updates[0];
    assert.deepEqual(t.services(), ["default/a", "default/c"]);
    assert.ok(update !== undefined && update.errors.length >= 2);
    assert.ok(
      update.errors.some((error) => error.file === "/cfg/b.yaml" && error.location.line !== undefined),
    );
    assert.ok(update.errors.some((error) => error.file === "/cfg/c.yaml" && error.index === 1));
    await t.provider.stop();
  });

  test("a missing path is an input error, and its creation is picked up", async () => {
    const t = setup({});
    await t.start();
    assert.equal(t.updates.length, 1);
    assert.deepEqual(
      t.updates[0]?.errors.map((error) => error.message),
      ["/cfg: does not exist"],
    );
    assert.deepEqual(t.watcher.open(), ["/"], "only the parent is watched");
    t.fs.write("/cfg/a.yaml", service("a"));
    t.watcher.on("/").emit(rename("cfg"));
    await t.advance(50);
    assert.deepEqual(t.services(), ["default/a"]);
    assert.deepEqual(t.updates[1]?.errors, []);
    assert.deepEqual(t.watcher.open(), ["/", "/cfg (recursive)"]);
    await t.provider.stop();
  });

  test("the watched directory being replaced re-establishes the watches", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    const before = t.watcher.on("/cfg");
    t.fs.remove("/cfg");
    t.fs.write("/cfg/b.yaml", service("b"));
    before.emit(rename(""));
    t.watcher.on("/").emit(rename("cfg"));
    await t.advance(50);
    assert.equal(before.closed, true);
    assert.notEqual(t.watcher.on("/cfg"), before);
    assert.deepEqual(t.watcher.open(), ["/", "/cfg (recursive)"]);
    assert.deepEqual(t.services(), ["default/b"]);
    await t.provider.stop();
  });

  test("events about siblings of a watched directory are ignored", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    t.watcher.on("/").emit(rename("tmp"));
    t.watcher.on("/").emit(change("cfg-other"));
    await t.advance(1000);
    assert.equal(t.provider.loadCount, 1);
    await t.provider.stop();
  });

  test("a single file is watched through its directory, so rename-writes are seen", async () => {
    const t = setup(
      { "/etc/gh/app.yaml": service("a"), "/etc/gh/other.txt": "x" },
      { path: "/etc/gh/app.yaml" },
    );
    await t.start();
    assert.deepEqual(t.watcher.open(), ["/etc/gh"]);
    assert.deepEqual(t.services(), ["default/a"]);
    // An editor writes a temporary file and renames it over the original.
    t.fs.write("/etc/gh/app.yaml", service("b"));
    t.watcher.on("/etc/gh").emit(rename(".app.yaml.tmp"));
    t.watcher.on("/etc/gh").emit(rename("app.yaml"));
    await t.advance(50);
    assert.deepEqual(t.services(), ["default/b"]);
    assert.deepEqual(t.watcher.open(), ["/etc/gh"]);
    assert.equal(t.provider.loadCount, 2);
    await t.provider.stop();
  });

  test("a failing watch is reported and retried; loads go on meanwhile", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { retryMs: 1000 });
    t.watcher.throwNext = Object.assign(new Error("ENOSPC: too many watches"), { code: "ENOSPC" });
    await t.start();
    assert.deepEqual(t.services(), ["default/a"]);
    assert.equal(t.warnings.length, 1);
    assert.match(t.warnings[0] ?? "", /cannot watch \/cfg/);
    assert.deepEqual(t.watcher.open(), ["/cfg (recursive)"]);
    t.fs.write("/cfg/b.yaml", service("b"));
    await t.advance(1000 + 50);
    assert.deepEqual(t.services(), ["default/a", "default/b"], "the retry loads too");
    assert.deepEqual(t.watcher.open(), ["/", "/cfg (recursive)"]);

    t.watcher.on("/cfg").fail(new Error("inotify broke"));
    assert.deepEqual(t.watcher.open(), []);
    assert.equal(t.warnings.length, 2);
    await t.advance(1000 + 50);
    assert.deepEqual(t.watcher.open(), ["/", "/cfg (recursive)"]);
    await t.provider.stop();
  });

  test("a watch that keeps failing is reported once, and the provider polls meanwhile", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { retryMs: 1000 });
    await t.start();
    for (let i = 0; i < 5; i++) {
      t.watcher.on("/cfg").fail(new Error("inotify broke"));
      t.watcher.throwNext = new Error("still broken");
      await t.advance(1000 + 50);
    }
    assert.equal(t.warnings.length, 1);
    t.fs.write("/cfg/b.yaml", service("b"));
    await t.advance(1000 + 50);
    assert.deepEqual(t.services(), ["default/a", "default/b"]);
    await t.provider.stop();
  });

  test("a listener that throws is reported and later updates still arrive", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    let calls = 0;
    await t.provider.start(() => {
      calls++;
      throw new Error("boom");
    });
    t.fs.write("/cfg/b.yaml", service("b"));
    t.watcher.on("/cfg").emit(rename("b.yaml"));
    await t.advance(50);
    assert.equal(calls, 2);
    assert.equal(t.warnings.length, 2);
    await t.provider.stop();
  });

  test("stop closes the watches, cancels pending loads and delivers nothing more", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    t.watcher.on("/cfg").emit(change("a.yaml"));
    await t.provider.stop();
    assert.deepEqual(t.watcher.open(), []);
    assert.equal(t.clock.pending, 0);
    await t.advance(10_000);
    assert.equal(t.provider.loadCount, 1);
    assert.equal(t.updates.length, 1);
    await t.provider.stop();
  });

  test("stop during a load drops its update", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    let release!: () => void;
    t.fs.gate = new Promise((resolve) => (release = resolve));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    t.fs.write("/cfg/a.yaml", service("a", 81));
    t.clock.advance(50);
    const stopped = t.provider.stop();
    release();
    await stopped;
    assert.equal(t.updates.length, 1);
  });

  test("start twice is a programming error", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    await assert.rejects(t.start(), /already started/);
    await t.provider.stop();
  });
});
