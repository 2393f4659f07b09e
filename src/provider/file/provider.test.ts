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

/**
 * A provider on an in-memory tree with a fake watch and a manual clock. The tests below were written
 * for a 50 ms quiet window and count timers, so setup defaults to that and to no periodic rescan;
 * the defaults themselves have their own tests.
 */
type Options = { [K in keyof FileProviderOptions]?: FileProviderOptions[K] | undefined };

function setup(files: Record<string, string>, options: Options = {}) {
  const fs = new MemoryFileSystem(files);
  const clock = new ManualClock(1000);
  const watcher = new FakeWatcher();
  const updates: ProviderUpdate[] = [];
  const warnings: string[] = [];
  const defined = Object.entries(options).filter(([, value]) => value !== undefined);
  const provider = new FileProvider({
    path: "/cfg",
    fs,
    clock,
    watcher: watcher.factory,
    onWarning: (message) => warnings.push(message),
    // `undefined` in options: the provider's own default.
    ...(Object.hasOwn(options, "debounceMs") ? {} : { debounceMs: 50 }),
    ...(Object.hasOwn(options, "rescanMs") ? {} : { rescanMs: 0 }),
    ...(Object.fromEntries(defined) as Partial<FileProviderOptions>),
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
    // b and c do not parse (c has a document that is no object) and were never valid: nothing of them.
    assert.deepEqual(t.services(), ["default/a"]);
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

  test("a burst waits for a longer quiet window: one load, not one per pause", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { debounceMs: 5, burstDebounceMs: 50 });
    await t.start();
    await t.advance(100);
    // Four changes (a write through a temporary file): 5 ms of quiet.
    for (const name of ["a.yaml.tmp", "a.yaml.tmp", "a.yaml.tmp", "a.yaml"])
      t.watcher.on("/cfg").emit(change(name));
    await t.advance(5);
    assert.equal(t.provider.loadCount, 2);
    await t.advance(100);
    // Files copied with pauses of 10 ms after each 20: more than 32 changes make it a burst.
    for (let i = 0; i < 200; i++) {
      t.fs.write(`/cfg/f${i}.yaml`, service(`f${i}`));
      t.watcher.on("/cfg").emit(rename(`f${i}.yaml`));
      if (i % 20 === 19) await t.advance(i < 20 ? 4 : 10);
    }
    assert.equal(t.provider.loadCount, 2, "no load inside the burst");
    // The last changes came 10 ms ago: the load comes 50 ms after them.
    await t.advance(39);
    assert.equal(t.provider.loadCount, 2);
    await t.advance(1);
    assert.equal(t.provider.loadCount, 3);
    assert.equal(t.services().length, 201);
    await t.provider.stop();
  });

  test("a batch that starts during a load or right after it is part of a burst", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { debounceMs: 5, burstDebounceMs: 50 });
    await t.start();
    await t.advance(100);
    let release!: () => void;
    t.fs.gate = new Promise((resolve) => (release = resolve));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    t.clock.advance(5);
    assert.equal(t.provider.loadCount, 2, "in flight");
    t.watcher.on("/cfg").emit(change("b.yaml"));
    t.fs.gate = undefined;
    release();
    await t.provider.whenIdle();
    await t.advance(49);
    assert.equal(t.provider.loadCount, 2, "the burst window, counted from the change");
    await t.advance(1);
    assert.equal(t.provider.loadCount, 3);
    // Right after that load (within 50 ms): still a burst.
    await t.advance(20);
    t.watcher.on("/cfg").emit(change("c.yaml"));
    await t.advance(49);
    assert.equal(t.provider.loadCount, 3);
    await t.advance(1);
    assert.equal(t.provider.loadCount, 4);
    // After 50 ms of calm, a single change is quick again.
    await t.advance(50);
    t.watcher.on("/cfg").emit(change("d.yaml"));
    await t.advance(5);
    assert.equal(t.provider.loadCount, 5);
    await t.provider.stop();
  });

  test("the default quiet window is 5 ms, the default rescan 30 s", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") }, { debounceMs: undefined, rescanMs: undefined });
    await t.start();
    assert.equal(t.clock.pending, 1, "the rescan timer");
    await t.advance(100);
    t.fs.write("/cfg/a.yaml", service("a", 81));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    await t.advance(4);
    assert.equal(t.provider.loadCount, 1);
    await t.advance(1);
    assert.equal(t.provider.loadCount, 2);
    await t.advance(30_000 - 106);
    assert.equal(t.provider.loadCount, 2);
    await t.advance(1 + 5);
    assert.equal(t.provider.loadCount, 3, "a full re-read 30 s after the first");
    assert.equal(t.updates.length, 2, "which found nothing new");
    await t.provider.stop();
    assert.equal(t.clock.pending, 0);
  });

  test("a change re-reads only the files the events name", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) files[`/cfg/routes/${String(i).padStart(4, "0")}.yaml`] = service(`s${i}`);
    const t = setup(files);
    await t.start();
    assert.equal(t.fs.reads, 1000);
    t.fs.write("/cfg/routes/0500.yaml", service("s500", 81));
    t.watcher.on("/cfg").emit(change("routes/0500.yaml"));
    t.fs.write("/cfg/routes/new.yaml", service("new"));
    t.watcher.on("/cfg").emit(rename("routes/new.yaml.tmp"));
    t.watcher.on("/cfg").emit(rename("routes/new.yaml"));
    t.fs.remove("/cfg/routes/0007.yaml");
    t.watcher.on("/cfg").emit(rename("routes/0007.yaml"));
    t.watcher.on("/cfg").emit(change("routes/.0001.yaml.swp"));
    await t.advance(50);
    assert.equal(t.fs.reads, 1000 + 2, "0500.yaml and new.yaml");
    const update = t.updates.at(-1);
    assert.equal(update?.generation, 2);
    assert.equal(update.snapshot.services.size, 1000);
    assert.equal(update.snapshot.services.get("default/s500")?.spec?.ports?.[0]?.port, 81);
    assert.equal(update.snapshot.services.has("default/new"), true);
    assert.equal(update.snapshot.services.has("default/s7"), false);
    await t.provider.stop();
  });

  test("what no event names exactly is read in full: unnamed events, the path itself, rescans", async () => {
    const t = setup({ "/cfg/a.yaml": service("a"), "/cfg/b.yaml": service("b") }, { rescanMs: 10_000 });
    await t.start();
    assert.equal(t.fs.reads, 2);
    t.watcher.on("/cfg").emit(rename(null));
    await t.advance(50);
    assert.equal(t.fs.reads, 4, "an event without a file name");
    t.watcher.on("/").emit({ type: "change", filename: "cfg" });
    await t.advance(50);
    assert.equal(t.fs.reads, 6, "the directory itself");
    // A change no event reported is found by the periodic rescan, counted from the last full load.
    t.fs.write("/cfg/b.yaml", service("b", 81));
    await t.advance(10_000 - 100);
    assert.equal(t.fs.reads, 6);
    assert.equal(t.updates.length, 1);
    await t.advance(100 + 50);
    assert.equal(t.fs.reads, 8);
    assert.equal(t.updates.length, 2);
    assert.equal(t.updates[1]?.snapshot.services.get("default/b")?.spec?.ports?.[0]?.port, 81);
    assert.equal(t.clock.pending, 1, "the next rescan");
    await t.provider.stop();
  });

  test("an update carries the time of the first change of its batch", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    assert.equal(t.updates[0]?.changedAt, undefined, "the initial load follows no change");
    await t.advance(500);
    t.fs.write("/cfg/a.yaml", service("a", 81));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    const first = t.clock.now();
    await t.advance(20);
    t.watcher.on("/cfg").emit(change("a.yaml"));
    await t.advance(50);
    assert.equal(t.updates.length, 2);
    assert.equal(t.updates[1]?.changedAt, first);
    // A load held in flight: the change made meanwhile is read by it (the file is read after the
    // write) and timed from the change that started its batch; the next load finds nothing new.
    let release!: () => void;
    t.fs.gate = new Promise((resolve) => (release = resolve));
    t.fs.write("/cfg/a.yaml", service("a", 82));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    const third = t.clock.now();
    t.clock.advance(50);
    assert.equal(t.provider.loadCount, 3, "in flight");
    t.clock.advance(30);
    t.fs.write("/cfg/a.yaml", service("a", 83));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    t.fs.gate = undefined;
    release();
    await t.provider.whenIdle();
    assert.equal(t.updates[2]?.snapshot.services.get("default/a")?.spec?.ports?.[0]?.port, 83);
    assert.equal(t.updates[2]?.changedAt, third);
    await t.advance(50);
    assert.equal(t.provider.loadCount, 4);
    assert.equal(t.updates.length, 3);
    t.fs.write("/cfg/a.yaml", service("a", 84));
    t.watcher.on("/cfg").emit(change("a.yaml"));
    const fourth = t.clock.now();
    await t.advance(50);
    assert.equal(t.updates[3]?.changedAt, fourth);
    await t.provider.stop();
  });

  test("start twice is a programming error", async () => {
    const t = setup({ "/cfg/a.yaml": service("a") });
    await t.start();
    await assert.rejects(t.start(), /already started/);
    await t.provider.stop();
  });
});
