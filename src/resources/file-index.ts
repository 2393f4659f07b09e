// The input of a watched path kept up to date file by file: after one full walk, a change re-reads
// only the paths it names (a file: read it; gone: drop it and everything below; a directory: walk
// it), and files whose text did not change keep their parse and validation. The result of every
// load is exactly what `loadSnapshot` of the same tree returns (same objects in the same order, so
// duplicates are decided the same way; same errors and warnings), plus a fingerprint that changes
// exactly when the input does. Whoever knows what changed (the file provider's watch events) calls
// `refresh`; whoever does not (start, a replaced root, lost or unnamed events) calls `reload`.
//
// With `keepLastValid` (the file provider), the index follows a file over time like an API server
// follows an object: a file that stops parsing keeps contributing its last valid version, an object
// that stops validating keeps its last valid version (see last-valid.ts). The result then depends on
// the history, not only on the tree; without it, it equals `loadSnapshot`.
//
// Symbolic links are followed by full loads (`reload`): every real directory and file is read once,
// under the first path the walk meets it at (`loop -> .` is noted and skipped), at most MAX_DEPTH
// directories down, so a loop costs one line, not a walk of every path through it.
import { hash } from "node:crypto";
import { join } from "node:path";
import { InputError, LoadError } from "../errors.ts";
import { DEFAULT_MAX_FILE_BYTES } from "./input-text.ts";
import { nextFileState } from "./last-valid.ts";
import type { FileState } from "./last-valid.ts";
import {
  MAX_DEPTH,
  compareStrings,
  describeFsError,
  duplicateError,
  inputError,
  isYamlName,
  nodeFileSystem,
  parseDocuments,
  readYamlText,
  sameAs,
  tooDeep,
  unfollowed,
  unreadableFile,
} from "./load.ts";
import type { EntryKind, FileKind, FileSystem, LoadResult, ParsedFile, SnapshotLoadResult } from "./load.ts";
import { buildSnapshot } from "./snapshot.ts";

export interface FileIndexOptions {
  /** Keep serving the last valid version of files that stop parsing and objects that stop validating. */
  keepLastValid?: boolean;
  /** Files larger than this are refused unread (default 16 MiB). */
  maxFileBytes?: number;
  /** The wall clock, for "serving the last valid version, read at <time>" (default: the real one). */
  now?: () => Date;
}

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
  | /**
     * A YAML file read; `parsed` is kept while its text stays the same. `state` is what it
     * contributes and `errors` its problems (both its parse's, unless last valid versions are kept).
     */
    {
      readonly kind: "file";
      readonly file: string;
      readonly text: string;
      readonly parsed: ParsedFile;
      readonly state: FileState;
      readonly errors: readonly InputError[];
    }
    /** A YAML file that could not be read or was refused (reported among the files' problems, in file order). */
  | {
      readonly kind: "unreadable";
      readonly state: FileState;
      readonly errors: readonly InputError[];
    }
  /** An entry that could not be stat'ed or a directory that could not be listed (reported first, as the walk finds them). */
  | { readonly kind: "walk"; readonly error: InputError }
  /** A path skipped because its real directory or file was met before (a warning, in walk order). */
  | { readonly kind: "note"; readonly warning: string }
);

/** What a walk found: files to read, problems or notes (in load order), and symbolic links. */
interface Found {
  readonly files: Array<{ readonly rel: string; readonly error?: InputError; readonly note?: string }>;
  readonly links: string[];
}

/**
 * Real paths met by a full walk (→ the relative path first met at), so that each is read once.
 * Absent while refreshing: a refresh does not follow links (it declines when it meets one).
 */
interface Guard {
  readonly dirs: Map<string, string>;
  readonly files: Map<string, string>;
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
  readonly #keepLastValid: boolean;
  readonly #maxFileBytes: number;
  readonly #now: () => Date;
  /** Numbers states kept from earlier versions, so that each has a mark of its own (see #read). */
  #kept = 0;
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

