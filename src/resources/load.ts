// Loads Kubernetes objects from YAML files: one file, or a directory tree of `*.yaml`/`*.yml` files.
// Bad input never aborts a load: every problem becomes an InputError (or a warning) and the rest of
// the input still loads. Only a path that cannot be read at all throws (LoadError).
//
// A file that does not parse as a whole (a YAML syntax error, a document that is not an identifiable
// object) is marked `broken`: a one-shot load (translate) still takes its valid documents, the file
// provider keeps serving the file's last valid version instead (see last-valid.ts), since which
// object a broken document was meant to be is unknown. Files are refused unread when over a size
// limit, and unparsed when not text (input-text.ts). Symbolic links are followed, each real
// directory and file is read once (loops end there), and the walk stops MAX_DEPTH directories down.
import { lstat, readFile, readdir, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Document } from "yaml";
import {
  DuplicateObjectError,
  InputError,
  LoadError,
  RefusedFileError,
  formatInputProblem,
  formatObject,
} from "../errors.ts";
import type { InputLocation } from "../errors.ts";
import {
  DEFAULT_MAX_FILE_BYTES,
  boundedText,
  checkText,
  decodeText,
  needsBounding,
  readLimited,
} from "./input-text.ts";
import { fieldOffset } from "./field-position.ts";
import type { KubeObject } from "./meta.ts";
import { buildSnapshot, isClusterScoped, objectKey, snapshotField } from "./snapshot.ts";
import type { DuplicateObject, Snapshot, Source } from "./snapshot.ts";
import { validateObject } from "./validate.ts";
import { fastDocuments } from "./yaml-fast.ts";
import { yamlLibrary } from "./yaml-lib.ts";

/** What a stat call tells the loader. */
export interface FileKind {
  isFile(): boolean;
  isDirectory(): boolean;
}

/** What lstat or a typed directory listing tells: the entry itself, a symbolic link not followed. */
export interface EntryKind extends FileKind {
  isSymbolicLink(): boolean;
}

/** The few file-system calls the loader needs; injectable for tests. Defaults to node:fs/promises. */
export interface FileSystem {
  readFile(path: string, encoding: "utf8"): Promise<string>;
  /** Follows symbolic links. */
  stat(path: string): Promise<FileKind>;
  readdir(path: string): Promise<string[]>;
  /**
   * Like stat, but about a symbolic link itself. Optional, with `readdirTypes`: a file system
   * without them has no symbolic links (FileIndex relies on knowing where links are).
   */
  lstat?(path: string): Promise<EntryKind>;
  /** readdir with each entry's own kind (node:fs `withFileTypes`). Optional, see `lstat`. */
  readdirTypes?(path: string): Promise<Array<EntryKind & { name: string }>>;
  /**
   * The file's bytes; throws RefusedFileError, without reading it, when it is larger than `limit`.
   * Optional: without it, `readFile` is used and the limit checked afterwards.
   */
  readBytes?(path: string, limit: number): Promise<Uint8Array>;
  /**
   * The canonical path (symbolic links resolved), to read each real directory and file once.
   * Optional: a file system without it has no symbolic links.
   */
  realpath?(path: string): Promise<string>;
}

export const nodeFileSystem: FileSystem = {
  readFile,
  stat,
  readdir,
  lstat,
  readdirTypes: (path) => readdir(path, { withFileTypes: true }),
  readBytes: readLimited,
  realpath: (path) => realpath(path),
};

/** How many directories deep below the loaded path a walk goes (symbolic links included). */
export const MAX_DEPTH = 32;

/** Problems reported per file; more are summed up in one line (a garbage file has hundreds). */
export const MAX_PROBLEMS_PER_FILE = 20;

/**
 * Reads a file as YAML text: refused (RefusedFileError) when larger than `limit` bytes or not text.
 * Throws the file-system error when it cannot be read.
 */
