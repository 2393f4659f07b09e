import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeLine, FramingError, NdjsonDecoder } from "./ndjson.ts";
import { oneLine, parsePodMessage, parseServerMessage, parseStreamPath, streamPath } from "./protocol.ts";

test("ndjson: values split across and within chunks", () => {
  const d = new NdjsonDecoder(1024);
  const text = encodeLine({ a: "x\ny" }) + encodeLine([1, 2]) + encodeLine("z");
  const bytes = Buffer.from(text);
  const out: unknown[] = [];
  for (let i = 0; i < bytes.length; i += 3) out.push(...d.push(bytes.subarray(i, i + 3)));
  assert.deepEqual(out, [{ a: "x\ny" }, [1, 2], "z"]);
  assert.deepEqual(d.push(Buffer.from("\n\n")), [], "empty lines are skipped");
});

test("ndjson: a line over the limit is refused, with or without its newline", () => {
  assert.throws(() => new NdjsonDecoder(8).push(Buffer.from('"0123456789"\n')), FramingError);
  const d = new NdjsonDecoder(8);
  d.push(Buffer.from('"0123'));
  assert.throws(() => d.push(Buffer.from("456789")), FramingError);
  assert.deepEqual(new NdjsonDecoder(8).push(Buffer.from('"012345"\n')), ["012345"], "exactly at the limit");
  assert.throws(() => new NdjsonDecoder(100).push(Buffer.from("{nope\n")), FramingError);
});

test("protocol: stream paths round-trip; anything else is not one", () => {
  assert.equal(streamPath({ namespace: "a", name: "b" }), "/v1/gateways/a/b/stream");
  assert.deepEqual(parseStreamPath("/v1/gateways/a/b/stream"), { namespace: "a", name: "b" });
  assert.equal(parseStreamPath("/v1/gateways/a/b/c/stream"), undefined);
  assert.equal(parseStreamPath("/v1/gateways/a/b/stream?x"), undefined);
});

test("protocol: reports are checked and their text flattened", () => {
  const hash = "a".repeat(64);
  const ok = parsePodMessage({
    type: "report",
    pod: "ns/pod-1",
    hash,
    applied: false,
    error: "line1\nline2",
    unavailableListeners: [{ listenerId: "ns/gw/l", message: "m", reason: "Pending" }],
  });
  assert.deepEqual(ok, {
    type: "report",
    pod: "ns/pod-1",
    hash,
    applied: false,
    error: "line1 line2",
    unavailableListeners: [{ listenerId: "ns/gw/l", message: "m", reason: "Pending" }],
  });
  assert.equal(
    typeof parsePodMessage({ type: "report", pod: "x", hash, applied: true, unavailableListeners: [] }),
    "string",
  );
  assert.equal(
    typeof parsePodMessage({
      type: "report",
      pod: "a/b",
      hash: "zz",
      applied: true,
      unavailableListeners: [],
    }),
    "string",
  );
  assert.equal(typeof parsePodMessage({ type: "config" }), "string");
  assert.deepEqual(parsePodMessage({ type: "heartbeat" }), { type: "heartbeat" });
  assert.equal(typeof parseServerMessage({ type: "config", hash, ir: {} }), "string");
  assert.equal(oneLine("x".repeat(5000)).length, 4097);
});
