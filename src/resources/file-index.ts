// The input of a watched path kept up to date file by file: after one full walk, a change re-reads
// only the paths it names (a file: read it; gone: drop it and everything below; a directory: walk
// it), and files whose text did not change keep their parse and validation. The result of every
// load is exactly what `loadSnapshot` of the same tree returns (same objects in the same order, so
// duplicates are decided the same way; same errors and warnings), plus a fingerprint that changes
// exactly when the input does. Whoever knows what changed (the file provider's watch events) calls
// `refresh`; whoever does not (start, a replaced root, lost or unnamed events) calls `reload`.
import { hash } from "node:crypto";
import { join } from "node:path";
import { InputError, LoadError } from "../errors.ts";
import {
  compareStrings,
  describeFsError,
  duplicateError,
  isYamlName,
  nodeFileSystem,
  parseDocuments,
} from "./load.ts";
import type { EntryKind, FileKind, FileSystem, LoadResult, SnapshotLoadResult } from "./load.ts";
import { buildSnapshot } from "./snapshot.ts";

export interface IndexedLoad extends SnapshotLoadResult {
  /**
   * Changes exactly when the input does: covers every file's path and text (by digest) and every
   * problem. Two loads of the same input have the same fingerprint.
   */
  fingerprint: string;
}

/**
 * What the walk found at one path, in load order. `mark` identifies the entry (its kind, path and
 * text digest or problem): the fingerprint combines the marks of all entries.
 */
type Entry = { readonly mark: Buffer } & (
  | /** A YAML file read; `parsed` is kept while its text stays the same. */
    {
      readonly kind: "file";
      readonly file: string;
      readonly text: string;
      readonly parsed: LoadResult;
    }
    /** A YAML file that could not be read (reported among the files' problems, in file order). */
  | { readonly kind: "unreadable"; readonly error: InputError }
  /** An entry that could not be stat'ed or a directory that could not be listed (reported first, as the walk finds them). */
  | { readonly kind: "walk"; readonly error: InputError }
);

/** What a walk found: files to read or problems met (in load order), and symbolic links. */
interface Found {
  readonly files: Array<{ readonly rel: string; readonly error?: InputError }>;
  readonly links: string[];
}

/** What a refresh found at one named path and below. */
interface Scan {
  readonly entries: ReadonlyArray<[string, Entry]>;
  readonly links: readonly string[];
}

/** Files read at the same time during a walk (each readFile holds a descriptor). */
const READ_CONCURRENCY = 32;
/** stat calls at the same time while listing a directory. */
const STAT_CONCURRENCY = 64;

export class FileIndex {
  /** The file or directory loaded, as given (sources name files below it with `join(path, …)`). */
  readonly path: string;
  readonly #fs: FileSystem;
  /** What the last reload found: `refresh` only works below a directory. */
  #mode: "none" | "file" | "directory" = "none";
  /** Paths relative to `path` ("" for a single file), in load order (see comparePaths). */
  #order: string[] = [];
  readonly #entries = new Map<string, Entry>();
  /** The XOR of every entry's mark: kept up to date entry by entry, so fingerprinting is O(change). */
  readonly #marks = Buffer.alloc(32);
  /**
   * Visible paths that are symbolic links. What such a path shows can change without any event
   * naming it (its target was written, or a ConfigMap volume's hidden `..data` link was swapped), so
   * while there are any, `refresh` declines and every change is a reload.
   */
  readonly #links = new Set<string>();

  constructor(path: string, fs: FileSystem = nodeFileSystem) {
    this.path = path;
    this.#fs = fs;
  }

  /** Entries known (files, unreadable files, problems): for tests and diagnostics. */
  get size(): number {
    return this.#order.length;
  }