export async function readYamlText(
  fs: FileSystem,
  path: string,
  limit: number = DEFAULT_MAX_FILE_BYTES,
): Promise<string> {
  if (fs.readBytes !== undefined) return decodeText(await fs.readBytes(path, limit), path);
  return checkText(await fs.readFile(path, "utf8"), path, limit);
}

/** The problem reported for a file that cannot be read (or is refused). */
export function unreadableFile(file: string, error: unknown): InputError {
  const detail = error instanceof RefusedFileError ? error.message : `cannot read: ${describeFsError(error)}`;
  return inputError(detail, { file }, { cause: error });
}

export interface LoadedObject {
  /** The object with schema defaults applied. */
  object: KubeObject;
  /** `file` and document `index`; `description` is `items[i]` for an item of a `kind: List`. */
  source: Source;
}

export interface LoadResult {
  /** Valid objects of the kinds Gatehouse reads, in input order (files sorted, documents in order). */
  objects: LoadedObject[];
  /** One per problem; the object (or document, or file) concerned is left out of `objects`. */
  errors: InputError[];
  /** Harmless oddities, one line each (ignored kinds, YAML warnings). */
  warnings: string[];
}

export interface SnapshotLoadResult extends LoadResult {
  /** The snapshot built from `objects` (duplicates dropped, namespaces implied, see buildSnapshot). */
  snapshot: Snapshot;
}

/** An object that failed validation: what identifies it, where it is, and why it was rejected. */
export interface RejectedObject {
  /** Identity across versions of the file (see identityOf). */
  identity: string;
  /** Its place among the file's `objects`: it would have been inserted at this index. */
  position: number;
  errors: InputError[];
}

/** What one file holds. */
export interface ParsedFile extends LoadResult {
  /**
   * The file does not parse as a whole (a YAML syntax error, a document that is not an object with
   * apiVersion, kind and metadata.name, a malformed List): `objects` holds only the documents that
   * did, `errors` says why. Which object a broken document was meant to be is unknown.
   */
  broken: boolean;
  /** Identified objects that failed schema or CEL validation (left out of `objects`). */
  rejected: RejectedObject[];
}

/** What identifies an object across versions of a file: kind, namespace (defaulted) and name. */
export function identityOf(object: KubeObject): string {
  return `${object.kind}\0${objectKey(object)}`;
}

/** `file#index`, `file#index.items[i]` for a List item, or the description of a non-file source. */
export function formatSource(source: Source): string {
  if (source.file === undefined) return source.description ?? "<unknown>";
  const doc = source.index === undefined ? source.file : `${source.file}#${source.index}`;
  return source.description === undefined ? doc : `${doc}.${source.description}`;
}

/**
 * Loads every object under `path`: a file (read whatever its extension) or a directory walked
 * recursively in sorted order, reading only `*.yaml`/`*.yml` and skipping hidden entries (names
 * starting with `.`). Throws LoadError only when `path` itself cannot be read. For a path loaded
 * again and again (watched), FileIndex gives the same result re-reading only what changed.
 */
export async function loadPath(
  path: string,
  fs: FileSystem = nodeFileSystem,
  maxFileBytes: number = DEFAULT_MAX_FILE_BYTES,
): Promise<LoadResult> {
  const result: LoadResult = { objects: [], errors: [], warnings: [] };
  let items: WalkItem[];
  try {
    const info = await fs.stat(path);
    if (info.isFile()) items = [{ file: path }];
    else if (info.isDirectory()) {
      const real = fs.realpath === undefined ? path : await fs.realpath(path);
      const guard: WalkGuard = { dirs: new Map([[real, path]]), files: new Map() };
      items = await yamlFilesUnder(path, real, fs, result.errors, guard, 0);
    } else throw new LoadError(`${path}: not a file or directory`, path);
  } catch (error) {
    if (error instanceof LoadError) throw error;
    throw new LoadError(`${path}: ${describeFsError(error)}`, path, { cause: error });
  }
  for (const item of items) {
    if ("warning" in item) {
      result.warnings.push(item.warning);
      continue;
    }
    const { file } = item;
    let text: string;
    try {
      text = await readYamlText(fs, file, maxFileBytes);
    } catch (error) {
      result.errors.push(unreadableFile(file, error));
      continue;
    }
    const parsed = parseDocuments(text, file);
    result.objects.push(...parsed.objects);
    result.errors.push(...parsed.errors);
    result.warnings.push(...parsed.warnings);
  }
  return result;
}

