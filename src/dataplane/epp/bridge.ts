// The picker bridge: HAProxy's `gh_epp` Lua action (render/epp.ts) posts each request to a pool with
// an endpoint picker here (loopback HTTP/1.1); the bridge opens an ext_proc stream to the picker
// (client.ts), sends the request headers (with the pool's ready endpoints as the candidate subset) and
// the body, and answers with the picker's choice, its immediate response, or "unavailable" (the
// action then applies the pool's failureMode). The stream stays open, in a table keyed by a random
// id, until the response phase: `gh_epp_served` posts the endpoint HAProxy connected to and the
// response headers, which go to the picker on the same stream; its response header changes come
// back. A stream whose response never comes (a client gone, a 503 by HAProxy) is cancelled at its
// deadline. One loopback server for all pools; started on the first IR that has a picker. The pools
// of the previous IR are kept too, for workers still running the previous configuration.
import { joinHostPort } from "../../net/hostport.ts";
import { HOP_HEADERS, listenLoopback, readMessage } from "../bridge-http.ts";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { IR, IRBackend, IRPicker } from "../../ir/types.ts";
import { pickerKey } from "../haproxy/render/epp.ts";
import { ExtProcClient, PickerError, type ExtProcStream } from "./client.ts";
import type {
  Header,
  HeaderMutation,
  ProcessingRequest,
  ProcessingResponse,
  StructObject,
} from "./extproc.ts";
import {
  decodePickRequest,
  decodeServedRequest,
  encodePickVerdict,
  encodeServedReply,
  WireError,
  type HeaderOp,
  type PickRequest,
  type PickVerdict,
  type ServedRequest,
} from "./wire.ts";

/** Proposal 004's names. */
export const SUBSET_NAMESPACE = "envoy.lb.subset_hint";
export const SUBSET_KEY = "x-gateway-destination-endpoint-subset";
export const DESTINATION_NAMESPACE = "envoy.lb";
export const DESTINATION_KEY = "x-gateway-destination-endpoint";
export const SERVED_KEY = "x-gateway-destination-endpoint-served";
/** Sent to the picker when HAProxy's buffer held only a prefix of the body. */
export const TRUNCATED_HEADER = "x-gatehouse-body-truncated";

export interface EppBridgeOptions {
  logger: Logger;
  /** How long the picker may take to answer a phase (default 10 s); then it is unavailable. */
  timeoutMs?: number;
  /** How long a stream waits for its response phase (default 60 s). */
  streamTtlMs?: number;
}

interface Pool {
  backend: IRBackend;
  picker: IRPicker;
  /** The pool's ready endpoints, `ip:port` (IPv6 in brackets). */
  subset: string[];
}

interface Open {
  stream: ExtProcStream;
  deadline: number;
}

const MAX_MESSAGE = 2 * 1024 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Never changed by the picker: framing and connection headers, Host. */
const FIXED = HOP_HEADERS;
const MAX_BODY = 64 * 1024;

/**
 * Header operations from a mutation: valid, changeable names only. As Envoy applies an ext_proc
 * HeaderMutation: each `set` replaces every value the header has, values set earlier in the same
 * mutation included (the last one wins); `append` adds; ADD_IF_ABSENT adds when absent. lwepp's
 * response phase relies on it: it sets x-conformance-test-served-endpoint and then copies the
 * response's own headers, that header among them.
 */
export function mutationOps(m: HeaderMutation): HeaderOp[] {
  const ok = (name: string): boolean => TOKEN.test(name) && !FIXED.has(name);
  const ops: HeaderOp[] = [];
  for (const s of m.set) {
    const name = s.name.toLowerCase();
    if (!ok(name) || !FIELD_VALUE.test(s.value)) continue;
    if (s.action === "append") ops.push({ op: "add", name, value: s.value });
    else if (s.action === "addIfAbsent") ops.push({ op: "addIfAbsent", name, value: s.value });
    else ops.push({ op: "set", name, value: s.value });
  }
  for (const n of m.remove) {
    const name = n.toLowerCase();
    if (ok(name)) ops.push({ op: "remove", name });
  }
  return ops;
}

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join(",");
  return undefined;
}

/** The destination: dynamic metadata envoy.lb, else the request header the picker set. */
function destinationOf(metadata: StructObject | undefined, m: HeaderMutation): string | undefined {
  const ns = metadata?.[DESTINATION_NAMESPACE];
  const fromMetadata =
    ns !== null && typeof ns === "object" && !Array.isArray(ns) ? str(ns[DESTINATION_KEY]) : undefined;
  if (fromMetadata !== undefined && fromMetadata !== "") return fromMetadata;
  return m.set.find((s) => s.name.toLowerCase() === DESTINATION_KEY)?.value;
}

