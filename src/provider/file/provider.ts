// The standalone file provider: loads Kubernetes objects from a YAML file or a directory tree,
// watches it and delivers a fresh snapshot whenever something changes.
//
// Coalescing: at most one load is in flight. A change starts a debounce window (`debounceMs` of quiet,
// but never postponed by more than `maxDelayMs` in total, so a never-ending stream of writes still
// gets loaded); every change inside the window joins it, and changes that arrive while a load runs
// cause exactly one more load after it. A burst of 1,000 writes therefore costs one or two loads.
// A load whose input is byte-for-byte what the last delivered update was built from is not
// delivered again (editors' swap files, `touch`, no-op saves cost a load but no translation).
import { createHash } from "node:crypto";
import { basename, dirname, resolve } from "node:path";
import { GatehouseError, InputError, LoadError } from "../../errors.ts";
import { loadSnapshot, nodeFileSystem, ParseCache } from "../../resources/load.ts";
import type { FileSystem, SnapshotLoadResult } from "../../resources/load.ts";
import { emptySnapshot } from "../../resources/snapshot.ts";
import { systemClock } from "../clock.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import type { Provider, ProviderUpdate, SnapshotListener } from "../types.ts";
import { nodeWatch } from "./watch.ts";
import type { WatchEvent, WatchFactory, WatchHandle, WatchRequest } from "./watch.ts";

export interface FileProviderOptions {
  /** A YAML file, or a directory searched recursively for `*.yaml`/`*.yml` (see loadPath). */
  path: string;
  /** Quiet time after the last change before loading (default 50 ms). */
  debounceMs?: number;
  /** Upper bound on how long a pending change may be postponed by further changes (default 1 s). */
  maxDelayMs?: number;
  /** Delay before retrying to watch when watching failed or the path's parent is missing (default 1 s). */
  retryMs?: number;
  /** Deliver an update even when the input is unchanged since the last one (default false). */
  emitUnchanged?: boolean;
  /** Watch implementation (default node:fs `watch`). */
  watcher?: WatchFactory;
  /** File-system access for loading (default node:fs/promises). */
  fs?: FileSystem;
  /** Timers (default the real ones). */
  clock?: Clock;
  /**
   * Problems of the provider itself, not of the input: a watch that failed (the provider then
   * retries every `retryMs`, which amounts to polling) or a snapshot listener that threw.
   * Default: one line on stderr.
   */
  onWarning?: (message: string, cause?: unknown) => void;
}

type State = "new" | "running" | "stopped";

export class FileProvider implements Provider {
  readonly path: string;
  readonly #absolute: string;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #retryMs: number;
  readonly #emitUnchanged: boolean;
  readonly #watch: WatchFactory;
  readonly #fs: FileSystem;
  /** Unchanged files are not parsed and validated again (large trees: only the edited file is). */
  readonly #cache = new ParseCache();
  readonly #clock: Clock;
  readonly #warn: (message: string, cause?: unknown) => void;

  #state: State = "new";
  #listener: SnapshotListener | undefined;
  #watches: WatchHandle[] = [];
  /** A change has been seen that no started load has read yet. */
  #dirty = false;
  /** The watched path may have been replaced: re-establish the watches before the next load. */
  #rewatch = true;
  #timer: TimerHandle | undefined;
  #retryTimer: TimerHandle | undefined;
  #firstChangeAt = 0;
  #lastChangeAt = 0;
  #inFlight: Promise<void> | undefined;
  #loads = 0;
  #generation = 0;
  #fingerprint: string | undefined;
  #watchFailing = false;

  constructor(options: FileProviderOptions) {
    this.path = options.path;
    this.#absolute = resolve(options.path);
    this.#debounceMs = options.debounceMs ?? 50;
    this.#maxDelayMs = Math.max(options.maxDelayMs ?? 1000, this.#debounceMs);
    this.#retryMs = options.retryMs ?? 1000;
    this.#emitUnchanged = options.emitUnchanged ?? false;
    this.#watch = options.watcher ?? nodeWatch;
    this.#fs = options.fs ?? nodeFileSystem;
    this.#clock = options.clock ?? systemClock;
    this.#warn = options.onWarning ?? defaultWarning;
  }

