import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeProcessingRequest,
  decodeProcessingResponse,
  Deframer,
  encodeProcessingRequest,
  encodeProcessingResponse,
  frame,
} from "./extproc.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

test("request_body: field 4, HttpBody body = 1, end_of_stream = 2", () => {
  const bytes = encodeProcessingRequest({ kind: "requestBody", body: Buffer.from("a"), endOfStream: true });
  assert.equal(hex(bytes), "2205" + "0a0161" + "1001");
});

test("request_headers: field 2, HeaderMap headers = 1, HeaderValue key = 1 and raw_value = 3", () => {
  const bytes = encodeProcessingRequest({ kind: "requestHeaders", headers: [["a", "b"]], endOfStream: true });
  // ProcessingRequest.request_headers { HttpHeaders.headers { HeaderMap.headers { key "a" raw_value "b" } } end_of_stream }
  assert.equal(hex(bytes), "120c" + "0a08" + "0a06" + "0a0161" + "1a0162" + "1801");
});

test("a request_headers response as lwepp sends it (raw_value, clear_route_cache) decodes to a set", () => {
  // request_headers = 1 { response = 1 { header_mutation = 2 { set_headers = 1 { header = 1 {
  //   key "a", raw_value "b" } } }, clear_route_cache = 5: true } }
  const bytes = Buffer.from("0a10" + "0a0e" + "120a" + "0a08" + "0a06" + "0a0161" + "1a0162" + "2801", "hex");
  const r = decodeProcessingResponse(bytes);
  assert.deepEqual(r, {
    kind: "requestHeaders",
    mutation: { set: [{ name: "a", value: "b", action: "set" }], remove: [] },
  });
});

test("request headers with metadata_context (a list and a string) round-trip", () => {
  const req = {
    kind: "requestHeaders" as const,
    headers: [
      [":method", "POST"],
      ["x-bytes", "\xff\x01"],
    ] as Array<[string, string]>,
    endOfStream: false,
    metadata: {
      "envoy.lb.subset_hint": {
        "x-gateway-destination-endpoint-subset": ["10.0.0.1:8000", "[fd00::1]:8000"],
      },
      "envoy.lb": { "x-gateway-destination-endpoint-served": "10.0.0.1:8000" },
    },
  };
  assert.deepEqual(decodeProcessingRequest(encodeProcessingRequest(req)), req);
});

test("responses round-trip: header mutations with every action, dynamic metadata, immediate responses", () => {
  const headers = {
    kind: "requestHeaders" as const,
    mutation: {
      set: [
        { name: "x-gateway-destination-endpoint", value: "10.0.0.1:8000", action: "set" as const },
        { name: "x-a", value: "1", action: "append" as const },
        { name: "x-b", value: "2", action: "addIfAbsent" as const },
        { name: "x-c", value: "3", action: "overwriteIfExists" as const },
      ],
      remove: ["x-gone"],
    },
    dynamicMetadata: {
      "envoy.lb": { "x-gateway-destination-endpoint": "10.0.0.1:8000", n: 2, ok: true, none: null },
    },
  };
  assert.deepEqual(decodeProcessingResponse(encodeProcessingResponse(headers)), headers);
  const immediate = {
    kind: "immediate" as const,
    status: 429,
    headers: { set: [{ name: "retry-after", value: "1", action: "set" as const }], remove: [] },
    body: new Uint8Array(Buffer.from("shed")),
    details: "overloaded",
  };
  const back = decodeProcessingResponse(encodeProcessingResponse(immediate));
  assert.equal(back.kind, "immediate");
  if (back.kind !== "immediate") return;
  assert.equal(back.status, 429);
  assert.deepEqual(back.headers, immediate.headers);
  assert.equal(Buffer.from(back.body).toString(), "shed");
  assert.equal(back.details, "overloaded");
});

test("a response field the bridge does not handle (trailers) is 'other'", () => {
  // request_trailers = 5 { }
  assert.deepEqual(decodeProcessingResponse(Buffer.from("2a00", "hex")), { kind: "other", field: 5 });
});

test("gRPC frames split across chunks and several in one chunk", () => {
  const d = new Deframer();
  const a = frame(Buffer.from("hello"));
  const b = frame(Buffer.from("world!"));
  const all = Buffer.concat([a, b]);
  assert.deepEqual(d.push(all.subarray(0, 3)), []);
  assert.deepEqual(
    d.push(all.subarray(3)).map((m) => m.toString()),
    ["hello", "world!"],
  );
  assert.throws(() => new Deframer().push(Buffer.from([1, 0, 0, 0, 1, 0])), /compressed/);
  assert.throws(() => new Deframer(4).push(frame(Buffer.from("12345"))), /exceeds/);
});
