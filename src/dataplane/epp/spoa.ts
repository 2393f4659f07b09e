// A SPOP agent (SPOA) server on loopback: HAProxy's SPOE filter connects, says HAPROXY-HELLO, and
// sends NOTIFY frames; each is handed to `handle` and answered with an ACK carrying its actions, in
// whatever order the handlers finish (capability "pipelining": several NOTIFY frames in flight per
// connection, each ACK naming its stream-id and frame-id). Version "2.0", no fragmentation.
import { createServer, type Server, type Socket } from "node:net";
import {
  decodeFrame,
  decodeMessages,
  encodeActions,
  encodeFrame,
  encodeKvList,
  FLAG_ABORT,
  FLAG_FIN,
  FrameType,
  SpopError,
  SpopReader,
  Status,
  str,
  u32,
  type Action,
  type Message,
} from "./spop.ts";

export type NotifyHandler = (messages: Message[]) => Promise<Action[]>;

export interface SpoaOptions {
  handle: NotifyHandler;
  /** Called with an unexpected handler error (the ACK then carries no action). */
  onError?: (err: unknown) => void;
}

/** The largest frame this agent accepts or sends unless HAProxy asks for less. */
export const AGENT_MAX_FRAME = 64 * 1024;

class Connection {
  #buf: Buffer = Buffer.alloc(0);
  #maxFrame = AGENT_MAX_FRAME;
  #hello = false;
  #closed = false;
  readonly #socket: Socket;
  readonly #o: SpoaOptions;

  constructor(socket: Socket, o: SpoaOptions) {
    this.#socket = socket;
    this.#o = o;
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.#data(d));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => (this.#closed = true));
  }

  #data(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 4 && !this.#closed) {
      const len = this.#buf.readUInt32BE(0);
      if (len > this.#maxFrame) return this.#disconnect(Status.tooBig, "frame too big");
      if (this.#buf.length < 4 + len) return;
      const body = this.#buf.subarray(4, 4 + len);
      this.#buf = this.#buf.subarray(4 + len);
      try {
        this.#frame(body);
      } catch (e) {
        this.#disconnect(Status.invalid, e instanceof Error ? e.message : "invalid frame");
      }
    }
  }

  #frame(body: Buffer): void {
    const f = decodeFrame(body);
    if (f.type === FrameType.haproxyHello) {
      const kv = new SpopReader(f.payload).kvList();
      const versions = kv.get("supported-versions");
      const v = versions?.type === "string" ? versions.value.toString("latin1") : "";
      if (!v.split(",").some((x) => x.trim().startsWith("2."))) {
        return this.#disconnect(Status.badVersion, "version 2.0 required");
      }
      const max = kv.get("max-frame-size");
      if (max?.type === "uint32" || max?.type === "uint64")
        this.#maxFrame = Math.min(AGENT_MAX_FRAME, Number(max.value));
      const caps = kv.get("capabilities");
      const offered =
        caps?.type === "string"
          ? caps.value
              .toString("latin1")
              .split(",")
              .map((c) => c.trim())
          : [];
      const mine = offered.includes("pipelining") ? "pipelining" : "";
      this.#hello = true;
      this.#write(
        encodeFrame({
          type: FrameType.agentHello,
          streamId: 0n,
          frameId: 0n,
          payload: encodeKvList([
            ["version", str("2.0")],
            ["max-frame-size", u32(this.#maxFrame)],
            ["capabilities", str(mine)],
          ]),
        }),
      );
      const hc = kv.get("healthcheck");
      if (hc?.type === "bool" && hc.value) this.#socket.end();
      return;
    }
    if (f.type === FrameType.haproxyDisconnect) return this.#disconnect(Status.normal, "");
    if (f.type !== FrameType.notify) throw new SpopError(`unexpected frame type ${f.type}`);
    if (!this.#hello) throw new SpopError("NOTIFY before HELLO");
    // Fragmentation is not announced: a frame without FIN (or an aborted one) is a protocol error.
    if ((f.flags & FLAG_FIN) === 0 || (f.flags & FLAG_ABORT) !== 0)
      return this.#disconnect(Status.fragNotSupported, "fragmentation is not supported");
    const messages = decodeMessages(f.payload);
    void this.#o.handle(messages).then(
      (actions) => this.#ack(f.streamId, f.frameId, actions),
      (e: unknown) => {
        this.#o.onError?.(e);
        this.#ack(f.streamId, f.frameId, []);
      },
    );
  }

  #ack(streamId: bigint, frameId: bigint, actions: Action[]): void {
    if (this.#closed) return;
    let frame = encodeFrame({ type: FrameType.ack, streamId, frameId, payload: encodeActions(actions) });
    if (frame.length - 4 > this.#maxFrame) {
      this.#o.onError?.(new SpopError(`ACK of ${frame.length} bytes exceeds the frame size`));
      frame = encodeFrame({ type: FrameType.ack, streamId, frameId, payload: Buffer.alloc(0) });
    }
    this.#write(frame);
  }

  #write(b: Buffer): void {
    if (!this.#closed) this.#socket.write(b);
  }

  #disconnect(status: number, message: string): void {
    if (this.#closed) return;
    this.#write(
      encodeFrame({
        type: FrameType.agentDisconnect,
        streamId: 0n,
        frameId: 0n,
        payload: encodeKvList([
          ["status-code", u32(status)],
          ["message", str(message)],
        ]),
      }),
    );
    this.#closed = true;
    this.#socket.end();
  }
}

export class SpoaServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(o: SpoaOptions) {
    this.#server = createServer((s) => {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
      new Connection(s, o);
    });
  }

  /** Listens on 127.0.0.1 (an ephemeral port); returns `127.0.0.1:<port>`. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => resolve());
    });
    const a = this.#server.address();
    if (a === null || typeof a === "string") throw new SpopError("no listening address");
    return `127.0.0.1:${a.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
