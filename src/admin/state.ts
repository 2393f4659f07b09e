// What the admin server shows, and a small store the serve loop feeds as the pipeline runs.
//
// Readiness: not ready until a configuration has been programmed into the data plane once. After
// that, the proxy stays ready while a newer generation is pending or has failed to apply, because
// the previous configuration keeps serving (a failed reload never replaces it); pulling a working
// proxy out of its load balancer for every pending change would turn each change into an outage.
// The reason field (and /status) then says that what serves is stale, and why.
// A configuration in effect that programs no listener at all (every file deleted, every listener
// failed to bind) is not ready either: nothing would answer the traffic a load balancer sends.
//
// Nothing here holds key material: the IR in effect is kept with its private keys replaced by
// fingerprints, and error texts are passed through redactText.
import { StaleInputError, formatDocument } from "../errors.ts";
import type { InputError } from "../errors.ts";
import type { IR } from "../ir/types.ts";
import { gatehouseVersion } from "../version.ts";
import type { Condition, StatusEntry } from "../status/types.ts";
import { redactIR, redactText, type RedactedIR } from "./redact.ts";

export interface Readiness {
  ready: boolean;
  /** Why not ready, or what is off while ready (a newer generation pending or failed). */
  reason?: string;
}

/** What the admin server reads. Implementations must be cheap and must not throw. */
export interface AdminState {
  ready(): Readiness;
  /** The `/status` document (see StatusDocument). */
  status(): unknown;
  /**
   * The IR in effect, without key material, or undefined when no configuration is in effect yet
   * (`/config` is then 503). The same object until the configuration changes.
   */
  config(): unknown;
  /** Calls `listener` after every change (the admin server publishes then); returns an unsubscribe. */
  subscribe?(listener: () => void): () => void;
  /** Changes whenever status() would (lets the admin server skip re-serialising an unchanged one). */
  version?(): number;
}

/** One input problem, flattened for JSON. */
export interface InputErrorReport {
  /** The full one-line form, e.g. `a.yaml#2 HTTPRoute default/web: spec.rules[0]: ...`. */
  message: string;
  /** The bare problem. */
  detail: string;
  file?: string;
  /** `file#index` (`file#index.items[i]` for a List item). */
  document?: string;
  index?: number;
  item?: number;
  line?: number;
  column?: number;
  kind?: string;
  namespace?: string;
  name?: string;
  field?: string;
  /**
   * The problem was rejected and the last valid version keeps serving (of the file, or of the
   * object when `kind`/`name` are set) until the input is fixed.
   */
  stale?: true;
  /** RFC 3339: when the version still serving was read (with `stale`). */
  servingSince?: string;
}

export function inputErrorReport(error: InputError): InputErrorReport {
  const report: InputErrorReport = { message: redactText(error.message), detail: redactText(error.detail) };
  const location = error.location;
  const document = formatDocument(location);
  if (location.file !== undefined) report.file = location.file;
  if (document !== "" && location.index !== undefined) report.document = document;
  if (location.index !== undefined) report.index = location.index;
  if (location.item !== undefined) report.item = location.item;
  if (location.line !== undefined) report.line = location.line;
  if (location.column !== undefined) report.column = location.column;
  if (location.kind !== undefined) report.kind = location.kind;
  if (location.namespace !== undefined) report.namespace = location.namespace;
  if (location.name !== undefined) report.name = location.name;
  if (location.field !== undefined) report.field = location.field;
  if (error instanceof StaleInputError) {
    report.stale = true;
    report.servingSince = error.servingSince;
  }
  return report;
}

/** How the data plane took a configuration. */
export type ApplyMethod = "start" | "reload" | "runtime" | "unchanged";

export interface ApplyRecord {
  generation: number;
  result: "success" | "failure";
  method?: ApplyMethod;
  /** RFC 3339. */
  at: string;
  /** Set when result is failure. */
  error?: string;
}

