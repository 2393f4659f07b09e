// Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it. Every
// replica serves traffic; only the leader writes status, so replicas never fight over it.
//
// - Every `retryPeriodMs` each candidate reads the Lease. A Lease held by someone else is respected
//   while it was renewed within `leaseDurationMs`, measured on OUR monotonic clock from the moment we
//   saw its record change (so clock skew between hosts does not matter).
// - A free, expired or missing Lease is taken with an update (or create) that carries the
//   resourceVersion read: of two candidates, one gets 409 Conflict and stays a follower.
// - The leader renews every `retryPeriodMs`; if it cannot renew for `renewDeadlineMs` it steps down
//   (stops writing) before its Lease can expire elsewhere (renewDeadline < leaseDuration).
// - stop() releases the Lease (empty holder, 1 s duration) so a successor takes over at once.
import type { Clock, TimerHandle } from "../provider/clock.ts";
import { describeError, statusCodeOf, type KubeApi } from "../provider/kubernetes/client.ts";
import { LEASE_RESOURCE, resourcePath } from "../provider/kubernetes/resources.ts";

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

/** RFC 3339 with microseconds, as metav1.MicroTime wants it. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, "onChange" | "log">> &
    Pick<LeaderElectionOptions, "onChange" | "log">;
  readonly #path: string;
  #leader = false;
  #running = false;
  #timer: TimerHandle | undefined;
  #inFlight: Promise<void> | undefined;
  /** The Lease record as last seen, and when (our clock) it last changed. */
  #observed: { key: string; at: number } | undefined;
  #lastRenew = 0;

  constructor(options: LeaderElectionOptions) {
    const leaseDurationMs = options.leaseDurationMs ?? 15_000;
    const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    if (renewDeadlineMs >= leaseDurationMs)
      throw new RangeError("leader election: renewDeadline must be shorter than leaseDuration");
    this.#o = {
      ...options,
      name: options.name ?? DEFAULT_LEASE_NAME,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
    };
    this.#path = resourcePath(LEASE_RESOURCE, { namespace: options.namespace });
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  get identity(): string {
    return this.#o.identity;
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
      await this.#release();
      this.#setLeader(false);
    }
  }

  /** Resolves when the attempt in flight (if any) is done (for tests). */
  async settled(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  #attempt(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    this.#inFlight = this.#tryAcquireOrRenew()
      .then((ok) => this.#after(ok))
      .catch((error: unknown) => {
        this.#o.log?.warn(`leader election: ${describeError(error)}`);
        this.#after(false);
      })
      .finally(() => (this.#inFlight = undefined));
  }

  #after(ok: boolean): void {
    const now = this.#o.clock.now();
    if (ok) {
      this.#lastRenew = now;
      this.#setLeader(true);
    } else if (this.#leader && now - this.#lastRenew >= this.#o.renewDeadlineMs) {
      this.#o.log?.warn(
        `leader election: could not renew lease ${this.#o.namespace}/${this.#o.name} for ${this.#o.renewDeadlineMs} ms; stepping down`,
      );
      this.#setLeader(false);
    }
    if (this.#running) this.#timer = this.#o.clock.setTimeout(() => this.#attempt(), this.#o.retryPeriodMs);
  }

  #setLeader(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#o.log?.info(
      leader
        ? `leader election: ${this.#o.identity} is now the leader (lease ${this.#o.namespace}/${this.#o.name})`
        : `leader election: ${this.#o.identity} is no longer the leader`,
    );
    this.#o.onChange?.(leader);
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

  /** One round: true when we hold the Lease afterwards. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const api = this.#o.api;
    let lease: Lease;
    try {
      lease = await api.request<Lease>("GET", `${this.#path}/${encodeURIComponent(this.#o.name)}`);
    } catch (error) {
      if (statusCodeOf(error) !== 404) throw error;
      try {
        await api.request("POST", this.#path, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: this.#o.name, namespace: this.#o.namespace },
          spec: this.#leaseSpec(undefined),
        });
        this.#observed = undefined;
        return true;
      } catch (createError) {
        if (statusCodeOf(createError) === 409) return false; // another candidate created it first
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
      return false; // held by someone else, and alive
    }
    try {
      await api.request("PUT", `${this.#path}/${encodeURIComponent(this.#o.name)}`, {
        ...lease,
        spec: this.#leaseSpec(spec),
      });
      return true;
    } catch (error) {
      if (statusCodeOf(error) === 409) return false;
      throw error;
    }
  }

  async #release(): Promise<void> {
    try {
      const path = `${this.#path}/${encodeURIComponent(this.#o.name)}`;
      const lease = await this.#o.api.request<Lease>("GET", path);
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      const now = microTime(this.#o.now());
      await this.#o.api.request("PUT", path, {
        ...lease,
        spec: {
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: lease.spec.leaseTransitions ?? 0,
        },
      });
    } catch (error) {
      this.#o.log?.warn(`leader election: could not release the lease: ${describeError(error)}`);
    }
  }
}
