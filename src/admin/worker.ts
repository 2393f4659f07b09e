// The admin worker's entry point: an AdminHttp fed by the main thread over the parent port.
//
// Staleness trade-off: each request (but /healthz) asks the main thread for the current value and
// waits at most `freshWaitMs` for it. A free main thread answers within a millisecond or two, so
// answers are current whenever the pipeline is idle. While the main thread is busy (a translation
// of 20,000 routes runs for seconds without yielding), the request gets the last snapshot the main
// thread published instead, marked with its age: the state as of the last moment the main thread
// was free, which is also the state the busy step started from. The main thread publishes a
// snapshot after every change of its state, so a cached answer is never older than the step in
// progress. At most one pull per part is outstanding, so a busy main thread never accumulates a
// backlog of questions.
import { flushCompileCache } from "node:module";
import { parentPort, workerData } from "node:worker_threads";
import { AdminHttp, type AdminView } from "./http.ts";
import type { FromWorker, Part, SnapshotParts, ToWorker, WorkerConfig } from "./protocol.ts";

class SnapshotCache implements AdminView {
  readonly #config: WorkerConfig;
  readonly #post: (message: FromWorker) => void;
  readonly #parts: SnapshotParts = {};
  readonly #at = new Map<Part, number>();
  readonly #pulls = new Map<Part, Promise<boolean>>();
  readonly #waiting = new Map<number, (failed: boolean) => void>();
  #token: string | undefined;
  #lastHeard = Date.now();
  #nextId = 1;

  constructor(config: WorkerConfig, post: (message: FromWorker) => void) {
    this.#config = config;
    this.#post = post;
    this.#token = config.token;
  }

  receive(message: ToWorker): void {
    this.#lastHeard = Date.now();
    switch (message.type) {
      case "snapshot":
        this.#store(message.parts);
        return;
      case "reply":
        this.#store(message.parts);
        this.#waiting.get(message.id)?.(message.failed === true);
        this.#waiting.delete(message.id);
        return;
      case "token":
        this.#token = message.token;
        return;
      case "heartbeat":
      case "close":
        return;
    }
  }

  #store(parts: SnapshotParts): void {
    const now = Date.now();
    for (const part of Object.keys(parts) as Part[]) this.#at.set(part, now);
    if (parts.ready !== undefined) this.#parts.ready = parts.ready;
    if (parts.config !== undefined) this.#parts.config = parts.config;
    if (parts.metrics !== undefined) this.#parts.metrics = parts.metrics;
    if (parts.status !== undefined) {
      const objects = parts.status.objects ?? this.#parts.status?.objects;
      this.#parts.status = { ...parts.status, ...(objects !== undefined ? { objects } : {}) };
    }
  }

  health(): { ok: true } | { ok: false; reason: string } {
    const silentMs = Date.now() - this.#lastHeard;
    if (silentMs <= this.#config.stallAfterMs) return { ok: true };
    return { ok: false, reason: `the main thread has not answered for ${Math.round(silentMs / 1000)} s` };
  }

  token(): string | undefined {
    return this.#token;
  }

  async get(part: Part): Promise<{ parts: SnapshotParts; ageMs?: number; failed?: true }> {
    let pull = this.#pulls.get(part);
    if (pull === undefined) {
      const id = this.#nextId++;
      pull = new Promise<boolean>((resolve) => this.#waiting.set(id, resolve)).finally(() =>
        this.#pulls.delete(part),
      );
      this.#pulls.set(part, pull);
      this.#post({ type: "pull", id, want: [part] });
    }
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      pull.then((failed) => (failed ? "failed" : "fresh")),
      new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), this.#config.freshWaitMs))),
    ]);
    clearTimeout(timer);
    if (outcome === "failed") return { parts: this.#parts, failed: true };
    if (outcome === "fresh") return { parts: this.#parts };
    const at = this.#at.get(part);
    return at === undefined ? { parts: this.#parts } : { parts: this.#parts, ageMs: Date.now() - at };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

const port = parentPort;
if (port === null) throw new Error("src/admin/worker.ts runs as a worker thread only");
const config = workerData as WorkerConfig;
const post = (message: FromWorker): void => port.postMessage(message);
const cache = new SnapshotCache(config, post);
const http = new AdminHttp({
  view: cache,
  haproxyMetricsUrl: config.haproxyMetricsUrl,
  haproxyTimeoutMs: config.haproxyTimeoutMs,
  onError: (message, cause) => post({ type: "error", message, detail: describe(cause) }),
});
port.on("message", (message: ToWorker) => {
  cache.receive(message);
  if (message.type === "close") {
    void http.close().then(() => {
      post({ type: "closed" });
      port.close();
    });
  }
});
http.listen(config.host, config.port).then(
  (bound) => {
    post({ type: "listening", port: bound });
    // This thread's compile cache entries (when bin/gatehouse.js enabled the cache): written now,
    // since the thread usually ends only with the process, which may be killed.
    flushCompileCache();
  },
  (error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    post({ type: "listen-error", message: error instanceof Error ? error.message : String(error), code });
  },
);
