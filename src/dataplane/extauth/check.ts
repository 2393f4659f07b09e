// One authorization check: the request HAProxy handed over, the filter's settings and the service's
// endpoints in, a verdict out. HTTP services: the request's method and path (after the filter's path
// prefix) with Host, Authorization, Content-Length and the allowed headers (and the forwarded body);
// a 200 answer allows, and its allowed headers go into the request; any other answer is the client's
// response. GRPC services: Envoy's ext_authz Check over HTTP/2 (h2c, or TLS with ALPN h2 under a
// BackendTLSPolicy). The service unreachable, slow or answering nonsense: 403 (Envoy's default
// status_on_error), never an allow.
import { request as httpRequest, type Agent, type IncomingMessage } from "node:http";
import {
  connect as h2connect,
  constants as h2,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
} from "node:http2";
import { request as httpsRequest } from "node:https";
import type { ConnectionOptions } from "node:tls";
import { HOP_HEADERS } from "../bridge-http.ts";
import type { IRBackend, IRExternalAuth } from "../../ir/types.ts";
import { sanMismatch } from "../tlsbridge/bridge.ts";
import { CHECK_PATH, decodeCheckResponse, encodeCheckRequest, type CheckHeader } from "./proto.ts";
import type { AuthRequest, HeaderOp, Verdict } from "./wire.ts";

/** Headers that describe a message's framing or one connection: never copied between messages. */
const HOP: ReadonlySet<string> = new Set([...HOP_HEADERS, ":authority"]);
/** Headers the HTTP protocol always sends (HTTPAuthConfig.allowedHeaders). */
const ALWAYS = new Set(["authorization"]);
/** Largest denial body passed on to the client. */
const MAX_DENY_BODY = 64 * 1024;

export class CheckFailure extends Error {
  override readonly name = "CheckFailure";
}

export interface CheckTarget {
  auth: IRExternalAuth;
  backend: IRBackend;
}

export interface Transport {
  /** Keep-alive agent for HTTP services. */
  agent: Agent;
  tlsAgent: Agent;
  /** Cached HTTP/2 sessions per authority. */
  sessions: Map<string, ClientHttp2Session>;
  timeoutMs: number;
  /** Round-robin position per backend id. */
  next: Map<string, number>;
}

export function forbidden(why: string): Verdict {
  return {
    allow: false,
    status: 403,
    headers: [
      ["content-type", "text/plain; charset=utf-8"],
      ["cache-control", "no-cache"],
    ],
    body: `403 Forbidden: ${why}\n`,
  };
}

function endpoint(t: Transport, backend: IRBackend): { host: string; port: number } {
  const list = backend.endpoints;
  if (list.length === 0) throw new CheckFailure(`${backend.id} has no ready endpoint`);
  const i = (t.next.get(backend.id) ?? 0) % list.length;
  t.next.set(backend.id, i + 1);
  const ep = list[i];
  if (ep === undefined) throw new CheckFailure(`${backend.id} has no ready endpoint`);
  return { host: ep.address, port: ep.port };
}

function tlsOptions(backend: IRBackend): ConnectionOptions | undefined {
  const tls = backend.tls;
  if (tls === undefined) return undefined;
  const sans = tls.subjectAltNames;
  return {
    servername: tls.sni,
    ...(tls.wellKnownCACertificates === "System" ? {} : { ca: tls.caCertificates }),
    ...(tls.clientCertificate !== undefined
      ? { cert: tls.clientCertificate.certPem, key: tls.clientCertificate.keyPem }
      : {}),
    ...(sans.length > 0
      ? {
          checkServerIdentity: (_host, cert) => {
            const why = sanMismatch(cert, sans);
            return why === undefined ? undefined : new Error(why);
          },
        }
      : {}),
  };
}

/** Request headers to send: allowed names only (lower case), repeated values kept. */
function allowedHeaders(req: AuthRequest, allowed: ReadonlySet<string>): Array<[string, string]> {
  return req.headers.filter(([name]) => allowed.has(name) && !HOP.has(name));
}

