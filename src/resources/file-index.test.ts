import assert from "node:assert/strict";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { LoadError, StaleInputError } from "../errors.ts";
import { comparePaths, FileIndex } from "./file-index.ts";
import type { IndexedLoad } from "./file-index.ts";
import { MAX_DEPTH, MAX_PROBLEMS_PER_FILE, compareStrings, loadSnapshot, nodeFileSystem } from "./load.ts";
import type { FileSystem, SnapshotLoadResult } from "./load.ts";

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "gatehouse-index-"));
  roots.push(root);
  return root;
}

async function put(root: string, rel: string, text: string): Promise<void> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), text);
}

const namespace = (name: string, label = "x"): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n    v: "${label}"\n`;

/**
 * The real file system, counting reads; paths in `denied` cannot be read or listed (the tests run as
 * root). `plain` leaves out lstat and readdirTypes (a file system that knows no symbolic links).
 */
function countingFileSystem(plain = false): FileSystem & { reads: string[]; denied: Set<string> } {
  const reads: string[] = [];
  const denied = new Set<string>();
  const deny = (path: string) =>
    denied.has(path) ? Promise.reject(Object.assign(new Error("EACCES"), { code: "EACCES" })) : undefined;
  const real = {
    lstat: nodeFileSystem.lstat?.bind(nodeFileSystem),
    readdirTypes: nodeFileSystem.readdirTypes?.bind(nodeFileSystem),
    realpath: nodeFileSystem.realpath?.bind(nodeFileSystem),
  };
  const { lstat: realLstat, readdirTypes, realpath } = real;
  assert.ok(realLstat !== undefined && readdirTypes !== undefined && realpath !== undefined);
  return {
    reads,
    denied,
    readFile: (path) => {
      reads.push(path);
      return deny(path) ?? nodeFileSystem.readFile(path, "utf8");
    },
    stat: (path) => nodeFileSystem.stat(path),
    readdir: (path) => deny(path) ?? nodeFileSystem.readdir(path),
    ...(plain
      ? {}
      : { lstat: realLstat, readdirTypes: (path: string) => deny(path) ?? readdirTypes(path), realpath }),
  };
}

/** Namespace name → its `v` label, in the result. */
function labels(result: SnapshotLoadResult | undefined): Record<string, string | undefined> {
  const entries = [...(result?.snapshot.namespaces.values() ?? [])];
  return Object.fromEntries(entries.map((ns) => [ns.metadata.name, ns.metadata.labels?.["v"]]));
}

/** A load result as plain comparable data (objects with their sources, messages, snapshot entries). */
function plain(result: SnapshotLoadResult): unknown {
  const maps = Object.entries(result.snapshot as unknown as Record<string, ReadonlyMap<string, unknown>>);
  return {
    objects: result.objects.map(({ object, source }) => ({ object, source })),
    errors: result.errors.map((error) => [error.constructor.name, error.message]),
    warnings: result.warnings,
    snapshot: Object.fromEntries(maps.map(([field, map]) => [field, [...map.entries()]])),
  };
}

describe("comparePaths", () => {
  test("orders relative paths as a depth-first walk with sorted names does", () => {
    const paths = [
      "a.yaml",
      "a/x.yaml",
      "a-b.yaml",
      "a/b/c.yaml",
      "ab/c.yaml",
      "a/b.yaml",
      "B.yaml",
      "é.yaml",
    ];
    // The walk: names in a directory sorted with compareStrings, directories entered where they sort.
    const walk = (prefix: string): string[] => {
      const names = new Set<string>();
      for (const path of paths) {
        if (path.startsWith(prefix)) names.add(path.slice(prefix.length).split("/")[0] ?? "");
      }
      return [...names]
        .sort(compareStrings)
        .flatMap((name) => (paths.includes(prefix + name) ? [prefix + name] : walk(`${prefix}${name}/`)));
    };
    assert.deepEqual([...paths].sort(comparePaths), walk(""));
    assert.deepEqual(walk(""), [
      "B.yaml",
      "a/b/c.yaml",
      "a/b.yaml",
      "a/x.yaml",
      "a-b.yaml",
      "a.yaml",
      "ab/c.yaml",
      "é.yaml",
    ]);
  });
});

describe("FileIndex", () => {
  test("reload equals loadSnapshot, and refresh re-reads only the named paths", async () => {
    const root = await tempRoot();
    for (let i = 0; i < 20; i++) await put(root, `ns/${String(i).padStart(2, "0")}.yaml`, namespace(`n${i}`));
    await put(root, "top.yaml", namespace("top"));
    const fs = countingFileSystem();
    const index = new FileIndex(root, fs);
    const first = await index.reload();
    assert.deepEqual(plain(first), plain(await loadSnapshot(root)));
    assert.equal(fs.reads.length, 21);

    fs.reads.length = 0;
    await put(root, "ns/05.yaml", namespace("n5", "changed"));
    const second = await index.refresh(["ns/05.yaml"]);
    assert.ok(second !== undefined);
    assert.deepEqual(fs.reads, [join(root, "ns/05.yaml")]);
    assert.deepEqual(plain(second), plain(await loadSnapshot(root)));
    assert.notEqual(second.fingerprint, first.fingerprint);
    // Untouched files keep their parse: the very same validated objects.
    assert.equal(second.objects[0]?.object, first.objects[0]?.object);
    assert.equal(second.snapshot.namespaces.get("n5")?.metadata.labels?.["v"], "changed");
  });

  test("the fingerprint depends on the input only", async () => {
    const root = await tempRoot();
    await put(root, "a.yaml", namespace("a"));
    const index = new FileIndex(root);
    const first = await index.reload();
    assert.equal((await index.refresh(["a.yaml"]))?.fingerprint, first.fingerprint, "same text");
    assert.equal((await new FileIndex(root).reload()).fingerprint, first.fingerprint, "another index");
    await put(root, "b.txt", "not read");
    assert.equal((await index.refresh(["b.txt"]))?.fingerprint, first.fingerprint, "not an input file");
    await put(root, "a.yaml", namespace("a", "y"));
    const changed = await index.refresh(["a.yaml"]);
    assert.notEqual(changed?.fingerprint, first.fingerprint);
    await rename(join(root, "a.yaml"), join(root, "c.yaml"));
    const moved = await index.refresh(["a.yaml", "c.yaml"]);
    assert.notEqual(moved?.fingerprint, changed?.fingerprint, "same text under another name");
  });

  test("refresh declines what it cannot do exactly", async () => {
    const root = await tempRoot();
    await put(root, "a.yaml", namespace("a"));
    const index = new FileIndex(root);
    assert.equal(await index.refresh(["a.yaml"]), undefined, "nothing loaded yet");
    const first = await index.reload();
    assert.equal(await index.refresh([""]), undefined, "the path itself");
    assert.equal(await index.refresh(["../x.yaml"]), undefined, "outside");
    assert.equal(await index.refresh(["a.yaml/x.yaml"]), undefined, "below a file");
    assert.ok((await index.refresh(["a.yaml", "b.yaml"])) !== undefined);

    const file = new FileIndex(join(root, "a.yaml"));
    await file.reload();
    assert.equal(await file.refresh(["a.yaml"]), undefined, "a single file is simply reloaded");

    // Hidden entries are not input: without symbolic links in the tree they cannot matter.
    await put(root, ".a.yaml.swp", "junk");
    assert.equal((await index.refresh([".a.yaml.swp", ".git/index"]))?.fingerprint, first.fingerprint);
  });

  test("with a symbolic link in the tree every change is a reload (its target may change unnamed)", async () => {
    const root = await tempRoot();
    await put(root, "v1.yaml", namespace("a", "v1"));
    const index = new FileIndex(root);
    await index.reload();
    await symlink("v1.yaml", join(root, "current.yaml"));
    assert.equal(await index.refresh(["current.yaml"]), undefined, "a new link: its target may be anywhere");
    const linked = await index.reload();
    // One real file, read once (under the first name the walk meets), not a duplicate object.
    assert.deepEqual(linked.errors, []);
    assert.deepEqual(linked.warnings, [
      `${join(root, "v1.yaml")}: skipped: the same file as ${join(root, "current.yaml")} (read once; a symbolic link loop or a second link to it)`,
    ]);
    assert.equal(linked.snapshot.namespaces.get("a")?.metadata.labels?.["v"], "v1");
    await put(root, "v1.yaml", namespace("a", "v2"));
    assert.equal(await index.refresh(["v1.yaml"]), undefined, "the link's text changed too");
    const reloaded = await index.reload();
    assert.deepEqual(plain(reloaded), plain(await loadSnapshot(root)));
    await rm(join(root, "current.yaml"));
    assert.equal(await index.refresh(["current.yaml"]), undefined, "the reload found the link");
    await index.reload();
    assert.ok((await index.refresh(["v1.yaml"])) !== undefined, "no links left: incremental again");
  });

  test("a ConfigMap volume update (hidden ..data link swapped) is followed", async () => {
    const root = await tempRoot();
    await put(root, "..2026_01/app.yaml", namespace("app", "one"));
    await symlink("..2026_01", join(root, "..data"));
    await symlink("..data/app.yaml", join(root, "app.yaml"));
    const index = new FileIndex(root);
    const first = await index.reload();
    assert.equal(first.snapshot.namespaces.get("app")?.metadata.labels?.["v"], "one");
    // What the kubelet does: a new timestamped directory, a new ..data link renamed over the old one.
    await put(root, "..2026_02/app.yaml", namespace("app", "two"));
    await symlink("..2026_02", join(root, "..data_tmp"));
    await rename(join(root, "..data_tmp"), join(root, "..data"));
    await rm(join(root, "..2026_01"), { recursive: true });
    const names = ["..2026_02", "..data_tmp", "..data", "..2026_01"];
    const result = (await index.refresh(names)) ?? (await index.reload());
    assert.equal(result.snapshot.namespaces.get("app")?.metadata.labels?.["v"], "two");
  });

  test("symbolic link loops: each real directory and file is read once, with one note per loop", async () => {
    const root = await tempRoot();
    await put(root, "a.yaml", namespace("a"));
    await put(root, "sub/deeper/b.yaml", namespace("b"));
    await symlink(".", join(root, "loop"));
    await symlink("..", join(root, "sub", "up"));
    await symlink("../..", join(root, "sub", "deeper", "top"));
    const fs = countingFileSystem();
    const listed: string[] = [];
    const readdirTypes = fs.readdirTypes?.bind(fs);
    assert.ok(readdirTypes !== undefined);
    fs.readdirTypes = (path) => {
      listed.push(path);
      return readdirTypes(path);
    };
    const index = new FileIndex(root, fs);
    const result = await index.reload();
    assert.deepEqual(result.errors, []);
    assert.deepEqual([...result.snapshot.namespaces.keys()].sort(), ["a", "b"]);
    assert.deepEqual(fs.reads.sort(), [join(root, "a.yaml"), join(root, "sub/deeper/b.yaml")]);
    assert.deepEqual(listed.sort(), [root, join(root, "sub"), join(root, "sub/deeper")]);
    const note = (path: string, first: string) =>
      `${join(root, path)}: skipped: the same directory as ${first} (read once; a symbolic link loop or a second link to it)`;
    assert.deepEqual(result.warnings, [
      note("loop", root),
      note("sub/deeper/top", root),
      note("sub/up", root),
    ]);
    assert.deepEqual(plain(result), plain(await loadSnapshot(root, fs)), "loadPath walks the same way");
    // With links in the tree every change is a full load, which stays as cheap.
    await put(root, "sub/deeper/b.yaml", namespace("b", "two"));
    assert.equal(await index.refresh(["sub/deeper/b.yaml"]), undefined);
    const again = await index.reload();
    assert.equal(again.snapshot.namespaces.get("b")?.metadata.labels?.["v"], "two");
    // A file system that knows links but not real paths: linked directories are not followed.
    const noRealpath: FileSystem = countingFileSystem();
    delete noRealpath.realpath;
    const blind = await new FileIndex(root, noRealpath).reload();
    assert.deepEqual([...blind.snapshot.namespaces.keys()].sort(), ["a", "b"]);
    assert.equal(blind.warnings.filter((w) => w.includes("not followed")).length, 3);
    assert.deepEqual(plain(blind), plain(await loadSnapshot(root, noRealpath)));
  });

  test("a new link met by a refresh makes it decline (the reload follows it once)", async () => {
    const root = await tempRoot();
    await put(root, "a.yaml", namespace("a"));
    const index = new FileIndex(root);
    await index.reload();
    await mkdir(join(root, "new"));
    await symlink("..", join(root, "new", "up"));
    assert.equal(await index.refresh(["new"]), undefined);
    const result = await index.reload();
    assert.deepEqual([...result.snapshot.namespaces.keys()], ["a"]);
    assert.equal(result.warnings.length, 1);
  });

  test("a walk stops MAX_DEPTH directories down, with one error", async () => {
    const root = await tempRoot();
    const deep = Array.from({ length: MAX_DEPTH + 1 }, (_, i) => `d${i}`).join("/");
    await put(root, `${deep}/x.yaml`, namespace("deep"));
    await put(root, "d0/ok.yaml", namespace("ok"));
    const result = await new FileIndex(root).reload();
    assert.deepEqual([...result.snapshot.namespaces.keys()], ["ok"]);
    assert.deepEqual(
      result.errors.map((error) => error.message),
      [`${join(root, deep)}: not read: more than ${MAX_DEPTH} directory levels deep`],
    );
    assert.deepEqual(plain(result), plain(await loadSnapshot(root)));
  });

  test("oversized and binary files are refused with one short message each", async () => {
    const root = await tempRoot();
    await put(root, "big.yaml", `# ${"x".repeat(2000)}\n`);
    await writeFile(join(root, "bin.yaml"), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x0a, 0xff]));
    await writeFile(join(root, "latin1.yaml"), Buffer.from([0x6e, 0x3a, 0x20, 0xe9, 0x0a]));
    const result = await new FileIndex(root, nodeFileSystem, { maxFileBytes: 1024 }).reload();
    assert.deepEqual(
      result.errors.map((error) => error.message),
      [
        `${join(root, "big.yaml")}: refused: larger than 1 KiB (2 KiB); split it into several files`,
        `${join(root, "bin.yaml")}: refused: not a text file (NUL byte at line 1, column 5)`,
        `${join(root, "latin1.yaml")}: refused: not a text file (not valid UTF-8)`,
      ],
    );
  });

  test("messages are one bounded line: long and control-character-laden input is clipped and escaped", async () => {
    const root = await tempRoot();
    const long = "x".repeat(70_000);
    await put(root, "alias.yaml", `a: *${long}\n`);
    await put(root, "kind.yaml", `apiVersion: v9\nkind: K${long}\nmetadata:\n  name: n\n`);
    await put(root, "name.yaml", `apiVersion: v9\nkind: K\nmetadata:\n  name: "\\e[31m\\n"\n`);
    await put(root, "many.yaml", "a: [\n".repeat(500));
    const result = await new FileIndex(root).reload();
    const lines = [...result.errors.map((error) => error.message), ...result.warnings];
    for (const line of lines) {
      assert.ok(line.length < 600, `${line.length} characters: ${line.slice(0, 200)}`);
      for (let i = 0; i < line.length; i++)
        assert.ok(line.charCodeAt(i) >= 0x20, `a control character in ${line}`);
    }
    assert.ok(
      result.warnings.some((w) => w.endsWith("xxx… (69803 more characters)")),
      result.warnings.join("\n"),
    );
    assert.ok(
      result.warnings.some((w) => w.endsWith("ignoring v9 K \\u001b[31m\\n")),
      result.warnings.join("\n"),
    );
    const many = result.errors.filter((error) => error.file === join(root, "many.yaml"));
    assert.equal(many.length, MAX_PROBLEMS_PER_FILE);
    assert.match(many.at(-1)?.message ?? "", /and \d+ more problems in this file \(not shown\)$/);
  });

  test("keepLastValid: a file that stops parsing keeps its objects, until it parses again or is deleted", async () => {
    const root = await tempRoot();
    await put(root, "a.yaml", `${namespace("a", "v1")}---\n${namespace("b", "v1")}`);
    await put(root, "c.yaml", namespace("c", "v1"));
    const index = new FileIndex(root, nodeFileSystem, {
      keepLastValid: true,
      now: () => new Date("2026-01-01T00:00:00Z"),
    });
    const first = await index.reload();
    await put(root, "a.yaml", `${namespace("a", "v2")}---\nkind: [\n`);
    const broken = await index.refresh(["a.yaml"]);
    assert.ok(broken !== undefined);
    assert.notEqual(broken.fingerprint, first.fingerprint);
    assert.deepEqual(labels(broken), { a: "v1", b: "v1", c: "v1" });
    assert.ok(broken.errors.length >= 1);
    for (const error of broken.errors) {
      assert.ok(error instanceof StaleInputError);
      assert.equal(error.servingSince, "2026-01-01T00:00:00.000Z");
      assert.equal(error.file, join(root, "a.yaml"));
      assert.equal(typeof error.location.line, "number");
    }
    // A full load of the same tree (a rescan) changes nothing: the same fingerprint, nothing to deliver.
    assert.equal((await index.reload()).fingerprint, broken.fingerprint);
    // Binary garbage over a live file: the same.
    await writeFile(join(root, "c.yaml"), Buffer.from([0, 1, 2]));
    const garbage = await index.refresh(["c.yaml"]);
    assert.deepEqual(labels(garbage), { a: "v1", b: "v1", c: "v1" });
    assert.match(garbage?.errors.at(-1)?.message ?? "", /refused: not a text file .*the file is stale/);
    // Parses again: its objects now; deleted: its objects go.
    await put(root, "a.yaml", namespace("a", "v3"));
    assert.deepEqual(labels(await index.refresh(["a.yaml"])), { a: "v3", c: "v1" });
    await rm(join(root, "c.yaml"));
    const deleted = await index.refresh(["c.yaml"]);
    assert.deepEqual(labels(deleted), { a: "v3" });
    assert.deepEqual(deleted?.errors, []);
  });

  test("keepLastValid: an object that stops validating keeps its last valid version", async () => {
    const root = await tempRoot();
    const service = (name: string, port: number) =>
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports:\n    - port: ${port}\n`;
    await put(root, "s.yaml", `${service("a", 80)}---\n${service("b", 80)}`);
    const index = new FileIndex(root, nodeFileSystem, { keepLastValid: true });
    await index.reload();
    await put(root, "s.yaml", `${service("a", 99999)}---\n${service("b", 81)}`);
    const result = await index.refresh(["s.yaml"]);
    const port = (name: string) => result?.snapshot.services.get(`default/${name}`)?.spec?.ports?.[0]?.port;
    assert.equal(port("a"), 80);
    assert.equal(port("b"), 81);
    const error = result?.errors.find((e) => e.field === "spec.ports[0].port");
    assert.ok(error instanceof StaleInputError);
    assert.equal(error.location.line, 7);
  });

  test("reload throws LoadError when the path cannot be read, and forgets everything", async () => {
    const root = await tempRoot();
    await put(root, "cfg/a.yaml", namespace("a"));
    const index = new FileIndex(join(root, "cfg"));
    await index.reload();
    await rm(join(root, "cfg"), { recursive: true });
    await assert.rejects(index.reload(), (error: unknown) => {
      assert.ok(error instanceof LoadError);
      assert.equal(error.message, `${join(root, "cfg")}: does not exist`);
      return true;
    });
    assert.equal(index.size, 0);
    assert.equal(await index.refresh(["a.yaml"]), undefined);
  });

  for (const plainFs of [false, true]) {
    const flavour = plainFs ? "a file system without lstat" : "symbolic links";
    test(`random changes (${flavour}): refresh of the changed paths always equals a full load`, async () => {
      await randomChanges(plainFs);
    });
  }
});

/**
 * Random batches of operations on a real directory; after each, the index refreshes the names a
 * directory watch would report and must equal a fresh full load (and have its fingerprint).
 */
async function randomChanges(plainFs: boolean): Promise<void> {
  const seed = Number(process.env["GATEHOUSE_INDEX_SEED"] ?? Date.now() % 1_000_000);
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const root = await tempRoot();
  const fs = countingFileSystem(plainFs);
  const index = new FileIndex(root, fs);
  await index.reload();
  // Names chosen to exercise the walk order ('-' and '.' sort below and above '/'), hidden and
  // non-YAML entries, and duplicates (few object names, many files).
  const dirs = ["", "a", "a-b", "a.d", "a/b", "a/b/c", "z", ".hidden"];
  const names = ["a.yaml", "a-b.yaml", "a.yml", "b.YAML", "c.yaml", "n.txt", ".swap.yaml", "a"];
  const texts = [
    namespace("one"),
    namespace("two"),
    namespace("one", "other"),
    `${namespace("three")}---\n${namespace("one")}`,
    "kind: [\n",
    "apiVersion: v1\nkind: Namespace\nmetadata: {}\n",
    "apiVersion: v9\nkind: Thing\nmetadata:\n  name: t\n",
    "",
  ];
  const joinRel = (dir: string, name: string) => (dir === "" ? name : `${dir}/${name}`);
  /** mkdir -p, reporting its first new component (all a watch on the existing parent sees). */
  const ensureDir = async (dir: string, changed: string[]): Promise<void> => {
    const segments = dir === "" ? [] : dir.split("/");
    for (let i = 1; i <= segments.length; i++) {
      const prefix = segments.slice(0, i).join("/");
      if (!(await exists(join(root, prefix)))) {
        changed.push(prefix);
        break;
      }
    }
    await mkdir(join(root, dir), { recursive: true });
  };
  let previous: IndexedLoad | undefined;
  let incremental = 0;
  const steps = 300;
  for (let step = 0; step < steps; step++) {
    const changed: string[] = [];
    // One to three operations per batch. Names are reported before an operation that may fail half-way.
    const batch = 1 + Math.floor(random() * 3);
    for (let op = 0; op < batch; op++) {
      const dir = pick(dirs);
      const rel = joinRel(dir, pick(names));
      const path = join(root, rel);
      const action = random();
      try {
        if (action < 0.45) {
          await ensureDir(dir, changed);
          changed.push(rel, ...(await writtenThrough(root, path)));
          await writeFile(path, pick(texts));
        } else if (action < 0.6) {
          changed.push(rel);
          await rm(path, { recursive: true, force: true });
        } else if (action < 0.72) {
          const to = joinRel(pick(dirs), pick(names));
          await ensureDir(dirname(to) === "." ? "" : dirname(to), changed);
          changed.push(rel, to);
          await rename(path, join(root, to));
        } else if (action < 0.78) {
          if (dir === "") continue;
          changed.push(dir);
          await rm(join(root, dir), { recursive: true, force: true });
        } else if (action < 0.84) {
          const to = pick(dirs.filter((d) => d !== "" && !d.startsWith(`${dir}/`)));
          if (dir === "") continue;
          changed.push(dir, to);
          await rm(join(root, to), { recursive: true, force: true });
          await ensureDir(dirname(to) === "." ? "" : dirname(to), changed);
          await rename(join(root, dir), join(root, to));
        } else if (action < 0.88 && !plainFs) {
          // A dangling link or a link to another file of the tree (written later without an event
          // naming the link: the index must then reload).
          await ensureDir(dir, changed);
          changed.push(rel);
          await rm(path, { recursive: true, force: true });
          await symlink(random() < 0.5 ? "missing.yaml" : join(root, "a.yaml"), path);
        } else if (action < 0.92 && !plainFs) {
          // Links removed again, so that the index can go back to refreshing.
          for (const link of await linksUnder(root)) {
            changed.push(link);
            await rm(join(root, link));
          }
        } else if (action < 0.96) {
          // An unreadable file or directory (injected: the tests run as root).
          changed.push(rel);
          if (fs.denied.has(path)) fs.denied.delete(path);
          else fs.denied.add(path);
        } else {
          changed.push(rel, ...(await writtenThrough(root, path)));
          await writeFile(path, pick(texts));
        }
      } catch (error) {
        // The operation did not apply (a missing source, a file where a directory was expected).
        if (!isCode(error, "ENOENT", "ENOTDIR", "EISDIR", "ENOTEMPTY", "EEXIST", "EINVAL", "ELOOP"))
          throw error;
      }
    }
    const where = `seed ${seed}, step ${step}, changed ${changed.join(" ")}`;
    let result = await index.refresh(changed);
    if (result === undefined) result = await index.reload();
    else incremental++;
    assert.deepEqual(plain(result), plain(await loadSnapshot(root, fs)), where);
    assert.equal(result.fingerprint, (await new FileIndex(root, fs).reload()).fingerprint, where);
    if (previous !== undefined && result.fingerprint === previous.fingerprint) {
      assert.deepEqual(plain(result), plain(previous), `${where}: same fingerprint, same input`);
    }
    previous = result;
  }
  assert.ok(incremental > steps / 3, `mostly incremental: ${incremental} of ${steps} (seed ${seed})`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** A write through a symbolic link is reported under the target's name (if it is in the tree). */
async function writtenThrough(root: string, path: string): Promise<string[]> {
  let target: string;
  try {
    target = await realpath(path);
  } catch {
    // A dangling link: the write creates its target.
    try {
      target = resolve(dirname(path), await readlink(path));
    } catch {
      return [];
    }
  }
  const rel = relative(await realpath(root), target);
  return rel.startsWith("..") ? [] : [rel];
}

/** Relative paths of the symbolic links below `root`. */
async function linksUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isSymbolicLink())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === "object" && error !== null && "code" in error && codes.includes(String(error.code));
}

/** A small seeded PRNG (the seed is in every assertion message, to replay a failure). */
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
