import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodePickVerdict,
  decodeServedReply,
  encodePickVerdict,
  encodeServedReply,
  WireError,
  type PickVerdict,
} from "./wire.ts";

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

test("served replies round-trip; the Lua action's format (>I2 then >Bs2s4 per op)", () => {
  const ops = [{ op: "set" as const, name: "x-conformance-test-served-endpoint", value: "10.0.0.1:8000" }];
  assert.deepEqual(decodeServedReply(encodeServedReply(ops)), ops);
  const lua = Buffer.from([0, 1, 2, 0, 1, 0x61, 0, 0, 0, 0]);
  assert.deepEqual(decodeServedReply(lua), [{ op: "remove", name: "a" }]);
  assert.throws(() => decodeServedReply(lua.subarray(0, 9)), WireError);
});