/** The operations that put response headers into the request: first value set, later ones added. */
function headerOps(headers: ReadonlyArray<[string, string]>): HeaderOp[] {
  const seen = new Set<string>();
  return headers.map(([name, value]) => {
    const op = seen.has(name) ? "add" : "set";
    seen.add(name);
    return { op, name, value };
  });
}

function rawHeaders(res: IncomingMessage): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
    out.push([(res.rawHeaders[i] ?? "").toLowerCase(), res.rawHeaders[i + 1] ?? ""]);
  return out;
}

function denial(status: number, headers: Array<[string, string]>, body: string): Verdict {
  // A 1xx or 2xx other than 200 is a failed authorization too: the client must not read it as success.
  const code = status >= 300 && status <= 599 ? status : 403;
  return { allow: false, status: code, headers: headers.filter(([n]) => !HOP.has(n)), body };
}

export async function checkHTTP(t: Transport, target: CheckTarget, req: AuthRequest): Promise<Verdict> {
  const { auth, backend } = target;
  const { host, port } = endpoint(t, backend);
  const allowed = new Set([...ALWAYS, ...auth.allowedRequestHeaders]);
  const headers: Array<[string, string]> = [["host", req.host], ...allowedHeaders(req, allowed)];
  headers.push(["content-length", String(req.body.length)]);
  const tls = tlsOptions(backend);
  const send = tls === undefined ? httpRequest : httpsRequest;
  return new Promise<Verdict>((resolve, reject) => {
    const r = send(
      {
        host,
        port,
        method: req.method,
        path: `${auth.pathPrefix}${req.path}`,
        headers: headers.flat(),
        agent: tls === undefined ? t.agent : t.tlsAgent,
        timeout: t.timeoutMs,
        ...(tls ?? {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size <= MAX_DENY_BODY) chunks.push(c);
        });
        res.on("error", reject);
        res.on("end", () => {
          const list = rawHeaders(res);
          if (res.statusCode === 200) {
            const keep =
              auth.allowedResponseHeaders.length === 0
                ? list.filter(([n]) => !HOP.has(n))
                : list.filter(([n]) => auth.allowedResponseHeaders.includes(n) && !HOP.has(n));
            resolve({ allow: true, ops: headerOps(keep) });
          } else {
            const body = Buffer.concat(chunks).subarray(0, MAX_DENY_BODY).toString("utf8");
            resolve(denial(res.statusCode ?? 403, list, body));
          }
        });
      },
    );
    r.on("timeout", () => r.destroy(new CheckFailure(`no answer from ${backend.id} in ${t.timeoutMs} ms`)));
    r.on("error", (e) => reject(new CheckFailure(`${backend.id}: ${e.message}`, { cause: e })));
    r.end(req.body);
  });
}

