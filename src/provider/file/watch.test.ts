// treeWatch against the real file system: which names it reports, as directories come and go.
import assert from "node:assert/strict";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { treeWatch } from "./watch.ts";
import type { WatchEvent } from "./watch.ts";

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

/** A watched temp directory and the file names reported so far. */
async function watched() {
  const root = await mkdtemp(join(tmpdir(), "gatehouse-watch-"));
  roots.push(root);
  const events: WatchEvent[] = [];
  const errors: Error[] = [];
  const handle = treeWatch(
    root,
    (event) => events.push(event),
    (error) => errors.push(error),
  );
  const names = () => new Set(events.map((event) => event.filename));
  /** Waits until `name` has been reported (after `since` events). */
  const seen = async (name: string, since = 0, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    while (!events.slice(since).some((event) => event.filename === name)) {
      if (Date.now() > deadline) assert.fail(`${name} not reported; got ${[...names()].join(" ")}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  return { root, events, errors, handle, seen };
}

describe("treeWatch", () => {
  test("reports changes in new subdirectories, and the files already in them", async () => {
    const w = await watched();
    try {
      await writeFile(join(w.root, "a.yaml"), "a");
      await w.seen("a.yaml");
      // Written together: the file may exist before the watch on x/y does, it is reported anyway.
      await mkdir(join(w.root, "x", "y"), { recursive: true });
      await writeFile(join(w.root, "x", "y", "b.yaml"), "b");
      await w.seen("x");
      await w.seen("x/y/b.yaml");
      const mark = w.events.length;
      await writeFile(join(w.root, "x", "y", "b.yaml"), "b2");
      await w.seen("x/y/b.yaml", mark);
      assert.deepEqual(w.errors, []);
    } finally {
      w.handle.close();
    }
  });

  test("symbolic links to directories are not followed: a loop adds no watch and no names", async () => {
    const w = await watched();
    try {
      await mkdir(join(w.root, "sub"));
      await w.seen("sub");
      await symlink(".", join(w.root, "loop"));
      await symlink("..", join(w.root, "sub", "up"));
      await w.seen("loop");
      await w.seen("sub/up");
      const mark = w.events.length;
      await writeFile(join(w.root, "a.yaml"), "a");
      await writeFile(join(w.root, "sub", "b.yaml"), "b");
      await writeFile(join(w.root, "z.yaml"), "z");
      await w.seen("z.yaml", mark);
      const names = new Set(w.events.slice(mark).map((event) => event.filename));
      assert.deepEqual([...names].sort(), ["a.yaml", "sub/b.yaml", "z.yaml"]);
      assert.deepEqual(w.errors, []);
    } finally {
      w.handle.close();
    }
  });

  test("a directory moved away and another created under its name: both are followed", async () => {
    const w = await watched();
    try {
      await mkdir(join(w.root, "a", "sub"), { recursive: true });
      await writeFile(join(w.root, "a", "sub", "f.yaml"), "1");
      await w.seen("a/sub/f.yaml");
      // The watches on a and a/sub follow their inodes to b and b/sub. Synchronously, so that the
      // new a exists by the time the events about the old one are handled.
      renameSync(join(w.root, "a"), join(w.root, "b"));
      mkdirSync(join(w.root, "a", "sub"), { recursive: true });
      await w.seen("b");
      await w.seen("a");
      await new Promise((resolve) => setTimeout(resolve, 50));
      let mark = w.events.length;
      await writeFile(join(w.root, "a", "sub", "g.yaml"), "2");
      await w.seen("a/sub/g.yaml", mark);
      mark = w.events.length;
      await writeFile(join(w.root, "b", "sub", "f.yaml"), "3");
      await w.seen("b/sub/f.yaml", mark);
      assert.equal(
        w.events.slice(mark).some((event) => event.filename === "a/sub/f.yaml"),
        false,
        "not under its old name",
      );
      // Removed and recreated: the new one is watched.
      rmSync(join(w.root, "b"), { recursive: true });
      mkdirSync(join(w.root, "b"));
      await w.seen("b", mark);
      await new Promise((resolve) => setTimeout(resolve, 50));
      mark = w.events.length;
      await writeFile(join(w.root, "b", "h.yaml"), "4");
      await w.seen("b/h.yaml", mark);
      assert.deepEqual(w.errors, []);
    } finally {
      w.handle.close();
    }
  });
});