/** loadPath, then buildSnapshot; every duplicate object becomes a DuplicateObjectError. */
export async function loadSnapshot(
  path: string,
  fs: FileSystem = nodeFileSystem,
): Promise<SnapshotLoadResult> {
  const loaded = await loadPath(path, fs);
  const { snapshot, duplicates } = buildSnapshot(loaded.objects);
  return { ...loaded, errors: [...loaded.errors, ...duplicates.map(duplicateError)], snapshot };
}

/**
 * Parses a multi-document YAML text. Empty documents are skipped; a document with a syntax error is
 * reported (with line and column) and skipped, the other documents still load, and the file is
 * `broken` (the file provider then keeps the file's last valid version instead). Objects failing
 * validation are reported with their field, and its line and column when the field is in the text,
 * and listed in `rejected`. At most MAX_PROBLEMS_PER_FILE problems are reported one by one; every
 * message is one bounded line.
 */
export function parseDocuments(text: string, file: string, options: ParseOptions = {}): ParsedFile {
  const fast = options.fast === false ? undefined : fastDocuments(text);
  if (fast === undefined) return parseWithYaml(text, file);
  const result: ParsedFile = { objects: [], errors: [], warnings: [], broken: false, rejected: [] };
  const lines = new LinePositions(text);
  fast.values.forEach((value, index) => {
    if (value === null || value === undefined) return;
    const where: InputLocation = { file, index };
    let doc: Document | undefined | null = null;
    let base = 0;
    const locate = (path: string): InputLocation => {
      // Only for a rejected object: its document alone is parsed again, with the `yaml` library.
      if (doc === null) ({ doc, base } = reparseDocument(text, fast.starts, index));
      const offset = doc === undefined ? undefined : fieldOffset(doc, path);
      if (offset === undefined) return {};
      const { line, column } = lines.at(base + offset);
      return { line, column };
    };
    addDocument(value, where, result, locate);
  });
  return finish(result, file);
}

export interface ParseOptions {
  /** false: parse with the `yaml` library only (the fast path is for plain YAML, see yaml-fast.ts). */
  fast?: boolean;
}

/**
 * Document `index` of `text` parsed again with the `yaml` library, and the offset in `text` its
 * offsets count from: only its own lines are parsed (from the line where it starts to the line where
 * the next document starts), or the whole text when that does not give a clean document.
 */
function reparseDocument(
  text: string,
  starts: number[],
  index: number,
): { doc: Document | undefined; base: number } {
  const start = starts[index] ?? -1;
  if (start >= 0) {
    const from = text.lastIndexOf("\n", start - 1) + 1;
    const next = starts.slice(index + 1).find((s) => s >= 0);
    const to = next === undefined ? text.length : text.lastIndexOf("\n", next - 1) + 1;
    const docs = yamlLibrary().parseAllDocuments(text.slice(from, to), { prettyErrors: false, merge: true });
    const first = "empty" in docs ? undefined : docs[0];
    if (first !== undefined && first.errors.length === 0) return { doc: first, base: from };
  }
  const docs = yamlLibrary().parseAllDocuments(text, { prettyErrors: false, merge: true });
  return { doc: "empty" in docs ? undefined : docs[index], base: 0 };
}

/** Line and column (1-based, as the `yaml` library's LineCounter counts) of offsets in a text. */
class LinePositions {
  readonly #text: string;
  #starts: number[] | undefined;
  constructor(text: string) {
    this.#text = text;
  }
  at(offset: number): { line: number; column: number } {
    if (this.#starts === undefined) {
      const starts = [0];
      for (let i = this.#text.indexOf("\n"); i >= 0; i = this.#text.indexOf("\n", i + 1)) starts.push(i + 1);
      this.#starts = starts;
    }
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (starts[lo] ?? 0) + 1 };
  }
}

