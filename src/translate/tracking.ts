// Dependency tracking for incremental translation (incremental.ts): a snapshot whose object maps
// record every read into the current scope. A lookup `get(key)`/`has(key)` records `field\0key`;
// anything that enumerates a field (iteration, `size`) records `field\0*`, i.e. depends on every
// object of that kind. Derived lookups that read through an index of their own (EndpointSlices by
// Service) record a synthetic dependency with {@link recordDependency} instead.
//
// A dependency is a string: `<snapshot field>\0<object key>`, `<snapshot field>\0*`, or a synthetic
// `<name>\0<key>` (see ENDPOINT_SLICES_OF).
import type { ObjectMap, Snapshot, SnapshotField } from "../resources/snapshot.ts";

/** The synthetic dependency of a lookup of a Service's EndpointSlices: `endpointSlicesOf\0ns/service`. */
export const ENDPOINT_SLICES_OF = "endpointSlicesOf";

export function dependency(field: string, key: string): string {
  return `${field}\0${key}`;
}

export function anyOf(field: string): string {
  return `${field}\0*`;
}

/** Where reads are recorded while translation code runs on a tracked snapshot. */
export class DependencyRecorder {
  /** The set reads go to; undefined: reads are not recorded. */
  scope: Set<string> | undefined;

  /** Runs `fn` with reads recorded into `into`; returns its result. */
  within<T>(into: Set<string>, fn: () => T): T {
    const outer = this.scope;
    this.scope = into;
    try {
      return fn();
    } finally {
      this.scope = outer;
    }
  }
}

const RAW = Symbol("gatehouse.untracked");
const RECORDER = Symbol("gatehouse.recorder");

interface Tracked {
  [RAW]: Snapshot;
  [RECORDER]: DependencyRecorder;
}

/** A view of `snapshot` whose reads are recorded into `recorder.scope`. */
export function trackedSnapshot(snapshot: Snapshot, recorder: DependencyRecorder): Snapshot {
  const out: Record<string, unknown> = {};
  for (const field of Object.keys(snapshot) as SnapshotField[]) {
    const map: ObjectMap<unknown> = snapshot[field];
    out[field] = new TrackedMap(field, map, recorder);
  }
  Object.defineProperty(out, RAW, { value: snapshot });
  Object.defineProperty(out, RECORDER, { value: recorder });
  return out as unknown as Snapshot;
}

/** The snapshot under a tracked view (the snapshot itself when it is not tracked). */
export function untracked(snapshot: Snapshot): Snapshot {
  return (snapshot as Partial<Tracked>)[RAW] ?? snapshot;
}

/** Records `dep` in the current scope when `snapshot` is a tracked view; no-op otherwise. */
export function recordDependency(snapshot: Snapshot, dep: string): void {
  (snapshot as Partial<Tracked>)[RECORDER]?.scope?.add(dep);
}

class TrackedMap<V> implements ReadonlyMap<string, V> {
  readonly #field: string;
  readonly #map: ObjectMap<V>;
  readonly #recorder: DependencyRecorder;
  readonly #all: string;

  constructor(field: string, map: ObjectMap<V>, recorder: DependencyRecorder) {
    this.#field = field;
    this.#map = map;
    this.#recorder = recorder;
    this.#all = anyOf(field);
  }

  #one(key: string): void {
    this.#recorder.scope?.add(dependency(this.#field, key));
  }

  #every(): void {
    this.#recorder.scope?.add(this.#all);
  }

  get(key: string): V | undefined {
    this.#one(key);
    return this.#map.get(key);
  }

  has(key: string): boolean {
    this.#one(key);
    return this.#map.has(key);
  }

  get size(): number {
    this.#every();
    return this.#map.size;
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    this.#every();
    this.#map.forEach((v, k) => fn.call(thisArg, v, k, this));
  }

  entries(): MapIterator<[string, V]> {
    this.#every();
    return this.#map.entries();
  }

  keys(): MapIterator<string> {
    this.#every();
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    this.#every();
    return this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }
}
