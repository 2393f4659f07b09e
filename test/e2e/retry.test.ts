// HTTPRoute retries through a real HAProxy: status codes and attempts, connection resets, backend
// request timeouts (retried only when every try fits in the request timeout), and a backoff, which
// HAProxy 2.6 cannot honour (the rule answers 500 and the route says so).
//
// The flaky backend fails the first `fail` requests carrying the same `id` query parameter, then
// answers 200 with the number of tries it saw. How it fails: `mode=status&code=N` answers N,
// `mode=reset` resets the connection once the request is read, `mode=slow&ms=N` answers 200 only
// after N ms (later than the route's backendRequest timeout).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import type { StatusEntry } from "../../src/status/types.ts";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, type Obj } from "./resources.ts";

interface Flaky {
  port: number;
  /** Tries seen per id. */
  tries: Map<string, number>;
  server: Server;
  sockets: Set<Socket>;
}

function flakyHandler(tries: Map<string, number>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://flaky");
    const q = (name: string): string => url.searchParams.get(name) ?? "";
    const id = q("id");
    const seen = (tries.get(id) ?? 0) + 1;
    tries.set(id, seen);
    const ok = (): void => {
      if (res.destroyed) return;
      res.writeHead(200, { "content-type": "text/plain", "x-tries": String(seen) });
      res.end(`ok after ${seen}`);
    };
    req.resume();
    req.on("end", () => {
      if (seen > Number(q("fail"))) return ok();
      switch (q("mode")) {
        case "status":
          res.writeHead(Number(q("code")), { "content-type": "text/plain", "x-tries": String(seen) });
          res.end(`failing try ${seen}`);
          return;
        case "reset":
          req.socket.resetAndDestroy();
          return;
        case "slow":
          setTimeout(ok, Number(q("ms"))).unref();
          return;
        default:
          res.writeHead(400);
          res.end("unknown mode");
      }
    });
  };
}

let flaky: Flaky | undefined;
before(async () => {
  const tries = new Map<string, number>();
  const server = createServer(flakyHandler(tries));
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  flaky = { port: (server.address() as AddressInfo).port, tries, server, sockets };
});
after(async () => {
  if (flaky === undefined) return;
  for (const s of flaky.sockets) s.destroy();
  await new Promise<void>((resolve) => flaky?.server.close(() => resolve()));
});

const rule = (path: string, extra: Obj): Obj => ({
  matches: [{ path: { type: "PathPrefix", value: path } }],
  backendRefs: [ref("flaky")],
  ...extra,
});

const harness = useHarness({
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("flaky", { endpoints: [`127.0.0.1:${flaky?.port ?? 0}`] }),
    ),
    "routes.yaml": docs(
      httpRoute("retries", {
        hostnames: ["retry.test"],
        rules: [
          rule("/code-500-attempts-3", { retry: { codes: [500], attempts: 3 } }),
          rule("/code-all-attempts-2", { retry: { codes: [500, 502, 503, 504], attempts: 2 } }),
          rule("/no-retry", {}),
          rule("/connection", { retry: { attempts: 2 } }),
          // 3 tries × 300 ms fit in 2 s: a timed-out try is retried.
          rule("/timeout-fits", {
            retry: { codes: [503], attempts: 2 },
            timeouts: { request: "2s", backendRequest: "300ms" },
          }),
          // 3 tries × 300 ms do not fit in 800 ms: a timeout ends the request.
          rule("/timeout-too-long", {
            retry: { codes: [503], attempts: 2 },
            timeouts: { request: "800ms", backendRequest: "300ms" },
          }),
        ],
      }),
      httpRoute("backoff", {
        hostnames: ["backoff.test"],
        rules: [
          rule("/backoff", { retry: { codes: [503], attempts: 2, backoff: "100ms" } }),
          rule("/plain", {}),
        ],
      }),
    ),
  }),
});

/** One request with a fresh id; returns the status and how many tries the backend saw. */
async function send(
  path: string,
  params: Record<string, string>,
  host = "retry.test",
): Promise<{ status: number; tries: number; ms: number }> {
  const id = randomUUID();
  const query = new URLSearchParams({ ...params, id }).toString();
  const started = performance.now();
  const res = await harness().get(`${path}?${query}`, { host });
  const ms = performance.now() - started;
  return { status: res.status, tries: flaky?.tries.get(id) ?? 0, ms };
}