/** parseDocuments with the `yaml` library: syntax errors and warnings with line and column. */
function parseWithYaml(text: string, file: string): ParsedFile {
  const result: ParsedFile = { objects: [], errors: [], warnings: [], broken: false, rejected: [] };
  const lineCounter = new (yamlLibrary().LineCounter)();
  const docs = yamlLibrary().parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true });
  const at = (where: InputLocation, offset: number): InputLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { ...where, line, column: col };
  };
  if ("empty" in docs) {
    result.broken = docs.errors.length > 0;
    for (const error of docs.errors)
      result.errors.push(inputError(error.message, at({ file }, error.pos[0]), { cause: error }));
    for (const warning of docs.warnings)
      result.warnings.push(formatInputProblem(at({ file }, warning.pos[0]), boundedText(warning.message)));
    return finish(result, file);
  }
  docs.forEach((doc, index) => {
    const where: InputLocation = { file, index };
    for (const warning of doc.warnings)
      result.warnings.push(formatInputProblem(at(where, warning.pos[0]), boundedText(warning.message)));
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        result.errors.push(inputError(error.message, at(where, error.pos[0]), { cause: error }));
      }
      result.broken = true;
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      result.errors.push(inputError(errorMessage(error), where, { cause: error }));
      result.broken = true;
      return;
    }
    if (value === null || value === undefined) return;
    const locate = (path: string): InputLocation => {
      const offset = fieldOffset(doc, path);
      return offset === undefined ? {} : at({}, offset);
    };
    addDocument(value, where, result, locate);
  });
  return finish(result, file);
}

/** Problems beyond MAX_PROBLEMS_PER_FILE are summed up in one. */
function finish(result: ParsedFile, file: string): ParsedFile {
  const summarise = <T>(list: T[], line: (n: number) => T): T[] => {
    if (list.length <= MAX_PROBLEMS_PER_FILE) return list;
    const more = list.length - (MAX_PROBLEMS_PER_FILE - 1);
    return [...list.slice(0, MAX_PROBLEMS_PER_FILE - 1), line(more)];
  };
  const what = (n: number): string => `and ${n} more problems in this file (not shown)`;
  result.errors = summarise(result.errors, (n) => new InputError(what(n), { file }));
  result.warnings = summarise(result.warnings, (n) => formatInputProblem({ file }, what(n)));
  return result;
}

/**
 * Checks one parsed document (expanding `kind: List`), validates it and adds it to `result`.
 * `locate` gives the line and column of a field path of the document, when it is in the text.
 */
function addDocument(
  value: unknown,
  where: InputLocation,
  result: ParsedFile,
  locate: (path: string) => InputLocation,
): void {
  if (isRecord(value) && value["kind"] === "List") {
    if (where.item !== undefined) {
      result.errors.push(inputError("a List inside a List is not supported", where));
      result.broken = true;
      return;
    }
    const items = value["items"];
    if (!Array.isArray(items)) {
      result.errors.push(inputError("must be a list", { ...where, kind: "List", field: "items" }));
      result.broken = true;
      return;
    }
    items.forEach((item: unknown, i) =>
      addDocument(item, { ...where, item: i }, result, (path) =>
        locate(path === "" ? `items[${i}]` : `items[${i}].${path}`),
      ),
    );
    return;
  }
  const object = checkShape(value, where, result.errors);
  if (object === undefined) {
    // Not an object that can be told apart from others: which object of the last version it was
    // meant to be is unknown, so the file as a whole does not parse.
    result.broken = true;
    return;
  }
  const { apiVersion, kind, metadata } = object;
  const written = typeof metadata.namespace === "string" ? metadata.namespace : undefined;
  const namespace = written ?? (isClusterScoped(kind) ? undefined : "default");
  const source: Source = { ...pick(where, "file", "index"), ...describeItem(where) };
  if (snapshotField(apiVersion, kind) === undefined) {
    const id = formatObject({
      kind,
      name: metadata.name,
      ...(written === undefined ? {} : { namespace: written }),
    });
    result.warnings.push(`${formatSource(source)}: ignoring ${boundedText(apiVersion)} ${boundedText(id)}`);
    return;
  }
  const validation = validateObject(object);
  if (validation.errors.length === 0) {
    result.objects.push({ object: validation.object, source });
    return;
  }
  const objectWhere: InputLocation = {
    ...where,
    kind,
    name: metadata.name,
    ...(namespace === undefined ? {} : { namespace }),
  };
  const errors = validation.errors.map((error) =>
    inputError(error.message, { ...objectWhere, ...locate(error.path), field: error.path }),
  );
  result.errors.push(...errors);
  result.rejected.push({ identity: identityOf(object), position: result.objects.length, errors });
}

