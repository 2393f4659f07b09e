// The standalone file provider: loads Kubernetes objects from a YAML file or a directory tree,
// watches it and delivers a fresh snapshot whenever something changes.
//
// Coalescing: at most one load is in flight. A change starts a debounce window (`debounceMs` of quiet,
// short so that a single edit is served at once; `burstDebounceMs` once many changes come in a row;
// never postponed by more than `maxDelayMs` in total, so a never-ending stream of writes still gets
// loaded); every change inside the window joins it, and changes that arrive while a load runs cause
// exactly one more load after it. A burst of 1,000 writes therefore costs one or two loads.
// A load whose input is byte-for-byte what the last delivered update was built from is not
// delivered again (editors' swap files, `touch`, no-op saves cost a load but no translation).
//
// Loads are incremental (see FileIndex): the watch events name the files and directories that
// changed, and only those are read again. A load walks the whole tree when that is not known: at
// start, when the watched path itself changed or the watches were re-established, for an event
// without a name, and every `rescanMs` as a safety net against lost events.
//
// Bad input behaves like an update an API server rejected (FileIndex with keepLastValid): a file
// that stops parsing keeps serving what it last contributed, an object that stops validating keeps
// its last valid version, and the problem is reported as stale (StaleInputError) until fixed.
import { basename, dirname, resolve } from "node:path";
import { GatehouseError, InputError, LoadError } from "../../errors.ts";
import { FileIndex } from "../../resources/file-index.ts";
import type { IndexedLoad } from "../../resources/file-index.ts";
import { nodeFileSystem } from "../../resources/load.ts";
import type { FileSystem } from "../../resources/load.ts";
import { emptySnapshot } from "../../resources/snapshot.ts";
import { systemClock } from "../clock.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import type { Provider, ProviderUpdate, SnapshotListener } from "../types.ts";
import { nodeWatch } from "./watch.ts";
import type { WatchEvent, WatchFactory, WatchHandle, WatchRequest } from "./watch.ts";

export interface FileProviderOptions {
  /** A YAML file, or a directory searched recursively for `*.yaml`/`*.yml` (see loadPath). */
  path: string;
  /**
   * Quiet time after the last change before loading (default 5 ms: the events of one write, or of a
   * write to a temporary file and its rename, arrive well within it).
   */
  debounceMs?: number;
  /**
   * Quiet time when many files are being written, copied or checked out (default 50 ms), so that
   * the burst is loaded once or twice, not once per pause in it. A batch is part of a burst when it
   * has more than a few dozen changes, or when it started while a load ran or within this time
   * after one.
   */
  burstDebounceMs?: number;
  /** Upper bound on how long a pending change may be postponed by further changes (default 1 s). */
  maxDelayMs?: number;
  /**
   * Interval of full re-reads of the tree, a safety net against changes no event reported (lost
   * inotify events, a symbolic link's target outside the tree); an unchanged tree delivers nothing.
   * Counted from the last full load. Default 30 s; 0 disables.
   */
  rescanMs?: number;
  /** Delay before retrying to watch when watching failed or the path's parent is missing (default 1 s). */
  retryMs?: number;
  /**
   * Keep serving the last valid version of a file that stops parsing (or cannot be read) and of an
   * object that stops validating, as an API server keeps an object whose update it rejected
   * (default true). Off, every load is exactly what the tree holds now (`loadSnapshot`).
   */
  keepLastValid?: boolean;
  /** Files larger than this many bytes are refused unread (default 16 MiB). */
  maxFileBytes?: number;
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

/**
 * A batch with more changes than this is a burst (writing one file, even through a temporary file
 * and a rename, makes about four) and waits for `burstDebounceMs` of quiet.
 */
const BURST_CHANGES = 32;

/** Beyond this many distinct paths in one batch, the load walks the whole tree instead. */
const MAX_NAMED_PATHS = 10_000;

export class FileProvider implements Provider {
  readonly path: string;
  readonly #absolute: string;
  readonly #debounceMs: number;
  readonly #burstDebounceMs: number;
  readonly #maxDelayMs: number;
  readonly #retryMs: number;
  readonly #rescanMs: number;
  readonly #emitUnchanged: boolean;
  readonly #watch: WatchFactory;
  readonly #fs: FileSystem;
  /** The input, file by file: a load re-reads what the events named (or everything, see #full). */
  readonly #index: FileIndex;
  readonly #clock: Clock;
  readonly #warn: (message: string, cause?: unknown) => void;

