// The ext_proc client: one bidirectional gRPC stream (ExternalProcessor/Process) per HTTP request, over
// an HTTP/2 session per picker endpoint kept open between requests. TLS with ALPN h2 (the reference
// picker's default; its certificate is self-signed and generated at start, so it is not verified),
// or cleartext HTTP/2 (h2c). Replicas of the picker are used in turn.
import {
  connect as h2connect,
  constants as h2,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from "node:http2";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { GatehouseError } from "../../errors.ts";
import type { IRPicker } from "../../ir/types.ts";
import {
  decodeProcessingResponse,
  Deframer,
  encodeProcessingRequest,
  frame,
  PROCESS_PATH,
  type ProcessingRequest,
  type ProcessingResponse,
} from "./extproc.ts";

/** The picker could not be reached, failed the stream, or answered nonsense. */
export class PickerError extends GatehouseError {
  override readonly name = "PickerError";
  /** The picker did not answer in time (not worth asking another replica within the same request). */
  readonly timeout: boolean;
  constructor(message: string, options?: ErrorOptions & { timeout?: boolean }) {
    super(message, options);
    this.timeout = options?.timeout ?? false;
  }
}

export class ExtProcClient {
  readonly #sessions = new Map<string, ClientHttp2Session>();
  readonly #next = new Map<string, number>();

  /** Opens a Process stream to one of the picker's endpoints (in turn). */
  open(picker: IRPicker, timeoutMs: number): ExtProcStream {
    const list = picker.endpoints;
    if (list.length === 0)
      throw new PickerError(`the endpoint picker ${picker.service} has no ready endpoint`);
    const i = (this.#next.get(picker.service) ?? 0) % list.length;
    this.#next.set(picker.service, i + 1);
    const ep = list[i];
    if (ep === undefined)
      throw new PickerError(`the endpoint picker ${picker.service} has no ready endpoint`);
    const host = ep.address.includes(":") ? `[${ep.address}]` : ep.address;
    const authority = `${picker.transport === "tls" ? "https" : "http"}://${host}:${ep.port}`;
    const session = this.#session(authority, picker.transport === "tls");
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        {
          [h2.HTTP2_HEADER_METHOD]: "POST",
          [h2.HTTP2_HEADER_PATH]: PROCESS_PATH,
          [h2.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
          te: "trailers",
          "grpc-timeout": `${timeoutMs}m`,
        },
        { endStream: false },
      );
    } catch (e) {
      session.destroy();
      throw new PickerError(`${picker.service}: ${(e as Error).message}`, { cause: e });
    }
    return new ExtProcStream(stream, picker.service);
  }

  #session(authority: string, tls: boolean): ClientHttp2Session {
    const cached = this.#sessions.get(authority);
    if (cached !== undefined && !cached.closed && !cached.destroyed) return cached;
    // The picker's certificate is self-signed (lwepp generates one at start): not verified. Small
    // messages both ways, one round trip each: no Nagle delay (set on the socket we create, since
    // an HTTP/2 session's socket cannot be changed afterwards).
    const url = new URL(authority);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port);
    const s = h2connect(authority, {
      createConnection: () => {
        const socket = tls
          ? tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ["h2"] })
          : netConnect({ host, port });
        socket.setNoDelay(true);
        return socket;
      },
    });
    const forget = (): void => {
      if (this.#sessions.get(authority) === s) this.#sessions.delete(authority);
    };
    s.on("error", () => {
      forget();
      s.destroy();
    });
    s.on("close", forget);
    s.on("goaway", forget);
    s.unref();
    this.#sessions.set(authority, s);
    return s;
  }

  close(): void {
    for (const s of this.#sessions.values()) s.destroy();
    this.#sessions.clear();
  }
}

type Waiter = { resolve: (r: ProcessingResponse) => void; reject: (e: Error) => void };