/**
 * The minimal shape every object needs before it can even be identified: a mapping with string
 * apiVersion, kind and metadata.name. Reports every missing piece; returns the object if all are there.
 */
function checkShape(value: unknown, where: InputLocation, errors: InputError[]): KubeObject | undefined {
  if (!isRecord(value)) {
    errors.push(inputError(`document must be a mapping (an object), not ${describeValue(value)}`, where));
    return undefined;
  }
  const { apiVersion, kind, metadata } = value;
  const named: InputLocation = typeof kind === "string" && kind !== "" ? { ...where, kind } : where;
  const ok = (field: string, v: unknown): v is string => {
    if (typeof v === "string" && v !== "") return true;
    const problem =
      v === undefined || v === null || v === "" ? "is required" : `must be a string, not ${describeValue(v)}`;
    errors.push(inputError(problem, { ...named, field }));
    return false;
  };
  const okApiVersion = ok("apiVersion", apiVersion);
  const okKind = ok("kind", kind);
  const okName = ok("metadata.name", isRecord(metadata) ? metadata["name"] : undefined);
  if (!okApiVersion || !okKind || !okName) return undefined;
  return value as KubeObject;
}

/**
 * An InputError whose message is one bounded line: user-supplied text (the description, which may
 * quote the input, and the object's kind, namespace, name and field) clipped and its control
 * characters escaped; the file name escaped.
 */
export function inputError(detail: string, location: InputLocation, options?: ErrorOptions): InputError {
  const bounded: InputLocation = { ...location };
  for (const key of ["kind", "namespace", "name", "field"] as const) {
    const value = bounded[key];
    if (value !== undefined && needsBounding(value)) bounded[key] = boundedText(value);
  }
  if (bounded.file !== undefined && needsBounding(bounded.file, 4096)) {
    bounded.file = boundedText(bounded.file, 4096);
  }
  return new InputError(needsBounding(detail) ? boundedText(detail) : detail, bounded, options);
}

/** The error reported for a duplicate object found by buildSnapshot. */
export function duplicateError(duplicate: DuplicateObject): DuplicateObjectError {
  const slash = duplicate.key.indexOf("/");
  const id =
    isClusterScoped(duplicate.kind) || slash < 0
      ? { kind: duplicate.kind, name: duplicate.key }
      : {
          kind: duplicate.kind,
          namespace: duplicate.key.slice(0, slash),
          name: duplicate.key.slice(slash + 1),
        };
  const second = pick(duplicate.second, "file", "index");
  return new DuplicateObjectError(id, formatSource(duplicate.first), formatSource(duplicate.second), second);
}

/** What a directory walk meets, in order: a YAML file to read, or a note (a path read once already). */
type WalkItem = { file: string } | { warning: string };

/** Real paths walked or read so far (→ the path they were first met at): each is read once. */
interface WalkGuard {
  dirs: Map<string, string>;
  files: Map<string, string>;
}

