// Logs of something that keeps failing (the API server is away, the Lease cannot be renewed), rate
// limited so an outage does not flood the log: the first failure is logged at once, then one
// reminder per `repeatMs` (default a minute) saying for how long and how many times it failed, then
// one line when it works again. Time comes from the injected clock.
import type { Clock } from "../provider/clock.ts";

export interface OutageLogSink {
  info(message: string): void;
  warn(message: string): void;
}

export interface OutageLogOptions {
  /** What is failing, as the start of a sentence: "leader election", "status writes". */
  what: string;
  clock: Clock;
  log: OutageLogSink;
  /** Time between reminders while the failure lasts (default 60 s). */
  repeatMs?: number;
}

export class OutageLog {
  readonly #o: Required<OutageLogOptions>;
  #since: number | undefined;
  #lastLogged = 0;
  #failures = 0;

  constructor(options: OutageLogOptions) {
    this.#o = { repeatMs: 60_000, ...options };
  }

  /** True while failures have been reported and no success since. */
  get failing(): boolean {
    return this.#since !== undefined;
  }

  /** One more failure (`detail`: what went wrong this time). */
  failed(detail: string): void {
    const now = this.#o.clock.now();
    this.#failures++;
    if (this.#since === undefined) {
      this.#since = now;
      this.#lastLogged = now;
      this.#o.log.warn(`${this.#o.what}: ${detail}`);
      return;
    }
    if (now - this.#lastLogged < this.#o.repeatMs) return;
    this.#lastLogged = now;
    this.#o.log.warn(
      `${this.#o.what}: still failing after ${seconds(now - this.#since)} (${this.#failures} failures; last: ${detail})`,
    );
  }

  /** It worked: ends the outage (logged once) if there was one. */
  succeeded(): void {
    if (this.#since === undefined) return;
    const lasted = this.#o.clock.now() - this.#since;
    this.#o.log.info(`${this.#o.what}: working again after ${seconds(lasted)} (${this.#failures} failures)`);
    this.#since = undefined;
    this.#failures = 0;
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
