// The HAProxy process: validate, start (master-worker, as our child), hitless reload through the
// master CLI, stop, crash detection and restart with backoff.
//
// HAProxy 2.6 facts this relies on (checked against 2.6.12):
// - `haproxy -W -S <sock> -f <cfg>` without `-D` stays in the foreground as a master process that
//   forks one worker. A reload re-executes the master in place (same pid, same argv, so the same
//   config path), forks a new worker that takes the listening sockets over from the old one (`-x`
//   through the `stats socket ... expose-fd listeners`, added automatically) and soft-stops the old
//   worker, which finishes its connections up to `hard-stop-after`.
// - The master CLI `reload` command answers NOTHING in 2.6 (the connection just closes while the
//   master re-executes; a status only appeared in 2.7). So success is read from `show proc`: the
//   master's reload counter went up, `[failed: N]` is 0 and a worker we did not know is current.
//   A failed reload (bad config) leaves the old worker current and shows `[failed: 1]`; the master
//   keeps running and a later reload can succeed.
// - When the current worker dies, the master kills the other workers and exits with the worker's
//   status (exit-on-failure): the crash is seen here as our child exiting. `master-worker
//   no-exit-on-failure` does not help in 2.6: the master re-executes itself in "wait mode" after
//   loading, without the configuration, and forgets it (and a 2.6 master exits anyway once its last
//   child is gone). So a dead worker costs a new master: the first restart after a healthy run is
//   immediate, the outage is HAProxy's start time.
// - When the master dies, its workers exit too.
// - SIGUSR1 to the master is a soft stop (workers finish their connections), SIGTERM a hard stop.
//
// The data plane stops with the control plane: HAProxy runs in its own process group (a terminal's
// Ctrl-C reaches Gatehouse only, which then drains HAProxy gracefully) with a parent-death signal
// (SIGUSR1, set by util-linux `setpriv --pdeathsig` before it execs haproxy), so HAProxy soft-stops
// even when Gatehouse is killed with SIGKILL. The master's pid file lets the next Gatehouse on the
// state directory stop one that is still draining (see stale.ts).
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { GatehouseError } from "../../../errors.ts";
import { systemClock } from "../../../provider/clock.ts";
import type { Clock, TimerHandle } from "../../../provider/clock.ts";
import { exchange, RuntimeApiError, UnixSocketRuntimeApi } from "../runtime/socket.ts";
import type { RuntimeApi } from "../runtime/socket.ts";

// ---------------------------------------------------------------------------------------------------
// Errors

/** Base class of process management failures. */
export class HAProxyProcessError extends GatehouseError {}

/** No usable haproxy binary. */
export class HAProxyNotFoundError extends HAProxyProcessError {
  readonly binary: string;
  constructor(binary: string, detail: string) {
    super(`haproxy binary ${JSON.stringify(binary)} ${detail}; install it with: apt-get install haproxy`);
    this.binary = binary;
  }
}

/** HAProxy did not come up (bad config, port in use, ...). `output` holds what it printed. */
export class HAProxyStartError extends HAProxyProcessError {
  readonly output: string;
  constructor(message: string, output: string, options?: ErrorOptions) {
    super(output === "" ? message : `${message}\n${output}`, options);
    this.output = output;
  }
}

/** A reload did not produce a new worker. The previous worker keeps serving. */
export class HAProxyReloadError extends HAProxyProcessError {
  readonly output: string;
  constructor(message: string, output: string, options?: ErrorOptions) {
    super(output === "" ? message : `${message}\n${output}`, options);
    this.output = output;
  }
}

/** The operation needs a running HAProxy, and there is none (never started, stopped, or restarting). */
export class HAProxyNotRunningError extends HAProxyProcessError {}

// ---------------------------------------------------------------------------------------------------
// Binary lookup and validation

/**
 * Resolves the haproxy binary: `binary` as a path if it contains a slash, else searched on PATH
 * (default "haproxy"). Throws HAProxyNotFoundError (with the install hint) when there is none.
 */
