// Kubernetes Events (events.k8s.io/v1) about the objects Gatehouse handles, so `kubectl describe`
// shows what went wrong (a config that did not apply, a rejected route, a leadership change).
//
// Like client-go's events.EventRecorder:
// - Isomorphic events (same regarding and related object, reporting controller, action, reason and
//   type; the note is not part of the key, the first one is kept) are one Event with a `series`:
//   a repeat within `seriesWindowMs` (6 min) of the previous one counts up instead of creating an
//   Event. The count is written at most once per `seriesFlushMs` (30 s) per series, so a condition
//   that flaps costs one PATCH per interval, not one per occurrence.
// - New Events are rate limited per regarding object with a token bucket (`burst` 25, one more
//   token per `refillMs` 5 min: client-go's spam filter defaults); what the bucket refuses is
//   dropped and counted.
// - Recording never blocks and never throws: writes go out one at a time in the background, each
//   bounded by `timeoutMs`; failures are logged rate-limited and dropped (an Event is advice, not
//   state). At most `maxPending` writes wait; beyond that new Events are dropped.
import { randomBytes } from "node:crypto";
import type { Clock } from "../provider/clock.ts";
import { describeError, statusCodeOf, type KubeApi } from "../provider/kubernetes/client.ts";
import { EVENT_RESOURCE, resourcePath } from "../provider/kubernetes/resources.ts";
import { microTime } from "../status/leader.ts";
import { OutageLog, type OutageLogSink } from "./outage.ts";

/** The object an Event is about (an ObjectReference). */
export interface EventObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string | undefined;
  name: string;
  uid?: string | undefined;
}

export interface EventInput {
  regarding: EventObjectRef;
  related?: EventObjectRef | undefined;
  type: "Normal" | "Warning";
  /** Why (UpperCamelCase, e.g. a condition's reason). */
  reason: string;
  /** What was done or failed (UpperCamelCase: Program, Accept, ResolveRefs, Lead, ...). */
  action: string;
  /** Human-readable; cut at 1 kB. */
  note: string;
}

/** Anything that records Events (the recorder, or nothing). */
export interface EventSink {
  record(event: EventInput): void;
}

export interface EventRecorderOptions {
  api: KubeApi;
  clock: Clock;
  /** Wall-clock time for eventTime and series.lastObservedTime. */
  now: () => Date;
  /** `reportingController` of every Event (the GatewayClass controllerName). */
  reportingController: string;
  /** `reportingInstance` (this replica's identity). */
  reportingInstance: string;
  burst?: number;
  refillMs?: number;
  seriesWindowMs?: number;
  seriesFlushMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  maxPending?: number;
  log?: OutageLogSink;
  /** Called for each Event dropped (rate limit, queue full, write failed). */
  onDropped?: (reason: "rateLimited" | "queueFull" | "writeFailed") => void;
}

interface Series {
  namespace: string;
  name: string | undefined;
  count: number;
  /** Count last written. */
  written: number;
  /** Our clock: last occurrence, last series write. */
  lastAt: number;
  flushedAt: number;
  lastObserved: Date;
  flushScheduled: boolean;
  input: EventInput;
}

interface Bucket {
  tokens: number;
  at: number;
}

const NOTE_MAX = 1024;
const FIELD_MAX = 128;

export class EventRecorder implements EventSink {
  readonly #o: Required<Omit<EventRecorderOptions, "log" | "onDropped">> &
    Pick<EventRecorderOptions, "onDropped">;
  readonly #series = new Map<string, Series>();
  readonly #buckets = new Map<string, Bucket>();
  readonly #queue: Array<() => Promise<void>> = [];
  readonly #outage: OutageLog | undefined;
  #draining: Promise<void> | undefined;
  #stopped = false;
  #closing = false;

