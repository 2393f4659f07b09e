// One end of a config stream over an HTTP/2 stream, used by both the server and the agent: NDJSON
// in (bounded lines), NDJSON out with backpressure (a replaceable message waits for 'drain' and a
// newer one replaces it; heartbeats are skipped while the peer is not reading), heartbeats out
// every HEARTBEAT_MS, and the stream closed when nothing came in for PEER_TIMEOUT_MS or the peer
// stopped reading for that long.
import type { Duplex } from "node:stream";
import { encodeLine, NdjsonDecoder } from "./ndjson.ts";
import { HEARTBEAT_MS, PEER_TIMEOUT_MS } from "./protocol.ts";

export interface StreamEndOptions {
  maxLineBytes: number;
  heartbeatMs?: number;
  peerTimeoutMs?: number;
  /** Each value that arrived (heartbeats included). */
  onValue(value: unknown): void;
  /** The stream must end: a framing error, a dead peer. Called at most once. */
  onFailure(reason: string): void;
}

export interface StreamEnd {
  /** Sends `value`; `replaceable`: while blocked, a newer replaceable value replaces it. */
  send(value: unknown, replaceable?: boolean): void;
  /** Stops the timers (the stream is closing). */
  stop(): void;
}

export function streamEnd(stream: Duplex, o: StreamEndOptions): StreamEnd {
  const heartbeatMs = o.heartbeatMs ?? HEARTBEAT_MS;
  const peerTimeoutMs = o.peerTimeoutMs ?? PEER_TIMEOUT_MS;
  const decoder = new NdjsonDecoder(o.maxLineBytes);
  let lastIn = performance.now();
  let blockedSince: number | undefined;
  let pending: string | undefined;
  let failed = false;
  const fail = (reason: string): void => {
    if (failed) return;
    failed = true;
    stop();
    o.onFailure(reason);
  };
  const write = (line: string): void => {
    if (!stream.write(line)) blockedSince ??= performance.now();
  };
  stream.on("drain", () => {
    blockedSince = undefined;
    if (pending !== undefined) {
      const line = pending;
      pending = undefined;
      write(line);
    }
  });
  stream.on("data", (chunk: Buffer) => {
    lastIn = performance.now();
    let values: unknown[];
    try {
      values = decoder.push(chunk);
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
      return;
    }
    for (const v of values) if (!failed) o.onValue(v);
  });
  const timer = setInterval(
    () => {
      const now = performance.now();
      if (now - lastIn > peerTimeoutMs) return fail(`nothing received for ${peerTimeoutMs} ms`);
      if (blockedSince !== undefined && now - blockedSince > peerTimeoutMs)
        return fail(`the peer has not read for ${peerTimeoutMs} ms`);
      if (blockedSince === undefined) write(encodeLine({ type: "heartbeat" }));
    },
    Math.min(heartbeatMs, peerTimeoutMs / 3),
  );
  timer.unref();
  const stop = (): void => clearInterval(timer);
  return {
    send(value, replaceable = false) {
      if (failed) return;
      const line = encodeLine(value);
      if (blockedSince !== undefined && replaceable) pending = line;
      else write(line);
    },
    stop,
  };
}