const failing = (code: number, fail: number): Record<string, string> => ({
  mode: "status",
  code: String(code),
  fail: String(fail),
});

describe("retries", { concurrency: true }, () => {
  test("status codes: retried up to `attempts` times, only on the listed codes", async () => {
    assert.deepEqual(await pick(send("/code-500-attempts-3", failing(500, 2))), { status: 200, tries: 3 });
    assert.deepEqual(await pick(send("/code-500-attempts-3", failing(500, 3))), { status: 200, tries: 4 });
    // 1 try + 3 retries, all 500: the last answer goes back to the client.
    assert.deepEqual(await pick(send("/code-500-attempts-3", failing(500, 4))), { status: 500, tries: 4 });
    assert.deepEqual(await pick(send("/code-500-attempts-3", failing(503, 2))), { status: 503, tries: 1 });
    for (const code of [500, 502, 503, 504]) {
      assert.deepEqual(await pick(send("/code-all-attempts-2", failing(code, 1))), { status: 200, tries: 2 });
      assert.deepEqual(await pick(send("/code-all-attempts-2", failing(code, 3))), {
        status: code,
        tries: 3,
      });
    }
    assert.deepEqual(await pick(send("/no-retry", failing(500, 1))), { status: 500, tries: 1 });
  });

  test("a connection reset before the response is retried (with no codes listed)", async () => {
    const reset = (fail: number): Record<string, string> => ({ mode: "reset", fail: String(fail) });
    assert.deepEqual(await pick(send("/connection", reset(2))), { status: 200, tries: 3 });
    const exhausted = await send("/connection", reset(5));
    assert.equal(exhausted.tries, 3);
    assert.ok(exhausted.status >= 500, String(exhausted.status));
    // Without a retry stanza the reset reaches the client as an error.
    const plain = await send("/no-retry", reset(1));
    assert.equal(plain.tries, 1);
    assert.ok(plain.status >= 500, String(plain.status));
  });

  test("a backendRequest timeout is retried when every try fits in the request timeout", async () => {
    const slow = (fail: number): Record<string, string> => ({ mode: "slow", ms: "1500", fail: String(fail) });
    const recovered = await send("/timeout-fits", slow(1));
    assert.equal(recovered.status, 200);
    assert.equal(recovered.tries, 2);
    assert.ok(recovered.ms >= 280 && recovered.ms < 1200, `answered after ${Math.round(recovered.ms)} ms`);
    const exhausted = await send("/timeout-fits", slow(3));
    assert.equal(exhausted.status, 504);
    assert.equal(exhausted.tries, 3);
    // Three timed-out tries of 300 ms: about 900 ms, within the 2 s request timeout.
    assert.ok(exhausted.ms >= 850 && exhausted.ms < 2000, `answered after ${Math.round(exhausted.ms)} ms`);
  });

  test("a backendRequest timeout ends the request when the tries would outlast the request timeout", async () => {
    const res = await send("/timeout-too-long", { mode: "slow", ms: "1500", fail: "1" });
    assert.equal(res.status, 504);
    assert.equal(res.tries, 1);
    assert.ok(res.ms < 800, `answered after ${Math.round(res.ms)} ms`);
    // Codes are still retried on that rule.
    assert.deepEqual(await pick(send("/timeout-too-long", failing(503, 2))), { status: 200, tries: 3 });
  });

  test("a backoff cannot be honoured: the rule answers 500 and the route is PartiallyInvalid", async () => {
    const h = harness();
    const res = await send("/backoff", failing(503, 1), "backoff.test");
    assert.equal(res.status, 500);
    assert.equal(res.tries, 0);
    assert.equal((await send("/plain", failing(503, 0), "backoff.test")).status, 200);
    const status = await h.status();
    const route = status.objects.find(
      (o: StatusEntry) => o.kind === "HTTPRoute" && o.metadata.name === "backoff",
    );
    assert.ok(route !== undefined);
    const parents = route.status["parents"] as Array<{ conditions: Array<Record<string, string>> }>;
    const condition = parents.flatMap((p) => p.conditions).find((c) => c["type"] === "PartiallyInvalid");
    assert.ok(condition !== undefined, JSON.stringify(parents));
    assert.equal(condition["status"], "True");
    assert.match(condition["message"] ?? "", /backoff/);
  });
});

async function pick(
  p: Promise<{ status: number; tries: number }>,
): Promise<{ status: number; tries: number }> {
  const { status, tries } = await p;
  return { status, tries };
}