  /**
   * Walks and reads everything again (unchanged texts keep their parse). Throws LoadError, and
   * forgets everything, when the path itself cannot be read (as loadPath does).
   */
  async reload(): Promise<IndexedLoad> {
    let info: FileKind;
    try {
      info = await this.#fs.stat(this.path);
    } catch (error) {
      this.#forget();
      throw new LoadError(`${this.path}: ${describeFsError(error)}`, this.path, { cause: error });
    }
    const found: Found = { files: [], links: [] };
    if (info.isFile()) {
      found.files.push({ rel: "" });
    } else if (info.isDirectory()) {
      try {
        await this.#walk("", found, true);
      } catch (error) {
        this.#forget();
        throw new LoadError(`${this.path}: ${describeFsError(error)}`, this.path, { cause: error });
      }
    } else {
      this.#forget();
      throw new LoadError(`${this.path}: not a file or directory`, this.path);
    }
    const entries = await this.#readAll(found);
    this.#forget();
    this.#mode = info.isFile() ? "file" : "directory";
    for (const [rel, entry] of entries) {
      this.#order.push(rel);
      this.#entries.set(rel, entry);
      xorInto(this.#marks, entry.mark);
    }
    for (const link of found.links) this.#links.add(link);
    return this.#result();
  }

  /**
   * Brings the named paths (relative to `path`, as a tree watch reports them) up to date and returns
   * the new result; the rest of the tree is taken as unchanged. Hidden paths (a name starting with
   * `.` anywhere) are not part of the input and are ignored. Returns undefined when the change cannot
   * be followed exactly: no directory loaded, the path itself named, a symbolic link in the tree (see
   * `#links`), or a path below something that is not a readable directory. Call `reload` then.
   */
  async refresh(paths: Iterable<string>): Promise<IndexedLoad | undefined> {
    if (this.#mode !== "directory" || this.#links.size > 0) return undefined;
    const named: string[] = [];
    for (const rel of paths) {
      const segments = rel.split("/");
      if (segments.some((segment) => segment === "" || segment === "..")) return undefined;
      if (!segments.some((segment) => segment.startsWith("."))) named.push(rel);
    }
    const targets = outermost(named);
    for (const rel of targets) {
      for (let i = rel.indexOf("/"); i >= 0; i = rel.indexOf("/", i + 1)) {
        if (this.#entries.has(rel.slice(0, i))) return undefined;
      }
    }
    const listings = new Map<string, Promise<ReadonlySet<string> | undefined>>();
    const scans = await mapLimit(targets, READ_CONCURRENCY, (rel) => this.#scan(rel, listings));
    targets.forEach((rel, i) => {
      const scan = scans[i];
      if (scan !== undefined) this.#replace(rel, scan);
    });
    return this.#result();
  }

  /** What a full walk would find at `rel` and below, read. */
  async #scan(rel: string, listings: Map<string, Promise<ReadonlySet<string> | undefined>>): Promise<Scan> {
    const path = join(this.path, rel);
    const none: Scan = { entries: [], links: [] };
    let info: FileKind;
    let link = false;
    try {
      if (this.#fs.lstat === undefined) {
        info = await this.#fs.stat(path);
      } else {
        const own = await this.#fs.lstat(path);
        link = own.isSymbolicLink();
        info = link ? await this.#fs.stat(path) : own;
      }
    } catch (error) {
      // lstat found nothing: gone. Otherwise the name may still be listed (a dangling symbolic link,
      // no permission): the full walk reports it when its directory lists it.
      const gone = !link && this.#fs.lstat !== undefined && isCode(error, "ENOENT", "ENOTDIR");
      if (gone) return none;
      const slash = rel.lastIndexOf("/");
      const parent = slash < 0 ? "" : rel.slice(0, slash);
      let listing = listings.get(parent);
      if (listing === undefined) {
        listing = this.#fs.readdir(this.#absolute(parent)).then(
          (names) => new Set(names),
          () => undefined,
        );
        listings.set(parent, listing);
      }
      if (!(await listing)?.has(rel.slice(slash + 1))) return none;
      return { entries: [[rel, problem("walk", rel, cannotRead(path, error))]], links: link ? [rel] : [] };
    }
    const links = link ? [rel] : [];
    if (info.isDirectory()) {
      const found: Found = { files: [], links };
      await this.#walk(rel, found, false);
      return { entries: await this.#readAll(found), links };
    }
    if (info.isFile() && isYamlName(rel.slice(rel.lastIndexOf("/") + 1))) {
      return { entries: [[rel, await this.#read(rel)]], links };
    }
    return { entries: [], links };
  }

  /** Replaces what is known at `rel` and below by `scan` (entries sorted, all at `rel` or below). */
  #replace(rel: string, scan: Scan): void {
    const order = this.#order;
    const start = lowerBound(order, rel);
    let end = start;
    const below = `${rel}/`;
    for (; end < order.length; end++) {
      const key = order[end] ?? "";
      if (key !== rel && !key.startsWith(below)) break;
      const entry = this.#entries.get(key);
      if (entry !== undefined) xorInto(this.#marks, entry.mark);
      this.#entries.delete(key);
    }
    for (const link of this.#links) if (link === rel || link.startsWith(below)) this.#links.delete(link);
    const keys = scan.entries.map(([key]) => key);
    if (keys.length < 1000) order.splice(start, end - start, ...keys);
    else this.#order = [...order.slice(0, start), ...keys, ...order.slice(end)];
    for (const [key, entry] of scan.entries) {
      this.#entries.set(key, entry);
      xorInto(this.#marks, entry.mark);
    }
    for (const link of scan.links) this.#links.add(link);
  }

  /**
   * Lists the directory at `rel` depth first, names sorted, hidden names skipped, into `found`:
   * YAML files to read, problems, symbolic links. Throws only for the root (the whole load fails).
   */
  async #walk(rel: string, found: Found, root: boolean): Promise<void> {
    const dir = this.#absolute(rel);
    let listed: Array<{ name: string; kind?: EntryKind }>;
    try {
      listed =
        this.#fs.readdirTypes === undefined
          ? (await this.#fs.readdir(dir)).map((name) => ({ name }))
          : (await this.#fs.readdirTypes(dir)).map((kind) => ({ name: kind.name, kind }));
    } catch (error) {
      if (root) throw error;
      found.files.push({
        rel,
        error: new InputError(
          `cannot read directory: ${describeFsError(error)}`,
          { file: dir },
          { cause: error },
        ),
      });
      return;
    }
    const visible = listed
      .filter(({ name }) => !name.startsWith("."))
      .sort((a, b) => compareStrings(a.name, b.name));
    // The listing's own kinds spare a stat, except for links (followed) and unknown kinds.
    const kinds = await mapLimit(visible, STAT_CONCURRENCY, async ({ name, kind }) => {
      if (kind !== undefined && !kind.isSymbolicLink() && (kind.isFile() || kind.isDirectory())) {
        return { info: kind };
      }
      try {
        return { info: await this.#fs.stat(join(dir, name)) };
      } catch (error) {
        return { error };
      }
    });
    for (const [i, { name, kind }] of visible.entries()) {
      const child = rel === "" ? name : `${rel}/${name}`;
      if (kind?.isSymbolicLink() === true) found.links.push(child);
      const result = kinds[i];
      if (result === undefined) continue;
      if ("error" in result) {
        found.files.push({ rel: child, error: cannotRead(join(dir, name), result.error) });
      } else if (result.info.isDirectory()) {
        await this.#walk(child, found, false);
      } else if (result.info.isFile() && isYamlName(name)) {
        found.files.push({ rel: child });
      }
    }
  }

  /** Reads what a walk found, several files at a time, keeping the order. */
  #readAll(found: Found): Promise<Array<[string, Entry]>> {
    return mapLimit(found.files, READ_CONCURRENCY, async ({ rel, error }): Promise<[string, Entry]> => {
      return [rel, error === undefined ? await this.#read(rel) : problem("walk", rel, error)];
    });
  }

  /** Reads one file; the entry known is reused when the text is the same. */
  async #read(rel: string): Promise<Entry> {
    const file = this.#absolute(rel);
    let text: string;
    try {
      text = await this.#fs.readFile(file, "utf8");
    } catch (error) {
      return problem("unreadable", rel, cannotRead(file, error));
    }
    const previous = this.#entries.get(rel);
    if (previous?.kind === "file" && previous.file === file && previous.text === text) return previous;
    const mark = hash("sha256", `file\0${rel}\0${hash("sha256", text)}`, "buffer");
    return { kind: "file", mark, file, text, parsed: parseDocuments(text, file) };
  }

  /** The load result of the current entries: walk problems first, then each file's, as loadPath orders them. */
  #result(): IndexedLoad {
    const objects: LoadResult["objects"] = [];
    const walkErrors: InputError[] = [];
    const fileErrors: InputError[] = [];
    const warnings: string[] = [];
    for (const rel of this.#order) {
      const entry = this.#entries.get(rel);
      if (entry === undefined) continue;
      if (entry.kind === "file") {
        objects.push(...entry.parsed.objects);
        fileErrors.push(...entry.parsed.errors);
        warnings.push(...entry.parsed.warnings);
      } else {
        (entry.kind === "walk" ? walkErrors : fileErrors).push(entry.error);
      }
    }
    const { snapshot, duplicates } = buildSnapshot(objects);
    const errors = [...walkErrors, ...fileErrors, ...duplicates.map(duplicateError)];
    // The marks cover every path, text and problem of the walk; the rest (parse problems, warnings,
    // duplicates) follows from them.
    const fingerprint = hash("sha256", `${this.#mode}\0${this.path}\0${this.#marks.toString("hex")}`);
    return { snapshot, objects, errors, warnings, fingerprint };
  }

  #absolute(rel: string): string {
    return rel === "" ? this.path : join(this.path, rel);
  }

  #forget(): void {
    this.#mode = "none";
    this.#order = [];
    this.#entries.clear();
    this.#marks.fill(0);
    this.#links.clear();
  }
}

function problem(kind: "walk" | "unreadable", rel: string, error: InputError): Entry {
  return { kind, error, mark: hash("sha256", `${kind}\0${rel}\0${error.message}`, "buffer") };
}

/** target ^= mark (both 32 bytes). */
function xorInto(target: Buffer, mark: Buffer): void {
  for (let i = 0; i < target.length; i++) target[i] = (target[i] ?? 0) ^ (mark[i] ?? 0);
}

function cannotRead(file: string, error: unknown): InputError {
  return new InputError(`cannot read: ${describeFsError(error)}`, { file }, { cause: error });
}

/**
 * The order of a depth-first walk with sorted names, on relative paths: segment by segment, that is
 * by UTF-16 code unit with `/` below every other character (`a/x.yaml` before `a-b.yaml` and `a.yaml`).
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 47) return -1;
    if (y === 47) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/** The first index whose path does not sort before `rel`. */
function lowerBound(order: readonly string[], rel: string): number {
  let low = 0;
  let high = order.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (comparePaths(order[mid] ?? "", rel) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The distinct paths, sorted, without those below another one of them (walking that covers them). */
function outermost(paths: Iterable<string>): string[] {
  const sorted = [...new Set(paths)].sort(comparePaths);
  const kept: string[] = [];
  for (const rel of sorted) {
    const last = kept.at(-1);
    if (last !== undefined && rel.startsWith(`${last}/`)) continue;
    kept.push(rel);
  }
  return kept;
}

/** `fn` over `items` with at most `limit` calls pending at once; results in the order of `items`. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === "object" && error !== null && "code" in error && codes.includes(String(error.code));
}
