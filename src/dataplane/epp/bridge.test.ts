// The picker bridge against a picker written here (ext_proc over h2c on loopback, messages from
// extproc.ts): the request phase with headers, subset and body; immediate responses; the response
// phase on the same stream; the picker unreachable or without endpoints; streams abandoned at their
// deadline; the loopback endpoint HAProxy's Lua action posts to. The real lwepp (TLS): test/e2e/epp.test.ts.
import assert from "node:assert/strict";
import { createServer, type Http2Server, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import pino from "pino";
import type { IR, IRBackend } from "../../ir/types.ts";
import { pickerKey } from "../haproxy/render/epp.ts";
import { EppBridge, SERVED_KEY, SUBSET_KEY, SUBSET_NAMESPACE, TRUNCATED_HEADER } from "./bridge.ts";
import {
  decodeProcessingRequest,
  Deframer,
  encodeProcessingResponse,
  frame,
  PROCESS_PATH,
  type ProcessingRequest,
  type ProcessingResponse,
} from "./extproc.ts";
import { decodePickVerdict, encodePickRequest, type PickRequest } from "./wire.ts";

/** What the test picker received, per stream. */
const streams: Array<{ messages: ProcessingRequest[]; closed: boolean; cancelled: boolean }> = [];
let picker: Http2Server;
let port = 0;

function send(s: ServerHttp2Stream, r: ProcessingResponse): void {
  s.write(frame(encodeProcessingResponse(r)));
}

function header(req: ProcessingRequest, name: string): string | undefined {
  return req.kind === "requestHeaders" || req.kind === "responseHeaders"
    ? req.headers.find(([n]) => n === name)?.[1]
    : undefined;
}

before(async () => {
  picker = createServer();
  picker.on("stream", (s, headers) => {
    assert.equal(headers[":path"], PROCESS_PATH);
    const record = { messages: [] as ProcessingRequest[], closed: false, cancelled: false };
    streams.push(record);
    s.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
    s.on("aborted", () => (record.cancelled = true));
    s.on("close", () => (record.closed = true));
    s.on("error", () => undefined);
    const deframer = new Deframer();
    let first: ProcessingRequest | undefined;
    s.on("data", (chunk: Buffer) => {
      for (const m of deframer.push(chunk)) {
        const req = decodeProcessingRequest(m);
        record.messages.push(req);
        if (req.kind === "requestHeaders") {
          first = req;
          const path = header(req, ":path");
          if (path === "/shed") {
            send(s, {
              kind: "immediate",
              status: 429,
              headers: { set: [{ name: "Retry-After", value: "1", action: "set" }], remove: [] },
              body: Buffer.from("shed"),
              details: "",
            });
            s.end();
            return;
          }
          if (path === "/fail") {
            s.close(2); // RST_STREAM INTERNAL_ERROR
            return;
          }
          if (!req.endOfStream) continue;
        }
        if (
          (req.kind === "requestBody" && req.endOfStream) ||
          (req.kind === "requestHeaders" && req.endOfStream)
        ) {
          const pick = header(first ?? req, "x-pick") ?? "10.0.0.1:8000";
          send(s, {
            kind: "requestHeaders",
            mutation: {
              set: [
                { name: "x-gateway-destination-endpoint", value: pick, action: "set" },
                { name: "X-Picked", value: "yes", action: "set" },
                { name: "host", value: "evil", action: "set" },
                { name: "x-bad", value: "a\r\nb", action: "set" },
              ],
              remove: ["x-drop"],
            },
            dynamicMetadata: { "envoy.lb": { "x-gateway-destination-endpoint": pick } },
          });
          if (req.kind === "requestBody") send(s, { kind: "requestBody", mutation: { set: [], remove: [] } });
        }
        if (req.kind === "responseHeaders") {
          const lb = req.metadata?.["envoy.lb"]?.[SERVED_KEY];
          send(s, {
            kind: "responseHeaders",
            mutation: {
              set: [
                { name: "x-served", value: typeof lb === "string" ? lb : "missing", action: "set" },
                { name: "set-cookie", value: "a=1", action: "set" },
                { name: "set-cookie", value: "b=2", action: "set" },
              ],
              remove: [],
            },
          });
        }
      }
    });
    s.on("end", () => s.end());
  });
  await new Promise<void>((r) => picker.listen(0, "127.0.0.1", () => r()));
  port = (picker.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((r) => picker.close(() => r()));
});

function pool(id: string, pickerPort: number, endpoints = 1): IRBackend {
  return {
    id,
    source: { kind: "InferencePool", namespace: "models", name: id.split("/").at(-1) ?? "" },
    port: 8000,
    protocol: "http",
    endpoints: [
      { address: "10.0.0.1", port: 8000 },
      { address: "fd00::2", port: 8000 },
    ],
    picker: {
      service: `models/epp-${pickerPort}:9002`,
      endpoints: endpoints === 0 ? [] : [{ address: "127.0.0.1", port: pickerPort }],
      transport: "h2c",
      failureMode: "FailClose",
    },
  };
}

function ir(backends: IRBackend[]): IR {
  return { gateways: [], backends };
}

function request(key: string, path: string, extra: Partial<PickRequest> = {}): PickRequest {
  return {
    key,
    method: "POST",
    path,
    host: "llm.test",
    scheme: "http",
    complete: true,
    headers: [
      ["host", "llm.test"],
      ["content-type", "application/json"],
    ],
    body: Buffer.from('{"model":"m"}'),
    ...extra,
  };
}

const logger = pino({ level: "silent" });

test("apply sets the bridge address on every picker; an IR without pickers starts nothing", async () => {
  const bridge = new EppBridge({ logger });
  try {
    const plain = ir([
      {
        id: "service/a/b/80",
        source: { kind: "Service", namespace: "a", name: "b" },
        port: 80,
        protocol: "http",
        endpoints: [],
      },
    ]);
    assert.equal(await bridge.apply(plain), plain);
    assert.equal(bridge.address, undefined);
    const out = await bridge.apply(ir([pool("inferencepool/models/a", port)]));
    assert.match(bridge.address ?? "", /^127\.0\.0\.1:\d+$/);
    assert.equal(out.backends[0]?.picker?.bridge, bridge.address);
  } finally {
    await bridge.close();
  }
});

test("request phase: headers with the subset, the body; the pick, its header changes (sanitized)", async () => {
  const bridge = new EppBridge({ logger });
  try {
    const b = pool("inferencepool/models/a", port);
    await bridge.apply(ir([b]));
    const before = streams.length;
    const v = await bridge.pick(
      request(pickerKey(b.id), "/v1/completions", { headers: [["x-pick", "[fd00::2]:8000"]] }),
    );
    assert.equal(v.kind, "pick");
    if (v.kind !== "pick") return;
    assert.equal(v.destination, "[fd00::2]:8000");
    assert.match(v.stream, /^[0-9a-f]{16}$/);
    // Host is never changed; a value with CR/LF is dropped; names are lower-cased.
    assert.deepEqual(v.ops, [
      { op: "set", name: "x-gateway-destination-endpoint", value: "[fd00::2]:8000" },
      { op: "set", name: "x-picked", value: "yes" },
      { op: "remove", name: "x-drop" },
    ]);
    const got = streams[before];
    assert.ok(got !== undefined);
    const [h, body] = got.messages;
    assert.ok(h?.kind === "requestHeaders");
    assert.equal(h.endOfStream, false);
    assert.equal(header(h, ":authority"), "llm.test");
    assert.equal(header(h, ":method"), "POST");
    assert.equal(header(h, TRUNCATED_HEADER), undefined);
    assert.deepEqual(h.metadata?.[SUBSET_NAMESPACE]?.[SUBSET_KEY], ["10.0.0.1:8000", "[fd00::2]:8000"]);
    assert.ok(body?.kind === "requestBody");
    assert.equal(Buffer.from(body.body).toString(), '{"model":"m"}');
    assert.equal(body.endOfStream, true);
    assert.equal(bridge.openStreams, 1);

    // Response phase on the same stream: the served endpoint in envoy.lb metadata, changes back.
    const ops = await bridge.served({
      stream: v.stream,
      served: "[fd00::2]:8000",
      status: 200,
      headers: [["content-type", "text/plain"]],
    });
    assert.deepEqual(ops, [
      { op: "set", name: "x-served", value: "[fd00::2]:8000" },
      // As Envoy applies a HeaderMutation: a second `set` of a name replaces the first (lwepp sets
      // its result header, then copies the response's headers, that one among them).
      { op: "set", name: "set-cookie", value: "a=1" },
      { op: "set", name: "set-cookie", value: "b=2" },
    ]);
    const rh = got.messages[2];
    assert.ok(rh?.kind === "responseHeaders");
    assert.equal(header(rh, ":status"), "200");
    assert.equal(rh.endOfStream, true);
    assert.equal(bridge.openStreams, 0);
    // A second report for the same stream does nothing.
    assert.deepEqual(await bridge.served({ stream: v.stream, served: "x", status: 200, headers: [] }), []);
  } finally {
    await bridge.close();
  }
});

test("no body: request_headers end the stream's request; a truncated body says so", async () => {
  const bridge = new EppBridge({ logger });
  try {
    const b = pool("inferencepool/models/a", port);
    await bridge.apply(ir([b]));
    const n = streams.length;
    const v = await bridge.pick(request(pickerKey(b.id), "/", { method: "GET", body: Buffer.alloc(0) }));
    assert.equal(v.kind, "pick");
    const h = streams[n]?.messages[0];
    assert.ok(h?.kind === "requestHeaders");
    assert.equal(h.endOfStream, true);
    assert.equal(streams[n]?.messages.length, 1);
    await bridge.pick(request(pickerKey(b.id), "/", { complete: false }));
    assert.equal(header(streams[n + 1]?.messages[0] as ProcessingRequest, TRUNCATED_HEADER), "true");
  } finally {
    await bridge.close();
  }
});

test("a destination outside the pool's ready endpoints: 503 at once, the stream closed", async () => {
  const bridge = new EppBridge({ logger });
  try {
    const b = pool("inferencepool/models/a", port);
    await bridge.apply(ir([b]));
    const n = streams.length;
    const v = await bridge.pick(request(pickerKey(b.id), "/", { headers: [["x-pick", "192.0.2.1:8000"]] }));
    assert.equal(v.kind, "respond");
    if (v.kind !== "respond") return;
    assert.equal(v.status, 503);
    assert.equal(bridge.openStreams, 0);
    // A list whose first entry is outside but a later one inside is a pick (IPv6 spelt differently).
    const w = await bridge.pick(
      request(pickerKey(b.id), "/", { headers: [["x-pick", "192.0.2.1:8000,[FD00::2]:8000"]] }),
    );
    assert.equal(w.kind, "pick");
    const deadline = Date.now() + 3000;
    while (streams[n]?.closed !== true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(streams[n]?.closed, true);
  } finally {
    await bridge.close();
  }
});

test("an immediate response (429) is answered as the picker says", async () => {
  const bridge = new EppBridge({ logger });
  try {
    const b = pool("inferencepool/models/a", port);
    await bridge.apply(ir([b]));
    const v = await bridge.pick(request(pickerKey(b.id), "/shed"));
    assert.deepEqual(v, {
      kind: "respond",
      status: 429,
      headers: [["retry-after", "1"]],
      body: Buffer.from("shed"),
    });
    assert.equal(bridge.openStreams, 0);
  } finally {
    await bridge.close();
  }
});

test("unavailable: a stream reset, a picker not listening, no picker endpoint, an unknown pool", async () => {
  const bridge = new EppBridge({ logger, timeoutMs: 2000 });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    const a = pool("inferencepool/models/a", port);
    const dead = pool("inferencepool/models/dead", deadPort);
    const empty = pool("inferencepool/models/empty", port, 0);
    await bridge.apply(ir([a, dead, empty]));
    assert.deepEqual(await bridge.pick(request(pickerKey(a.id), "/fail")), { kind: "unavailable" });
    assert.deepEqual(await bridge.pick(request(pickerKey(dead.id), "/")), { kind: "unavailable" });
    assert.deepEqual(await bridge.pick(request(pickerKey(empty.id), "/")), { kind: "unavailable" });
    assert.deepEqual(await bridge.pick(request("0000", "/")), { kind: "unavailable" });
    assert.equal(bridge.openStreams, 0);
  } finally {
    await bridge.close();
  }
});

test("a replica that cannot be reached: the next replica is asked within the same request", async () => {
  const bridge = new EppBridge({ logger });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    const b = pool("inferencepool/models/a", port);
    // The dead replica first (the bridge starts with the first endpoint), then the live one.
    b.picker = {
      ...(b.picker as NonNullable<IRBackend["picker"]>),
      endpoints: [
        { address: "127.0.0.1", port: deadPort },
        { address: "127.0.0.1", port },
      ],
    };
    await bridge.apply(ir([b]));
    for (let i = 0; i < 4; i++) assert.equal((await bridge.pick(request(pickerKey(b.id), "/"))).kind, "pick");
    // A picker that answers and fails the stream is the picker failing: no second replica (two
    // live "replicas" here, the same picker twice: one stream only).
    const live = { address: "127.0.0.1", port };
    b.picker = { ...b.picker, endpoints: [live, live] };
    await bridge.apply(ir([b]));
    const n = streams.length;
    assert.deepEqual(await bridge.pick(request(pickerKey(b.id), "/fail")), { kind: "unavailable" });
    assert.equal(streams.length - n, 1);
  } finally {
    await bridge.close();
  }
});

test("a stream whose response phase never comes is cancelled at its deadline", async () => {
  const bridge = new EppBridge({ logger, streamTtlMs: 200 });
  try {
    const b = pool("inferencepool/models/a", port);
    await bridge.apply(ir([b]));
    const n = streams.length;
    const v = await bridge.pick(request(pickerKey(b.id), "/"));
    assert.equal(v.kind, "pick");
    assert.equal(bridge.openStreams, 1);
    const deadline = Date.now() + 5000;
    while ((bridge.openStreams > 0 || streams[n]?.closed !== true) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(bridge.openStreams, 0);
    assert.equal(streams[n]?.closed, true);
  } finally {
    await bridge.close();
  }
});

test("the loopback endpoint: POST /pick with the Lua action's message; anything else refused", async () => {
  const bridge = new EppBridge({ logger });
  try {
    const b = pool("inferencepool/models/a", port);
    await bridge.apply(ir([b]));
    const url = `http://${bridge.address}`;
    const res = await fetch(`${url}/pick`, {
      method: "POST",
      body: encodePickRequest(request(pickerKey(b.id), "/")),
    });
    assert.equal(res.status, 200);
    const v = decodePickVerdict(Buffer.from(await res.arrayBuffer()));
    assert.equal(v.kind, "pick");
    assert.equal((await fetch(`${url}/pick`, { method: "POST", body: "junk" })).status, 400);
    assert.equal((await fetch(`${url}/other`, { method: "POST", body: "" })).status, 404);
  } finally {
    await bridge.close();
  }
});
