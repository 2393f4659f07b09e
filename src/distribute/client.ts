// The pod's end of the config stream: connects to the controller with its Gateway's client
// certificate (re-read from disk before every connection, so a rotated Secret volume takes effect),
// hands each configuration to `onConfig` (one at a time; while one is being applied, a newer one
// replaces any waiting one) and sends back what `onConfig` reports. Reconnects with jittered
// exponential backoff (0.5 s doubling to 10 s by default) after any failure, for ever, until stop().
import { readFile } from "node:fs/promises";
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { join } from "node:path";
import type { GatewayIdentity } from "./ca.ts";
import {
  MAX_CONFIG_LINE_BYTES,
  NDJSON_CONTENT_TYPE,
  parseServerMessage,
  streamPath,
  type ConfigMessage,
  type ReportMessage,
} from "./protocol.ts";
import { streamEnd } from "./stream.ts";

export interface StreamClientLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The agent's answer to a configuration (the report, without `type` and `pod`). */
export type ConfigResult = Omit<ReportMessage, "type" | "pod">;

export interface ConfigStreamClientOptions {
  /** `host:port` (or `[v6]:port`) of the distribution server. */
  controller: string;
  gateway: GatewayIdentity;
  /** Holds tls.crt, tls.key, ca.crt. */
  tlsDir: string;
  /** `namespace/name` of this pod, sent in reports. */
  pod: string;
  onConfig(message: ConfigMessage): Promise<ConfigResult>;
  /** Connection state changes (for readiness and metrics). */
  onConnected?(connected: boolean): void;
  logger: StreamClientLogger;
  backoff?: { initialMs: number; maxMs: number };
  heartbeatMs?: number;
  peerTimeoutMs?: number;
  /** Random in [0, 1) for the jitter (tests pin it). */
  random?: () => number;
}

export class ConfigStreamClient {
  readonly #o: ConfigStreamClientOptions;
  #stopped = false;
  #session: ClientHttp2Session | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #connected = false;
  /** Connections made (each successful stream). */
  connections = 0;

  constructor(options: ConfigStreamClientOptions) {
    this.#o = options;
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    void this.#connect();
  }

  /** Closes the stream and stops reconnecting. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#session?.destroy();
    this.#setConnected(false);
  }

  /** The delay before reconnect attempt `n` (1-based): base doubling from initialMs up to maxMs, ±25 %. */
  static delay(n: number, backoff: { initialMs: number; maxMs: number }, random: number): number {
    const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, n - 1));
    return Math.round(base * (0.75 + random * 0.5));
  }

  #setConnected(value: boolean): void {
    if (this.#connected === value) return;
    this.#connected = value;
    this.#o.onConnected?.(value);
  }

  #retry(reason: string): void {
    this.#session?.destroy();
    this.#session = undefined;
    this.#setConnected(false);
    if (this.#stopped || this.#timer !== undefined) return;
    this.#failures++;
    const ms = ConfigStreamClient.delay(
      this.#failures,
      this.#o.backoff ?? { initialMs: 500, maxMs: 10_000 },
      (this.#o.random ?? Math.random)(),
    );
    this.#o.logger.warn(
      { controller: this.#o.controller, reason, retryInMs: ms },
      "config stream: not connected",
    );
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, ms);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    let tls: { cert: string; key: string; ca: string };
    try {
      const dir = this.#o.tlsDir;
      tls = {
        cert: await readFile(join(dir, "tls.crt"), "utf8"),
        key: await readFile(join(dir, "tls.key"), "utf8"),
        ca: await readFile(join(dir, "ca.crt"), "utf8"),
      };
    } catch (err) {
      this.#retry(`cannot read the client certificate in ${this.#o.tlsDir}: ${(err as Error).message}`);
      return;
    }
    if (this.#stopped) return;
    const session = connect(`https://${this.#o.controller}`, {
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      minVersion: "TLSv1.3",
      settings: { initialWindowSize: 4 * 1024 * 1024 },
    });
    this.#session = session;
    let done = false;
    const failed = (reason: string): void => {
      if (done) return;
      done = true;
      if (this.#session === session) this.#retry(reason);
      else session.destroy();
    };
    session.on("error", (err: Error) => failed(err.message));
    session.on("close", () => failed("connection closed"));
    session.on("goaway", () => failed("the server is going away"));
    const stream = session.request(
      { ":method": "POST", ":path": streamPath(this.#o.gateway), "content-type": NDJSON_CONTENT_TYPE },
      { endStream: false },
    );
    stream.on("error", (err: Error) => failed(err.message));
    stream.on("close", () => failed("stream closed"));
    stream.on("response", (headers) => {
      const status = Number(headers[":status"]);
      if (status !== 200) {
        let body = "";
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => (body = (body + chunk).slice(0, 500)));
        stream.on("end", () => failed(`the controller answered ${status}: ${body.trim()}`));
        return;
      }
      this.#failures = 0;
      this.connections++;
      this.#setConnected(true);
      this.#o.logger.info({ controller: this.#o.controller }, "config stream: connected");
      this.#serve(stream, (reason) => failed(reason));
    });
  }

  #serve(stream: ClientHttp2Stream, failed: (reason: string) => void): void {
    let applying = false;
    let waiting: ConfigMessage | undefined;
    const end = streamEnd(stream, {
      maxLineBytes: MAX_CONFIG_LINE_BYTES,
      ...(this.#o.heartbeatMs !== undefined ? { heartbeatMs: this.#o.heartbeatMs } : {}),
      ...(this.#o.peerTimeoutMs !== undefined ? { peerTimeoutMs: this.#o.peerTimeoutMs } : {}),
      onValue: (value) => {
        const message = parseServerMessage(value);
        if (typeof message === "string") return onFailure(`bad message from the controller: ${message}`);
        if (message.type !== "config") return;
        waiting = message;
        if (!applying) void drain();
      },
      onFailure: (reason) => onFailure(reason),
    });
    const onFailure = (reason: string): void => {
      end.stop();
      stream.close(constants.NGHTTP2_CANCEL);
      failed(reason);
    };
    stream.on("close", () => end.stop());
    const drain = async (): Promise<void> => {
      applying = true;
      while (waiting !== undefined) {
        const message = waiting;
        waiting = undefined;
        let result: ConfigResult;
        try {
          result = await this.#o.onConfig(message);
        } catch (err) {
          result = {
            hash: message.hash,
            applied: false,
            error: `internal error: ${err instanceof Error ? err.message : String(err)}`,
            unavailableListeners: [],
          };
        }
        if (!stream.closed) end.send({ type: "report", pod: this.#o.pod, ...result });
      }
      applying = false;
    };
  }
}
