// Loads Kubernetes objects from YAML files: one file, or a directory tree of `*.yaml`/`*.yml` files.
// Bad input never aborts a load: every problem becomes an InputError (or a warning) and the rest of
// the input still loads. Only a path that cannot be read at all throws (LoadError).
import { lstat, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { LineCounter, parseAllDocuments } from "yaml";
import { DuplicateObjectError, InputError, LoadError, formatInputProblem, formatObject } from "../errors.ts";
import type { InputLocation } from "../errors.ts";
import type { KubeObject } from "./meta.ts";
import { buildSnapshot, isClusterScoped, snapshotField } from "./snapshot.ts";
import type { DuplicateObject, Snapshot, Source } from "./snapshot.ts";
import { validateObject } from "./validate.ts";

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
}

export const nodeFileSystem: FileSystem = {
  readFile,
  stat,
  readdir,
  lstat,
  readdirTypes: (path) => readdir(path, { withFileTypes: true }),
};

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
export async function loadPath(path: string, fs: FileSystem = nodeFileSystem): Promise<LoadResult> {
  const result: LoadResult = { objects: [], errors: [], warnings: [] };
  let files: string[];
  try {
    const info = await fs.stat(path);
    if (info.isFile()) files = [path];
    else if (info.isDirectory()) files = await yamlFilesUnder(path, fs, result.errors, true);
    else throw new LoadError(`${path}: not a file or directory`, path);
  } catch (error) {
    if (error instanceof LoadError) throw error;
    throw new LoadError(`${path}: ${describeFsError(error)}`, path, { cause: error });
  }
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (error) {
      result.errors.push(
        new InputError(`cannot read: ${describeFsError(error)}`, { file }, { cause: error }),
      );
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
 * reported (with line and column) and skipped, the other documents still load.
 */
export function parseDocuments(text: string, file: string): LoadResult {
  const result: LoadResult = { objects: [], errors: [], warnings: [] };
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true });
  const at = (where: InputLocation, offset: number): InputLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { ...where, line, column: col };
  };
  if ("empty" in docs) {
    for (const error of docs.errors)
      result.errors.push(new InputError(error.message, at({ file }, error.pos[0]), { cause: error }));
    for (const warning of docs.warnings)
      result.warnings.push(formatInputProblem(at({ file }, warning.pos[0]), warning.message));
    return result;
  }
  docs.forEach((doc, index) => {
    const where: InputLocation = { file, index };
    for (const warning of doc.warnings)
      result.warnings.push(formatInputProblem(at(where, warning.pos[0]), warning.message));
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        result.errors.push(new InputError(error.message, at(where, error.pos[0]), { cause: error }));
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      result.errors.push(new InputError(errorMessage(error), where, { cause: error }));
      return;
    }
    if (value === null || value === undefined) return;
    addDocument(value, where, result);
  });
  return result;
}

/** Checks one parsed document (expanding `kind: List`), validates it and adds it to `result`. */
function addDocument(value: unknown, where: InputLocation, result: LoadResult): void {
  if (isRecord(value) && value["kind"] === "List") {
    if (where.item !== undefined) {
      result.errors.push(new InputError("a List inside a List is not supported", where));
      return;
    }
    const items = value["items"];
    if (!Array.isArray(items)) {
      result.errors.push(new InputError("must be a list", { ...where, kind: "List", field: "items" }));
      return;
    }
    items.forEach((item: unknown, i) => addDocument(item, { ...where, item: i }, result));
    return;
  }
  const object = checkShape(value, where, result.errors);
  if (object === undefined) return;
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
    result.warnings.push(`${formatSource(source)}: ignoring ${apiVersion} ${id}`);
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
  for (const error of validation.errors) {
    result.errors.push(new InputError(error.message, { ...objectWhere, field: error.path }));
  }
}

/**
 * The minimal shape every object needs before it can even be identified: a mapping with string
 * apiVersion, kind and metadata.name. Reports every missing piece; returns the object if all are there.
 */
function checkShape(value: unknown, where: InputLocation, errors: InputError[]): KubeObject | undefined {
  if (!isRecord(value)) {
    errors.push(new InputError(`document must be a mapping (an object), not ${describeValue(value)}`, where));
    return undefined;
  }
  const { apiVersion, kind, metadata } = value;
  const named: InputLocation = typeof kind === "string" && kind !== "" ? { ...where, kind } : where;
  const ok = (field: string, v: unknown): v is string => {
    if (typeof v === "string" && v !== "") return true;
    const problem =
      v === undefined || v === null || v === "" ? "is required" : `must be a string, not ${describeValue(v)}`;
    errors.push(new InputError(problem, { ...named, field }));
    return false;
  };
  const okApiVersion = ok("apiVersion", apiVersion);
  const okKind = ok("kind", kind);
  const okName = ok("metadata.name", isRecord(metadata) ? metadata["name"] : undefined);
  if (!okApiVersion || !okKind || !okName) return undefined;
  return value as KubeObject;
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

/** All `*.yaml`/`*.yml` files under `dir`, depth first, entries sorted by code point; hidden skipped. */
async function yamlFilesUnder(
  dir: string,
  fs: FileSystem,
  errors: InputError[],
  root = false,
): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (root) throw error;
    errors.push(
      new InputError(`cannot read directory: ${describeFsError(error)}`, { file: dir }, { cause: error }),
    );
    return [];
  }
  const files: string[] = [];
  for (const name of [...names].sort(compareStrings)) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    let info: FileKind;
    try {
      info = await fs.stat(path);
    } catch (error) {
      errors.push(new InputError(`cannot read: ${describeFsError(error)}`, { file: path }, { cause: error }));
      continue;
    }
    if (info.isDirectory()) files.push(...(await yamlFilesUnder(path, fs, errors)));
    else if (info.isFile() && isYamlName(name)) files.push(path);
  }
  return files;
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