  constructor(options: EventRecorderOptions) {
    this.#o = {
      burst: 25,
      refillMs: 300_000,
      seriesWindowMs: 360_000,
      seriesFlushMs: 30_000,
      timeoutMs: 10_000,
      maxPending: 1000,
      ...options,
      reportingController: options.reportingController.slice(0, FIELD_MAX),
      reportingInstance: options.reportingInstance.slice(0, FIELD_MAX),
    };
    this.#outage =
      options.log === undefined
        ? undefined
        : new OutageLog({ what: "Events", clock: options.clock, log: options.log });
  }

  record(event: EventInput): void {
    if (this.#stopped || this.#closing) return;
    const now = this.#o.clock.now();
    this.#forgetOld(now);
    const key = JSON.stringify([
      refKey(event.regarding),
      event.related === undefined ? "" : refKey(event.related),
      event.type,
      event.reason,
      event.action,
    ]);
    const series = this.#series.get(key);
    if (series !== undefined && now - series.lastAt < this.#o.seriesWindowMs) {
      series.count++;
      series.lastAt = now;
      series.lastObserved = this.#o.now();
      this.#scheduleFlush(series);
      return;
    }
    if (!this.#take(refKey(event.regarding), now)) {
      this.#o.onDropped?.("rateLimited");
      return;
    }
    const created: Series = {
      namespace: event.regarding.namespace ?? "default",
      name: undefined,
      count: 1,
      written: 1,
      lastAt: now,
      flushedAt: now,
      lastObserved: this.#o.now(),
      flushScheduled: false,
      input: event,
    };
    this.#series.set(key, created);
    this.#enqueue(() => this.#create(created));
  }

  /** Resolves when every queued write is done (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  /**
   * Records nothing more, gives the queued writes up to `graceMs` (default 2 s) to go out (a
   * leader's last Event), then drops the rest.
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.#closing = true;
    let timer: ReturnType<Clock["setTimeout"]> | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => (timer = this.#o.clock.setTimeout(resolve, graceMs))),
    ]);
    if (timer !== undefined) this.#o.clock.clearTimeout(timer);
    this.#stopped = true;
  }

  /** Token bucket per regarding object. */
  #take(object: string, now: number): boolean {
    const bucket = this.#buckets.get(object) ?? { tokens: this.#o.burst, at: now };
    const refilled = Math.min(this.#o.burst, bucket.tokens + (now - bucket.at) / this.#o.refillMs);
    if (refilled < 1) {
      this.#buckets.set(object, { tokens: refilled, at: now });
      return false;
    }
    this.#buckets.set(object, { tokens: refilled - 1, at: now });
    return true;
  }

  /** Series that ended, and buckets that are full again, are forgotten (bounded memory). */
  #forgetOld(now: number): void {
    for (const [key, s] of this.#series)
      if (now - s.lastAt >= this.#o.seriesWindowMs && !s.flushScheduled) this.#series.delete(key);
    for (const [key, b] of this.#buckets)
      if (b.tokens + (now - b.at) / this.#o.refillMs >= this.#o.burst) this.#buckets.delete(key);
  }

  #scheduleFlush(series: Series): void {
    if (series.flushScheduled) return;
    series.flushScheduled = true;
    const delay = Math.max(0, series.flushedAt + this.#o.seriesFlushMs - this.#o.clock.now());
    this.#o.clock.setTimeout(() => {
      series.flushScheduled = false;
      series.flushedAt = this.#o.clock.now();
      if (!this.#stopped) this.#enqueue(() => this.#patchSeries(series));
    }, delay);
  }

  #enqueue(write: () => Promise<void>): void {
    if (this.#queue.length >= this.#o.maxPending) {
      this.#o.onDropped?.("queueFull");
      return;
    }
    this.#queue.push(write);
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
  }

  async #drain(): Promise<void> {
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      if (this.#stopped) {
        this.#queue.length = 0;
        return;
      }
      await next();
    }
  }

  #collection(namespace: string): string {
    return resourcePath(EVENT_RESOURCE, { namespace });
  }

  async #create(series: Series): Promise<void> {
    const e = series.input;
    const name = `${e.regarding.name}.${randomBytes(8).toString("hex")}`;
    const body: Record<string, unknown> = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name, namespace: series.namespace },
      eventTime: microTime(series.lastObserved),
      reportingController: this.#o.reportingController,
      reportingInstance: this.#o.reportingInstance,
      action: e.action.slice(0, FIELD_MAX),
      reason: e.reason.slice(0, FIELD_MAX),
      type: e.type,
      note: cut(e.note, NOTE_MAX),
      regarding: objectReference(e.regarding),
      ...(e.related !== undefined ? { related: objectReference(e.related) } : {}),
    };
    if (series.count > 1) body["series"] = this.#seriesField(series);
    try {
      await this.#o.api.request("POST", this.#collection(series.namespace), body, {
        timeoutMs: this.#o.timeoutMs,
      });
      series.name = name;
      series.written = series.count;
      this.#outage?.succeeded();
    } catch (error) {
      this.#failed(`cannot create an Event about ${describeRef(e.regarding)}: ${describeError(error)}`);
    }
  }

  async #patchSeries(series: Series): Promise<void> {
    if (series.count === series.written) return;
    if (series.name === undefined) {
      await this.#create(series); // the first write failed: try again with the count so far
      return;
    }
    try {
      await this.#o.api.request(
        "PATCH",
        `${this.#collection(series.namespace)}/${encodeURIComponent(series.name)}`,
        { series: this.#seriesField(series) },
        { timeoutMs: this.#o.timeoutMs },
      );
      series.written = series.count;
      this.#outage?.succeeded();
    } catch (error) {
      if (statusCodeOf(error) === 404) {
        // Events expire (the API server's event TTL): start a new one carrying the count.
        series.name = undefined;
        await this.#create(series);
        return;
      }
      this.#failed(`cannot update the Event ${series.namespace}/${series.name}: ${describeError(error)}`);
    }
  }

  #seriesField(series: Series): { count: number; lastObservedTime: string } {
    return { count: series.count, lastObservedTime: microTime(series.lastObserved) };
  }

  #failed(message: string): void {
    this.#o.onDropped?.("writeFailed");
    this.#outage?.failed(message);
  }
}

/** Records nothing (no API server, or Events turned off). */
export const noEvents: EventSink = { record: () => undefined };

function refKey(ref: EventObjectRef): string {
  return `${ref.apiVersion}|${ref.kind}|${ref.namespace ?? ""}|${ref.name}|${ref.uid ?? ""}`;
}

function describeRef(ref: EventObjectRef): string {
  return ref.namespace === undefined ? `${ref.kind} ${ref.name}` : `${ref.kind} ${ref.namespace}/${ref.name}`;
}

function objectReference(ref: EventObjectRef): Record<string, string> {
  return {
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    name: ref.name,
    ...(ref.namespace !== undefined ? { namespace: ref.namespace } : {}),
    ...(ref.uid !== undefined ? { uid: ref.uid } : {}),
  };
}

function cut(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = text.slice(0, max);
  while (Buffer.byteLength(out) > max - 3) out = out.slice(0, -1);
  return `${out}...`;
}
