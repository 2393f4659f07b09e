// API-server semantics for files that change under a running server: an update that is rejected
// leaves the stored version in place. Per file, what the file last contributed is kept as its state:
//
// - The file parses: it contributes its valid objects. An object that fails validation contributes
//   the last valid version this file had of it (same kind, namespace and name), if any, and the
//   rejection is reported (StaleInputError: serving the last valid version, read at <time>).
//   Objects no longer in the file are gone, as with a delete.
// - The file does not parse, cannot be read or is refused (too large, not text): it contributes
//   exactly what it contributed before, and each problem is reported as stale, naming when the
//   version still served was read. Never valid before (first load): nothing, and plain errors.
// - The file is deleted: its state goes with it (the caller drops it); a deleted file is not a typo.
//
// Pure: the time comes in as an argument.
import { InputError, StaleInputError } from "../errors.ts";
import { identityOf } from "./load.ts";
import type { LoadedObject, ParsedFile } from "./load.ts";

/** What one file contributes to the snapshot now. */
export interface FileState {
  /** In load order. */
  readonly objects: readonly LoadedObject[];
  /** Identity (see identityOf) → when the version of it in `objects` was read (RFC 3339). */
  readonly since: ReadonlyMap<string, string>;
  /** When the file last parsed (RFC 3339); absent when it never did. */
  readonly validSince?: string;
}

export interface FileOutcome {
  readonly state: FileState;
  /** The file's problems, stale ones as StaleInputError. */
  readonly errors: readonly InputError[];
  /** Something in `state` comes from an earlier version of the file (it is stale, or keeps an object). */
  readonly kept: boolean;
}

/** What the file holds now: its parse, or why it could not be used at all. */
export type FileInput = { readonly parsed: ParsedFile } | { readonly unreadable: InputError };

const EMPTY: FileState = { objects: [], since: new Map() };

/** The next state of a file from its previous state (undefined: new file) and what it holds now. */
export function nextFileState(previous: FileState | undefined, input: FileInput, now: string): FileOutcome {
  const before = previous ?? EMPTY;
  if ("unreadable" in input || input.parsed.broken) {
    const errors = "unreadable" in input ? [input.unreadable] : input.parsed.errors;
    const since = before.validSince;
    if (since === undefined) return { state: before, errors, kept: false };
    return {
      state: before,
      errors: errors.map((error) => stale(error, `the file is stale, serving its last valid version`, since)),
      kept: true,
    };
  }
  const { parsed } = input;
  const previousByIdentity = new Map<string, LoadedObject>();
  for (const loaded of before.objects) previousByIdentity.set(identityOf(loaded.object), loaded);
  const objects: LoadedObject[] = [];
  const sinceOf = new Map<string, string>();
  const replaced = new Map<InputError, InputError>();
  let next = 0;
  const take = (until: number): void => {
    for (; next < until; next++) {
      const loaded = parsed.objects[next];
      if (loaded === undefined) continue;
      objects.push(loaded);
      sinceOf.set(identityOf(loaded.object), now);
    }
  };
  for (const rejected of parsed.rejected) {
    take(rejected.position);
    const last = previousByIdentity.get(rejected.identity);
    const since = before.since.get(rejected.identity);
    if (last === undefined || since === undefined || sinceOf.has(rejected.identity)) continue;
    objects.push(last);
    sinceOf.set(rejected.identity, since);
    for (const error of rejected.errors) {
      replaced.set(error, stale(error, "serving its last valid version", since));
    }
  }
  take(parsed.objects.length);
  return {
    state: { objects, since: sinceOf, validSince: now },
    errors: parsed.errors.map((error) => replaced.get(error) ?? error),
    kept: replaced.size > 0,
  };
}

function stale(error: InputError, what: string, since: string): StaleInputError {
  return new StaleInputError(`${error.detail} (${what}, read at ${since})`, error.location, since, {
    cause: error,
  });
}