/**
 * All `*.yaml`/`*.yml` files under `dir` (whose real path is `real`), depth first, entries sorted by
 * code point; hidden skipped. Symbolic links are followed; a directory or file already met under
 * another path (a loop, or two links to one place) is noted and skipped. Stops MAX_DEPTH down.
 */
async function yamlFilesUnder(
  dir: string,
  real: string,
  fs: FileSystem,
  errors: InputError[],
  guard: WalkGuard,
  depth: number,
): Promise<WalkItem[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (depth === 0) throw error;
    errors.push(
      inputError(`cannot read directory: ${describeFsError(error)}`, { file: dir }, { cause: error }),
    );
    return [];
  }
  const items: WalkItem[] = [];
  for (const name of [...names].sort(compareStrings)) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    let info: FileKind;
    let childReal: string;
    try {
      info = await fs.stat(path);
      if (fs.realpath !== undefined) childReal = await fs.realpath(path);
      else if (info.isDirectory() && (await fs.lstat?.(path))?.isSymbolicLink() === true) {
        // Without real paths a loop cannot be told from a tree: a linked directory is not followed.
        items.push({ warning: unfollowed(path) });
        continue;
      } else childReal = join(real, name);
    } catch (error) {
      errors.push(inputError(`cannot read: ${describeFsError(error)}`, { file: path }, { cause: error }));
      continue;
    }
    if (info.isDirectory()) {
      const first = guard.dirs.get(childReal);
      if (first !== undefined) {
        items.push({ warning: sameAs(path, "directory", first) });
      } else if (depth + 1 > MAX_DEPTH) {
        errors.push(tooDeep(path));
      } else {
        guard.dirs.set(childReal, path);
        items.push(...(await yamlFilesUnder(path, childReal, fs, errors, guard, depth + 1)));
      }
    } else if (info.isFile() && isYamlName(name)) {
      const first = guard.files.get(childReal);
      if (first !== undefined) items.push({ warning: sameAs(path, "file", first) });
      else {
        guard.files.set(childReal, path);
        items.push({ file: path });
      }
    }
  }
  return items;
}

/** The note for a path whose real directory or file was met before, at `first`. */
export function sameAs(path: string, what: "directory" | "file", first: string): string {
  return formatInputProblem(
    { file: boundedText(path, 4096) },
    `skipped: the same ${what} as ${boundedText(first, 4096)} (read once; a symbolic link loop or a second link to it)`,
  );
}

/** The note for a linked directory not followed (a FileSystem that knows links but not real paths). */
export function unfollowed(path: string): string {
  return formatInputProblem(
    { file: boundedText(path, 4096) },
    "skipped: a symbolic link to a directory, not followed (real paths unknown)",
  );
}

/** The problem reported for a directory more than MAX_DEPTH levels down. */
export function tooDeep(path: string): InputError {
  return inputError(`not read: more than ${MAX_DEPTH} directory levels deep`, { file: path });
}

/** Whether a directory walk reads a file of this name (`*.yaml`/`*.yml`, any case). */
export function isYamlName(name: string): boolean {
  return /\.ya?ml$/i.test(name);
}

/** The order of names within a directory: by UTF-16 code unit, as `<` compares. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeItem(where: InputLocation): { description?: string } {
  return where.item === undefined ? {} : { description: `items[${where.item}]` };
}

/** The named properties of `obj` that are defined (exactOptionalPropertyTypes-friendly copy). */
function pick<T extends object, K extends keyof T>(obj: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (obj[key] !== undefined) out[key] = obj[key];
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const FS_ERRORS: Record<string, string> = {
  ENOENT: "does not exist",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  ELOOP: "too many symbolic links",
};

/** A file-system error in a few words ("does not exist", "permission denied"), else its message. */
export function describeFsError(error: unknown): string {
  const code = isRecord(error) && typeof error["code"] === "string" ? error["code"] : undefined;
  return (code === undefined ? undefined : FS_ERRORS[code]) ?? errorMessage(error);
}
