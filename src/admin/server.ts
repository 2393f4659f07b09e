// The admin server, main-thread side. The HTTP server itself (src/admin/http.ts, paths and auth
// documented there) runs in a worker thread, so that health, readiness, status and metrics are
// answered within milliseconds even while the main thread translates and renders a large
// configuration for seconds without yielding. The main thread owns the state; it publishes
// snapshots of it to the worker (after every change, coalesced) and answers the worker's pulls
// when it is free. See worker.ts for the staleness this trades for responsiveness.
//
// Loopback only by default. Any other address needs a bearer token (`token`) or an explicit
// `allowUnauthenticated`, or `listen` refuses.
import { Worker } from "node:worker_threads";
import type { Registry } from "prom-client";
import { GatehouseError, UsageError } from "../errors.ts";
import { joinHostPort, parseHostPort } from "../net/hostport.ts";
import { isLoopbackHost } from "./auth.ts";
import type { FromWorker, Part, SnapshotParts, ToWorker, WorkerConfig } from "./protocol.ts";
import { PARTS } from "./protocol.ts";
import { redactText } from "./redact.ts";
import type { AdminState } from "./state.ts";

export type { AdminState, Readiness } from "./state.ts";

export const DEFAULT_ADMIN_HOST = "127.0.0.1";
export const DEFAULT_ADMIN_PORT = 9901;

export interface AdminServerOptions {
  state: AdminState;
  /** Gatehouse's metrics registry; without it `/metrics` is 404. */
  registry?: Registry;
  /**
   * URL of HAProxy's Prometheus exporter (`http-request use-service prometheus-exporter` on a
   * loopback port), proxied at `/metrics/haproxy`.
   */
  haproxyMetricsUrl?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 9901; 0 picks a free port (see `address`). */
  port?: number;
  /** Bearer token every path but /healthz and /ready requires (see `setToken` for rotation). */
  token?: string;
  /** Serve on a non-loopback address without a token (the caller logs the warning). */
  allowUnauthenticated?: boolean;
  /** Time allowed for HAProxy's exporter to answer (default 5 s). */
  haproxyTimeoutMs?: number;
  /** How long a request waits for the main thread before a cached snapshot is served (default 20 ms). */
  freshWaitMs?: number;
  /** /healthz answers 503 once the main thread has been silent this long (default 120 s). */
  stallAfterMs?: number;
  /** Told about handler failures (a bug in a state provider, the exporter unreachable). */
  onError?: (message: string, cause: unknown) => void;
}

export interface AdminAddress {
  host: string;
  port: number;
  /** `http://host:port` (IPv6 hosts in brackets). */
  url: string;
}

/** The admin worker's young generation, MiB (both semi-spaces and the new large object space). */
const ADMIN_WORKER_YOUNG_GENERATION_MB = 6;

/** The admin server could not start (address in use, permission denied, exposed without a token). */
export class AdminServerError extends GatehouseError {}

const HEARTBEAT_MS = 1000;

