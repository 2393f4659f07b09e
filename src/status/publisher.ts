// Between the serve loop and the status writer: keeps the latest statuses, writes them when this
// replica leads, one write pass at a time (statuses arriving meanwhile replace the pending ones), and
// retries with backoff when a pass could not write everything (API server unreachable). Under leader
// election each pass carries the fence of the current term (see leader.ts): its writes stop the
// moment leadership is lost. Failed passes are logged rate-limited (first, once a minute, recovery).
import type { Clock, TimerHandle } from "../provider/clock.ts";
import { describeError } from "../provider/kubernetes/client.ts";
import { OutageLog } from "../observability/outage.ts";
import type { WriteFence } from "./leader.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import type { StatusEntry } from "./types.ts";
import type { StatusWriteReport } from "./writer.ts";

export interface StatusSink {
  write(statuses: readonly StatusEntry[], snapshot: Snapshot, fence?: WriteFence): Promise<StatusWriteReport>;
}

export interface StatusPublisherOptions {
  writer: StatusSink;
  /** Whether this replica may write (default: always). Ignored when `fence` is given. */
  isLeader?: () => boolean;
  /** The fence of the current leadership term; undefined while this replica does not lead. */
  fence?: () => WriteFence | undefined;
  clock: Clock;
  /** First retry delay after a pass with failures (default 1 s), doubling up to `maxRetryMs` (30 s). */
  retryMs?: number;
  maxRetryMs?: number;
  log?: { info(message: string): void; warn(message: string): void; debug?(message: string): void };
  /** Called after every pass (metrics, tests). */
  onPass?: (report: StatusWriteReport) => void;
}

export class StatusPublisher {
  readonly #o: StatusPublisherOptions;
  #latest: { statuses: readonly StatusEntry[]; snapshot: Snapshot } | undefined;
  #dirty = false;
  #running: Promise<void> | undefined;
  #retryTimer: TimerHandle | undefined;
  #retryMs: number;
  #stopped = false;
  readonly #outage: OutageLog | undefined;

  constructor(options: StatusPublisherOptions) {
    this.#o = options;
    this.#retryMs = options.retryMs ?? 1000;
    this.#outage =
      options.log === undefined
        ? undefined
        : new OutageLog({ what: "status writes", clock: options.clock, log: options.log });
  }

  /** The statuses of a processed update (the snapshot they were computed from). */
  publish(statuses: readonly StatusEntry[], snapshot: Snapshot): void {
    this.#latest = { statuses, snapshot };
    this.#dirty = true;
    this.#kick();
  }

  /** Leadership changed: a new leader writes the latest statuses at once. */
  leadershipChanged(leader: boolean): void {
    if (leader) {
      this.#dirty = this.#latest !== undefined;
      this.#kick();
    }
  }

  /** Resolves when no pass is running (a retry may still be scheduled). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await this.idle();
  }

  #leader(): boolean {
    if (this.#o.fence !== undefined) return this.#o.fence() !== undefined;
    return this.#o.isLeader?.() ?? true;
  }

  #kick(): void {
    if (this.#stopped || !this.#dirty || !this.#leader()) return;
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  async #drain(): Promise<void> {
    while (this.#dirty && this.#latest !== undefined && !this.#stopped && this.#leader()) {
      this.#dirty = false;
      if (this.#retryTimer !== undefined) this.#o.clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      const { statuses, snapshot } = this.#latest;
      const fence = this.#o.fence?.();
      let report: StatusWriteReport;
      try {
        report = await this.#o.writer.write(statuses, snapshot, fence);
      } catch (error) {
        report = {
          written: [],
          unchanged: 0,
          conflicts: 0,
          missing: [],
          failed: [{ object: "*", error: describeError(error) }],
          fenced: [],
        };
      }
      this.#o.onPass?.(report);
      if (report.written.length > 0)
        this.#o.log?.info(`status written for ${report.written.length} object(s)`);
      if (report.fenced.length > 0)
        this.#o.log?.info(
          `leadership lost: status of ${report.fenced.length} object(s) left to the next leader`,
        );
      if (report.failed.length > 0) {
        const delay = this.#retryMs;
        this.#retryMs = Math.min(this.#retryMs * 2, this.#o.maxRetryMs ?? 30_000);
        this.#outage?.failed(
          `status of ${report.failed.length} object(s) not written (first: ${report.failed[0]?.object}: ${report.failed[0]?.error}); retrying with backoff`,
        );
        this.#retryTimer = this.#o.clock.setTimeout(() => {
          this.#retryTimer = undefined;
          this.#dirty = true;
          this.#kick();
        }, delay);
      } else {
        if (report.fenced.length === 0) this.#outage?.succeeded();
        this.#retryMs = this.#o.retryMs ?? 1000;
      }
    }
  }
}
