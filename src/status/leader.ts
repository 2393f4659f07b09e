// Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it. Every
// replica serves traffic; only the leader writes status, so replicas never fight over it.
//
// - Every `retryPeriodMs` each candidate reads the Lease. A Lease held by someone else is respected
//   while it was renewed within `leaseDurationMs`, measured on OUR monotonic clock from the moment we
//   saw its record change (so clock skew between hosts does not matter).
// - A free, expired or missing Lease is taken with an update (or create) that carries the
//   resourceVersion read: of two candidates, one gets 409 Conflict and stays a follower.
// - The leader renews every `retryPeriodMs`. Its term ends `renewDeadlineMs` after the last renewal
//   that succeeded (counted from when that request was SENT, which is no later than the API server
//   wrote it): a timer steps it down at that moment, even while a renewal hangs, and well before the
//   Lease can expire in another candidate's eyes (renewDeadline < leaseDuration). A leader that
//   reads the Lease and finds another holder steps down at once.
// - Writes made on behalf of the leader are fenced (`fence()`): an AbortSignal aborted the moment the
//   term ends, and the time left before it must end, which bounds each request. So a stuck leader
//   never writes after another replica may have taken over.
// - Every request is bounded: a leader's by what is left of its term, a candidate's by
//   `renewDeadlineMs`. Failures are logged rate-limited (first, once a minute, recovery).
// - stop() releases the Lease (empty holder, 1 s duration) so a successor takes over at once.
import type { Clock, TimerHandle } from "../provider/clock.ts";
import { describeError, statusCodeOf, type KubeApi } from "../provider/kubernetes/client.ts";
import { LEASE_RESOURCE, resourcePath } from "../provider/kubernetes/resources.ts";
import { OutageLog } from "../observability/outage.ts";

export interface LeaderElectionOptions {
  api: KubeApi;
  namespace: string;
  /** Lease name (default "gatehouse-status"). */
  name?: string;
  /** This replica's identity (unique per process, e.g. hostname + random suffix). */
  identity: string;
  /** How long a Lease stays valid without renewal (default 15 s). */
  leaseDurationMs?: number;
  /** The leader steps down when it could not renew for this long (default 10 s). */
  renewDeadlineMs?: number;
  /** Time between attempts (default 2 s). */
  retryPeriodMs?: number;
  /** Monotonic time and timers. */
  clock: Clock;
  /** Wall-clock time written into the Lease (acquireTime, renewTime). */
  now: () => Date;
  /** Called on every change of leadership. */
  onChange?: (leader: boolean) => void;
  log?: { info(message: string): void; warn(message: string): void };
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export const DEFAULT_LEASE_NAME = "gatehouse-status";

/** client-go's defaults (and controller-runtime's). */
export const LEADER_ELECTION_DEFAULTS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

/** What a write on behalf of the leader must respect. */
export interface WriteFence {
  /** Aborted the moment this leadership term ends. */
  readonly signal: AbortSignal;
  /** Milliseconds left (on the elector's clock) before the term ends at the latest; 0 when over. */
  remainingMs(): number;
}

/** Checks lease timings the way client-go does; returns a problem, or undefined when they fit. */
export function leaseTimingsProblem(t: {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}): string | undefined {
  if (!(t.retryPeriodMs > 0)) return "the retry period must be positive";
  if (!(t.renewDeadlineMs < t.leaseDurationMs))
    return "the renew deadline must be shorter than the lease duration";
  // client-go: renewDeadline > JitterFactor (1.2) * retryPeriod, so a renewal can be retried.
  if (!(t.renewDeadlineMs > 1.2 * t.retryPeriodMs))
    return "the renew deadline must be longer than 1.2 × the retry period";
  return undefined;
}

/** RFC 3339 with microseconds, as metav1.MicroTime wants it. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, "onChange" | "log">> &
    Pick<LeaderElectionOptions, "onChange" | "log">;
  readonly #path: string;
  readonly #outage: OutageLog | undefined;
  #leader = false;
  #running = false;
  #timer: TimerHandle | undefined;
  #inFlight: Promise<void> | undefined;
  /** The Lease record as last seen, and when (our clock) it last changed. */
  #observed: { key: string; at: number } | undefined;
  /** The current term: aborted when it ends. */
  #term: AbortController | undefined;
  /** When (our clock) the current term ends unless renewed. */
  #deadline = 0;
  #stepDownTimer: TimerHandle | undefined;

