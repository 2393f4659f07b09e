// The file provider against the real file system and the real node:fs watch, in a temp directory.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
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
