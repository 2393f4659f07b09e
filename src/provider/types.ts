// The provider abstraction: something that collects Kubernetes objects from somewhere (YAML files,
// the API server) and hands the rest of the pipeline a complete, immutable Snapshot each time the
// input changes. Providers only collect: they never translate, and they never throw on bad input.
import type { InputError } from "../errors.ts";
import type { Snapshot } from "../resources/snapshot.ts";

/** One complete view of the input. Each update replaces the previous one entirely. */
export interface ProviderUpdate {
  /** Every valid object; objects with problems are left out and reported in `errors`. */
  snapshot: Snapshot;
  /**
   * Input problems (YAML syntax, schema violations, duplicates, unreadable files, a missing path).
   * The snapshot still holds every valid object, so a problem in one file never hides the others.
   */
  errors: InputError[];
  /** Harmless oddities, one line each (ignored kinds, YAML warnings). */
  warnings: string[];
  /** 1 for the first update of a provider, then +1 per update (monotonic within one provider). */
  generation: number;
  /**
   * When the provider first saw the change this update carries (the first of the batch), in
   * milliseconds on the `performance.now()` clock: where route propagation is measured from. Absent
   * when there is no such moment (the initial load) or the provider cannot tell.
   */
  changedAt?: number;
}

export type SnapshotListener = (update: ProviderUpdate) => void;

export interface Provider {
  /**
   * Starts collecting. Resolves once the first update has been delivered to `onSnapshot` (so a
   * caller can wait for the initial configuration); later updates follow as the input changes.
   * Never rejects because of bad input: that is reported in the update's `errors`.
   */
  start(onSnapshot: SnapshotListener): Promise<void>;
  /**
   * Stops watching and releases every resource. Resolves once no further update can be delivered
   * (an update in flight is either delivered before or dropped).
   */
  stop(): Promise<void>;
}
