// Access logs through a real HAProxy: one JSON line per request with the Gateway API identity of the
// rule, backend and endpoint, status, timings, bytes, client and request id; header values with
// quotes, backslashes, brackets and control characters cannot forge fields or break the line, and a
// CR/LF in a header never reaches the log as a line break.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import type { AccessLogEntry } from "../../src/observability/access-log.ts";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, prefix, ref, service } from "./resources.ts";

const sink = new PassThrough();
let output = "";
sink.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));

const harness = useHarness({
  backends: { web: "http" },
  accessLog: { format: { kind: "json" }, output: { kind: "stdout" }, stdout: sink },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.ports[0] ?? 0 }]),
      service("web", { endpoints: [h.backend("web").endpoint] }),
    ),
    "routes.yaml": docs(
      httpRoute("shop", {
        hostnames: ["shop.test"],
        rules: [{ name: "main", matches: [prefix("/")], backendRefs: [ref("web")] }],
      }),
    ),
  }),
});

/** The lines logged so far, each parsed (a line that is not one JSON object fails the test). */
function entries(): AccessLogEntry[] {
  return output
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as AccessLogEntry);
}

async function waitEntries(h: Harness, n: number): Promise<AccessLogEntry[]> {
  return h.waitFor(`${n} access log lines`, () => (entries().length >= n ? entries() : false), 10_000);
}

/** A raw HTTP/1.1 request (bytes as given), the response's status line. */
function raw(h: Harness, text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(h.port, h.ip, () => s.end(text));
    let answer = "";
    s.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    s.on("end", () => resolve(answer.split("\r\n")[0] ?? ""));
    s.on("error", reject);
  });
}

test("one JSON line per request, in Gateway API terms", async () => {
  const h = harness();
  output = "";
  const res = await h.get("/cart?item=1", { host: "shop.test", headers: { "x-request-id": "req-42" } });
  assert.equal(res.status, 200);
  assert.equal((await h.get("/", { host: "nobody.test" })).status, 404);
  const [ok, miss] = await waitEntries(h, 2);
  assert.ok(ok !== undefined && miss !== undefined);
  assert.equal(ok.request_id, "req-42");
  assert.equal(ok.gateway, "default/gw");
  assert.equal(ok.listener, "http");
  assert.equal(ok.route_kind, "HTTPRoute");
  assert.equal(ok.route_namespace, "default");
  assert.equal(ok.route, "shop");
  assert.equal(ok.rule, "main");
  assert.equal(ok.backend, "default/web:80");
  assert.equal(ok.endpoint, h.backend("web").endpoint);
  assert.equal(ok.status, 200);
  assert.equal(ok.method, "GET");
  assert.equal(ok.host, "shop.test");
  assert.equal(ok.path, "/cart");
  assert.equal(ok.query, "?item=1");
  assert.match(ok.client, /^127\.\d+\.\d+\.\d+:\d+$/);
  assert.ok(typeof ok.ttfb_ms === "number" && ok.ttfb_ms >= 0 && ok.ttfb_ms <= ok.duration_ms);
  assert.ok(ok.bytes_in > 0 && ok.bytes_out > res.body.length);
  assert.ok(Math.abs(Date.parse(ok.time) - Date.now()) < 60_000);
  // No rule matched: logged without a route, with HAProxy's generated request id.
  assert.equal(miss.status, 404);
  assert.equal(miss.route, null);
  assert.match(miss.request_id, /^[0-9A-F]{20,}$/);
});

test("hostile header values and paths are escaped, never forge fields or lines", async () => {
  const h = harness();
  output = "";
  const forged = 'x","status":999,"route":"evil\\"]}{"status":1';
  const hostile = `a"b\\c]d\te ${forged}`;
  // Raw bytes: a tab, quotes, backslashes, brackets, UTF-8 and an invalid UTF-8 byte (0xff).
  const ok = await raw(
    h,
    Buffer.concat([
      Buffer.from(
        `GET /p%22a\\th] HTTP/1.1\r\nHost: shop.test\r\nX-Request-Id: ${hostile}\r\nUser-Agent: caf\u00e9 `,
      ),
      Buffer.from([0xff]),
      Buffer.from(' "}]\r\nConnection: close\r\n\r\n'),
    ]),
  );
  assert.match(ok, /^HTTP\/1\.1 200/);
  // Control characters, a bare CR, a bare LF inside header values: HAProxy refuses such a request
  // (400) or ends the header at the line break; either way one log line, no forged field.
  for (const value of ["a\x01b", "a\rb", 'one\n"status":999']) {
    const status = await raw(
      h,
      `GET /ctl HTTP/1.1\r\nHost: shop.test\r\nX-Request-Id: ${value}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(status, /^HTTP\/1\.1 (400|200)/);
  }
  const logged = await waitEntries(h, 4);
  assert.equal(logged.length, 4, output); // exactly one line per request, each one JSON object
  const [first] = logged;
  assert.ok(first !== undefined);
  assert.equal(first.request_id, hostile);
  assert.equal(first.user_agent, 'caf\u00e9  "}]'); // the invalid byte is dropped (json(utf8s))
  assert.equal(first.status, 200);
  assert.equal(first.route, "shop");
  assert.equal(first.path, "/p%22a\\th]");
  for (const e of logged) {
    assert.notEqual(e.status, 999);
    assert.notEqual(e.route, "evil");
    assert.ok(!(e.request_id ?? "").includes("\n"));
  }
});
