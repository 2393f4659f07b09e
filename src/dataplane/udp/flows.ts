// The flow table: one entry per (listener, client address, client port), ordered by last activity
// (a Map keeps insertion order; activity moves an entry to the end). Pure bookkeeping: the caller
// closes what `add` evicts and `expire` returns. Bounded: adding beyond `maxFlows` evicts the least
// recently active flows.
export interface FlowTableOptions {
  /** Most flows kept at once (at least 1). */
  maxFlows: number;
  /** A flow with no datagram in either direction for this long expires. */
  idleTimeoutMs: number;
}

interface Entry<F> {
  flow: F;
  lastActive: number;
}

export class FlowTable<F> {
  readonly #entries = new Map<string, Entry<F>>();
  readonly #maxFlows: number;
  readonly #idleTimeoutMs: number;

  constructor(options: FlowTableOptions) {
    this.#maxFlows = Math.max(1, Math.floor(options.maxFlows));
    this.#idleTimeoutMs = Math.max(0, options.idleTimeoutMs);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): F | undefined {
    return this.#entries.get(key)?.flow;
  }

  /** Records activity on a flow: it becomes the most recently active. False when there is none. */
  touch(key: string, now: number): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    entry.lastActive = now;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return true;
  }

  /**
   * Adds a flow (replacing one with the same key, which is returned among the evicted) and returns
   * the flows evicted to stay within `maxFlows`, least recently active first.
   */
  add(key: string, flow: F, now: number): F[] {
    const evicted: F[] = [];
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      this.#entries.delete(key);
      evicted.push(existing.flow);
    }
    while (this.#entries.size >= this.#maxFlows) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      const entry = this.#entries.get(oldest.value);
      this.#entries.delete(oldest.value);
      if (entry !== undefined) evicted.push(entry.flow);
    }
    this.#entries.set(key, { flow, lastActive: now });
    return evicted;
  }

  delete(key: string): F | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    return entry.flow;
  }

  /** Removes and returns the flows idle for `idleTimeoutMs` or longer at `now`, oldest first. */
  expire(now: number): F[] {
    const expired: F[] = [];
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastActive < this.#idleTimeoutMs) break; // the rest are more recent
      this.#entries.delete(key);
      expired.push(entry.flow);
    }
    return expired;
  }

  /** Removes and returns every flow `drop` selects. */
  removeWhere(drop: (flow: F, key: string) => boolean): F[] {
    const removed: F[] = [];
    for (const [key, entry] of this.#entries) {
      if (!drop(entry.flow, key)) continue;
      this.#entries.delete(key);
      removed.push(entry.flow);
    }
    return removed;
  }

  /** Every flow, least recently active first. */
  *flows(): IterableIterator<F> {
    for (const entry of this.#entries.values()) yield entry.flow;
  }
}
