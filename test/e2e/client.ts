// HTTP(S) client helpers for the end-to-end tests: one request to a Gateway address with a chosen
// Host header (and SNI for HTTPS), the answer fully read; echo answers parsed.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { TLSSocket } from "node:tls";
import type { EchoReply } from "./echo.ts";

export interface RequestOptions {
  address: string;
  port: number;
  /** Host header (default `address:port`). */
  host?: string;
  /** Request target, sent as is (default `/`). */
  path?: string;
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string;
  /** Default: a new connection per request (`false`). */
  agent?: HttpAgent | false;
  timeoutMs?: number;
  /** HTTPS: the SNI and the CA(s) to trust. */
  tls?: { servername: string; ca: string | string[] };
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** Header names as sent, with their values, in order. */
  rawHeaders: string[];
  body: string;
  /** The echo backend's description of the request, when the answer is one. */
  echo: EchoReply | undefined;
  /** HTTPS: the CN of the certificate the server presented. */
  peerCN?: string;
}

export class RequestFailed extends Error {}

export function request(options: RequestOptions): Promise<Response> {
  const headers: Record<string, string | string[]> = {
    host: options.host ?? `${options.address}:${options.port}`,
    ...options.headers,
  };
  if (options.body !== undefined) headers["content-length"] = String(Buffer.byteLength(options.body));
  const common = {
    host: options.address,
    port: options.port,
    path: options.path ?? "/",
    method: options.method ?? "GET",
    headers,
    agent: options.agent ?? false,
    setHost: false,
  };
  return new Promise((resolve, reject) => {
    const req =
      options.tls === undefined
        ? httpRequest(common)
        : httpsRequest({
            ...common,
            servername: options.tls.servername,
            ca: options.tls.ca,
            agent: options.agent instanceof HttpsAgent ? options.agent : false,
          });
    const timeoutMs = options.timeoutMs ?? 10_000;
    const timer = setTimeout(() => {
      req.destroy(new RequestFailed(`request timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      const peerCN = res.socket instanceof TLSSocket ? certCN(res.socket.getPeerCertificate()) : undefined;
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on("end", () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks).toString("utf8");
        const isEcho =
          res.headers["content-type"] === "application/json" && res.headers["x-backend"] !== undefined;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          echo: isEcho ? (JSON.parse(body) as EchoReply) : undefined,
          ...(peerCN !== undefined ? { peerCN } : {}),
        });
      });
    });
    req.end(options.body);
  });
}

function certCN(cert: { subject?: { CN?: string | string[] } } | undefined): string | undefined {
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** A keep-alive agent with one socket (a client that reuses its connection). */
export function keepAliveAgent(): HttpAgent {
  return new HttpAgent({ keepAlive: true, maxSockets: 1 });
}