export interface DataplaneState {
  /** Generation of the configuration the data plane is running; null before the first success. */
  appliedGeneration: number | null;
  lastApply: ApplyRecord | null;
  /** The last failure, kept after later successes so a past problem stays visible. */
  lastError: ApplyRecord | null;
  /** Recent events of the data-plane process (start, crash, restart), newest last. */
  events: Array<{ at: string; message: string }>;
  /**
   * Spare HAProxy backends serving a Service since a runtime update (HAProxy's stats and logs name
   * them `gh_spare_<n>`) → the IRBackend id they serve. Absent until the data plane reports it.
   */
  spares?: Record<string, string>;
}

/** The `/status` document. */
export interface StatusDocument {
  /** Gatehouse's version (`gatehouse --version`). */
  version: string;
  /** Generation of the latest input; null before the first. */
  generation: number | null;
  /** Every object that gets status, with the status computed for the latest input. */
  objects: StatusEntry[];
  /** Input problems of the latest input. */
  errors: InputErrorReport[];
  warnings: string[];
  dataplane: DataplaneState;
}

export type ApplyOutcome =
  { ok: true; method?: ApplyMethod } | { ok: false; error: unknown; method?: ApplyMethod };

/**
 * An AdminState fed by the serve loop: `setInput` for each provider update, `setStatuses` for each
 * translation, `recordApply` for each attempt to program the data plane.
 */
export class AdminStateStore implements AdminState {
  readonly #now: () => Date;
  #generation: number | null = null;
  readonly #listenersRequired: boolean;
  #errors: InputErrorReport[] = [];
  #warnings: string[] = [];
  #objects: StatusEntry[] = [];
  #appliedIR: RedactedIR | undefined;
  #dataplane: DataplaneState = { appliedGeneration: null, lastApply: null, lastError: null, events: [] };
  /** Listeners of the latest statuses, and of the input generation they were computed for. */
  #latestListeners: { generation: number | null; summary: ListenerSummary } | undefined;
  /** Listeners of the configuration in effect (the statuses of the applied generation). */
  #servedListeners: ListenerSummary | undefined;
  #version = 0;
  readonly #listeners = new Set<() => void>();

  /**
   * `listenersRequired` (default true): not ready while no listener is programmed, as a proxy that
   * serves nothing should not take traffic. False for a controller whose Gateways are served by
   * their own pods (--infrastructure kubernetes): it is ready once it has published a configuration.
   */
  constructor(now: () => Date = () => new Date(), options: { listenersRequired?: boolean } = {}) {
    this.#now = now;
    this.#listenersRequired = options.listenersRequired ?? true;
  }

  /** A new input generation arrived (its problems replace the previous ones). */
  setInput(update: { generation: number; errors: readonly InputError[]; warnings: readonly string[] }): void {
    this.#generation = update.generation;
    this.#errors = update.errors.map(inputErrorReport);
    this.#warnings = update.warnings.map(redactText);
    this.#changed();
  }