  constructor(path: string, fs: FileSystem = nodeFileSystem, options: FileIndexOptions = {}) {
    this.path = path;
    this.#fs = fs;
    this.#keepLastValid = options.keepLastValid ?? false;
    this.#maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.#now = options.now ?? (() => new Date());
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
        const real = this.#fs.realpath === undefined ? this.path : await this.#fs.realpath(this.path);
        const guard: Guard = { dirs: new Map([[real, ""]]), files: new Map() };
        await this.#walk("", found, true, { guard, real });
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
    // A symbolic link appeared: its target may be anywhere (a loop, a file read elsewhere too).
    if (scans.some((scan) => scan.links.length > 0)) return undefined;
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
      return { entries: [[rel, problem(rel, cannotRead(path, error))]], links: link ? [rel] : [] };
    }
    const links = link ? [rel] : [];
    if (link) return { entries: [], links };
    if (info.isDirectory()) {
      const found: Found = { files: [], links };
      await this.#walk(rel, found, false);
      if (found.links.length > 0) return { entries: [], links: found.links };
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
   * YAML files to read, problems, notes, symbolic links. Throws only for the root (the whole load
   * fails). With `follow` (a full load), symbolic links are followed and every real directory and
   * file is taken once (`real`: the real path of `rel`); without it (a refresh), links are only
   * recorded.
   */
  async #walk(
    rel: string,
    found: Found,
    root: boolean,
    follow?: { guard: Guard; real: string },
  ): Promise<void> {
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
        error: inputError(
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
    const realpath = this.#fs.realpath?.bind(this.#fs);
    // The listing's own kinds spare a stat, except for links (followed) and unknown kinds. The real
    // path of an entry that is not a link is its directory's plus its name.
    const kinds = await mapLimit(visible, STAT_CONCURRENCY, async ({ name, kind }) => {
      const path = join(dir, name);
      const real = follow === undefined ? path : join(follow.real, name);
      if (kind !== undefined && !kind.isSymbolicLink() && (kind.isFile() || kind.isDirectory())) {
        return { info: kind, real };
      }
      if (follow === undefined && kind?.isSymbolicLink() === true) return { link: true as const };
      try {
        const info = await this.#fs.stat(path);
        if (kind?.isSymbolicLink() !== true)
          return { info, real: realpath === undefined ? real : await realpath(path) };
        // Without real paths a loop cannot be told from a tree: a linked directory is not followed.
        if (realpath === undefined)
          return info.isDirectory() ? { unfollowed: true as const } : { info, real };
        return { info, real: await realpath(path) };
      } catch (error) {
        return { error };
      }
    });
    const depth = rel === "" ? 0 : rel.split("/").length;
    for (const [i, { name, kind }] of visible.entries()) {
      const child = rel === "" ? name : `${rel}/${name}`;
      if (kind?.isSymbolicLink() === true) found.links.push(child);
      const result = kinds[i];
      if (result === undefined || "link" in result) continue;
      if ("unfollowed" in result) {
        found.files.push({ rel: child, note: unfollowed(join(dir, name)) });
        continue;
      }
      if ("error" in result) {
        found.files.push({ rel: child, error: cannotRead(join(dir, name), result.error) });
      } else if (result.info.isDirectory()) {
        const first = follow?.guard.dirs.get(result.real);
        if (first !== undefined) {
          found.files.push({ rel: child, note: sameAs(join(dir, name), "directory", this.#absolute(first)) });
        } else if (depth + 1 > MAX_DEPTH) {
          found.files.push({ rel: child, error: tooDeep(join(dir, name)) });
        } else {
          follow?.guard.dirs.set(result.real, child);
          await this.#walk(child, found, false, follow && { guard: follow.guard, real: result.real });
        }
      } else if (result.info.isFile() && isYamlName(name)) {
        const first = follow?.guard.files.get(result.real);
        if (first !== undefined) {
          found.files.push({ rel: child, note: sameAs(join(dir, name), "file", this.#absolute(first)) });
        } else {
          follow?.guard.files.set(result.real, child);
          found.files.push({ rel: child });
        }
      }
    }
  }

  /** Reads what a walk found, several files at a time, keeping the order. */
  #readAll(found: Found): Promise<Array<[string, Entry]>> {
    return mapLimit(found.files, READ_CONCURRENCY, async ({ rel, error, note }): Promise<[string, Entry]> => {
      if (note !== undefined)
        return [rel, { kind: "note", warning: note, mark: digest(`note\0${rel}\0${note}`) }];
      return [rel, error === undefined ? await this.#read(rel) : problem(rel, error)];
    });
  }

  /**
   * Reads one file; the entry known is reused when the text is the same (no parse, no validation).
   * The entry known before (the file's previous version) gives the state kept when the new version
   * is not valid (with keepLastValid).
   */
  async #read(rel: string): Promise<Entry> {
    const file = this.#absolute(rel);
    const previous = this.#entries.get(rel);
    const before = previous?.kind === "file" || previous?.kind === "unreadable" ? previous.state : undefined;
    let text: string;
    try {
      text = await readYamlText(this.#fs, file, this.#maxFileBytes);
    } catch (error) {
      const unreadable = unreadableFile(file, error);
      const base = `unreadable\0${rel}\0${unreadable.message}`;
      if (!this.#keepLastValid) {
        return { kind: "unreadable", state: EMPTY_STATE, errors: [unreadable], mark: digest(base) };
      }
      const outcome = nextFileState(before, { unreadable }, this.#now().toISOString());
      if (previous?.kind === "unreadable" && sameErrors(previous.errors, outcome.errors)) return previous;
      const mark = digest(outcome.kept ? `${base}\0kept ${++this.#kept}` : base);
      return { kind: "unreadable", state: outcome.state, errors: outcome.errors, mark };
    }
    if (previous?.kind === "file" && previous.file === file && previous.text === text) return previous;
    const parsed = parseDocuments(text, file);
    const base = `file\0${rel}\0${hash("sha256", text)}`;
    if (!this.#keepLastValid) {
      const state: FileState = { objects: parsed.objects, since: new Map() };
      return { kind: "file", mark: digest(base), file, text, parsed, state, errors: parsed.errors };
    }
    const outcome = nextFileState(before, { parsed }, this.#now().toISOString());
    // What is kept comes from the history, not the text: a mark of its own makes the fingerprint
    // change (the provider delivers only what differs from the last update).
    const mark = digest(outcome.kept ? `${base}\0kept ${++this.#kept}` : base);
    return { kind: "file", mark, file, text, parsed, state: outcome.state, errors: outcome.errors };
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
        objects.push(...entry.state.objects);
        fileErrors.push(...entry.errors);
        warnings.push(...entry.parsed.warnings);
      } else if (entry.kind === "unreadable") {
        objects.push(...entry.state.objects);
        fileErrors.push(...entry.errors);
      } else if (entry.kind === "walk") {
        walkErrors.push(entry.error);
      } else {
        warnings.push(entry.warning);
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

/** A problem of the walk at `rel`. */
function problem(rel: string, error: InputError): Entry {
  return { kind: "walk", error, mark: digest(`walk\0${rel}\0${error.message}`) };
}

const EMPTY_STATE: FileState = { objects: [], since: new Map() };

function digest(text: string): Buffer {
  return hash("sha256", text, "buffer");
}

function sameErrors(a: readonly InputError[], b: readonly InputError[]): boolean {
  return a.length === b.length && a.every((error, i) => error.message === b[i]?.message);
}

/** target ^= mark (both 32 bytes). */
function xorInto(target: Buffer, mark: Buffer): void {
  for (let i = 0; i < target.length; i++) target[i] = (target[i] ?? 0) ^ (mark[i] ?? 0);
}

function cannotRead(file: string, error: unknown): InputError {
  return inputError(`cannot read: ${describeFsError(error)}`, { file }, { cause: error });
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
