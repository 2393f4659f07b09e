// Tests only: HAProxy's side of SPOP on a real socket (HAPROXY-HELLO, NOTIFY, reading the agent's
// frames), to test the agent without HAProxy. The end-to-end test with HAProxy: test/e2e/epp.test.ts.
import { connect, type Socket } from "node:net";
import {
  decodeFrame,
  encodeFrame,
  encodeKvList,
  encodeMessages,
  FrameType,
  str,
  u32,
  type Frame,
  type Message,
  type TypedData,
} from "./spop.ts";

export class SpopTestClient {
  readonly #socket: Socket;
  #buf: Buffer = Buffer.alloc(0);
  readonly #frames: Frame[] = [];
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      while (this.#buf.length >= 4 && this.#buf.length >= 4 + this.#buf.readUInt32BE(0)) {
        const len = this.#buf.readUInt32BE(0);
        this.#frames.push(decodeFrame(Buffer.from(this.#buf.subarray(4, 4 + len))));
        this.#buf = this.#buf.subarray(4 + len);
      }
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static async open(address: string): Promise<SpopTestClient> {
    const i = address.lastIndexOf(":");
    const socket = connect(Number(address.slice(i + 1)), address.slice(0, i));
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new SpopTestClient(socket);
  }

  write(b: Buffer): void {
    this.#socket.write(b);
  }

  hello(extra: Array<[string, TypedData]> = [], versions = "2.0"): void {
    this.write(
      encodeFrame({
        type: FrameType.haproxyHello,
        streamId: 0n,
        frameId: 0n,
        payload: encodeKvList([
          ["supported-versions", str(versions)],
          ["max-frame-size", u32(16380)],
          ["capabilities", str("pipelining,async")],
          ...extra,
        ]),
      }),
    );
  }

  notify(streamId: bigint, frameId: bigint, messages: Message[]): void {
    this.write(encodeFrame({ type: FrameType.notify, streamId, frameId, payload: encodeMessages(messages) }));
  }

  /** The next frame from the agent (undefined once the connection is closed). */
  async next(timeoutMs = 5000): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length === 0 && !this.closed) {
      if (Date.now() > deadline) throw new Error("no frame from the agent");
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.#frames.shift();
  }

  close(): void {
    this.#socket.destroy();
  }
}