/** One Process stream: send requests, await responses in order. */
export class ExtProcStream {
  readonly #stream: ClientHttp2Stream;
  readonly #label: string;
  readonly #deframer = new Deframer();
  readonly #queue: ProcessingResponse[] = [];
  readonly #waiters: Waiter[] = [];
  #failure: PickerError | undefined;
  /** Closed with nobody waiting: next() and send() fail from now on. */
  #closed = false;
  #answered = false;
  #status: string | undefined;
  #message: string | undefined;

  constructor(stream: ClientHttp2Stream, label: string) {
    this.#stream = stream;
    this.#label = label;
    stream.on("response", (headers: IncomingHttpHeaders) => {
      this.#answered = true;
      const status = Number(headers[h2.HTTP2_HEADER_STATUS] ?? 0);
      if (status !== 200) this.#fail(new PickerError(`${label} answered HTTP ${status}`));
      this.#grpc(headers);
    });
    stream.on("trailers", (trailers: IncomingHttpHeaders) => this.#grpc(trailers));
    stream.on("data", (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = this.#deframer.push(chunk);
      } catch (e) {
        this.#fail(new PickerError(`${label}: ${(e as Error).message}`, { cause: e }));
        return;
      }
      for (const m of messages) {
        let r: ProcessingResponse;
        try {
          r = decodeProcessingResponse(m);
        } catch (e) {
          this.#fail(new PickerError(`${label} sent an unreadable message`, { cause: e }));
          return;
        }
        const w = this.#waiters.shift();
        if (w !== undefined) w.resolve(r);
        else this.#queue.push(r);
      }
    });
    stream.on("error", (e: Error) => this.#fail(new PickerError(`${label}: ${e.message}`, { cause: e })));
    stream.on("close", () => {
      // The usual end of every stream: no error object (and its stack) unless someone waits or asks.
      if (this.#failure !== undefined) return;
      if (this.#waiters.length === 0) {
        this.#closed = true;
        return;
      }
      this.#fail(new PickerError(this.#closedWhy()));
    });
  }

  #closedWhy(): string {
    return this.#status !== undefined && this.#status !== "0"
      ? `${this.#label} ended the stream with gRPC status ${this.#status}${this.#message === undefined ? "" : ` (${this.#message})`}`
      : `${this.#label} ended the stream`;
  }

  #grpc(headers: IncomingHttpHeaders): void {
    const s = headers["grpc-status"];
    if (typeof s === "string") this.#status = s;
    const m = headers["grpc-message"];
    if (typeof m === "string") this.#message = decodeURIComponent(m).slice(0, 200);
  }

  #fail(e: PickerError): void {
    this.#failure ??= e;
    for (const w of this.#waiters.splice(0)) w.reject(this.#failure);
  }

  /** Sends messages in one write (one DATA frame, one system call, where they fit). */
  send(...rs: ProcessingRequest[]): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closed) throw new PickerError(`${this.#label} ended the stream`);
    const frames = rs.map((r) => frame(encodeProcessingRequest(r)));
    this.#stream.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  }

  /** The next response; rejects when the stream fails or `timeoutMs` passes. */
  next(timeoutMs: number): Promise<ProcessingResponse> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new PickerError(this.#closedWhy()));
    return new Promise<ProcessingResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        this.cancel();
        reject(new PickerError(`no answer from ${this.#label} in ${timeoutMs} ms`, { timeout: true }));
      }, timeoutMs);
      const w: Waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(w);
    });
  }

  /** Whether the picker answered the stream at all (its HTTP/2 response headers arrived). */
  get answered(): boolean {
    return this.#answered;
  }

  /** Half-closes the stream: this request is done; the picker ends the stream. */
  end(): void {
    if (!this.#stream.closed && !this.#stream.writableEnded) this.#stream.end();
  }

  /** Abandons the stream (RST_STREAM CANCEL). */
  cancel(): void {
    if (!this.#stream.closed) this.#stream.close(h2.NGHTTP2_CANCEL);
  }
}
