import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodePickRequest,
  decodePickVerdict,
  decodeServedReply,
  decodeServedRequest,
  encodePickRequest,
  encodePickVerdict,
  encodeServedReply,
  encodeServedRequest,
  WireError,
  type PickRequest,
  type PickVerdict,
} from "./wire.ts";

test("pick requests round-trip, bytes kept (latin1)", () => {
  const r: PickRequest = {
    key: "0123456789abcdef0123",
    method: "POST",
    path: "/v1/completions?x=1",
    host: "llm.test",
    scheme: "https",
    complete: false,
    headers: [
      ["content-type", "application/json"],
      ["x-bytes", "\xff\xfe"],
      ["x-bytes", "second"],
    ],
    body: Buffer.from('{"model":"m"}'),
  };
  assert.deepEqual(decodePickRequest(encodePickRequest(r)), r);
});

test("the Lua action's packing (string.pack >s1s2s4s4s1BI2 ... s4) is what the bridge reads", () => {
  // key "k", method "GET", path "/", host "h", scheme "http", complete 1, one header a: b, body "".
  const lua = Buffer.concat([
    Buffer.from([1]),
    Buffer.from("k"),
    Buffer.from([0, 3]),
    Buffer.from("GET"),
    Buffer.from([0, 0, 0, 1]),
    Buffer.from("/"),
    Buffer.from([0, 0, 0, 1]),
    Buffer.from("h"),
    Buffer.from([4]),
    Buffer.from("http"),
    Buffer.from([1]),
    Buffer.from([0, 1]),
    Buffer.from([0, 1]),
    Buffer.from("a"),
    Buffer.from([0, 0, 0, 1]),
    Buffer.from("b"),
    Buffer.from([0, 0, 0, 0]),
  ]);
  assert.deepEqual(decodePickRequest(lua), {
    key: "k",
    method: "GET",
    path: "/",
    host: "h",
    scheme: "http",
    complete: true,
    headers: [["a", "b"]],
    body: Buffer.alloc(0),
  });
  assert.throws(() => decodePickRequest(lua.subarray(0, lua.length - 1)), WireError);
  assert.throws(() => decodePickRequest(Buffer.concat([lua, Buffer.from([0])])), WireError);
});

test("verdicts round-trip: pick, respond, unavailable", () => {
  const verdicts: PickVerdict[] = [
    {
      kind: "pick",
      stream: "00ff00ff00ff00ff",
      destination: "10.0.0.1:8000,[fd00::1]:8000",
      ops: [
        { op: "set", name: "x-a", value: "1" },
        { op: "add", name: "x-b", value: "2" },
        { op: "addIfAbsent", name: "x-c", value: "3" },
        { op: "remove", name: "x-d" },
      ],
    },
    { kind: "respond", status: 429, headers: [["retry-after", "1"]], body: Buffer.from("shed") },
    { kind: "unavailable" },
  ];
  for (const v of verdicts) assert.deepEqual(decodePickVerdict(encodePickVerdict(v)), v);
  assert.deepEqual([...encodePickVerdict({ kind: "unavailable" })], [2]);
});

test("served requests and replies round-trip", () => {
  const s = {
    stream: "ab",
    served: "[fd00::1]:8000",
    status: 200,
    headers: [["content-type", "text/plain"]] as Array<[string, string]>,
  };
  assert.deepEqual(decodeServedRequest(encodeServedRequest(s)), s);
  const ops = [{ op: "set" as const, name: "x-conformance-test-served-endpoint", value: "10.0.0.1:8000" }];
  assert.deepEqual(decodeServedReply(encodeServedReply(ops)), ops);
});
