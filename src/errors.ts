// Typed errors. Everything Gatehouse throws or reports on purpose is a GatehouseError, so callers can
// tell expected failures (bad input, bad usage) from bugs (anything else).

/** Base class of all Gatehouse errors. Supports `cause` like every Error (ES2022 ErrorOptions). */
export class GatehouseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where a piece of input lives: any subset of file, document, object and field. */
export interface InputLocation {
  /** The file, as named by the user (relative paths stay relative). */
  file?: string;
  /** 0-based index of the YAML document in the file. */
  index?: number;
  /** 0-based index in `items` when the document is a `kind: List`. */
  item?: number;
  /** 1-based line and column, for YAML syntax errors. */
  line?: number;
  column?: number;
  kind?: string;
  namespace?: string;
  name?: string;
  /** Path of the offending field inside the object, e.g. `spec.rules[0].matches[0].path.value`. */
  field?: string;
}

/** `file#index` (`file#index.items[i]` for an item of a `kind: List`); "" when no file is known. */
export function formatDocument(location: InputLocation): string {
  if (location.file === undefined) return "";
  let text = location.file;
  if (location.index !== undefined) text += `#${location.index}`;
  if (location.item !== undefined) text += `.items[${location.item}]`;
  return text;
}

/** `Kind namespace/name`, `Kind name` or `Kind`; "" when the kind is unknown. */
export function formatObject(location: Pick<InputLocation, "kind" | "namespace" | "name">): string {
  const id =
    location.name === undefined
      ? ""
      : location.namespace === undefined
        ? location.name
        : `${location.namespace}/${location.name}`;
  return [location.kind ?? "", id].filter((part) => part !== "").join(" ");
}

/**
 * Formats an input problem as one line:
 * `examples/app.yaml#2 HTTPRoute default/web: spec.rules[0].matches[0].path.value: must start with "/"`
 * or, for syntax errors, `examples/app.yaml#2: line 4, column 7: <message>`.
 */
export function formatInputProblem(location: InputLocation, detail: string): string {
  const head = [formatDocument(location), formatObject(location)].filter((part) => part !== "").join(" ");
  const parts: string[] = [];
  if (head !== "") parts.push(head);
  if (location.line !== undefined) {
    parts.push(
      location.column === undefined
        ? `line ${location.line}`
        : `line ${location.line}, column ${location.column}`,
    );
  }
  if (location.field !== undefined && location.field !== "") parts.push(location.field);
  parts.push(detail.replace(/\s*\n\s*/g, " ").trim());
  return parts.join(": ");
}

/**
 * A problem with one piece of input (a file, a document, an object or one field of it). The loader
 * reports these and carries on with the rest of the input. `message` is the full one-line form;
 * `detail` is the bare description of the problem; `location` says where (its `name` is the object's
 * name, also available as `objectName` since `name` is the error class name on every Error).
 */
export class InputError extends GatehouseError {
  readonly detail: string;
  readonly location: Readonly<InputLocation>;

  constructor(detail: string, location: InputLocation = {}, options?: ErrorOptions) {
    super(formatInputProblem(location, detail), options);
    this.detail = detail;
    this.location = { ...location };
  }

  get file(): string | undefined {
    return this.location.file;
  }
  get index(): number | undefined {
    return this.location.index;
  }
  get kind(): string | undefined {
    return this.location.kind;
  }
  get namespace(): string | undefined {
    return this.location.namespace;
  }
  get objectName(): string | undefined {
    return this.location.name;
  }
  get field(): string | undefined {
    return this.location.field;
  }

  /** The one-line form, without the `InputError: ` prefix Error.prototype.toString would add. */
  override toString(): string {
    return this.message;
  }
}

/**
 * The same object (kind, namespace, name) appears twice in the input; the second is dropped.
 * Formatted as `HTTPRoute default/web defined twice: a.yaml#0 and b.yaml#3`; the location is the
 * dropped (second) occurrence.
 */
export class DuplicateObjectError extends InputError {
  /** Where the kept (first) and the dropped (second) object were defined, already formatted. */
  readonly first: string;
  readonly second: string;

  constructor(
    object: Pick<InputLocation, "kind" | "namespace" | "name">,
    first: string,
    second: string,
    secondLocation: InputLocation = {},
  ) {
    super(`defined twice: ${first} and ${second}`, { ...secondLocation, ...object });
    this.message = `${formatObject(object)} defined twice: ${first} and ${second}`;
    this.first = first;
    this.second = second;
  }
}

/** The input as a whole cannot be read: the path does not exist, is not a file or directory, etc. */
export class LoadError extends GatehouseError {
  readonly path: string;

  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/** The command line is wrong (unknown command or flag, missing or malformed value). Exit code 2. */
export class UsageError extends GatehouseError {}

/**
 * An input problem while the last valid version of what that input held keeps serving, as an API
 * server keeps the stored object when it rejects an update: a file that no longer parses (every
 * object it last contributed stays), or an object that no longer validates (its last valid version
 * stays). `servingSince` (RFC 3339) is when the version still serving was read.
 */
export class StaleInputError extends InputError {
  readonly stale = true;
  readonly servingSince: string;

  constructor(detail: string, location: InputLocation, servingSince: string, options?: ErrorOptions) {
    super(detail, location, options);
    this.servingSince = servingSince;
  }
}

/**
 * A file the loader refuses to parse: larger than the limit, or not text (a NUL byte, invalid
 * UTF-8). Its bytes never reach a message.
 */
export class RefusedFileError extends GatehouseError {
  readonly path: string;

  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}
