// The file provider against the real file system and the real node:fs watch, in a temp directory.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { loadSnapshot } from "../../resources/load.ts";
import type { SnapshotLoadResult } from "../../resources/load.ts";
import type { ProviderUpdate } from "../types.ts";
import { FileProvider } from "./provider.ts";

const service = (name: string, port = 80): string =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports:\n    - port: ${port}\n`;

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "gatehouse-provider-"));
  roots.push(root);
  return root;
}

/** Polls until `predicate` holds (the watch is real, so its timing is too). */
async function eventually(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("FileProvider on the real file system", () => {
  test("follows writes, rename-writes, new subdirectories, removals and a replaced root", async () => {
    const root = await tempRoot();
    const dir = join(root, "config");
    await mkdir(dir);
    await writeFile(join(dir, "a.yaml"), service("a"));
    const updates: ProviderUpdate[] = [];
    const warnings: string[] = [];
    const provider = new FileProvider({ path: dir, debounceMs: 20, onWarning: (m) => warnings.push(m) });
    const names = () => [...(updates.at(-1)?.snapshot.services.keys() ?? [])].join(",");
    const port = (name: string) =>
      updates.at(-1)?.snapshot.services.get(`default/${name}`)?.spec?.ports?.[0]?.port;
    try {
      await provider.start((update) => updates.push(update));
      assert.equal(names(), "default/a");

      await writeFile(join(dir, "a.yaml"), service("a", 81));
      await eventually("an in-place write", () => port("a") === 81);

      await writeFile(join(dir, ".a.yaml.tmp"), service("a", 82));
      await rename(join(dir, ".a.yaml.tmp"), join(dir, "a.yaml"));
      await eventually("a rename-write", () => port("a") === 82);

      await mkdir(join(dir, "x", "y"), { recursive: true });
      await writeFile(join(dir, "x", "y", "b.yaml"), service("b"));
      await eventually("a file in a new subdirectory", () => names() === "default/a,default/b");

      await writeFile(join(dir, "x", "y", "b.yaml"), service("b", 90));
      await eventually("a write in the new subdirectory", () => port("b") === 90);

      await rm(join(dir, "x"), { recursive: true });
      await eventually("a removed directory", () => names() === "default/a");

      await writeFile(join(dir, "broken.yaml"), "kind: [\n");
      await eventually("a syntax error", () => (updates.at(-1)?.errors.length ?? 0) > 0);
      assert.equal(names(), "default/a", "the other files still load");
      await rm(join(dir, "broken.yaml"));
      await eventually("the error cleared", () => updates.at(-1)?.errors.length === 0);

      // The watched directory itself is removed, then recreated.
      await rm(dir, { recursive: true });
      await eventually(
        "the path gone",
        () => updates.at(-1)?.errors[0]?.message === `${dir}: does not exist`,
      );
      await mkdir(dir);
      await writeFile(join(dir, "c.yaml"), service("c"));
      await eventually("the recreated path", () => names() === "default/c");
      await writeFile(join(dir, "c.yaml"), service("c", 99));
      await eventually("a write in the recreated path", () => port("c") === 99);

      // Replaced by rename (as a deploy tool swapping directories would).
      const next = join(root, "config.next");
      await mkdir(next);
      await writeFile(join(next, "d.yaml"), service("d"));
      await rm(dir, { recursive: true });
      await rename(next, dir);
      await eventually("the swapped-in directory", () => names() === "default/d");
      await writeFile(join(dir, "d.yaml"), service("d", 70));
      await eventually("a write in the swapped-in directory", () => port("d") === 70);

      const generations = updates.map((update) => update.generation);
      assert.deepEqual(
        generations,
        generations.map((_, i) => i + 1),
      );
      assert.deepEqual(warnings, []);
    } finally {
      await provider.stop();
    }
  });

  test("a burst of 1,000 writes costs a handful of loads", async () => {
    const root = await tempRoot();
    await writeFile(join(root, "a.yaml"), service("a"));
    const updates: ProviderUpdate[] = [];
    const provider = new FileProvider({ path: root, debounceMs: 50 });
    try {
      await provider.start((update) => updates.push(update));
      for (let i = 0; i < 1000; i++)
        await writeFile(join(root, `f${i % 10}.yaml`), service(`s${i % 10}`, 1000 + i));
      await eventually(
        "the last write",
        () => updates.at(-1)?.snapshot.services.get("default/s9")?.spec?.ports?.[0]?.port === 1999,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      // 1,000 sequential writes take well under the 1 s maximum delay, so 1-3 loads after the initial one.
      assert.ok(provider.loadCount <= 5, `loads: ${provider.loadCount}`);
      assert.equal(updates.at(-1)?.snapshot.services.size, 11);
    } finally {
      await provider.stop();
    }
  });

  test("1,000 files copied in by another process cost a few loads, not one per file (default quiet window)", async () => {
    const root = await tempRoot();
    const source = join(root, "source");
    const dir = join(root, "config");
    await mkdir(join(source, "routes"), { recursive: true });
    await mkdir(dir);
    for (let i = 0; i < 1000; i++) await writeFile(join(source, "routes", `r${i}.yaml`), service(`s${i}`));
    const updates: ProviderUpdate[] = [];
    const provider = new FileProvider({ path: dir, rescanMs: 0 });
    try {
      await provider.start((update) => updates.push(update));
      const loads = provider.loadCount;
      const copy = spawn("cp", ["-r", join(source, "routes"), join(dir, "routes")], { stdio: "ignore" });
      const code = await new Promise((resolve) => copy.on("exit", resolve));
      assert.equal(code, 0);
      await eventually("all copied", () => updates.at(-1)?.snapshot.services.size === 1000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One or two on a quiet machine; a busy one can pause `cp` longer than the quiet window a few
      // times. A load per file (or per batch of the watcher's events) would be hundreds.
      assert.ok(provider.loadCount - loads <= 5, `loads: ${provider.loadCount - loads}`);
    } finally {
      await provider.stop();
    }
  });

  test("random changes through the real watch end where a full load does", async () => {
    const seed = Number(process.env["GATEHOUSE_PROVIDER_SEED"] ?? Date.now() % 1_000_000);
    const random = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const root = await tempRoot();
    const dir = join(root, "config");
    await mkdir(dir);
    const updates: ProviderUpdate[] = [];
    // What the provider keeps from earlier versions depends on which of them it saw (timing): the
    // watch and the index are compared here without it; keeping is tested on its own.
    const provider = new FileProvider({ path: dir, rescanMs: 0, keepLastValid: false });
    const dirs = ["", "a", "a-b", "a/b", "a/b/c", "z"];
    const names = ["a.yaml", "a-b.yaml", "b.yml", "c.yaml", "n.txt"];
    const texts = [
      service("one"),
      service("two"),
      service("one", 81),
      `${service("x")}---\n${service("one")}`,
      "kind: [\n",
    ];
    const rel = (d: string, name: string) => (d === "" ? name : `${d}/${name}`);
    try {
      await provider.start((update) => updates.push(update));
      for (let step = 0; step < 40; step++) {
        const batch = 1 + Math.floor(random() * 4);
        for (let op = 0; op < batch; op++) {
          const d = pick(dirs);
          const path = join(dir, rel(d, pick(names)));
          const action = random();
          try {
            if (action < 0.35) {
              await mkdir(join(dir, d), { recursive: true });
              await writeFile(path, pick(texts));
            } else if (action < 0.55) {
              // Atomically: a temporary name (hidden or not), then a rename over the file.
              await mkdir(join(dir, d), { recursive: true });
              const temp = random() < 0.5 ? join(dir, d, `.tmp-${step}`) : `${path}.tmp-${step}`;
              await writeFile(temp, pick(texts));
              await rename(temp, path);
            } else if (action < 0.7) {
              await rm(path, { force: true });
            } else if (action < 0.8) {
              await rename(path, join(dir, rel(pick(dirs), pick(names))));
            } else if (action < 0.9) {
              if (d !== "") await rm(join(dir, d), { recursive: true, force: true });
            } else {
              const to = pick(dirs.filter((other) => other !== "" && !other.startsWith(`${d}/`)));
              if (d !== "" && to !== d) {
                await rm(join(dir, to), { recursive: true, force: true });
                await mkdir(dirname(join(dir, to)), { recursive: true });
                await rename(join(dir, d), join(dir, to));
              }
            }
          } catch (error) {
            if (!isCode(error, "ENOENT", "ENOTDIR", "EISDIR", "ENOTEMPTY", "EEXIST", "EINVAL")) throw error;
          }
        }
        const expected = plain(await loadSnapshot(dir));
        const current = () => {
          const last = updates.at(-1);
          return last === undefined ? undefined : plain(last);
        };
        await eventually(`seed ${seed}, step ${step}: the provider matching a full load`, () =>
          isDeepStrictEqual(current(), expected),
        );
      }
    } finally {
      await provider.stop();
    }
  });

  test("a single file replaced by rename keeps being followed", async () => {
    const root = await tempRoot();
    const file = join(root, "gatehouse.yaml");
    await writeFile(file, service("a"));
    const updates: ProviderUpdate[] = [];
    const provider = new FileProvider({ path: file, debounceMs: 20 });
    const port = () => updates.at(-1)?.snapshot.services.get("default/a")?.spec?.ports?.[0]?.port;
    try {
      await provider.start((update) => updates.push(update));
      for (const value of [81, 82, 83]) {
        await writeFile(`${file}.tmp`, service("a", value));
        await rename(`${file}.tmp`, file);
        await eventually(`port ${value}`, () => port() === value);
      }
      await writeFile(file, service("a", 84));
      await eventually("an in-place write", () => port() === 84);
    } finally {
      await provider.stop();
    }
  });
});

/** What a load delivers, as comparable data (an update or a load result). */
function plain(result: Pick<SnapshotLoadResult, "snapshot" | "errors" | "warnings">): unknown {
  const maps = Object.entries(result.snapshot as unknown as Record<string, ReadonlyMap<string, unknown>>);
  return {
    errors: result.errors.map((error) => error.message),
    warnings: result.warnings,
    snapshot: Object.fromEntries(maps.map(([field, map]) => [field, [...map.entries()]])),
  };
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === "object" && error !== null && "code" in error && codes.includes(String(error.code));
}

/** A small seeded PRNG (the seed is in the failure message, to replay it). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