/** `ip:port` as the subset spells it (IPv6 in brackets, lower case). */
function normalize(endpoint: string): string {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(endpoint);
  if (m === null) return endpoint;
  const host = (m[1] ?? "").toLowerCase();
  return host.includes(":") ? `[${host}]:${m[2] ?? ""}` : `${host}:${m[2] ?? ""}`;
}

const notInPool: PickVerdict = {
  kind: "respond",
  status: 503,
  headers: [
    ["content-type", "text/plain; charset=utf-8"],
    ["cache-control", "no-cache"],
  ],
  body: Buffer.from("503 Service Unavailable: the endpoint picker chose no ready endpoint of the pool\n"),
};

function immediate(r: Extract<ProcessingResponse, { kind: "immediate" }>): PickVerdict {
  const headers: Array<[string, string]> = [];
  for (const op of mutationOps(r.headers)) if (op.op !== "remove") headers.push([op.name, op.value]);
  const status = r.status >= 200 && r.status <= 599 ? r.status : 500;
  return { kind: "respond", status, headers, body: Buffer.from(r.body).subarray(0, MAX_BODY) };
}

export class EppBridge {
  readonly #o: EppBridgeOptions;
  readonly #client = new ExtProcClient();
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  #server: Server | undefined;
  #address: string | undefined;
  #current = new Map<string, Pool>();
  #previous = new Map<string, Pool>();
  readonly #streams = new Map<string, Open>();
  readonly #idPrefix = randomBytes(4).toString("hex");
  #nextId = 0;
  #sweeper: NodeJS.Timeout | undefined;
  /** Last time an unavailable picker was logged, per service (at most one line per 10 s each). */
  readonly #warned = new Map<string, number>();

  constructor(options: EppBridgeOptions) {
    this.#o = options;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#ttlMs = options.streamTtlMs ?? 60_000;
  }

  /** `127.0.0.1:<port>` once serving. */
  get address(): string | undefined {
    return this.#address;
  }

