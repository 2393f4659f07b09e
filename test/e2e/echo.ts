// Echo backends for the end-to-end tests: tiny loopback servers that answer every request with a
// JSON description of what they received (their own name, method, raw URL, path, query, headers
// with their exact values and order), so a test can see what HAProxy forwarded.
//
// Control, per request (request headers) or per backend (`behavior`):
//   x-echo-delay-ms: N   answer after N ms
//   x-echo-status: N     answer with status N
// Every answer carries `x-backend: <name>` and three headers response filters can work on:
// `x-echo-a: a`, `x-echo-b: b`, `x-echo-c: c`.
// An HTTP/1.1 backend accepts WebSocket upgrades (RFC 6455, text frames) and echoes each message
// as `<name>:<message>`; a message `close` closes the connection.
import { createHash } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  createServer as createH2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { decodeFrames, encodeFrame, WS_GUID } from "./ws.ts";

export interface EchoReply {
  backend: string;
  method: string;
  /** The request target exactly as received. */
  url: string;
  path: string;
  query: Record<string, string[]>;
  /** Lowercased header name → every value, in the order received. */
  headers: Record<string, string[]>;
  httpVersion: string;
}

export interface EchoBehavior {
  delayMs?: number;
  status?: number;
}

export interface EchoBackend {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: "http" | "h2c";
  /** `address:port`. */
  readonly endpoint: string;
  /** Applies to every request (request headers override it). */
  behavior: EchoBehavior;
  /** Requests answered so far. */
  readonly requests: number;
  /** The last requests received (up to 50), oldest first. */
  readonly received: readonly EchoReply[];
  /** WebSocket connections currently open. */
  readonly openWebSockets: number;
  close(): Promise<void>;
}

export async function startEchoBackend(
  name: string,
  options: { protocol?: "http" | "h2c"; address?: string } = {},
): Promise<EchoBackend> {
  const protocol = options.protocol ?? "http";
  const address = options.address ?? "127.0.0.1";
  let requests = 0;
  const received: EchoReply[] = [];
  const sockets = new Set<Duplex>();
  const webSockets = new Set<Duplex>();
  const backend = {
    name,
    address,
    port: 0,
    protocol,
    endpoint: "",
    behavior: {} as EchoBehavior,
    get requests() {
      return requests;
    },
    received,
    get openWebSockets() {
      return webSockets.size;
    },
    close: async () => {},
  };

  const handle = (req: IncomingMessage | Http2ServerRequest, res: Responder): void => {
    requests++;
    const reply = describe(name, req);
    received.push(reply);
    if (received.length > 50) received.shift();
    const header = (h: string): string | undefined => reply.headers[h]?.[0];
    const delay = Number(header("x-echo-delay-ms") ?? backend.behavior.delayMs ?? 0);
    const status = Number(header("x-echo-status") ?? backend.behavior.status ?? 200);
    const send = (): void => {
      if (res.destroyed) return;
      const body = JSON.stringify(reply);
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-backend": name,
        "x-echo-a": "a",
        "x-echo-b": "b",
        "x-echo-c": "c",
      });
      res.end(body);
    };
    // Drain the request body before answering (keeps keep-alive connections reusable).
    req.resume();
    req.on("end", () => {
      if (delay > 0) setTimeout(send, delay).unref();
      else send();
    });
  };

  if (protocol === "h2c") {
    const server = createH2Server((req, res) => handle(req, responder(res)));
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    backend.port = (server.address() as AddressInfo).port;
    backend.close = () => closeServer(server, sockets);
  } else {
    const server = createHttpServer((req, res) => handle(req, responder(res)));
    server.keepAliveTimeout = 65_000;
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      requests++;
      const key = req.headers["sec-websocket-key"];
      if (req.headers.upgrade?.toLowerCase() !== "websocket" || typeof key !== "string") {
        socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        return;
      }
      const accept = createHash("sha1")
        .update(key + WS_GUID)
        .digest("base64");
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\nx-backend: ${name}\r\n\r\n`,
      );
      webSockets.add(socket);
      socket.on("close", () => webSockets.delete(socket));
      socket.on("error", () => socket.destroy());
      let buffered = head;
      const onData = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
        const { messages, rest } = decodeFrames(buffered);
        buffered = rest;
        for (const m of messages) {
          if (m.opcode === 8 || m.text === "close") {
            socket.end(encodeFrame(8, "", false));
            return;
          }
          if (m.opcode === 9) socket.write(encodeFrame(10, m.text, false));
          else if (m.opcode === 1) socket.write(encodeFrame(1, `${name}:${m.text}`, false));
        }
      };
      socket.on("data", onData);
      if (head.length > 0) onData(Buffer.alloc(0));
    });
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    backend.port = (server.address() as AddressInfo).port;
    backend.close = () => closeServer(server, sockets);
  }
  backend.endpoint = `${address}:${backend.port}`;
  return backend;
}

/** What the handler needs of an HTTP/1.1 or HTTP/2 response. */
interface Responder {
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string | number>): void;
  end(body: string): void;
}

function responder(res: ServerResponse | Http2ServerResponse): Responder {
  return {
    get destroyed() {
      return res.destroyed;
    },
    writeHead: (status, headers) => {
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.statusCode = status;
    },
    end: (body) => {
      res.end(body);
    },
  };
}

function describe(name: string, req: IncomingMessage | Http2ServerRequest): EchoReply {
  const url = req.url ?? "/";
  const parsed = new URL(url, "http://echo.invalid");
  const query: Record<string, string[]> = {};
  for (const [k, v] of parsed.searchParams) (query[k] ??= []).push(v);
  const headers: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = (raw[i] ?? "").toLowerCase();
    (headers[key] ??= []).push(raw[i + 1] ?? "");
  }
  const questionMark = url.indexOf("?");
  return {
    backend: name,
    method: req.method ?? "",
    url,
    path: questionMark < 0 ? url : url.slice(0, questionMark),
    query,
    headers,
    httpVersion: req.httpVersion,
  };
}

function closeServer(
  server: { close(cb: () => void): unknown; listening: boolean },
  sockets: Set<Duplex>,
): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}
