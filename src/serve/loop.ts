// The serve loop: provider updates → translate → make renderable → apply → statuses. One update is
// processed at a time; updates arriving meanwhile coalesce into the latest one. Nothing that comes
// from the input can stop the loop: failures are logged, counted, and visible in /status.
import type { Logger } from "pino";
import type { AdminStateStore } from "../admin/state.ts";
import { ApplyError, type ApplyOutcome } from "../dataplane/haproxy/apply/applier.ts";
import { degrade, type Degradation } from "../dataplane/haproxy/degrade.ts";
import { checkRenderable, formatIssue, type RenderOptions } from "../dataplane/haproxy/render/index.ts";
import type { IR } from "../ir/types.ts";
import { validateIR } from "../ir/validate.ts";
import { recordConfigErrors, type Metrics } from "../observability/metrics.ts";
import type { ProviderUpdate } from "../provider/types.ts";
import { withFeedback, type DataplaneFeedback, type UnavailableListener } from "../status/feedback.ts";
import type { StatusEntry } from "../status/types.ts";
import { translate } from "../translate/index.ts";

/** Translator options that follow from how Gatehouse runs (`--infrastructure`). */
export interface ModeOptions {
  infrastructure?: "host" | "kubernetes";
}
import type { GatewayInfrastructure } from "../infra/types.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";

export interface Dataplane {
  /**
   * `unavailableListeners`: listeners the data plane could not serve (e.g. a UDP port in use); they
   * report Programmed False, and the update is retried while one of them is Pending.
   */
  apply(ir: IR): Promise<ApplyOutcome & { unavailableListeners?: readonly UnavailableListener[] }>;
}

export interface ServeLoopOptions {
  controllerName: string;
  /** Translator options beyond controller name, time and validators (e.g. the infrastructure mode). */
  translate?: ModeOptions;
  renderOptions: RenderOptions;
  dataplane: Dataplane;
  store: AdminStateStore;
  metrics: Metrics;
  logger: Logger;
  /** Addresses reported for Gateways bound on all interfaces. */
  hostAddresses: readonly string[];
  /** The clock (the loop is the edge that reads it). */
  now: () => Date;
  /** Called after each processed update (tests wait on it). */
  onProcessed?: (generation: number) => void;
  /**
   * Runs between translation and rendering: may give Gateways addresses (and bind them) and report
   * them in status (e.g. `--infrastructure host` with an address pool). Default: none.
   */
  infrastructure?: GatewayInfrastructure;
  /** Receives the final statuses of every processed update, after the admin store (e.g. the Kubernetes status writer). */
  onStatuses?: (statuses: readonly StatusEntry[], update: ProviderUpdate) => void;
  /**
   * A failed apply (HAProxy down, a port taken by another process) is retried with exponential
   * backoff until it succeeds or a newer update arrives. Default 1 s doubling up to 30 s.
   */
  retry?: { initialMs: number; maxMs: number };
  /** Timer for retries (default setTimeout, unref'd). Returns a cancel function. */
  setTimer?: (fn: () => void, ms: number) => () => void;
}

const defaultTimer = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

export class ServeLoop {
  readonly #o: ServeLoopOptions;
  /** `since`: the first input change the update carries that is not applied yet (propagation starts there). */
  #pending: { update: ProviderUpdate; since: number | undefined } | undefined;
  #running: Promise<void> | undefined;
  #cancelRetry: (() => void) | undefined;
  #retryDelayMs: number | undefined;
  /** The latest update submitted (refresh() submits it again). */
  #last: ProviderUpdate | undefined;

  constructor(options: ServeLoopOptions) {
    this.#o = options;
  }

  /** Takes a provider update; returns at once (processing is asynchronous and coalesced). */
  submit(update: ProviderUpdate): void {
    this.#last = update;
    // The provider's time of the change (same clock), else now.
    this.#submit(update, update.changedAt ?? performance.now());
  }

