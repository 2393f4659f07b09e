// The auth bridge: HAProxy's `gh_extauth` Lua action (render/extauth.ts) posts each request a rule's
// ExternalAuth filter applies to here (loopback HTTP/1.1), and gets a verdict back. The bridge holds
// the settings of every ExternalAuth filter of the applied IR (by the key the renderer puts in the
// configuration) and the endpoints of their services, and makes the check (check.ts): HTTP, or gRPC
// ext_authz over HTTP/2, which HAProxy 2.6's Lua cannot speak. One loopback server for all filters;
// started on the first IR that has one. The settings of the previous IR are kept too, so requests
// of a worker still running the previous configuration during a reload are checked, not refused.
import { listenLoopback, readMessage } from "../bridge-http.ts";
import { createServer, Agent, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Logger } from "pino";
import type { IR, IRBackend, IRHTTPFilter } from "../../ir/types.ts";
import { externalAuthKey } from "../haproxy/render/extauth.ts";
import { checkGRPC, checkHTTP, CheckFailure, forbidden, type CheckTarget, type Transport } from "./check.ts";
import { decodeRequest, encodeVerdict, WireError, type Verdict } from "./wire.ts";

export interface ExtAuthBridgeOptions {
  logger: Logger;
  /** How long a check may take (default 10 s); then the request is refused (403). */
  timeoutMs?: number;
}

/** Largest message HAProxy sends (headers up to tune.bufsize, body up to 65535 bytes). */
const MAX_MESSAGE = 1024 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, spaces and tabs; no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Drops what HAProxy must not receive: header names that are not tokens, values with CR/LF/NUL. */
export function sanitize(v: Verdict): Verdict {
  const ok = (name: string, value: string): boolean => TOKEN.test(name) && FIELD_VALUE.test(value);
  if (v.allow) return { allow: true, ops: v.ops.filter((o) => ok(o.name, o.op === "remove" ? "" : o.value)) };
  return { ...v, headers: v.headers.filter(([n, value]) => ok(n, value)) };
}

function mapFilters(ir: IR, f: (filter: IRHTTPFilter) => IRHTTPFilter): IR {
  return {
    ...ir,
    gateways: ir.gateways.map((g) => ({
      ...g,
      listeners: g.listeners.map((l) =>
        l.virtualHosts === undefined
          ? l
          : {
              ...l,
              virtualHosts: l.virtualHosts.map((vh) => ({
                ...vh,
                rules: vh.rules.map((r) => ({ ...r, filters: r.filters.map(f) })),
              })),
            },
      ),
    })),
  };
}

export class ExtAuthBridge {
  readonly #o: ExtAuthBridgeOptions;
  #server: Server | undefined;
  #address: string | undefined;
  #current = new Map<string, CheckTarget>();
  #previous = new Map<string, CheckTarget>();
  readonly #transport: Transport;

  constructor(options: ExtAuthBridgeOptions) {
    this.#o = options;
    this.#transport = {
      agent: new Agent({ keepAlive: true, maxSockets: 256 }),
      tlsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
      sessions: new Map(),
      timeoutMs: options.timeoutMs ?? 10_000,
      next: new Map(),
    };
  }

  /** `127.0.0.1:<port>` once serving. */
  get address(): string | undefined {
    return this.#address;
  }

  /**
   * Takes the ExternalAuth settings of `ir` (starting the server on the first that has some) and
   * returns `ir` with every ExternalAuth filter's `bridge` set.
   */
  async apply(ir: IR): Promise<IR> {
    const backends = new Map<string, IRBackend>(ir.backends.map((b) => [b.id, b]));
    const next = new Map<string, CheckTarget>();
    mapFilters(ir, (f) => {
      if (f.type === "ExternalAuth") {
        const backend = backends.get(f.auth.backend);
        if (backend !== undefined) next.set(externalAuthKey(f.auth), { auth: f.auth, backend });
      }
      return f;
    });
    if (next.size === 0 && this.#server === undefined) return ir;
    this.#previous = this.#current;
    this.#current = next;
    const address = await this.#listen();
    return mapFilters(ir, (f) =>
      f.type === "ExternalAuth" ? { ...f, auth: { ...f.auth, bridge: address } } : f,
    );
  }

  async #listen(): Promise<string> {
    if (this.#address !== undefined) return this.#address;
    const server = createServer({ keepAlive: true }, (req, res) => void this.#handle(req, res));
    this.#address = await listenLoopback(server);
    this.#server = server;
    this.#o.logger.info({ address: this.#address }, "ExternalAuth bridge listening");
    return this.#address;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (v: Verdict): void => {
      const body = encodeVerdict(sanitize(v));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
      res.end(body);
    };
    if (req.method !== "POST" || req.url !== "/check") {
      res.writeHead(404).end();
      return;
    }
    const message = await readMessage(req, res, MAX_MESSAGE);
    if (message === undefined) return;
    let verdict: Verdict;
    try {
      const r = decodeRequest(message);
      const target = this.#current.get(r.key) ?? this.#previous.get(r.key);
      if (target === undefined) {
        verdict = forbidden("the authorization settings of this route are not loaded");
      } else {
        verdict = await (target.auth.protocol === "GRPC"
          ? checkGRPC(this.#transport, target, r)
          : checkHTTP(this.#transport, target, r));
      }
    } catch (e) {
      if (e instanceof WireError) {
        res.writeHead(400).end();
        return;
      }
      const why = e instanceof CheckFailure ? e.message : String(e);
      this.#o.logger.warn({ err: why }, "ExternalAuth check failed: request refused");
      verdict = forbidden("the authorization service is unavailable");
    }
    reply(verdict);
  }

  async close(): Promise<void> {
    for (const s of this.#transport.sessions.values()) s.destroy();
    this.#transport.sessions.clear();
    this.#transport.agent.destroy();
    this.#transport.tlsAgent.destroy();
    const server = this.#server;
    this.#server = undefined;
    this.#address = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