  /** The statuses computed for the latest input. */
  setStatuses(statuses: readonly StatusEntry[]): void {
    this.#objects = [...statuses];
    const summary = summariseListeners(this.#objects);
    this.#latestListeners = { generation: this.#generation, summary };
    if (this.#generation !== null && this.#dataplane.appliedGeneration === this.#generation)
      this.#servedListeners = summary;
    this.#changed();
  }

  /** An attempt to program `ir` (built from input `generation`) into the data plane. */
  recordApply(generation: number, ir: IR, outcome: ApplyOutcome): void {
    const record: ApplyRecord = {
      generation,
      result: outcome.ok ? "success" : "failure",
      at: this.#now().toISOString(),
    };
    if (outcome.method !== undefined) record.method = outcome.method;
    if (!outcome.ok) record.error = describe(outcome.error);
    this.#dataplane = {
      ...this.#dataplane,
      appliedGeneration: outcome.ok ? generation : this.#dataplane.appliedGeneration,
      lastApply: record,
      lastError: outcome.ok ? this.#dataplane.lastError : record,
    };
    if (outcome.ok) {
      this.#appliedIR = redactIR(ir);
      if (this.#latestListeners?.generation === generation)
        this.#servedListeners = this.#latestListeners.summary;
    }
    this.#changed();
  }

  /** Which spare backends serve which IRBackend now (see DataplaneState.spares). */
  recordSpares(spares: Record<string, string>): void {
    this.#dataplane = { ...this.#dataplane, spares: { ...spares } };
    this.#changed();
  }

  /** Something happened to the data-plane process (kept: the last 20 events). */
  recordProcessEvent(message: string): void {
    const events = [
      ...this.#dataplane.events,
      { at: this.#now().toISOString(), message: redactText(message) },
    ].slice(-20);
    this.#dataplane = { ...this.#dataplane, events };
    this.#changed();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  version(): number {
    return this.#version;
  }

  #changed(): void {
    this.#version++;
    for (const listener of this.#listeners) listener();
  }

  ready(): Readiness {
    const latest = this.#generation;
    const { appliedGeneration, lastApply } = this.#dataplane;
    const failed =
      lastApply?.result === "failure" && lastApply.generation === latest ? `: ${lastApply.error ?? ""}` : "";
    if (appliedGeneration === null) {
      if (latest === null) return { ready: false, reason: "no configuration loaded yet" };
      if (failed !== "")
        return { ready: false, reason: `configuration generation ${latest} failed to apply${failed}` };
      return { ready: false, reason: `configuration generation ${latest} not programmed yet` };
    }
    const served = this.#servedListeners;
    if (this.#listenersRequired && served !== undefined && served.programmed === 0) {
      const why =
        served.problems.length === 0
          ? `generation ${appliedGeneration} has no listener`
          : served.problems.join("; ");
      return { ready: false, reason: `no listener is programmed: ${why}` };
    }
    if (latest !== null && appliedGeneration < latest) {
      const what = failed !== "" ? `failed to apply${failed}` : "is pending";
      return { ready: true, reason: `serving generation ${appliedGeneration}; generation ${latest} ${what}` };
    }
    return { ready: true };
  }

  status(): StatusDocument {
    return {
      version: gatehouseVersion(),
      generation: this.#generation,
      objects: this.#objects,
      errors: this.#errors,
      warnings: this.#warnings,
      dataplane: this.#dataplane,
    };
  }

  config(): RedactedIR | undefined {
    return this.#appliedIR;
  }
}

/** How many listeners the statuses report, how many of them Programmed, and why not (a few). */
export interface ListenerSummary {
  total: number;
  programmed: number;
  /** `namespace/gateway/listener: Reason: message` of the first listeners not programmed. */
  problems: string[];
}

const MAX_PROBLEMS = 3;

export function summariseListeners(statuses: readonly StatusEntry[]): ListenerSummary {
  const summary: ListenerSummary = { total: 0, programmed: 0, problems: [] };
  let unprogrammed = 0;
  for (const entry of statuses) {
    if (entry.kind !== "Gateway") continue;
    const listeners = entry.status["listeners"];
    if (!Array.isArray(listeners)) continue;
    for (const listener of listeners as Array<{ name?: string; conditions?: Condition[] }>) {
      summary.total++;
      const programmed = listener.conditions?.find((c) => c.type === "Programmed");
      if (programmed?.status === "True") {
        summary.programmed++;
        continue;
      }
      unprogrammed++;
      if (summary.problems.length < MAX_PROBLEMS) {
        const id = `${entry.metadata.namespace ?? "default"}/${entry.metadata.name}/${listener.name ?? "?"}`;
        const why =
          programmed === undefined
            ? "no Programmed condition"
            : `${programmed.reason}: ${programmed.message}`;
        summary.problems.push(`${id}: ${redactText(why)}`);
      }
    }
  }
  if (unprogrammed > summary.problems.length)
    summary.problems.push(`and ${unprogrammed - summary.problems.length} more`);
  return summary;
}

function describe(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}