  /** Loads started so far (delivered or not). */
  get loadCount(): number {
    return this.#loads;
  }

  /** Generation of the last delivered update (0 before the first). */
  get generation(): number {
    return this.#generation;
  }

  async start(onSnapshot: SnapshotListener): Promise<void> {
    if (this.#state !== "new") throw new GatehouseError(`file provider for ${this.path} already started`);
    this.#state = "running";
    this.#listener = onSnapshot;
    await this.#run();
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#listener = undefined;
    this.#cancelTimer();
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#closeWatches();
    await this.whenIdle();
  }

  /** Resolves when no load is in flight (a scheduled, debounced load may still be pending). */
  async whenIdle(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  /** Records a change; `rewatch` when the watched path itself may have been replaced. */
  #changed(rewatch: boolean): void {
    if (this.#state !== "running") return;
    if (rewatch) this.#rewatch = true;
    const now = this.#clock.now();
    this.#lastChangeAt = now;
    if (!this.#dirty) {
      this.#dirty = true;
      this.#firstChangeAt = now;
    }
    // While a load runs, the change is picked up when it ends (#run schedules one more load).
    if (this.#inFlight === undefined && this.#timer === undefined) this.#arm();
  }

  /** Sets the timer to the end of the current debounce window. */
  #arm(): void {
    const due = Math.min(this.#lastChangeAt + this.#debounceMs, this.#firstChangeAt + this.#maxDelayMs);
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, due - this.#clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#state !== "running" || this.#inFlight !== undefined) return;
    const due = Math.min(this.#lastChangeAt + this.#debounceMs, this.#firstChangeAt + this.#maxDelayMs);
    // Changes arrived since the timer was set: wait for the window to close (one timer per burst).
    if (due > this.#clock.now()) this.#arm();
    else void this.#run();
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #run(): Promise<void> {
    this.#cancelTimer();
    const run = this.#loadOnce()
      .catch((error: unknown) => this.#warn(`loading ${this.path} failed unexpectedly`, error))
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#state === "running" && this.#dirty) this.#arm();
      });
    this.#inFlight = run;
    return run;
  }

  async #loadOnce(): Promise<void> {
    this.#dirty = false;
    if (this.#rewatch) {
      this.#rewatch = false;
      await this.#watchPath();
    }
    if (this.#state !== "running") return;
    this.#loads++;
    const { result, fingerprint } = await this.#load();
    if (this.#state !== "running" || this.#listener === undefined) return;
    if (!this.#emitUnchanged && fingerprint === this.#fingerprint) return;
    this.#fingerprint = fingerprint;
    const update: ProviderUpdate = {
      snapshot: result.snapshot,
      errors: result.errors,
      warnings: result.warnings,
      generation: ++this.#generation,
    };
    try {
      this.#listener(update);
    } catch (error) {
      this.#warn(`snapshot listener failed on generation ${update.generation}`, error);
    }
  }

  /** Loads the path; never throws. The fingerprint covers everything the result was built from. */
  async #load(): Promise<{ result: SnapshotLoadResult; fingerprint: string }> {
    const hash = createHash("sha256");
    const recording: FileSystem = {
      stat: (path) => this.#fs.stat(path),
      readdir: (path) => this.#fs.readdir(path),
      readFile: async (path, encoding) => {
        const text = await this.#fs.readFile(path, encoding);
        hash.update(`file\0${path}\0${text.length}\0`).update(text);
        return text;
      },
    };
    let result: SnapshotLoadResult;
    try {
      result = await loadSnapshot(this.path, recording, this.#cache);
    } catch (error) {
      result = {
        snapshot: emptySnapshot(),
        objects: [],
        errors: [pathError(this.path, error)],
        warnings: [],
      };
    }
    for (const error of result.errors) hash.update(`error\0${error.message}\0`);
    for (const warning of result.warnings) hash.update(`warning\0${warning}\0`);
    return { result, fingerprint: hash.digest("hex") };
  }

  /**
   * (Re-)establishes the watches: the parent directory (to see the path itself created, removed or
   * replaced, and, for a file, every write however the editor does it) and, for a directory, the
   * whole tree below it. When a watch cannot be set up, retries after `retryMs`.
   */
  async #watchPath(): Promise<void> {
    this.#closeWatches();
    let kind: "file" | "directory" | "missing";
    try {
      const info = await this.#fs.stat(this.path);
      kind = info.isDirectory() ? "directory" : "file";
    } catch {
      kind = "missing";
    }
    if (this.#state !== "running") return;
    const parent = dirname(this.#absolute);
    const name = basename(this.#absolute);
    const failures: unknown[] = [];
    if (parent !== this.#absolute) {
      failures.push(
        this.#open({ path: parent, recursive: false }, (event) => {
          const self = event.filename === null || event.filename === name;
          // A file is watched through its parent, so every event there may concern it (a ConfigMap
          // volume swaps a `..data` symlink, not the file name); a directory only cares about itself.
          if (self || kind !== "directory") this.#changed(self && event.type === "rename");
        }),
      );
    }
    if (kind === "directory") {
      failures.push(
        this.#open({ path: this.#absolute, recursive: true }, (event) => {
          this.#changed(event.filename === "");
        }),
      );
    }
    const failure = failures.find((error) => error !== undefined);
    if (failure === undefined) {
      this.#watchFailing = false;
      return;
    }
    // A missing parent is an input problem the load reports; anything else is worth a warning.
    if (!(kind === "missing" && isCode(failure, "ENOENT"))) {
      this.#watchFailed(`cannot watch ${this.path}`, failure);
    }
    this.#retryLater();
  }

  /** Warns once per spell of failures (retries happen every retryMs and would repeat it). */
  #watchFailed(message: string, cause: unknown): void {
    if (this.#watchFailing) return;
    this.#watchFailing = true;
    this.#warn(`${message}; retrying every ${this.#retryMs} ms until it works`, cause);
  }

  /** Starts one watch; returns what it threw, or undefined on success. */
  #open(request: WatchRequest, onEvent: (event: WatchEvent) => void): unknown {
    let handle: WatchHandle | undefined;
    try {
      handle = this.#watch(request, onEvent, (error) => {
        if (handle !== undefined && !this.#watches.includes(handle)) return; // a watch already replaced
        this.#watchFailed(`watching ${request.path} failed`, error);
        this.#closeWatches();
        this.#retryLater();
      });
      this.#watches.push(handle);
      return undefined;
    } catch (error) {
      return error ?? new Error(`cannot watch ${request.path}`);
    }
  }

  #retryLater(): void {
    if (this.#retryTimer !== undefined || this.#state !== "running") return;
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#changed(true);
    }, this.#retryMs);
  }

  #closeWatches(): void {
    const watches = this.#watches;
    this.#watches = [];
    for (const handle of watches) {
      try {
        handle.close();
      } catch {
        // Closing is best effort; the handle is dropped either way.
      }
    }
  }
}

/** The path as a whole cannot be read: reported as an input problem of the path. */
function pathError(path: string, error: unknown): InputError {
  const message = error instanceof Error ? error.message : String(error);
  const prefix = `${path}: `;
  const detail =
    error instanceof LoadError && message.startsWith(prefix) ? message.slice(prefix.length) : message;
  return new InputError(detail, { file: path }, { cause: error });
}

function isCode(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === code;
}

function defaultWarning(message: string, cause?: unknown): void {
  const detail =
    cause instanceof Error
      ? `: ${cause.message}`
      : cause === undefined
        ? ""
        : `: ${JSON.stringify(cause) ?? typeof cause}`;
  process.stderr.write(`gatehouse: file provider: ${message}${detail}\n`);
}
