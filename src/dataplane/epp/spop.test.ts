import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeActions,
  decodeFrame,
  decodeHeadersBin,
  decodeMessages,
  encodeActions,
  encodeFrame,
  encodeHeadersBin,
  encodeMessages,
  encodeVarint,
  FLAG_FIN,
  SpopError,
  SpopReader,
  SpopWriter,
  type TypedData,
} from "./spop.ts";

test("varint: HAProxy's encoding at its edges", () => {
  const cases: Array<[bigint, number[]]> = [
    [0n, [0x00]],
    [1n, [0x01]],
    [239n, [0xef]],
    [240n, [0xf0, 0x00]],
    [241n, [0xf1, 0x00]],
    [255n, [0xff, 0x00]],
    [256n, [0xf0, 0x01]],
    [2287n, [0xff, 0x7f]],
    [2288n, [0xf0, 0x80, 0x00]],
    [264431n, [0xff, 0xff, 0x7f]],
    [264432n, [0xf0, 0x80, 0x80, 0x00]],
  ];
  for (const [v, bytes] of cases) {
    assert.deepEqual([...encodeVarint(v)], bytes, `encode ${v}`);
    assert.equal(new SpopReader(Buffer.from(bytes)).varint(), v, `decode ${v}`);
  }
  for (const v of [2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]) {
    const r = new SpopReader(encodeVarint(v));
    assert.equal(r.varint(), v);
    assert.ok(r.done);
  }
  assert.throws(() => encodeVarint(-1n), SpopError);
  assert.throws(() => encodeVarint(2n ** 64n), SpopError);
  assert.throws(() => new SpopReader(Buffer.from([0xf0, 0x80])).varint(), SpopError);
});

test("typed data: every type, byte for byte, and back", () => {
  const cases: Array<[TypedData, number[]]> = [
    [{ type: "null" }, [0x00]],
    [{ type: "bool", value: true }, [0x11]],
    [{ type: "bool", value: false }, [0x01]],
    [{ type: "int32", value: 5n }, [0x02, 0x05]],
    [{ type: "int32", value: -1n }, [0x02, ...encodeVarint(2n ** 64n - 1n)]],
    [{ type: "uint32", value: 300n }, [0x03, 0xfc, 0x03]],
    [{ type: "int64", value: -(2n ** 63n) }, [0x04, ...encodeVarint(2n ** 63n)]],
    [{ type: "uint64", value: 2n ** 64n - 1n }, [0x05, ...encodeVarint(2n ** 64n - 1n)]],
    [{ type: "ipv4", value: Buffer.from([10, 0, 0, 1]) }, [0x06, 10, 0, 0, 1]],
    [{ type: "ipv6", value: Buffer.alloc(16, 0xfd) }, [0x07, ...Buffer.alloc(16, 0xfd)]],
    [{ type: "string", value: Buffer.from("ab") }, [0x08, 0x02, 0x61, 0x62]],
    [{ type: "binary", value: Buffer.from([0, 0xff]) }, [0x09, 0x02, 0x00, 0xff]],
  ];
  for (const [d, bytes] of cases) {
    assert.deepEqual([...new SpopWriter().typed(d).finish()], bytes, d.type);
    const r = new SpopReader(Buffer.from(bytes));
    assert.deepEqual(r.typed(), d, d.type);
    assert.ok(r.done);
  }
  assert.throws(() => new SpopWriter().typed({ type: "int32", value: 2n ** 31n }), SpopError);
  assert.throws(() => new SpopWriter().typed({ type: "uint32", value: -1n }), SpopError);
  assert.throws(() => new SpopWriter().typed({ type: "ipv4", value: Buffer.alloc(3) }), SpopError);
  assert.throws(() => new SpopReader(Buffer.from([0x0a])).typed(), SpopError);
  assert.throws(() => new SpopReader(Buffer.from([0x08, 0x05, 0x61])).typed(), SpopError);
});

test("frames: length, type, 4-byte flags, stream and frame ids, payload", () => {
  const f = encodeFrame({ type: 103, streamId: 300n, frameId: 1n, payload: Buffer.from([0xaa]) });
  assert.deepEqual([...f], [0, 0, 0, 9, 103, 0, 0, 0, 1, 0xfc, 0x03, 0x01, 0xaa]);
  assert.deepEqual(decodeFrame(f.subarray(4)), {
    type: 103,
    flags: FLAG_FIN,
    streamId: 300n,
    frameId: 1n,
    payload: Buffer.from([0xaa]),
  });
});

test("NOTIFY messages and ACK actions", () => {
  const payload = encodeMessages([
    {
      name: "m",
      args: [
        ["a", { type: "uint32", value: 7n }],
        ["", { type: "null" }],
      ],
    },
  ]);
  assert.deepEqual([...payload], [0x01, 0x6d, 0x02, 0x01, 0x61, 0x03, 0x07, 0x00, 0x00]);
  assert.deepEqual(decodeMessages(payload), [
    {
      name: "m",
      args: [
        ["a", { type: "uint32", value: 7n }],
        ["", { type: "null" }],
      ],
    },
  ]);
  const actions = encodeActions([
    {
      action: "set-var",
      scope: "transaction",
      name: "v",
      value: { type: "binary", value: Buffer.from([1]) },
    },
    { action: "unset-var", scope: "session", name: "w" },
  ]);
  assert.deepEqual([...actions], [1, 3, 2, 1, 0x76, 0x09, 1, 1, 2, 2, 1, 1, 0x77]);
  assert.deepEqual(decodeActions(actions), [
    {
      action: "set-var",
      scope: "transaction",
      name: "v",
      value: { type: "binary", value: Buffer.from([1]) },
    },
    { action: "unset-var", scope: "session", name: "w" },
  ]);
  assert.throws(() => decodeMessages(Buffer.from([0x01, 0x6d, 0x01])), SpopError);
});

test("req.hdrs_bin: names and values, two empty strings at the end", () => {
  const h: Array<[string, string]> = [
    ["host", "a"],
    ["x-b", "\xff"],
  ];
  const b = encodeHeadersBin(h);
  assert.deepEqual([...b], [4, ...Buffer.from("host"), 1, 0x61, 3, ...Buffer.from("x-b"), 1, 0xff, 0, 0]);
  assert.deepEqual(decodeHeadersBin(b), h);
  assert.throws(() => decodeHeadersBin(Buffer.from([4, 0x61])), SpopError);
});