  /** Streams waiting for their response phase. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Takes the pools with a picker of `ir` (starting the server on the first that has one) and returns
   * `ir` with every picker's `bridge` set.
   */
  async apply(ir: IR): Promise<IR> {
    const next = new Map<string, Pool>();
    for (const b of ir.backends) {
      if (b.picker === undefined) continue;
      next.set(pickerKey(b.id), {
        backend: b,
        picker: b.picker,
        subset: b.endpoints.map((e) => joinHostPort(e.address, e.port)),
      });
    }
    if (next.size === 0 && this.#server === undefined) return ir;
    this.#previous = this.#current;
    this.#current = next;
    const address = await this.#listen();
    return {
      ...ir,
      backends: ir.backends.map((b) =>
        b.picker === undefined ? b : { ...b, picker: { ...b.picker, bridge: address } },
      ),
    };
  }

  async #listen(): Promise<string> {
    if (this.#address !== undefined) return this.#address;
    const server = createServer({ keepAlive: true }, (req, res) => void this.#handle(req, res));
    this.#address = await listenLoopback(server);
    this.#server = server;
    this.#sweeper = setInterval(() => this.#sweep(), 1000);
    this.#sweeper.unref();
    this.#o.logger.info({ address: this.#address }, "endpoint picker bridge listening");
    return this.#address;
  }

  #sweep(now = Date.now()): void {
    for (const [id, open] of this.#streams) {
      if (open.deadline > now) continue;
      this.#streams.delete(id);
      open.stream.cancel();
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "POST" || (req.url !== "/pick" && req.url !== "/served")) {
      res.writeHead(404).end();
      return;
    }
    const message = await readMessage(req, res, MAX_MESSAGE);
    if (message === undefined) return;
    let body: Buffer;
    try {
      body =
        req.url === "/pick"
          ? encodePickVerdict(await this.pick(decodePickRequest(message)))
          : encodeServedReply(await this.served(decodeServedRequest(message)));
    } catch (e) {
      if (!(e instanceof WireError))
        this.#o.logger.error({ err: e }, "endpoint picker bridge: internal error");
      res.writeHead(e instanceof WireError ? 400 : 500).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.end(body);
  }

  #unavailable(service: string, why: string): PickVerdict {
    const now = Date.now();
    if ((this.#warned.get(service) ?? 0) + 10_000 <= now) {
      this.#warned.set(service, now);
      this.#o.logger.warn(
        { picker: service, err: why },
        "endpoint picker unavailable: the pool's failureMode applies",
      );
    }
    return { kind: "unavailable" };
  }

  /**
   * The request phase of one request. A picker replica that cannot be reached (no answer to the
   * stream at all, e.g. connection refused) is not the picker failing: the next replica is asked,
   * each at most once.
   */
  async pick(p: PickRequest): Promise<PickVerdict> {
    const pool = this.#current.get(p.key) ?? this.#previous.get(p.key);
    if (pool === undefined) return this.#unavailable("(unknown pool)", "the pool's settings are not loaded");
    const service = pool.picker.service;
    const attempts = Math.max(1, pool.picker.endpoints.length);
    for (let attempt = 1; ; attempt++) {
      let stream: ExtProcStream | undefined;
      try {
        stream = this.#client.open(pool.picker, this.#timeoutMs);
        return await this.#request(pool, stream, p);
      } catch (e) {
        stream?.cancel();
        const retry =
          attempt < attempts &&
          stream !== undefined &&
          !stream.answered &&
          !(e instanceof PickerError && e.timeout);
        if (!retry) return this.#unavailable(service, e instanceof Error ? e.message : String(e));
      }
    }
  }

  async #request(pool: Pool, stream: ExtProcStream, p: PickRequest): Promise<PickVerdict> {
    const service = pool.picker.service;
    const headers: Header[] = [
      [":method", p.method],
      [":path", p.path],
      [":authority", p.host],
      [":scheme", p.scheme],
      ...p.headers.filter(([n]) => n !== "host"),
    ];
    if (!p.complete) headers.push([TRUNCATED_HEADER, "true"]);
    const hasBody = p.body.length > 0;
    const requestHeaders: ProcessingRequest = {
      kind: "requestHeaders",
      headers,
      endOfStream: !hasBody,
      metadata: { [SUBSET_NAMESPACE]: { [SUBSET_KEY]: pool.subset } },
    };
    // Headers and body together: the picker answers once it has the body.
    if (hasBody) stream.send(requestHeaders, { kind: "requestBody", body: p.body, endOfStream: true });
    else stream.send(requestHeaders);
    let headersReply: HeaderMutation | undefined;
    let bodySeen = !hasBody;
    let metadata: StructObject | undefined;
    while (headersReply === undefined || !bodySeen) {
      const r = await stream.next(this.#timeoutMs);
      if (r.kind === "immediate") {
        stream.cancel();
        return immediate(r);
      }
      if (r.kind === "requestHeaders") headersReply = r.mutation;
      else if (r.kind === "requestBody") bodySeen = true;
      else throw new PickerError(`${service} answered ${r.kind} in the request phase`);
      if (r.dynamicMetadata !== undefined) metadata = { ...metadata, ...r.dynamicMetadata };
    }
    const destination = destinationOf(metadata, headersReply);
    if (destination === undefined || destination === "")
      throw new PickerError(`${service} chose no endpoint (${DESTINATION_KEY})`);
    // Only ready endpoints of the pool (the subset sent) are routed to; anything else is refused here,
    // so that its stream does not wait for a response phase that will not come.
    const listed = destination.split(",").map((e) => normalize(e.trim()));
    if (!listed.some((e) => pool.subset.includes(e))) {
      stream.cancel();
      return notInPool;
    }
    // Unique per bridge, unpredictable across bridges, never derived from the request.
    const id = `${this.#idPrefix}${(this.#nextId++).toString(16).padStart(8, "0")}`;
    this.#streams.set(id, { stream, deadline: Date.now() + this.#ttlMs });
    return { kind: "pick", stream: id, destination, ops: mutationOps(headersReply) };
  }

  /** The response phase: the served endpoint and response headers to the picker, its changes back. */
  async served(s: ServedRequest): Promise<HeaderOp[]> {
    const open = this.#streams.get(s.stream);
    if (open === undefined) return [];
    this.#streams.delete(s.stream);
    const { stream } = open;
    if (s.served === "") {
      stream.cancel();
      return [];
    }
    try {
      stream.send({
        kind: "responseHeaders",
        headers: [[":status", String(s.status)], ...s.headers],
        endOfStream: true,
        metadata: { [DESTINATION_NAMESPACE]: { [SERVED_KEY]: s.served } },
      });
      const r = await stream.next(this.#timeoutMs);
      stream.end();
      return r.kind === "responseHeaders" ? mutationOps(r.mutation) : [];
    } catch (e) {
      stream.cancel();
      this.#o.logger.debug(
        { err: e },
        "endpoint picker: response phase failed; the response goes on unchanged",
      );
      return [];
    }
  }

  async close(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const open of this.#streams.values()) open.stream.cancel();
    this.#streams.clear();
    this.#client.close();
    const server = this.#server;
    this.#server = undefined;
    this.#address = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
