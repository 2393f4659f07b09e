// Loopback networking helpers: free ports, one-shot HTTP requests, waiting for a condition.
import { request } from "node:http";
import { createServer } from "node:net";
import { sleep } from "./proc.ts";

export const LOOPBACK = "127.0.0.1";

const handedOut = new Set<number>();

/** A currently free TCP port on 127.0.0.1 (never the same one twice in a run). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, LOOPBACK, () => {
        const address = server.address();
        const p = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port found");
}

export interface HttpResult {
  status: number;
  body: string;
}

/**
 * One GET on a fresh connection (`Connection: close`): what a new client sees. Rejects on socket
 * errors and after `timeoutMs`.
 */
export function httpGet(
  port: number,
  path: string,
  options: { host?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: LOOPBACK,
        port,
        path,
        method: "GET",
        agent: false,
        headers: { host: options.host ?? `${LOOPBACK}:${port}`, connection: "close" },
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${options.timeoutMs ?? 5000} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** GET that never rejects: socket errors give status 0 and the message as body. */
export async function tryGet(
  port: number,
  path: string,
  options: { host?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  try {
    return await httpGet(port, path, options);
  } catch (err) {
    return { status: 0, body: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined; throws after
 * `timeoutMs` with `what` in the message.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = performance.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what}`);
    await sleep(options.intervalMs ?? 50);
  }
}

/** Waits until something accepts connections on 127.0.0.1:port. */
export async function waitForHttp(port: number, what: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    what,
    async () => ((await tryGet(port, "/", { timeoutMs: 1000 })).status > 0 ? true : undefined),
    {
      timeoutMs,
      intervalMs: 25,
    },
  );
}