  constructor(options: LeaderElectionOptions) {
    const timings = {
      leaseDurationMs: options.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs,
      renewDeadlineMs: options.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs,
      retryPeriodMs: options.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs,
    };
    const problem = leaseTimingsProblem(timings);
    if (problem !== undefined) throw new RangeError(`leader election: ${problem}`);
    this.#o = { ...options, name: options.name ?? DEFAULT_LEASE_NAME, ...timings };
    this.#path = resourcePath(LEASE_RESOURCE, { namespace: options.namespace });
    this.#outage =
      options.log === undefined
        ? undefined
        : new OutageLog({
            what: `leader election (lease ${options.namespace}/${this.#o.name})`,
            clock: options.clock,
            log: options.log,
          });
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  get identity(): string {
    return this.#o.identity;
  }

  /** The Lease, for Events about leadership. */
  get lease(): { namespace: string; name: string } {
    return { namespace: this.#o.namespace, name: this.#o.name };
  }

  /** The fence of the current term, or undefined when this replica does not lead. */
  fence(): WriteFence | undefined {
    const term = this.#term;
    if (!this.#leader || term === undefined || term.signal.aborted) return undefined;
    return { signal: term.signal, remainingMs: () => Math.max(0, this.#deadline - this.#o.clock.now()) };
  }

  /** Starts campaigning (the first attempt runs at once). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#attempt();
  }

  /** Stops campaigning; a leader releases the Lease and steps down. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#inFlight !== undefined) await this.#inFlight;
    if (this.#leader) {
      // Stop our writes first, then hand the Lease over.
      this.#setLeader(false);
      await this.#release();
    }
  }

  /** Resolves when the attempt in flight (if any) is done (for tests). */
  async settled(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  #attempt(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const sentAt = this.#o.clock.now();
    this.#inFlight = this.#tryAcquireOrRenew()
      .then((outcome) => {
        this.#outage?.succeeded();
        this.#after(outcome, sentAt);
      })
      .catch((error: unknown) => {
        this.#outage?.failed(describeError(error));
        this.#after("failed", sentAt);
      })
      .finally(() => (this.#inFlight = undefined));
  }

  #after(outcome: "ours" | "theirs" | "failed", sentAt: number): void {
    if (outcome === "ours" && this.#running) {
      this.#deadline = sentAt + this.#o.renewDeadlineMs;
      if (this.#deadline > this.#o.clock.now()) {
        this.#setLeader(true);
        this.#armStepDown();
      }
    } else if (outcome === "theirs" && this.#leader) {
      this.#o.log?.warn(
        `leader election: lease ${this.#o.namespace}/${this.#o.name} is held by another replica; stepping down`,
      );
      this.#setLeader(false);
    }
    if (this.#running) this.#timer = this.#o.clock.setTimeout(() => this.#attempt(), this.#o.retryPeriodMs);
  }

  #armStepDown(): void {
    if (this.#stepDownTimer !== undefined) this.#o.clock.clearTimeout(this.#stepDownTimer);
    this.#stepDownTimer = this.#o.clock.setTimeout(
      () => {
        this.#stepDownTimer = undefined;
        if (!this.#leader) return;
        if (this.#o.clock.now() < this.#deadline) {
          this.#armStepDown();
          return;
        }
        this.#o.log?.warn(
          `leader election: could not renew lease ${this.#o.namespace}/${this.#o.name} within ${this.#o.renewDeadlineMs} ms; stepping down`,
        );
        this.#setLeader(false);
      },
      Math.max(0, this.#deadline - this.#o.clock.now()),
    );
  }

  #setLeader(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    if (leader) {
      this.#term = new AbortController();
    } else {
      this.#term?.abort(new Error("leadership lost"));
      if (this.#stepDownTimer !== undefined) this.#o.clock.clearTimeout(this.#stepDownTimer);
      this.#stepDownTimer = undefined;
    }
    this.#o.log?.info(
      leader
        ? `leader election: ${this.#o.identity} is now the leader (lease ${this.#o.namespace}/${this.#o.name})`
        : `leader election: ${this.#o.identity} is no longer the leader`,
    );
    this.#o.onChange?.(leader);
  }

  /** Bounds for one Lease request: a leader's by what is left of its term. */
  #requestOptions(): { timeoutMs: number; signal?: AbortSignal } {
    const fence = this.fence();
    if (fence === undefined) return { timeoutMs: this.#o.renewDeadlineMs };
    return { timeoutMs: Math.max(1, fence.remainingMs()), signal: fence.signal };
  }

  #leaseSpec(previous: LeaseSpec | undefined): LeaseSpec {
    const now = microTime(this.#o.now());
    const ours = previous?.holderIdentity === this.#o.identity;
    return {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      acquireTime: ours && previous?.acquireTime !== undefined ? previous.acquireTime : now,
      renewTime: now,
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (ours || previous === undefined ? 0 : 1),
    };
  }

  /** One round: "ours" when we hold the Lease afterwards, "theirs" when another replica does. */
  async #tryAcquireOrRenew(): Promise<"ours" | "theirs" | "failed"> {
    const api = this.#o.api;
    const bounds = this.#requestOptions();
    let lease: Lease;
    try {
      lease = await api.request<Lease>(
        "GET",
        `${this.#path}/${encodeURIComponent(this.#o.name)}`,
        undefined,
        bounds,
      );
    } catch (error) {
      if (statusCodeOf(error) !== 404) throw error;
      try {
        await api.request(
          "POST",
          this.#path,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.#o.name, namespace: this.#o.namespace },
            spec: this.#leaseSpec(undefined),
          },
          bounds,
        );
        this.#observed = undefined;
        return "ours";
      } catch (createError) {
        if (statusCodeOf(createError) === 409) return "failed"; // another candidate created it first
        throw createError;
      }
    }
    const spec = lease.spec ?? {};
    const now = this.#o.clock.now();
    const key = JSON.stringify([spec.holderIdentity, spec.renewTime, lease.metadata.resourceVersion]);
    if (this.#observed?.key !== key) this.#observed = { key, at: now };
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(this.#o.leaseDurationMs / 1000)) * 1000;
    if (holder !== "" && holder !== this.#o.identity && this.#observed.at + durationMs > now) {
      return "theirs"; // held by someone else, and alive
    }
    try {
      await api.request(
        "PUT",
        `${this.#path}/${encodeURIComponent(this.#o.name)}`,
        { ...lease, spec: this.#leaseSpec(spec) },
        bounds,
      );
      return "ours";
    } catch (error) {
      if (statusCodeOf(error) === 409) return "failed";
      throw error;
    }
  }

  async #release(): Promise<void> {
    try {
      const path = `${this.#path}/${encodeURIComponent(this.#o.name)}`;
      const bounds = { timeoutMs: this.#o.renewDeadlineMs };
      const lease = await this.#o.api.request<Lease>("GET", path, undefined, bounds);
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      const now = microTime(this.#o.now());
      await this.#o.api.request(
        "PUT",
        path,
        {
          ...lease,
          spec: {
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: lease.spec.leaseTransitions ?? 0,
          },
        },
        bounds,
      );
    } catch (error) {
      this.#o.log?.warn(`leader election: could not release the lease: ${describeError(error)}`);
    }
  }
}