function session(t: Transport, backend: IRBackend, host: string, port: number): ClientHttp2Session {
  const tls = tlsOptions(backend);
  const authority = `${tls === undefined ? "http" : "https"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const cached = t.sessions.get(authority);
  if (cached !== undefined && !cached.closed && !cached.destroyed) return cached;
  const s = h2connect(authority, tls === undefined ? {} : { ...tls, ALPNProtocols: ["h2"] });
  s.on("error", () => s.destroy());
  s.on("close", () => {
    if (t.sessions.get(authority) === s) t.sessions.delete(authority);
  });
  s.on("goaway", () => {
    if (t.sessions.get(authority) === s) t.sessions.delete(authority);
  });
  s.unref();
  t.sessions.set(authority, s);
  return s;
}

/** The CheckRequest headers map: allowed names (all when the list is empty), values joined by ",". */
function checkHeaders(req: AuthRequest, allowed: readonly string[]): Record<string, string> {
  const all = allowed.length === 0;
  const out: Record<string, string> = {};
  const put = (name: string, value: string): void => {
    if (!all && !allowed.includes(name)) return;
    out[name] = out[name] === undefined ? value : `${out[name]},${value}`;
  };
  put(":authority", req.host);
  put(":method", req.method);
  put(":path", req.path);
  put(":scheme", req.scheme);
  for (const [name, value] of req.headers) if (name !== "host") put(name, value);
  return out;
}

function grpcOps(headers: readonly CheckHeader[], remove: readonly string[]): HeaderOp[] {
  const ops: HeaderOp[] = [];
  const seen = new Set<string>();
  for (const h of headers) {
    const name = h.name.toLowerCase();
    if (name === "" || HOP.has(name) || name.startsWith(":")) continue;
    ops.push({ op: h.append || seen.has(name) ? "add" : "set", name, value: h.value });
    seen.add(name);
  }
  for (const n of remove) {
    const name = n.toLowerCase();
    if (name !== "" && !HOP.has(name) && !name.startsWith(":")) ops.push({ op: "remove", name });
  }
  return ops;
}

export async function checkGRPC(t: Transport, target: CheckTarget, req: AuthRequest): Promise<Verdict> {
  const { auth, backend } = target;
  const { host, port } = endpoint(t, backend);
  const length = req.headers.find(([n]) => n === "content-length")?.[1];
  const message = encodeCheckRequest({
    sourceAddress: req.source,
    sourcePort: 0,
    method: req.method,
    headers: checkHeaders(req, auth.allowedRequestHeaders),
    path: req.path,
    host: req.host,
    scheme: req.scheme,
    protocol: req.version === "" ? "" : `HTTP/${req.version === "2.0" ? "2" : req.version}`,
    body: req.body,
    size: length !== undefined && /^\d+$/.test(length) ? Number(length) : -1,
  });
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  const s = session(t, backend, host, port);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const stream = s.request(
      {
        [h2.HTTP2_HEADER_METHOD]: "POST",
        [h2.HTTP2_HEADER_PATH]: CHECK_PATH,
        [h2.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
        te: "trailers",
        "grpc-timeout": `${t.timeoutMs}m`,
      },
      { endStream: false },
    );
    const chunks: Buffer[] = [];
    let status = 0;
    let grpcStatus: string | undefined;
    stream.setTimeout(t.timeoutMs, () => stream.close(h2.NGHTTP2_CANCEL, () => undefined));
    stream.on("response", (headers) => {
      status = Number(headers[h2.HTTP2_HEADER_STATUS] ?? 0);
      const g = headers["grpc-status"];
      if (typeof g === "string") grpcStatus = g;
    });
    stream.on("trailers", (trailers: IncomingHttpHeaders) => {
      const g = trailers["grpc-status"];
      if (typeof g === "string") grpcStatus = g;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (e: Error) => reject(new CheckFailure(`${backend.id}: ${e.message}`, { cause: e })));
    stream.on("close", () => {
      if (status !== 200)
        return reject(new CheckFailure(`${backend.id} answered HTTP ${status || "nothing"}`));
      if (grpcStatus !== "0")
        return reject(new CheckFailure(`${backend.id} answered gRPC status ${grpcStatus ?? "none"}`));
      resolve(Buffer.concat(chunks));
    });
    stream.end(frame);
  });
  if (reply.length < 5 || reply[0] !== 0)
    throw new CheckFailure(`${backend.id} sent no uncompressed message`);
  const size = reply.readUInt32BE(1);
  if (reply.length < 5 + size) throw new CheckFailure(`${backend.id} sent a truncated message`);
  const res = decodeCheckResponse(reply.subarray(5, 5 + size));
  if (res.ok) return { allow: true, ops: grpcOps(res.headers, res.headersToRemove) };
  const headers: Array<[string, string]> = res.headers
    .map((h): [string, string] => [h.name.toLowerCase(), h.value])
    .filter(([n]) => n !== "" && !n.startsWith(":"));
  return denial(res.status ?? 403, headers, res.body);
}
