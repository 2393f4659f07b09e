// The HAProxy applier: takes each new IR to the running HAProxy with the least disruption.
// Runtime-only changes (maps, server slots, certificates) go through the runtime API; anything
// structural is written to a fresh generation directory, validated with `haproxy -c`, and loaded
// with a hitless master-worker reload. A configuration HAProxy rejects never replaces the running one.
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GatehouseError } from "../../../errors.ts";
import type { IR } from "../../../ir/types.ts";
import type { UnavailableListener } from "../../../status/feedback.ts";
import type { ReloadResult, ValidationResult } from "../process/manager.ts";
import {
  addMapEntries,
  deleteMapEntry,
  replaceMap,
  setServerState,
  updateServerSlot,
  upsertSslCert,
} from "../runtime/commands.ts";
import type { RuntimeApi } from "../runtime/socket.ts";
import { render, type RenderedConfig, type RenderOptions } from "../render/index.ts";
import { writeTree, type FileWriter } from "./files.ts";
import { compactionReason, planApply, tcpListenAddresses, type ApplyPlan } from "./plan.ts";

/** What the applier needs of the HAProxy process (HAProxyProcess implements it). */
export interface DataplaneProcess {
  readonly state: string;
  validate(configPath: string): Promise<ValidationResult>;
  start(configPath: string): Promise<number>;
  reload(): Promise<ReloadResult>;
}

export interface ApplierOptions {
  /** Base state directory: holds haproxy.cfg and one `g<N>/` directory per loaded generation. */
  stateDir: string;
  process: DataplaneProcess;
  /** Runtime API of the current worker. */
  runtime: RuntimeApi;
  files: FileWriter;
  render: Omit<RenderOptions, "stateDir">;
  /** Generations kept on disk besides the current one (old workers may still use them). */
  keepGenerations?: number;
  /**
   * Why `host:port` cannot be bound right now, or undefined when it can (default: canBindExclusively).
   * Checked before every apply for each listener address HAProxy does not hold: see #servable.
   */
  canBind?: (host: string, port: number) => Promise<string | undefined>;
}

export type ApplyMethod = "noop" | "runtime" | "reload" | "start";

export interface ApplyOutcome {
  method: ApplyMethod;
  /** Why a reload was needed, or what the runtime update changed. */
  detail: string;
  /** Counts of runtime updates by type. */
  runtimeUpdates: { map: number; server: number; certificate: number };
  /** Time spent per phase (render, plan, runtime, files, validate, reload), ms. */
  durationsMs?: Record<string, number>;
  /**
   * Spare backends serving an IRBackend after this apply: HAProxy backend name (`gh_spare_<n>`, as
   * HAProxy's stats and logs show it) → IRBackend id. Empty after a reload (reloads free every spare).
   */
  spares?: Record<string, string>;
  /**
   * Listeners left out because their address and port are held by another process (reason
   * Pending: every later apply tries them again). HAProxy serves everything else.
   */
  unavailableListeners?: UnavailableListener[];
}

/** The new configuration was not applied; the previous one keeps serving. */
export class ApplyError extends GatehouseError {
  readonly validationOutput: string | undefined;
  constructor(message: string, options: ErrorOptions & { validationOutput?: string } = {}) {
    super(message, options);
    this.validationOutput = options.validationOutput;
  }
}

interface Running {
  generation: number;
  dir: string;
  rendered: RenderedConfig;
}