  #state: State = "new";
  #listener: SnapshotListener | undefined;
  #watches: WatchHandle[] = [];
  /** A change has been seen that no started load has read yet. */
  #dirty = false;
  /** The watched path may have been replaced: re-establish the watches before the next load. */
  #rewatch = true;
  /** Paths (relative to the watched directory) that events named since the last load started. */
  #changedPaths = new Set<string>();
  /** A change whose extent is unknown was seen: the next load walks the whole tree. */
  #full = true;
  #timer: TimerHandle | undefined;
  #retryTimer: TimerHandle | undefined;
  #rescanTimer: TimerHandle | undefined;
  #firstChangeAt = 0;
  #lastChangeAt = 0;
  /** Changes seen in the current batch (from the first change after a load started). */
  #batchChanges = 0;
  /** The current batch started during or right after a load (see burstDebounceMs). */
  #batchFollows = false;
  #lastLoadEndedAt = Number.NEGATIVE_INFINITY;
  #inFlight: Promise<void> | undefined;
  #loads = 0;
  #generation = 0;
  #fingerprint: string | undefined;
  #watchFailing = false;

  constructor(options: FileProviderOptions) {
    this.path = options.path;
    this.#absolute = resolve(options.path);
    this.#debounceMs = options.debounceMs ?? 5;
    this.#burstDebounceMs = Math.max(options.burstDebounceMs ?? 50, this.#debounceMs);
    this.#maxDelayMs = Math.max(options.maxDelayMs ?? 1000, this.#debounceMs);
    this.#retryMs = options.retryMs ?? 1000;
    this.#rescanMs = options.rescanMs ?? 30_000;
    this.#emitUnchanged = options.emitUnchanged ?? false;
    this.#watch = options.watcher ?? nodeWatch;
    this.#fs = options.fs ?? nodeFileSystem;
    this.#index = new FileIndex(options.path, this.#fs, {
      keepLastValid: options.keepLastValid ?? true,
      ...(options.maxFileBytes === undefined ? {} : { maxFileBytes: options.maxFileBytes }),
    });
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
    this.#cancelRescan();
    this.#closeWatches();
    await this.whenIdle();
  }

  /** Resolves when no load is in flight (a scheduled, debounced load may still be pending). */
  async whenIdle(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  /**
   * Records a change: of `path` (relative to the watched directory) when the event named one, of
   * anything otherwise; `rewatch` when the watched path itself may have been replaced.
   */
  #changed(rewatch: boolean, path?: string): void {
    if (this.#state !== "running") return;
    if (rewatch) this.#rewatch = true;
    if (rewatch || path === undefined || this.#changedPaths.size >= MAX_NAMED_PATHS) {
      this.#full = true;
      this.#changedPaths.clear();
    } else if (!this.#full) {
      this.#changedPaths.add(path);
    }
    const now = this.#clock.now();
    this.#lastChangeAt = now;
    if (!this.#dirty) {
      this.#dirty = true;
      this.#firstChangeAt = now;
      this.#batchChanges = 0;
      this.#batchFollows =
        this.#inFlight !== undefined || now - this.#lastLoadEndedAt < this.#burstDebounceMs;
    }
    this.#batchChanges++;
    // While a load runs, the change is picked up when it ends (#run schedules one more load).
    if (this.#inFlight === undefined && this.#timer === undefined) this.#arm();
  }

  /** When the current debounce window closes. */
  #due(): number {
    const burst = this.#batchFollows || this.#batchChanges > BURST_CHANGES;
    const quiet = burst ? this.#burstDebounceMs : this.#debounceMs;
    return Math.min(this.#lastChangeAt + quiet, this.#firstChangeAt + this.#maxDelayMs);
  }

  /** Sets the timer to the end of the current debounce window. */
  #arm(): void {
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, this.#due() - this.#clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#state !== "running" || this.#inFlight !== undefined) return;
    const due = this.#due();
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
        this.#lastLoadEndedAt = this.#clock.now();
        if (this.#state === "running" && this.#dirty) this.#arm();
      });
    this.#inFlight = run;
    return run;
  }

  async #loadOnce(): Promise<void> {
    // The first change of this batch (none for the initial load): what propagation is timed from.
    const changedAt = this.#dirty ? this.#firstChangeAt : undefined;
    this.#dirty = false;
    let full = this.#full;
    const paths = this.#changedPaths;
    this.#full = false;
    this.#changedPaths = new Set();
    if (this.#rewatch) {
      this.#rewatch = false;
      full = true;
      await this.#watchPath();
    }
    if (this.#state !== "running") return;
    this.#loads++;
    const { fingerprint, ...result } = await this.#load(full, paths);
    if (this.#state !== "running" || this.#listener === undefined) return;
    if (!this.#emitUnchanged && fingerprint === this.#fingerprint) return;
    this.#fingerprint = fingerprint;
    const update: ProviderUpdate = {
      snapshot: result.snapshot,
      errors: result.errors,
      warnings: result.warnings,
      generation: ++this.#generation,
      ...(changedAt === undefined ? {} : { changedAt }),
    };
    try {
      this.#listener(update);
    } catch (error) {
      this.#warn(`snapshot listener failed on generation ${update.generation}`, error);
    }
  }

  /**
   * Loads the path: the named paths only, unless `full` (or the index cannot follow them exactly).
   * Never throws. The fingerprint covers everything the result was built from.
   */
  async #load(full: boolean, paths: ReadonlySet<string>): Promise<IndexedLoad> {
    if (!full) {
      try {
        const refreshed = await this.#index.refresh(paths);
        if (refreshed !== undefined) return refreshed;
      } catch (error) {
        // Not an input problem (those are in the result): a bug. Reading everything still works.
        this.#warn(`loading the changes under ${this.path} failed, reading everything`, error);
      }
    }
    this.#cancelRescan();
    try {
      return await this.#index.reload();
    } catch (error) {
      // The path itself cannot be read (or something unexpected): walk everything next time too.
      this.#full = true;
      const failure = pathError(this.path, error);
      return {
        snapshot: emptySnapshot(),
        objects: [],
        errors: [failure],
        warnings: [],
        fingerprint: `error\0${failure.message}`,
      };
    } finally {
      this.#armRescan();
    }
  }

  /** Schedules the next full re-read, `rescanMs` after this one. */
  #armRescan(): void {
    this.#cancelRescan();
    if (this.#rescanMs <= 0 || this.#state !== "running") return;
    this.#rescanTimer = this.#clock.setTimeout(() => {
      this.#rescanTimer = undefined;
      this.#changed(false);
    }, this.#rescanMs);
  }

  #cancelRescan(): void {
    if (this.#rescanTimer !== undefined) this.#clock.clearTimeout(this.#rescanTimer);
    this.#rescanTimer = undefined;
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
          // "" is the directory itself; null: the platform did not say which entry changed.
          if (event.filename === "") this.#changed(true);
          else this.#changed(false, event.filename ?? undefined);
        }),
      );
    }
    const failure = failures.find((error) => error !== undefined);
    if (failure === undefined) {
      this.#watchFailing = false;
      // Loads rely on events naming what changed: everything must be watched before the tree is read.
      for (const handle of this.#watches) if (handle.ready !== undefined) await handle.ready;
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