  /** `since` undefined: no input changed (a refresh), nothing to count as propagation. */
  #submit(update: ProviderUpdate, since: number | undefined): void {
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
    // An update replacing one not yet processed also carries that one's changes.
    const earlier = this.#pending?.since;
    this.#pending = {
      update,
      since: since === undefined ? earlier : earlier === undefined ? since : Math.min(since, earlier),
    };
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  /**
   * Processes the latest update again (unless one is pending): for inputs outside the provider's
   * snapshot that change the statuses, such as data-plane pods reporting what they applied.
   */
  refresh(): void {
    if (this.#pending !== undefined || this.#last === undefined) return;
    this.#submit(this.#last, undefined);
  }

  /** Cancels a scheduled retry (on shutdown). */
  stop(): void {
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
  }

  /** After a failed apply: the same update again after a growing delay, unless a newer one comes. */
  #scheduleRetry(update: ProviderUpdate): void {
    const { initialMs, maxMs } = this.#o.retry ?? { initialMs: 1000, maxMs: 30_000 };
    const delay = this.#retryDelayMs === undefined ? initialMs : Math.min(maxMs, this.#retryDelayMs * 2);
    this.#retryDelayMs = delay;
    this.#o.logger.info({ generation: update.generation, ms: delay }, "retrying the failed apply later");
    this.#cancelRetry = (this.#o.setTimer ?? defaultTimer)(() => {
      this.#cancelRetry = undefined;
      if (this.#pending === undefined) this.submit(update);
    }, delay);
  }

  /** Resolves when every submitted update has been processed. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#pending !== undefined) {
      const { update, since } = this.#pending;
      this.#pending = undefined;
      try {
        const applied = await this.#process(update, since);
        if (applied) this.#retryDelayMs = undefined;
        else if (this.#pending === undefined) this.#scheduleRetry(update);
      } catch (err) {
        // A bug, not an input problem: keep serving and say so loudly.
        this.#o.logger.error(
          { err, generation: update.generation },
          "internal error while processing an update",
        );
      }
      this.#o.onProcessed?.(update.generation);
    }
  }

  /** Returns false when the data plane did not take the configuration (worth retrying). */
  async #process(update: ProviderUpdate, since: number | undefined): Promise<boolean> {
    const { store, metrics, logger } = this.#o;
    store.setInput(update);
    recordConfigErrors(metrics, update.errors);
    for (const e of update.errors) logger.warn({ generation: update.generation }, String(e));
    for (const w of update.warnings) logger.info({ generation: update.generation }, w);

    const now = this.#o
      .now()
      .toISOString()
      .replace(/\.\d+Z$/, "Z");
    const started = performance.now();
    const result = translate(update.snapshot, {
      ...this.#o.translate,
      controllerName: this.#o.controllerName,
      now,
      validators: haproxyValidators,
    });
    metrics.translations.inc();
    metrics.translationDuration.observe((performance.now() - started) / 1000);

    let prepared = { ir: result.ir, statuses: result.statuses };
    if (this.#o.infrastructure !== undefined) {
      try {
        prepared = await this.#o.infrastructure.prepare({
          ir: result.ir,
          statuses: result.statuses,
          snapshot: update.snapshot,
          now,
        });
      } catch (err) {
        logger.error({ err, generation: update.generation }, "infrastructure step failed");
      }
    }

    const { ir, degradations, fatal } = renderable(prepared.ir, this.#o.renderOptions);
    // The validators should have kept all of this out of the IR: a degradation is a gap in them.
    for (const d of degradations)
      logger.error({ generation: update.generation }, `not programmed: ${formatIssue(d.issue)}`);
    const feedback: DataplaneFeedback = {
      hostAddresses: this.#o.hostAddresses,
      leftOut: degradations.map((d) => ({
        message: d.issue.message,
        ...(d.route !== undefined ? { route: d.route } : {}),
        ...(d.listenerId !== undefined ? { listenerId: d.listenerId } : {}),
      })),
    };
    const publish = (extra: Partial<DataplaneFeedback>): void =>
      this.#publish(withFeedback(prepared.statuses, { ...feedback, ...extra }, now), update);

    // The IR's invariants (every reference resolves, ids are unique, ...) are the translator's
    // promise; a broken one is a bug, and applying it could break traffic that works now.
    const broken = validateIR(ir);
    if (fatal.length > 0 || broken.length > 0) {
      const message =
        broken.length > 0
          ? `internal error: the IR violates its invariants: ${broken.slice(0, 5).join("; ")}`
          : `cannot render the configuration: ${fatal.map(formatIssue).join("; ")}`;
      logger.error({ generation: update.generation }, message);
      store.recordApply(update.generation, ir, { ok: false, error: new ApplyError(message) });
      metrics.reloads.inc({ result: "invalid" });
      publish({ notApplied: message });
      return true; // the same input renders the same way: nothing to retry
    }
    let unavailable: readonly UnavailableListener[] = [];
    try {
      const outcome = await this.#o.dataplane.apply(ir);
      unavailable = outcome.unavailableListeners ?? [];
      const method = outcome.method === "noop" ? "unchanged" : outcome.method;
      store.recordApply(update.generation, ir, { ok: true, method });
      if (outcome.method === "reload" || outcome.method === "start")
        metrics.reloads.inc({ result: "success" });
      for (const [type, n] of Object.entries(outcome.runtimeUpdates)) {
        if (n > 0) metrics.runtimeUpdates.inc({ type: type }, n);
      }
      metrics.lastAppliedTimestamp.set(Date.now() / 1000);
      const seconds = since === undefined ? undefined : (performance.now() - since) / 1000;
      if (seconds !== undefined) metrics.routePropagation.observe(seconds);
      // A refresh that changed nothing is not worth a line.
      if (seconds !== undefined || outcome.method !== "noop")
        logger.info(
          {
            generation: update.generation,
            method: outcome.method,
            ...(seconds !== undefined ? { ms: Math.round(seconds * 1000) } : {}),
          },
          `applied: ${outcome.detail}`,
        );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const output = err instanceof ApplyError ? err.validationOutput : undefined;
      logger.error({ generation: update.generation, haproxy: output }, `not applied: ${message}`);
      metrics.reloads.inc({
        result: err instanceof ApplyError && output !== undefined ? "invalid" : "failure",
      });
      store.recordApply(update.generation, ir, { ok: false, error: err });
      publish({ notApplied: `${message}${output !== undefined ? `: ${lastLines(output)}` : ""}` });
      // HAProxy rejecting the configuration is final for this input; anything else may pass later.
      return output !== undefined;
    }
    publish({ unavailableListeners: unavailable });
    return !unavailable.some((u) => u.reason === "Pending");
  }

  #publish(statuses: StatusEntry[], update: ProviderUpdate): void {
    this.#o.store.setStatuses(statuses);
    this.#o.onStatuses?.(statuses, update);
  }
}

/** Narrows renderer issues to the elements concerned until the IR renders (bounded). */
function renderable(
  ir: IR,
  options: RenderOptions,
): { ir: IR; degradations: Degradation[]; fatal: ReturnType<typeof degrade>["fatal"] } {
  let current = ir;
  const all: Degradation[] = [];
  for (let round = 0; round < 4; round++) {
    const issues = checkRenderable(current, options);
    if (issues.length === 0) return { ir: current, degradations: all, fatal: [] };
    const step = degrade(current, issues);
    all.push(...step.degradations);
    if (step.fatal.length > 0) return { ir: step.ir, degradations: all, fatal: step.fatal };
    current = step.ir;
  }
  return { ir: current, degradations: all, fatal: checkRenderable(current, options) };
}

function lastLines(text: string): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-5)
    .join(" | ");
}
