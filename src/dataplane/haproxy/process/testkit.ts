// Test helpers for the process and runtime tests: temp dirs, loopback backends, a real HAProxy,
// certificates, HTTP through HAProxy. Everything is bound to 127.0.0.1 and cleaned up with t.after.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import type { Agent, IncomingHttpHeaders, Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAProxyProcess } from "./manager.ts";
import type { HAProxyProcessOptions } from "./manager.ts";

/** The part of node:test's TestContext (or SuiteContext hooks) the helpers need. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

/** A fresh directory with a short path (UNIX socket paths are limited to 108 bytes). */
export function tempDir(t: Cleanup): string {
  const dir = mkdtempSync(join(tmpdir(), "gh-hap-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Backend {
  name: string;
  port: number;
  server: Server;
}

/**
 * A loopback HTTP backend answering `<name> <path>`; `GET /stream` sends a chunk every 50 ms until the
 * client goes away; an `Upgrade` request is switched to an echo tunnel.
 */
export async function startBackend(t: Cleanup, name: string): Promise<Backend> {
  const server = createHttpServer((req, res) => {
    if (req.url === "/stream") {
      res.writeHead(200, { "content-type": "text/plain" });
      let n = 0;
      const timer = setInterval(() => res.write(`tick ${n++}\n`), 50);
      res.on("close", () => clearInterval(timer));
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", "x-backend": name });
    res.end(`${name} ${req.url ?? ""}`);
  });
  server.on("upgrade", (_req, socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
    socket.pipe(socket);
    socket.on("error", () => socket.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { name, port: (server.address() as AddressInfo).port, server };
}

export interface HttpResult {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** One HTTP/1.1 request to 127.0.0.1:`port`, bounded by `timeoutMs`. */
export function httpGet(
  port: number,
  path: string,
  options: {
    host?: string;
    agent?: Agent | false;
    timeoutMs?: number;
    headers?: Record<string, string>;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path,
        agent: options.agent ?? false,
        headers: { host: options.host ?? "localhost", ...options.headers },
        timeout: options.timeoutMs ?? 2_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${options.timeoutMs ?? 2_000} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** The global and defaults sections every test config starts with. */
export function baseConfig(dir: string, hardStopAfter = "30s"): string {
  return `global
  stats socket ${dir}/admin.sock mode 600 level admin expose-fd listeners
  stats timeout 10s
  hard-stop-after ${hardStopAfter}
  crt-base ${dir}

defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  timeout tunnel 30s
  timeout http-keep-alive 10s
  option http-keep-alive
  option idle-close-on-response
`;
}

/** Writes `config` to `<dir>/haproxy.cfg` and returns its path. */
export function writeConfig(dir: string, config: string): string {
  const path = join(dir, "haproxy.cfg");
  writeFileSync(path, config);
  return path;
}

/** Starts HAProxy on `<dir>/haproxy.cfg` with restarts off; stopped (hard) after the test. */
export async function startHAProxy(
  t: Cleanup,
  dir: string,
  options: Partial<HAProxyProcessOptions> = {},
): Promise<HAProxyProcess> {
  const haproxy = new HAProxyProcess({
    masterSocket: join(dir, "master.sock"),
    restart: { enabled: false },
    ...options,
  });
  t.after(() => haproxy.stop({ graceful: false, timeoutMs: 2_000 }));
  await haproxy.start(join(dir, "haproxy.cfg"));
  return haproxy;
}

/** A self-signed EC certificate for `name` as a PEM bundle (certificate then key). */
export function selfSignedPem(dir: string, name: string): string {
  const key = join(dir, `${name}.key.tmp`);
  const cert = join(dir, `${name}.crt.tmp`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name}`,
    ],
    { stdio: "ignore" },
  );
  const pem = readFileSync(cert, "utf8") + readFileSync(key, "utf8");
  rmSync(key);
  rmSync(cert);
  return pem;
}

/** Whether the openssl command-line tool is available (certificate tests need it). */
export function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` every 10 ms until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return check();
}
