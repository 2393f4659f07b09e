// Real authorization services for the ExternalAuth end-to-end tests, on loopback: an HTTP one
// (node:http: 200 allows) and a gRPC one (node:http2, h2c, envoy.service.auth.v3.Authorization/Check
// with the messages of src/dataplane/extauth/proto.ts). Both record what they received, and decide
// by the Authorization header: `Bearer good` allows, `Bearer redirect` (HTTP) redirects to a login
// page, anything else is denied with 401.
import { createServer, type IncomingHttpHeaders } from "node:http";
import { createServer as createH2Server, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import {
  CHECK_PATH,
  decodeCheckRequest,
  encodeCheckResponse,
  type CheckRequest,
} from "../../src/dataplane/extauth/proto.ts";

export interface SeenHTTP {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface AuthServer<T> {
  endpoint: string;
  seen: T[];
  close(): Promise<void>;
}

export async function startHTTPAuth(address: string): Promise<AuthServer<SeenHTTP>> {
  const seen: SeenHTTP[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const auth = req.headers.authorization;
      if (auth === "Bearer good") {
        res.writeHead(200, { "x-auth-user": "alice", "x-auth-extra": "not for the backend" });
        res.end("ok");
      } else if (auth === "Bearer redirect") {
        res.writeHead(302, { location: "https://login.test/start" });
        res.end();
      } else {
        res.writeHead(401, { "www-authenticate": 'Bearer realm="test"', "content-type": "text/plain" });
        res.end("denied by http auth");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `${address}:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function startGRPCAuth(address: string): Promise<AuthServer<CheckRequest>> {
  const seen: CheckRequest[] = [];
  const server: Http2Server = createH2Server();
  const sessions = new Set<import("node:http2").ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    if (headers[":path"] !== CHECK_PATH || headers["content-type"] !== "application/grpc") {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": "12" },
        { endStream: true },
      );
      return;
    }
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const frame = Buffer.concat(chunks);
      const req = decodeCheckRequest(frame.subarray(5, 5 + frame.readUInt32BE(1)));
      seen.push(req);
      const allowed = req.headers["authorization"] === "Bearer good";
      const message = encodeCheckResponse(
        allowed
          ? {
              ok: true,
              headers: [
                { name: "x-auth-user", value: "grpc-alice", append: false },
                { name: "x-auth-group", value: "a", append: true },
                { name: "x-auth-group", value: "b", append: true },
              ],
              headersToRemove: ["x-remove-me"],
            }
          : {
              ok: false,
              grpcCode: 7,
              message: "permission denied",
              status: 401,
              headers: [{ name: "www-authenticate", value: "Bearer grpc", append: false }],
              body: "denied by grpc auth",
            },
      );
      const out = Buffer.alloc(5 + message.length);
      out.writeUInt32BE(message.length, 1);
      out.set(message, 5);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `${address}:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}