export function findHAProxy(binary = "haproxy", path = process.env["PATH"] ?? ""): string {
  const found = findExecutable(binary, path);
  if (found !== undefined) return found;
  throw new HAProxyNotFoundError(
    binary,
    binary.includes("/") ? "does not exist or is not executable" : "was not found on PATH",
  );
}

/** `binary` as a path if it contains a slash, else searched on PATH; undefined when not found. */
export function findExecutable(binary: string, path = process.env["PATH"] ?? ""): string | undefined {
  const candidates = binary.includes("/")
    ? [binary]
    : path
        .split(delimiter)
        .filter((dir) => dir !== "")
        .map((dir) => join(dir, binary));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  return undefined;
}

export interface ValidationResult {
  ok: boolean;
  /** What `haproxy -c` printed (stdout and stderr, interleaved). */
  output: string;
}

/** `haproxy -c -f <config>`: checks a configuration without touching the running process. */
export function validateConfig(
  binary: string,
  configPath: string,
  options: { timeoutMs?: number; extraArgs?: readonly string[] } = {},
): Promise<ValidationResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ["-c", ...(options.extraArgs ?? []), "-f", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (output += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (output += text));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new HAProxyProcessError(`cannot run ${binary} -c: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== null) output += `\nhaproxy -c killed by ${signal}`;
      resolve({ ok: code === 0, output: output.trim() });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// show proc

export interface ProcessInfo {
  pid: number;
  /** For the master: reloads since start. For a worker: reloads it has seen since it was forked. */
  reloads: number;
  uptime: string;
  version: string;
}

export interface ProcessList {
  master: ProcessInfo & { failedReloads: number };
  /** The current worker(s): the ones taking new connections. */
  workers: ProcessInfo[];
  /** Workers soft-stopping after a reload, finishing their connections (up to hard-stop-after). */
  oldWorkers: ProcessInfo[];
}

/** Parses the master CLI's `show proc` (HAProxy 2.6 layout). */
export function parseShowProc(text: string): ProcessList {
  let master: (ProcessInfo & { failedReloads: number }) | undefined;
  const workers: ProcessInfo[] = [];
  const oldWorkers: ProcessInfo[] = [];
  let section: ProcessInfo[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#<PID>") || line.trim() === "") continue;
    if (line.startsWith("#")) {
      const name = line.slice(1).trim();
      section = name === "workers" ? workers : name === "old workers" ? oldWorkers : undefined;
      continue;
    }
    const masterMatch = /^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]\s+(\S+)\s+(\S+)/.exec(line);
    if (masterMatch !== null) {
      const [, pid = "", reloads = "", failed = "", uptime = "", version = ""] = masterMatch;
      master = { pid: Number(pid), reloads: Number(reloads), failedReloads: Number(failed), uptime, version };
      continue;
    }
    const workerMatch = /^(\d+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)/.exec(line);
    if (workerMatch !== null && section !== undefined) {
      const [, pid = "", , reloads = "", uptime = "", version = ""] = workerMatch;
      section.push({ pid: Number(pid), reloads: Number(reloads), uptime, version });
    }
  }
  if (master === undefined)
    throw new HAProxyProcessError(`unexpected "show proc" output: ${text.slice(0, 200)}`);
  return { master, workers, oldWorkers };
}

// ---------------------------------------------------------------------------------------------------
// Restart policy

export interface RestartPolicy {
  /** Restart after a crash (default true). */
  enabled?: boolean;
  /** Delay of the first restart after a healthy run (default 0: at once; the outage is HAProxy's start). */
  firstDelayMs?: number;
  /** Delay before the second restart attempt, growing from there (default 500 ms). */
  initialDelayMs?: number;
  /** Cap on the delay (default 30 s). */
  maxDelayMs?: number;
  /** Growth of the delay per consecutive attempt (default 2). */
  multiplier?: number;
  /** A run at least this long counts as healthy: the next crash starts from the initial delay (60 s). */
  resetAfterMs?: number;
  /** Give up after this many consecutive failed attempts (default: never). */
  maxAttempts?: number;
}

type ResolvedRestartPolicy = Required<RestartPolicy>;

export function resolveRestartPolicy(policy: RestartPolicy = {}): ResolvedRestartPolicy {
  return {
    enabled: policy.enabled ?? true,
    firstDelayMs: policy.firstDelayMs ?? 0,
    initialDelayMs: policy.initialDelayMs ?? 500,
    maxDelayMs: policy.maxDelayMs ?? 30_000,
    multiplier: policy.multiplier ?? 2,
    resetAfterMs: policy.resetAfterMs ?? 60_000,
    maxAttempts: policy.maxAttempts ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * Delay before restart attempt `attempt` (1-based): the first is `firstDelayMs`, then
 * initial × multiplier^(attempt-2), capped.
 */
export function restartDelay(policy: RestartPolicy, attempt: number): number {
  const p = resolveRestartPolicy(policy);
  if (attempt <= 1) return Math.min(p.maxDelayMs, p.firstDelayMs);
  const delay = p.initialDelayMs * p.multiplier ** (attempt - 2);
  return Math.min(p.maxDelayMs, Math.round(delay));
}

// ---------------------------------------------------------------------------------------------------
// The manager

/** Where HAProxy's own output goes. Structurally compatible with the project's pino Logger. */
export interface ProcessLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export type HAProxyProcessEvent =
  | { type: "started"; pid: number }
  | { type: "reloaded"; pid: number; workers: number[] }
  /** The master exited. `expected` is true after stop(). */
  | { type: "exited"; pid: number; code: number | null; signal: string | null; expected: boolean }
  | { type: "restart-scheduled"; attempt: number; delayMs: number }
  | { type: "restarted"; pid: number; attempt: number }
  | { type: "restart-failed"; attempt: number; error: Error }
  /** maxAttempts consecutive restarts failed; HAProxy stays down until start() is called. */
  | { type: "gave-up"; attempts: number };

export type ProcessState =
  "idle" | "starting" | "running" | "restart-pending" | "stopping" | "stopped" | "failed";

export interface HAProxyProcessOptions {
  /** Path of the master CLI socket (`-S`). */
  masterSocket: string;
  /** haproxy binary: a path, or a name looked up on PATH (default "haproxy"). */
  binary?: string;
  /** Extra command-line arguments, placed before `-f`. */
  extraArgs?: readonly string[];
  logger?: ProcessLogger;
  /** Schedules restarts and measures run time (default: the system clock). */
  clock?: Clock;
  restart?: RestartPolicy;
  /** How long start() waits for a serving worker (default 10 s). */
  startTimeoutMs?: number;
  /** How long reload() waits for the new worker (default 10 s). */
  reloadTimeoutMs?: number;
  /** Timeout of each master CLI command (default 5 s). */
  commandTimeoutMs?: number;
  /** SIGTERM the master if this Node process exits without stop() (default true). */
  killOnParentExit?: boolean;
  /** Where the master writes its pid (`-p`), for the next Gatehouse to find a stale one. */
  pidFile?: string;
  /**
   * Signal HAProxy's master gets when this process dies, however it dies (default SIGUSR1: soft
   * stop); needs util-linux `setpriv` (`setprivBinary`, default looked up on PATH). null: none.
   */
  parentDeathSignal?: "SIGUSR1" | "SIGTERM" | null;
  setprivBinary?: string;
}

export interface ReloadResult {
  /** The new current worker(s). */
  workers: number[];
  /** Workers still finishing their connections. */
  oldWorkers: number[];
  /** The master's reload counter after this reload. */
  reloads: number;
}

export interface StopOptions {
  /**
   * true (default): SIGUSR1, workers finish their connections; after `timeoutMs`, SIGTERM.
   * false: SIGTERM at once. Either way SIGKILL `killAfterMs` after the SIGTERM.
   */
  graceful?: boolean;
  timeoutMs?: number;
  killAfterMs?: number;
}

interface LogLine {
  seq: number;
  level: "info" | "warn" | "error";
  text: string;
}

const LOG_TAIL = 200;

/** An HAProxy master-worker process owned by this Node process. */
export class HAProxyProcess {
  readonly masterSocket: string;
  readonly binary: string;
  readonly #options: HAProxyProcessOptions;
  readonly #clock: Clock;
  readonly #restart: ResolvedRestartPolicy;
  readonly #logger: ProcessLogger | undefined;
  readonly #listeners = new Set<(event: HAProxyProcessEvent) => void>();
  readonly #master: UnixSocketRuntimeApi;
  /** `setpriv --pdeathsig <signal> --` before haproxy, or nothing. */
  readonly #launcher: readonly string[];

  #state: ProcessState = "idle";
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #configPath: string | undefined;
  #startedAt = 0;
  #attempt = 0;
  #restartTimer: TimerHandle | undefined;
  #log: LogLine[] = [];
  #logSeq = 0;
  #reloading: Promise<ReloadResult> | undefined;
  #queuedReload: Promise<ReloadResult> | undefined;
  #exitHook: (() => void) | undefined;

  constructor(options: HAProxyProcessOptions) {
    this.#options = options;
    this.masterSocket = options.masterSocket;
    this.binary = findHAProxy(options.binary);
    this.#clock = options.clock ?? systemClock;
    this.#restart = resolveRestartPolicy(options.restart);
    this.#logger = options.logger;
    this.#master = new UnixSocketRuntimeApi({
      socketPath: options.masterSocket,
      timeoutMs: options.commandTimeoutMs ?? 5_000,
    });
    this.#launcher = parentDeathLauncher(options, this.#logger);
  }

  /** The master's pid while a master runs. */
  get pid(): number | undefined {
    return this.#state === "running" || this.#state === "stopping" ? this.#child?.pid : undefined;
  }

  get state(): ProcessState {
    return this.#state;
  }

  /** The configuration file HAProxy runs (and re-reads on reload). */
  get configPath(): string | undefined {
    return this.#configPath;
  }

  /** Subscribes to lifecycle events; returns the unsubscribe function. */
  on(listener: (event: HAProxyProcessEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The master CLI (`show proc`, ...). */
  get masterCli(): RuntimeApi {
    return this.#master;
  }

  /**
   * The runtime API of the current worker, routed by the master (`@1`). The stats socket is shared by
   * old and new workers through a reload (the listener is handed over), so this is the address that
   * cannot reach an old worker by construction (in tests, none was reached after reload() returned).
   */
  runtime(options: { timeoutMs?: number; maxRequestBytes?: number } = {}): RuntimeApi {
    return new UnixSocketRuntimeApi({
      socketPath: this.masterSocket,
      target: "@1",
      timeoutMs: options.timeoutMs ?? this.#options.commandTimeoutMs ?? 5_000,
      ...(options.maxRequestBytes === undefined ? {} : { maxRequestBytes: options.maxRequestBytes }),
    });
  }

  /** `haproxy -c -f <configPath>` with this manager's binary and extra arguments. */
  validate(configPath: string): Promise<ValidationResult> {
    return validateConfig(this.binary, configPath, { extraArgs: this.#options.extraArgs ?? [] });
  }

  /** Starts HAProxy on `configPath` and resolves once a worker serves. */
  async start(configPath: string): Promise<number> {
    if (this.#state === "running" || this.#state === "starting" || this.#state === "stopping") {
      throw new HAProxyProcessError(`HAProxy is already ${this.#state}`);
    }
    this.#cancelRestart();
    this.#configPath = configPath;
    this.#attempt = 0;
    const pid = await this.#launch(configPath);
    this.#emit({ type: "started", pid });
    return pid;
  }

  /** `show proc` through the master CLI. */
  async processes(): Promise<ProcessList> {
    return parseShowProc(await this.#master.command("show proc"));
  }

  /** The pids of the current workers. */
  async workers(): Promise<number[]> {
    return (await this.processes()).workers.map((worker) => worker.pid);
  }

  /**
   * Reloads through the master CLI and resolves once a new worker serves. Concurrent calls are
   * coalesced: a call made while a reload runs gets the next reload, shared with every other call
   * made meanwhile, so a burst costs at most two reloads. Throws HAProxyReloadError when the new
   * configuration does not load (the old worker keeps serving).
   */
  reload(): Promise<ReloadResult> {
    if (this.#reloading === undefined) return this.#runReload();
    this.#queuedReload ??= this.#reloading
      .catch(() => undefined)
      .then(() => {
        this.#queuedReload = undefined;
        return this.#runReload();
      });
    return this.#queuedReload;
  }

  /** Stops HAProxy (see StopOptions) and cancels any pending restart. Safe to call at any time. */
  async stop(options: StopOptions = {}): Promise<void> {
    this.#cancelRestart();
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopping";
    const exited = this.#exited;
    const graceful = options.graceful ?? true;
    const timeoutMs = options.timeoutMs ?? 5_000;
    const killAfterMs = options.killAfterMs ?? 2_000;
    const waitFor = async (ms: number): Promise<boolean> => {
      const timeout = sleep(ms, false, { ref: false });
      return Promise.race([exited.then(() => true), timeout]);
    };
    child.kill(graceful ? "SIGUSR1" : "SIGTERM");
    if (await waitFor(timeoutMs)) return;
    if (graceful) {
      child.kill("SIGTERM");
      if (await waitFor(killAfterMs)) return;
    }
    this.#logger?.warn({ pid: child.pid }, "haproxy did not stop in time, killing it");
    child.kill("SIGKILL");
    await exited;
  }

  /** The last lines HAProxy printed (most recent last). */
  recentOutput(): string[] {
    return this.#log.map((line) => line.text);
  }

  // -------------------------------------------------------------------------------------------------

  async #launch(configPath: string): Promise<number> {
    this.#state = "starting";
    const args = [
      "-W",
      "-S",
      `${this.masterSocket},mode,600`,
      ...(this.#options.pidFile !== undefined ? ["-p", this.#options.pidFile] : []),
      ...(this.#options.extraArgs ?? []),
      "-f",
      configPath,
    ];
    const mark = this.#logSeq;
    const [program, ...launcherArgs] = this.#launcher;
    // Own process group (detached): signals for Gatehouse's group (a terminal's Ctrl-C) are ours to
    // pass on, as a graceful stop. (The pid is haproxy's: setpriv execs it.)
    const command: readonly string[] =
      program === undefined ? [this.binary, ...args] : [program, ...launcherArgs, this.binary, ...args];
    const child = spawn(command[0] ?? this.binary, command.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.#child = child;
    let exitedEarly: { code: number | null; signal: string | null } | undefined;
    let resolveExited!: () => void;
    this.#exited = new Promise((resolve) => (resolveExited = resolve));
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => this.#onOutput(line));
    }
    child.once("exit", (code, signal) => {
      exitedEarly = { code, signal };
      this.#removeExitHook();
      resolveExited();
      this.#onExit(child, code, signal);
    });
    this.#installExitHook(child);

    const deadline = Date.now() + (this.#options.startTimeoutMs ?? 10_000);
    let lastError: unknown;
    for (;;) {
      const failure = await Promise.race([spawnError, sleep(25, undefined)]);
      if (failure !== undefined) {
        this.#launchEnded();
        throw new HAProxyStartError(`cannot run ${this.binary}: ${failure.message}`, "", { cause: failure });
      }
      if (exitedEarly !== undefined) {
        await Promise.race([closed, sleep(500)]); // let the last output lines arrive
        this.#launchEnded();
        throw new HAProxyStartError(
          `haproxy exited during startup (${describeExit(exitedEarly.code, exitedEarly.signal)})`,
          this.#outputSince(mark),
        );
      }
      let ready = false;
      try {
        const list = await this.processes();
        const worker = list.workers[0];
        // (A stale master of an earlier run could still own the socket path: insist on ours.)
        ready =
          list.master.pid === child.pid && worker !== undefined && (await this.#workerAnswers(worker.pid));
      } catch (error) {
        lastError = error;
      }
      if (ready && exitedEarly === undefined) {
        const state = this.#currentState();
        if (state !== "starting") throw new HAProxyStartError(`start interrupted: HAProxy is ${state}`, "");
        this.#startedAt = this.#clock.now();
        this.#state = "running";
        return child.pid ?? 0;
      }
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        this.#launchEnded();
        throw new HAProxyStartError(
          "haproxy did not start serving in time",
          this.#outputSince(mark),
          lastError === undefined ? undefined : { cause: lastError },
        );
      }
    }
  }

  async #workerAnswers(pid: number): Promise<boolean> {
    try {
      const info = await new UnixSocketRuntimeApi({
        socketPath: this.masterSocket,
        target: `@!${pid}`,
        timeoutMs: 1_000,
      }).command("show info");
      return info.includes(`\nPid: ${pid}\n`);
    } catch {
      return false;
    }
  }

  #runReload(): Promise<ReloadResult> {
    const run = this.#doReload().finally(() => {
      if (this.#reloading === run) this.#reloading = undefined;
    });
    this.#reloading = run;
    return run;
  }

  async #doReload(): Promise<ReloadResult> {
    if (this.#state !== "running")
      throw new HAProxyNotRunningError(`cannot reload: HAProxy is ${this.#state}`);
    const before = await this.processes();
    const known = new Set([...before.workers, ...before.oldWorkers].map((worker) => worker.pid));
    const mark = this.#logSeq;
    try {
      // 2.6 answers nothing: the master re-executes itself and the connection closes.
      await exchange(this.masterSocket, "reload\n", { timeoutMs: this.#options.commandTimeoutMs ?? 5_000 });
    } catch (error) {
      if (!(error instanceof RuntimeApiError)) throw error;
      // The command may still have been taken; show proc tells.
    }
    const deadline = Date.now() + (this.#options.reloadTimeoutMs ?? 10_000);
    let lastError: unknown;
    for (;;) {
      const state = this.#currentState(); // (re-read: the master may exit while we wait)
      if (state !== "running") {
        throw new HAProxyReloadError(
          `HAProxy went away during the reload (${state})`,
          this.#outputSince(mark),
        );
      }
      try {
        const list = await this.processes();
        if (list.master.reloads > before.master.reloads) {
          const fresh = list.workers.filter((worker) => !known.has(worker.pid));
          if (list.master.failedReloads > 0 && fresh.length === 0) {
            throw new HAProxyReloadError(
              "HAProxy could not load the new configuration; the previous one keeps serving",
              this.#outputSince(mark),
            );
          }
          const first = fresh[0];
          if (first !== undefined && (await this.#workerAnswers(first.pid))) {
            const result: ReloadResult = {
              workers: list.workers.map((worker) => worker.pid),
              oldWorkers: list.oldWorkers.map((worker) => worker.pid),
              reloads: list.master.reloads,
            };
            this.#emit({ type: "reloaded", pid: list.master.pid, workers: result.workers });
            return result;
          }
        }
      } catch (error) {
        if (error instanceof HAProxyReloadError) throw error;
        lastError = error; // the master CLI is briefly away while the master re-executes
      }
      if (Date.now() > deadline) {
        throw new HAProxyReloadError(
          "no new HAProxy worker after the reload",
          this.#outputSince(mark),
          lastError === undefined ? undefined : { cause: lastError },
        );
      }
      await sleep(20);
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.#child !== child) return;
    const expected = this.#state === "stopping" || this.#state === "stopped";
    const wasRunning = this.#state === "running";
    this.#emit({ type: "exited", pid: child.pid ?? 0, code, signal, expected });
    if (expected) {
      this.#state = "stopped";
      return;
    }
    if (!wasRunning) return; // a failed start: start() or #restartNow reports it
    this.#logger?.error({ pid: child.pid, code, signal }, "haproxy exited unexpectedly");
    if (!this.#restart.enabled) {
      this.#state = "failed";
      return;
    }
    if (this.#clock.now() - this.#startedAt >= this.#restart.resetAfterMs) this.#attempt = 0;
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    this.#attempt += 1;
    if (this.#attempt > this.#restart.maxAttempts) {
      this.#state = "failed";
      this.#emit({ type: "gave-up", attempts: this.#attempt - 1 });
      return;
    }
    const delayMs = restartDelay(this.#restart, this.#attempt);
    this.#state = "restart-pending";
    this.#emit({ type: "restart-scheduled", attempt: this.#attempt, delayMs });
    this.#restartTimer = this.#clock.setTimeout(() => {
      this.#restartTimer = undefined;
      void this.#restartNow();
    }, delayMs);
  }

  async #restartNow(): Promise<void> {
    const configPath = this.#configPath;
    if (this.#state !== "restart-pending" || configPath === undefined) return;
    const attempt = this.#attempt;
    try {
      const pid = await this.#launch(configPath);
      this.#emit({ type: "restarted", pid, attempt });
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      this.#logger?.error({ err, attempt }, "haproxy restart failed");
      this.#emit({ type: "restart-failed", attempt, error: err });
      // Unless stop() or start() took over meanwhile, try again later.
      if (this.#launchFailed()) this.#scheduleRestart();
    }
  }

  /** A launch failed: "failed", unless stop() took over meanwhile. */
  #launchEnded(): void {
    if (this.#state === "starting") this.#state = "failed";
  }

  #launchFailed(): boolean {
    return this.#state === "failed";
  }

  #currentState(): ProcessState {
    return this.#state;
  }

  #cancelRestart(): void {
    if (this.#restartTimer !== undefined) {
      this.#clock.clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
  }

  #installExitHook(child: ChildProcess): void {
    if (this.#options.killOnParentExit === false) return;
    this.#removeExitHook();
    const hook = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
    process.on("exit", hook);
    this.#exitHook = hook;
  }

  #removeExitHook(): void {
    if (this.#exitHook !== undefined) process.off("exit", this.#exitHook);
    this.#exitHook = undefined;
  }

  #onOutput(text: string): void {
    const match = /^\[(\w+)\]\s*\((\d+)\)\s*:\s?(.*)$/.exec(text);
    const tag = match?.[1] ?? "";
    const level = tag === "ALERT" || tag === "EMERG" ? "error" : tag === "WARNING" ? "warn" : "info";
    this.#log.push({ seq: ++this.#logSeq, level, text });
    if (this.#log.length > LOG_TAIL) this.#log.splice(0, this.#log.length - LOG_TAIL);
    const fields = { source: "haproxy", pid: match === null ? undefined : Number(match[2]) };
    const message = match?.[3] ?? text;
    this.#logger?.[level](fields, message);
  }

  #outputSince(mark: number): string {
    return this.#log
      .filter((line) => line.seq > mark)
      .map((line) => line.text)
      .join("\n");
  }

  #emit(event: HAProxyProcessEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.#logger?.error({ err: error }, "HAProxyProcess event listener threw");
      }
    }
  }
}

/** `setpriv --pdeathsig <signal> --` when wanted and available (a warning when it is not). */
function parentDeathLauncher(options: HAProxyProcessOptions, logger: ProcessLogger | undefined): string[] {
  const signal = options.parentDeathSignal === undefined ? "SIGUSR1" : options.parentDeathSignal;
  if (signal === null) return [];
  const setpriv = findExecutable(options.setprivBinary ?? "setpriv");
  if (setpriv !== undefined) return [setpriv, "--pdeathsig", signal.replace(/^SIG/, ""), "--"];
  logger?.warn(
    { setpriv: options.setprivBinary ?? "setpriv" },
    "setpriv (util-linux) not found: HAProxy will outlive Gatehouse if Gatehouse is killed; " +
      "the next start on the same state directory stops it",
  );
  return [];
}

function describeExit(code: number | null, signal: string | null): string {
  return signal === null ? `exit code ${code ?? "?"}` : `signal ${signal}`;
}
