import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeRequest,
  decodeVerdict,
  encodeRequest,
  encodeVerdict,
  WireError,
  type AuthRequest,
} from "./wire.ts";

const sample: AuthRequest = {
  key: "0123456789abcdef0123",
  method: "POST",
  path: "/a/b?c=d",
  host: "app.test",
  scheme: "https",
  source: "192.0.2.1",
  version: "1.1",
  headers: [
    ["authorization", "Bearer x"],
    ["x-multi", "1"],
    ["x-multi", "2"],
    ["x-bytes", "caf\u00e9"],
  ],
  body: Buffer.from("hello"),
};

test("a request survives encode/decode, repeated headers and non-ASCII bytes included", () => {
  assert.deepEqual(decodeRequest(encodeRequest(sample)), sample);
});

test("the request layout is the one the Lua action packs (>s1s2s4s4s1s2s1I2 ... s4)", () => {
  const b = encodeRequest({ ...sample, headers: [["a", "b"]], body: Buffer.from("z") });
  assert.equal(b[0], sample.key.length);
  assert.equal(b.readUInt16BE(1 + sample.key.length), 4); // "POST"
  assert.equal(b.subarray(-5).toString("hex"), "000000017a");
});

test("truncated or padded messages are refused", () => {
  const b = encodeRequest(sample);
  assert.throws(() => decodeRequest(b.subarray(0, b.length - 1)), WireError);
  assert.throws(() => decodeRequest(Buffer.concat([b, Buffer.from([0])])), WireError);
});

test("verdicts survive encode/decode", () => {
  const allow = {
    allow: true as const,
    ops: [
      { op: "set" as const, name: "x-user", value: "alice" },
      { op: "add" as const, name: "x-group", value: "b" },
      { op: "remove" as const, name: "authorization" },
    ],
  };
  assert.deepEqual(decodeVerdict(encodeVerdict(allow)), allow);
  const deny = {
    allow: false as const,
    status: 401,
    headers: [["www-authenticate", "Basic"]] as Array<[string, string]>,
    body: "no ✗",
  };
  assert.deepEqual(decodeVerdict(encodeVerdict(deny)), deny);
  assert.equal(encodeVerdict(deny)[0], 0);
});
