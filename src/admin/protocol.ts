// Messages between the main thread (which owns the pipeline and the state) and the admin worker
// (which owns the HTTP server). Large documents cross as UTF-8 bytes in transferred buffers, so the
// worker never parses, clones or serialises anything big: its event loop stays free for requests.
import type { Readiness } from "./state.ts";

/** What the worker caches and serves. Bytes are complete JSON or text bodies. */
export interface SnapshotParts {
  ready?: Readiness;
  /**
   * The `/status` body in three pieces: `head` + `objects` + `tail`. `objects` (the big part) is
   * absent when unchanged since the previous snapshot.
   */
  status?: { head: Uint8Array; objects?: Uint8Array; tail: Uint8Array };
  /** The `/config` body; null while no configuration is in effect. */
  config?: Uint8Array | null;
  metrics?: { contentType: string; text: Uint8Array };
}

export type Part = keyof SnapshotParts;
export const PARTS: readonly Part[] = ["ready", "status", "config", "metrics"];

export interface WorkerConfig {
  host: string;
  port: number;
  haproxyMetricsUrl: string | undefined;
  haproxyTimeoutMs: number;
  /** Bearer token required on every path but /healthz and /ready; undefined: no authentication. */
  token: string | undefined;
  /** How long a request waits for the main thread's fresh answer before the cached one is served. */
  freshWaitMs: number;
  /** /healthz fails once the main thread has been silent this long (a wedged event loop). */
  stallAfterMs: number;
}

export type ToWorker =
  | { type: "snapshot"; parts: SnapshotParts }
  | { type: "reply"; id: number; parts: SnapshotParts; failed?: true }
  | { type: "token"; token: string | undefined }
  | { type: "heartbeat" }
  | { type: "close" };

export type FromWorker =
  | { type: "listening"; port: number }
  | { type: "listen-error"; message: string; code: string | undefined }
  | { type: "pull"; id: number; want: Part[] }
  | { type: "error"; message: string; detail: string }
  | { type: "closed" };
