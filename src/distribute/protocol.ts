// The config stream's wire format, shared by the distribution server (controller) and the agent
// (data-plane pod). One HTTP/2 stream per pod, `POST /v1/gateways/<namespace>/<name>/stream`, kept
// open both ways; each direction carries NDJSON (one JSON value per line, UTF-8):
//
//   server → pod  {"type":"config","hash":"<sha256 hex>","ir":{...}}   the current config on connect,
//                                                                        then each change (latest wins)
//                 {"type":"heartbeat"}                                  every HEARTBEAT_MS
//   pod → server  {"type":"report","pod":"<ns>/<name>","hash":"...","applied":true|false,
//                  "error":"...","unavailableListeners":[...]}          after each config it handled
//                 {"type":"heartbeat"}                                  every HEARTBEAT_MS
//
// Either end closes the stream when nothing arrived for PEER_TIMEOUT_MS. Lines are bounded
// (MAX_CONFIG_LINE_BYTES, MAX_REPORT_LINE_BYTES): a longer one ends the stream.
import type { IR } from "../ir/types.ts";
import type { UnavailableListener } from "../status/feedback.ts";
import type { GatewayIdentity } from "./ca.ts";

export const HEARTBEAT_MS = 5000;
export const PEER_TIMEOUT_MS = 15_000;
export const MAX_CONFIG_LINE_BYTES = 64 * 1024 * 1024;
export const MAX_REPORT_LINE_BYTES = 256 * 1024;
export const MAX_ERROR_CHARS = 4096;
export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

export interface ConfigMessage {
  type: "config";
  hash: string;
  ir: IR;
}
export interface HeartbeatMessage {
  type: "heartbeat";
}
export interface ReportMessage {
  type: "report";
  /** `namespace/name` of the pod (the agent's POD_NAMESPACE/POD_NAME or its hostname). */
  pod: string;
  hash: string;
  applied: boolean;
  error?: string;
  unavailableListeners: UnavailableListener[];
}
export type ServerMessage = ConfigMessage | HeartbeatMessage;
export type PodMessage = ReportMessage | HeartbeatMessage;

const STREAM_PATH = /^\/v1\/gateways\/([^/]+)\/([^/]+)\/stream$/;
const HASH = /^[0-9a-f]{64}$/;
const POD = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function streamPath(gateway: GatewayIdentity): string {
  return `/v1/gateways/${encodeURIComponent(gateway.namespace)}/${encodeURIComponent(gateway.name)}/stream`;
}

/** The Gateway a request path names, or undefined when it is not a stream path. */
export function parseStreamPath(path: string): GatewayIdentity | undefined {
  const m = STREAM_PATH.exec(path);
  if (m === null) return undefined;
  try {
    return { namespace: decodeURIComponent(m[1] ?? ""), name: decodeURIComponent(m[2] ?? "") };
  } catch {
    return undefined;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A pod's message, checked; a string says what is wrong with it. */
export function parsePodMessage(value: unknown): PodMessage | string {
  if (!isRecord(value)) return "not a JSON object";
  if (value["type"] === "heartbeat") return { type: "heartbeat" };
  if (value["type"] !== "report") return "unknown message type";
  const { pod, hash, applied, error, unavailableListeners } = value;
  if (typeof pod !== "string" || !POD.test(pod)) return "pod must be namespace/name";
  if (typeof hash !== "string" || !HASH.test(hash)) return "hash must be a sha256 hex digest";
  if (typeof applied !== "boolean") return "applied must be a boolean";
  if (error !== undefined && typeof error !== "string") return "error must be a string";
  if (!Array.isArray(unavailableListeners) || unavailableListeners.length > 1024)
    return "unavailableListeners must be an array (at most 1024)";
  const listeners: UnavailableListener[] = [];
  for (const u of unavailableListeners as unknown[]) {
    if (
      !isRecord(u) ||
      typeof u["listenerId"] !== "string" ||
      typeof u["message"] !== "string" ||
      (u["reason"] !== "Pending" && u["reason"] !== "Invalid")
    )
      return "unavailableListeners[] must be {listenerId, message, reason: Pending|Invalid}";
    listeners.push({
      listenerId: u["listenerId"].slice(0, 512),
      message: oneLine(u["message"]),
      reason: u["reason"],
    });
  }
  return {
    type: "report",
    pod,
    hash,
    applied,
    ...(error !== undefined ? { error: oneLine(error) } : {}),
    unavailableListeners: listeners,
  };
}

/** A server's message, checked (the IR's own invariants are the agent's validateIR's job). */
export function parseServerMessage(value: unknown): ServerMessage | string {
  if (!isRecord(value)) return "not a JSON object";
  if (value["type"] === "heartbeat") return { type: "heartbeat" };
  if (value["type"] !== "config") return "unknown message type";
  const { hash, ir } = value;
  if (typeof hash !== "string" || !HASH.test(hash)) return "hash must be a sha256 hex digest";
  if (!isRecord(ir) || !Array.isArray(ir["gateways"]) || !Array.isArray(ir["backends"]))
    return "ir must be an IR";
  return { type: "config", hash, ir: ir as unknown as IR };
}

/** Text from the other end, made safe for one log line or status message. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ").trim();
  return flat.length > MAX_ERROR_CHARS ? `${flat.slice(0, MAX_ERROR_CHARS)}…` : flat;
}
