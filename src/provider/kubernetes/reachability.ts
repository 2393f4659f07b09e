// When the API server comes back. Informers that lose the API server would otherwise each retry
// with their own exponential backoff: after an outage of 20 s their next attempts are 8 to 16 s
// away, and a route applied meanwhile waits that long (13–20 s measured before this existed).
//
// Instead, a kind that cannot reach the API server (connection refused or reset, timeout, 5xx, 429)
// waits here. One probe (`GET /readyz`, open to every authenticated client through the default
// `system:public-info-viewer` role) runs every `probeMs` (+ up to 20 % jitter) while anyone waits.
// A waiter resumes at the first successful probe that follows a failed one (the API server was
// down and is ready again: everybody resumes at once, within one probe interval), or, when every
// probe succeeded (the API server is fine; only this kind's requests fail), at the first successful
// probe after its own backoff delay, so a kind that keeps failing never spins.
//
// `/readyz` answers 200 only once the API server has loaded its RBAC rules and CRDs, so kinds do
// not resume into 403s and 404s. An answer of 401, 403 or 404 (a cluster that hides /readyz) counts
// as "up".
import { OutageLog, type OutageLogSink } from "../../observability/outage.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import { describeError, statusCodeOf, type KubeApi } from "./client.ts";

export interface ReachabilityOptions {
  api: KubeApi;
  clock: Clock;
  /** Time between probes while someone waits (default 250 ms). */
  probeMs?: number;
  /** Timeout of one probe (default 1 s). */
  probeTimeoutMs?: number;
  /** A number in [0, 1) for jitter (default Math.random). */
  random?: () => number;
  log?: OutageLogSink;
}

interface Waiter {
  /** `recovered`: resumed because an outage ended (not because its own backoff elapsed). */
  resume: (recovered: boolean) => void;
  /** Our clock: when the waiter may resume even without an observed outage. */
  notBefore: number;
  /** A probe failed since it started waiting. */
  sawDown: boolean;
}

/** True for failures that say "the API server is not there (or not ready)", not "you may not". */
export function isUnreachable(error: unknown): boolean {
  const code = statusCodeOf(error);
  return code === undefined || code === 429 || code >= 500;
}

export class ApiServerReachability {
  readonly #o: Required<Omit<ReachabilityOptions, "log">>;
  readonly #waiters = new Set<Waiter>();
  readonly #outage: OutageLog | undefined;
  #timer: TimerHandle | undefined;
  #probing = false;
  #stopped = false;

  constructor(options: ReachabilityOptions) {
    this.#o = {
      probeMs: 250,
      probeTimeoutMs: 1_000,
      random: Math.random,
      ...options,
    };
    this.#outage =
      options.log === undefined
        ? undefined
        : new OutageLog({ what: "API server", clock: options.clock, log: options.log });
  }

  /** Waiting kinds (for tests and /status). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Calls `resume` once the API server answers again (see above); `backoffMs` is the caller's own
   * delay, honoured when no outage is observed. Returns a function that cancels the wait.
   */
  waitForRecovery(resume: (recovered: boolean) => void, backoffMs: number): () => void {
    if (this.#stopped) return () => undefined;
    const waiter: Waiter = { resume, notBefore: this.#o.clock.now() + backoffMs, sawDown: false };
    this.#waiters.add(waiter);
    this.#arm();
    return () => this.#waiters.delete(waiter);
  }

  stop(): void {
    this.#stopped = true;
    this.#waiters.clear();
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#probing || this.#stopped || this.#waiters.size === 0) return;
    const delay = this.#o.probeMs * (1 + 0.2 * this.#o.random());
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#probe();
    }, delay);
  }

  async #probe(): Promise<void> {
    this.#probing = true;
    let up: boolean;
    let detail = "";
    try {
      await this.#o.api.request("GET", "/readyz", undefined, { timeoutMs: this.#o.probeTimeoutMs });
      up = true;
    } catch (error) {
      up = !isUnreachable(error);
      detail = describeError(error);
    }
    this.#probing = false;
    if (this.#stopped) return;
    if (!up) {
      this.#outage?.failed(`not ready or unreachable (${detail}); the last known objects stay in use`);
      for (const w of this.#waiters) w.sawDown = true;
    } else {
      this.#outage?.succeeded();
      const now = this.#o.clock.now();
      for (const w of [...this.#waiters]) {
        if (!w.sawDown && now < w.notBefore) continue;
        this.#waiters.delete(w);
        w.resume(w.sawDown);
      }
    }
    this.#arm();
  }
}