interface Built {
  parts: SnapshotParts;
  transfer: ArrayBuffer[];
}
const OBJECTS_MARK = "\u0000gatehouse:objects\u0000";

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #encoder = new TextEncoder();
  #worker: Worker | undefined;
  #exited = false;
  #address: AdminAddress | undefined;
  #closed: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #publishScheduled = false;
  /** What the worker holds already (so unchanged big parts are not sent again). */
  #sentObjects: unknown;
  #sentConfig: unknown = Symbol("nothing sent");
  #sentStatusVersion: number | undefined;

  constructor(options: AdminServerOptions) {
    this.#options = options;
  }

  /** Where the server listens, once `listen` resolved. */
  get address(): AdminAddress | undefined {
    return this.#address;
  }

  /** Binds and starts serving; rejects with AdminServerError when it cannot or must not. */
  listen(): Promise<AdminAddress> {
    const o = this.#options;
    const host = o.host ?? DEFAULT_ADMIN_HOST;
    const port = o.port ?? DEFAULT_ADMIN_PORT;
    if (!isLoopbackHost(host) && o.token === undefined && o.allowUnauthenticated !== true) {
      return Promise.reject(new AdminServerError(exposedWithoutToken(host, port)));
    }
    const config: WorkerConfig = {
      host,
      port,
      haproxyMetricsUrl: o.haproxyMetricsUrl,
      haproxyTimeoutMs: o.haproxyTimeoutMs ?? 5000,
      token: o.token,
      freshWaitMs: o.freshWaitMs ?? 20,
      stallAfterMs: o.stallAfterMs ?? 120_000,
    };
    // A small young generation: the worker serves small answers, and V8's default (up to 16 MiB per
    // semi-space) would keep tens of MiB resident for it.
    const worker = new Worker(new URL("./worker.ts", import.meta.url), {
      workerData: config,
      resourceLimits: { maxYoungGenerationSizeMb: ADMIN_WORKER_YOUNG_GENERATION_MB },
    });
    this.#worker = worker;
    void this.#publish();
    return new Promise((resolve, reject) => {
      const fail = (message: string, cause?: unknown): void => {
        void worker.terminate();
        reject(
          new AdminServerError(`admin server cannot listen on ${joinHostPort(host, port)}: ${message}`, {
            cause,
          }),
        );
      };
      worker.on("error", (error: unknown) => {
        if (this.#address === undefined) fail(error instanceof Error ? error.message : String(error), error);
        else this.#report("the admin server's worker failed", error);
      });
      worker.on("exit", (code) => {
        this.#exited = true;
        if (this.#address === undefined) fail(`its worker exited (code ${code})`);
        else if (this.#closed === undefined)
          this.#report(`the admin server's worker exited (code ${code})`, undefined);
      });
      worker.on("message", (message: FromWorker) => {
        switch (message.type) {
          case "listening":
            this.#address = { host, port: message.port, url: `http://${joinHostPort(host, message.port)}` };
            this.#unsubscribe = o.state.subscribe?.(() => this.#schedulePublish());
            this.#heartbeat = setInterval(() => this.#post({ type: "heartbeat" }), HEARTBEAT_MS).unref();
            resolve(this.#address);
            return;
          case "listen-error":
            fail(message.message);
            return;
          case "pull":
            void this.#reply(message.id, message.want);
            return;
          case "error":
            this.#report(message.message, new Error(message.detail));
            return;
          case "closed":
            return;
        }
      });
    });
  }

  /** Replaces the bearer token (a rotated token file); undefined turns authentication off. */
  setToken(token: string | undefined): void {
    this.#post({ type: "token", token });
  }

  /** Publishes the current state to the worker now (it is also published after every change). */
  async refresh(): Promise<void> {
    await this.#publish();
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#unsubscribe?.();
      clearInterval(this.#heartbeat);
      const worker = this.#worker;
      if (worker === undefined || this.#exited) return;
      await new Promise<void>((resolve) => {
        const done = (): void => resolve();
        worker.once("exit", done);
        worker.on("message", (message: FromWorker) => {
          if (message.type === "closed") void worker.terminate();
        });
        try {
          worker.postMessage({ type: "close" } satisfies ToWorker);
        } catch {
          void worker.terminate();
        }
      });
    })();
    return this.#closed;
  }

  #post(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.#closed !== undefined) return;
    this.#worker?.postMessage(message, transfer);
  }

  #schedulePublish(): void {
    if (this.#publishScheduled) return;
    this.#publishScheduled = true;
    setImmediate(() => {
      this.#publishScheduled = false;
      void this.#publish();
    });
  }

  /**
   * Posts what changed synchronously (so snapshots and replies reach the worker in the order the
   * state changed), then the metrics, which prom-client collects asynchronously.
   */
  async #publish(): Promise<void> {
    try {
      const { parts, transfer } = this.#build(PARTS);
      this.#post({ type: "snapshot", parts }, transfer);
      const metrics = await this.#metrics();
      if (metrics !== undefined) this.#post({ type: "snapshot", parts: metrics.parts }, metrics.transfer);
    } catch (error) {
      this.#report("cannot publish the admin snapshot", error);
    }
  }

  async #reply(id: number, want: readonly Part[]): Promise<void> {
    let built: Built;
    try {
      built = this.#build(want);
      if (want.includes("metrics")) built = (await this.#metrics()) ?? built;
    } catch (error) {
      this.#report(`cannot build the admin answer (${want.join(", ")})`, error);
      this.#post({ type: "reply", id, parts: {}, failed: true });
      return;
    }
    this.#post({ type: "reply", id, parts: built.parts }, built.transfer);
  }

  async #metrics(): Promise<Built | undefined> {
    const registry = this.#options.registry;
    if (registry === undefined) return undefined;
    const text = this.#encoder.encode(await registry.metrics());
    return {
      parts: { metrics: { contentType: registry.contentType, text } },
      transfer: [text.buffer],
    };
  }

  /** The wanted parts (but metrics) that changed since they were last sent (ready: always). */
  #build(want: readonly Part[]): Built {
    const { state } = this.#options;
    const parts: SnapshotParts = {};
    const transfer: ArrayBuffer[] = [];
    const bytes = (text: string): Uint8Array => {
      const encoded = this.#encoder.encode(redactText(text));
      transfer.push(encoded.buffer);
      return encoded;
    };
    if (want.includes("ready")) parts.ready = state.ready();
    const version = state.version?.();
    if (want.includes("status") && (version === undefined || version !== this.#sentStatusVersion)) {
      const document = state.status();
      const objects = isRecord(document) && Array.isArray(document["objects"]) ? document["objects"] : [];
      const rest = isRecord(document) ? { ...document, objects: OBJECTS_MARK } : document;
      const [head = "", tail = ""] = `${JSON.stringify(rest, null, 2)}\n`.split(JSON.stringify(OBJECTS_MARK));
      const status: NonNullable<SnapshotParts["status"]> = { head: bytes(head), tail: bytes(tail) };
      if (objects !== this.#sentObjects) {
        status.objects = bytes(JSON.stringify(objects, null, 2).replaceAll("\n", "\n  "));
        this.#sentObjects = objects;
      }
      parts.status = status;
      this.#sentStatusVersion = version;
    }
    if (want.includes("config")) {
      const config = state.config();
      if (config !== this.#sentConfig) {
        parts.config = config === undefined ? null : bytes(`${JSON.stringify(config, null, 2)}\n`);
        this.#sentConfig = config;
      }
    }
    return { parts, transfer };
  }

  #report(message: string, cause: unknown): void {
    this.#options.onError?.(message, cause);
  }
}

/** Creates an admin server and starts listening. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = new AdminServer(options);
  await server.listen();
  return server;
}

/** Why an admin address beyond loopback is refused without a token. */
export function exposedWithoutToken(host: string, port: number): string {
  return (
    `--admin ${joinHostPort(host, port)} is reachable from other hosts, and the admin API shows every ` +
    `object's status and the configuration in effect: give --admin-token-file PATH (clients then send ` +
    `Authorization: Bearer <token>; /healthz and /ready stay open), bind to 127.0.0.1, or accept the ` +
    `risk with --admin-insecure-no-auth`
  );
}

/**
 * Parses `--admin HOST:PORT`: `127.0.0.1:9901`, `[::1]:9901`, `:9901` (default host) or `9901`.
 * Throws UsageError for anything else.
 */
export function parseAdminAddress(value: string): { host: string; port: number } {
  const parsed = parseHostPort(value, { defaultHost: DEFAULT_ADMIN_HOST });
  if (parsed === undefined)
    throw new UsageError(`--admin must be HOST:PORT (e.g. 127.0.0.1:9901 or [::1]:9901), not "${value}"`);
  return parsed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