export class HAProxyApplier {
  readonly #o: ApplierOptions;
  #running: Running | undefined;
  #nextGeneration = 1;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ApplierOptions) {
    this.#o = options;
  }

  /** Path of the configuration file HAProxy runs (stable across reloads). */
  get configPath(): string {
    return join(this.#o.stateDir, "haproxy.cfg");
  }

  /** Applies `ir`; calls are serialised. Throws ApplyError (old config still serving) or RenderError. */
  apply(ir: IR): Promise<ApplyOutcome> {
    const run = this.#queue.then(() => this.#apply(ir));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(full: IR): Promise<ApplyOutcome> {
    await this.#settled();
    const { ir, unavailable } = await this.#servable(full);
    const outcome = await this.#applyServable(ir);
    return unavailable.length === 0 ? outcome : { ...outcome, unavailableListeners: unavailable };
  }

  /**
   * `ir` without the listeners whose address and port another process holds. HAProxy binds
   * exclusively (`noreuseport`), and one address it cannot bind fails the whole start or reload
   * (in 2.6 a reload even pauses the serving worker's listeners for ~2 s while it retries), so each
   * address HAProxy does not hold already is tried first. The ones it holds are not: they pass to
   * the new worker through the master (expose-fd listeners).
   */
  async #servable(ir: IR): Promise<{ ir: IR; unavailable: UnavailableListener[] }> {
    const running = this.#running;
    const held = new Set(
      running !== undefined && this.#o.process.state === "running"
        ? tcpListenAddresses(running.rendered.config).map((a) => `${a.host}|${a.port}`)
        : [],
    );
    const canBind = this.#o.canBind ?? canBindExclusively;
    const problems = new Map<string, Promise<string | undefined>>();
    const unavailable: UnavailableListener[] = [];
    const gateways = [];
    for (const g of ir.gateways) {
      const hosts = g.addresses.length === 0 ? ["0.0.0.0"] : [...new Set(g.addresses)];
      const listeners = [];
      for (const l of g.listeners) {
        const messages: string[] = [];
        if (l.protocol !== "UDP") {
          for (const host of hosts) {
            const key = `${host}|${l.port}`;
            if (held.has(key)) continue;
            let problem = problems.get(key);
            if (problem === undefined) problems.set(key, (problem = canBind(host, l.port)));
            const message = await problem;
            if (message !== undefined)
              messages.push(`cannot listen on ${formatHostPort(host, l.port)}: ${message}`);
          }
        }
        if (messages.length === 0) listeners.push(l);
        else
          unavailable.push({
            listenerId: l.id,
            message: `${messages.join("; ")} (retried)`,
            reason: "Pending",
          });
      }
      gateways.push(listeners.length === g.listeners.length ? g : { ...g, listeners });
    }
    return unavailable.length === 0 ? { ir, unavailable } : { ir: { ...ir, gateways }, unavailable };
  }

  async #applyServable(ir: IR): Promise<ApplyOutcome> {
    const running = this.#running;
    const t = new Timer();
    if (running !== undefined && this.#o.process.state === "running") {
      // Rendered against the running layout: a new Service can take a free spare backend.
      const rendered = t.time("render", () =>
        render(ir, { ...this.#o.render, stateDir: running.dir }, running.rendered.layout),
      );
      const plan = t.time("plan", () => planApply(running.rendered, rendered));
      if (plan.kind === "noop") {
        return {
          method: "noop",
          detail: "no change",
          runtimeUpdates: zero(),
          durationsMs: t.phases,
          spares: assignedSpares(running.rendered),
        };
      }
      const compaction = plan.kind === "runtime" ? compactionReason(rendered) : undefined;
      if (compaction !== undefined) return await this.#reload(ir, compaction, t);
      if (plan.kind === "runtime") {
        try {
          const counts = await t.timeAsync("runtime", () => this.#runtime(plan));
          // Files follow the runtime state, so a restart of HAProxy loads the same data.
          await t.timeAsync("files", () => this.#writeChanged(running, rendered));
          this.#running = { ...running, rendered };
          return {
            method: "runtime",
            detail: describeRuntime(counts, plan.spares),
            runtimeUpdates: counts,
            durationsMs: t.phases,
            spares: assignedSpares(rendered),
          };
        } catch (err) {
          // The runtime may be half-updated: a reload from files brings everything in line.
          return await this.#reload(ir, `runtime update failed (${errorText(err)})`, t);
        }
      }
      return await this.#reload(ir, plan.reason, t);
    }
    return await this.#reload(
      ir,
      running === undefined ? "first configuration" : "HAProxy is not running",
      t,
    );
  }

  /** Runs the plan's steps in order (see planApply for why this order). */
  async #runtime(plan: Extract<ApplyPlan, { kind: "runtime" }>): Promise<ApplyOutcome["runtimeUpdates"]> {
    const running = this.#running;
    if (running === undefined) throw new ApplyError("nothing is running");
    const api = this.#o.runtime;
    for (const step of plan.steps) {
      switch (step.kind) {
        case "server":
          if (step.update.state === "ready") await updateServerSlot(api, step.update);
          else await setServerState(api, step.update.backend, step.update.server, step.update.state);
          break;
        case "certificate":
          await upsertSslCert(api, join(running.dir, step.file), step.pem);
          break;
        case "map-replace":
          await replaceMap(api, join(running.dir, step.file), step.entries);
          break;
        case "map-add":
          await addMapEntries(api, join(running.dir, step.file), step.entries);
          break;
        case "map-delete":
          for (const key of step.keys) await deleteMapEntry(api, join(running.dir, step.file), key);
          break;
      }
    }
    return { map: plan.maps.length, server: plan.servers.length, certificate: plan.certificates.length };
  }

  /** Writes the files that changed, and the configuration if it did, concurrently. */
  async #writeChanged(running: Running, rendered: RenderedConfig): Promise<void> {
    const writes = Object.entries(changedFiles(running.rendered, rendered)).map(([rel, content]) =>
      this.#o.files.write(join(running.dir, rel), content),
    );
    if (rendered.config !== running.rendered.config)
      writes.push(this.#o.files.write(this.configPath, rendered.config));
    await Promise.all(writes);
  }

  /**
   * Waits while the process manager (re)starts HAProxy on its own after a crash: it reloads the
   * configuration file we last wrote, and start() would be refused meanwhile. Bounded.
   */
  async #settled(): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (this.#o.process.state === "starting" && Date.now() < deadline) await sleep(20);
  }

  async #reload(ir: IR, reason: string, t = new Timer(), retry = true): Promise<ApplyOutcome> {
    const generation = this.#nextGeneration++;
    const dir = join(this.#o.stateDir, `g${generation}`);
    const rendered = t.time("render", () => render(ir, { ...this.#o.render, stateDir: dir }));
    const candidate = join(this.#o.stateDir, `haproxy.cfg.g${generation}`);
    await t.timeAsync("files", async () => {
      await this.#o.files.remove(dir);
      await writeTree(this.#o.files, dir, rendered.files);
      await this.#o.files.mkdir(join(dir, "sock"));
      await this.#o.files.write(candidate, rendered.config);
    });
    const check = await t.timeAsync("validate", () => this.#o.process.validate(candidate));
    if (!check.ok) {
      await this.#o.files.remove(dir);
      await this.#o.files.remove(candidate);
      throw new ApplyError(`HAProxy rejected the new configuration; the previous one keeps serving`, {
        validationOutput: check.output,
      });
    }
    // Validation takes a while: the process manager may have begun restarting HAProxy meanwhile.
    await this.#settled();
    const starting = this.#o.process.state !== "running";
    const previous = this.#running;
    await this.#o.files.write(this.configPath, rendered.config);
    await this.#o.files.remove(candidate);
    try {
      if (starting) await t.timeAsync("reload", () => this.#o.process.start(this.configPath));
      else await t.timeAsync("reload", () => this.#o.process.reload());
    } catch (err) {
      // HAProxy still runs (or restarts) the previous configuration: keep it on disk.
      if (previous !== undefined) await this.#o.files.write(this.configPath, previous.rendered.config);
      // HAProxy crashed meanwhile and is being restarted (on the previous configuration): once it
      // is back, try again rather than leave the change unapplied until the next one.
      const state = this.#o.process.state;
      if (retry && (state === "restart-pending" || state === "starting")) {
        await this.#settled();
        return await this.#reload(ir, reason, t, false);
      }
      throw new ApplyError(`HAProxy ${starting ? "start" : "reload"} failed: ${errorText(err)}`, {
        cause: err,
      });
    }
    this.#running = { generation, dir, rendered };
    await this.#prune(previous?.generation);
    return {
      method: starting ? "start" : "reload",
      detail: reason,
      runtimeUpdates: zero(),
      durationsMs: t.phases,
      spares: assignedSpares(rendered),
    };
  }

  /** Removes generation directories older than the ones still possibly in use. */
  async #prune(previous: number | undefined): Promise<void> {
    const keep = this.#o.keepGenerations ?? 2;
    const current = this.#running?.generation ?? 0;
    for (const name of await this.#o.files.list(this.#o.stateDir)) {
      const m = /^g(\d+)$/.exec(name);
      if (m === null) continue;
      const n = Number(m[1]);
      if (n === current || n === previous || n > current - keep) continue;
      await this.#o.files.remove(join(this.#o.stateDir, name));
    }
  }
}

/**
 * Binds `host:port` exclusively (no SO_REUSEPORT, as HAProxy binds with `noreuseport`) and closes
 * it at once; why that failed, or undefined when it worked.
 */
export function canBindExclusively(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => {
      resolve(err.code === "EADDRINUSE" ? "the address is in use by another process" : err.message);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Longest wait for HAProxy to finish a restart the process manager began (its start timeout is 10 s). */
const SETTLE_TIMEOUT_MS = 30_000;

function changedFiles(before: RenderedConfig, after: RenderedConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [file, content] of Object.entries(after.files))
    if (before.files[file] !== content) out[file] = content;
  return out;
}

/** Accumulates wall-clock time per named phase. */
class Timer {
  readonly phases: Record<string, number> = {};

  time<T>(phase: string, fn: () => T): T {
    const start = performance.now();
    try {
      return fn();
    } finally {
      this.#add(phase, start);
    }
  }

  async timeAsync<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.#add(phase, start);
    }
  }

  #add(phase: string, start: number): void {
    this.phases[phase] = (this.phases[phase] ?? 0) + Math.round((performance.now() - start) * 10) / 10;
  }
}

function zero(): ApplyOutcome["runtimeUpdates"] {
  return { map: 0, server: 0, certificate: 0 };
}

function describeRuntime(c: ApplyOutcome["runtimeUpdates"], spares: Record<string, string | null>): string {
  const text = `runtime update: ${c.map} map(s), ${c.server} server slot(s), ${c.certificate} certificate(s)`;
  const changes = Object.entries(spares).map(([spare, backend]) =>
    backend === null ? `${spare} freed` : `${spare} serves ${backend}`,
  );
  return changes.length === 0 ? text : `${text}; ${changes.join(", ")}`;
}

/** Spare backend → IRBackend id, for the spares that serve one. */
function assignedSpares(rendered: RenderedConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of rendered.layout.sections) if (s.spare && s.backend !== undefined) out[s.name] = s.backend;
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
