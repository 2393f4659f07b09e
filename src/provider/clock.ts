// Time behind a small interface, so code that debounces or retries can be tested deterministically.

/** An opaque timer, as returned by Clock.setTimeout. */
export interface TimerHandle {
  readonly __timer?: never;
}

export interface Clock {
  /** Milliseconds on a monotonic clock (only differences are meaningful). */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: performance.now() and the global timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms) as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface ManualTimer extends TimerHandle {
  readonly id: number;
  readonly due: number;
  readonly callback: () => void;
}

/**
 * A clock that only moves when told to. `advance(ms)` fires every timer that falls due, in due order
 * (ties in creation order), including timers that those callbacks set within the window.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 0;
  #timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { id: this.#nextId++, due: this.#now + Math.max(0, ms), callback };
    this.#timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((timer) => timer !== handle);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing due timers synchronously in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const timer of this.#timers) {
        if (timer.due > target) continue;
        if (next === undefined || timer.due < next.due || (timer.due === next.due && timer.id < next.id)) {
          next = timer;
        }
      }
      if (next === undefined) break;
      const fired = next;
      this.#timers = this.#timers.filter((timer) => timer !== fired);
      this.#now = Math.max(this.#now, fired.due);
      fired.callback();
    }
    this.#now = target;
  }
}
